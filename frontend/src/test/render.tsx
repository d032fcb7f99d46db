import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { StatusProvider } from "../status";
import { ToastProvider } from "../ui/Toast";

/** Renders a screen inside the app's providers, as App does. */
export function renderScreen(ui: ReactElement) {
  return render(
    <ToastProvider>
      <StatusProvider>{ui}</StatusProvider>
    </ToastProvider>,
  );
}

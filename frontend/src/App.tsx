import { useEffect, useState } from "react";
import { StatusProvider, useStatus } from "./status";
import { ToastProvider } from "./ui/Toast";
import { StatusScreen } from "./screens/Status";
import { ContainersScreen } from "./screens/Containers";
import { ContainerPage } from "./screens/ContainerPage";
import { ImagesScreen } from "./screens/Images";
import { VolumesScreen } from "./screens/Volumes";
import { SettingsScreen } from "./screens/Settings";
import { TroubleshootScreen } from "./screens/Troubleshoot";

export const SCREENS = ["Status", "Containers", "Images", "Volumes", "Settings", "Troubleshoot"] as const;
export type Screen = (typeof SCREENS)[number];

export default function App() {
  return (
    <ToastProvider>
      <StatusProvider>
        <Shell />
      </StatusProvider>
    </ToastProvider>
  );
}

function Shell() {
  const [screen, setScreen] = useState<Screen>("Status");
  const [container, setContainer] = useState<string | null>(null);
  function go(s: Screen) {
    setScreen(s);
    setContainer(null);
  }
  // Ctrl+1..6 (Cmd on macOS) switch screens, in sidebar order.
  useEffect(() => {
    function onKey(e: KeyboardEvent) {
      if (!(e.ctrlKey || e.metaKey) || e.altKey || e.shiftKey) return;
      const n = Number(e.key);
      if (!Number.isInteger(n) || n < 1 || n > SCREENS.length) return;
      e.preventDefault();
      go(SCREENS[n - 1]);
    }
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  return (
    <div className="app">
      <nav className="sidebar" aria-label="Main">
        <div className="brand">Berth</div>
        <StatusPill />
        <ul>
          {SCREENS.map((s) => (
            <li key={s}>
              <button
                className={s === screen ? "nav active" : "nav"}
                aria-current={s === screen ? "page" : undefined}
                onClick={() => go(s)}
                aria-keyshortcuts={`Control+${SCREENS.indexOf(s) + 1}`}
                title={`${s} (Ctrl+${SCREENS.indexOf(s) + 1})`}
              >
                {s}
              </button>
            </li>
          ))}
        </ul>
      </nav>
      <main className="main">
        {screen === "Status" && <StatusScreen />}
        {screen === "Containers" &&
          (container ? (
            <ContainerPage id={container} onBack={() => setContainer(null)} />
          ) : (
            <ContainersScreen onOpen={setContainer} />
          ))}
        {screen === "Images" && <ImagesScreen />}
        {screen === "Volumes" && <VolumesScreen />}
        {screen === "Settings" && <SettingsScreen />}
        {screen === "Troubleshoot" && <TroubleshootScreen />}
      </main>
    </div>
  );
}

function StatusPill() {
  const { status } = useStatus();
  const state = status?.state ?? "unknown";
  return (
    <div className={`pill pill-${state}`} data-testid="status-pill" data-state={state} role="status" aria-label={`Engine ${state}`}>
      <span className="dot" aria-hidden="true" />
      {state}
    </div>
  );
}

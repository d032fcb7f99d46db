import { describe, expect, it, beforeEach } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import App, { SCREENS } from "./App";
import { container, installFakeBackend, type FakeBackend } from "./test/fakeBackend";

let fake: FakeBackend;

beforeEach(() => {
  fake = installFakeBackend();
  fake.route("GET", "/containers/json", [container("web"), container("db", { state: "exited" })]);
  fake.route("GET", /^\/containers\/[^/]+\/json$/, { Id: "web-id", Name: "/web", State: { Status: "running", Running: true } });
  fake.route("GET", "/images/json", []);
  fake.route("GET", "/volumes", { Volumes: [] });
  fake.route("GET", "/system/df", { Volumes: [] });
  fake.route("GET", /\/stats/, {});
});

function nav() {
  return screen.getByRole("navigation", { name: "Main" });
}

describe("App", () => {
  it("shows each screen from the sidebar", async () => {
    const user = userEvent.setup();
    render(<App />);
    await waitFor(() => expect(screen.getByTestId("status-pill")).toHaveAttribute("data-state", "running"));
    for (const s of SCREENS) {
      await user.click(within(nav()).getByRole("button", { name: s }));
      expect(await screen.findByRole("heading", { level: 1, name: s })).toBeInTheDocument();
      expect(within(nav()).getByRole("button", { name: s })).toHaveAttribute("aria-current", "page");
    }
  });

  it("opens a container's page from the list and comes back", async () => {
    const user = userEvent.setup();
    render(<App />);
    await user.click(within(nav()).getByRole("button", { name: "Containers" }));
    const row = await screen.findByText("web", { selector: "button" });
    await user.click(row);
    expect(await screen.findByRole("tab", { name: "Logs" })).toBeInTheDocument();
    expect(screen.getByTestId("logs")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Back to containers" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Containers" })).toBeInTheDocument();
    // Leaving the page closed its log stream.
    expect(fake.stream("/containers/")!.closed).toBe(true);
  });

  it("switches screens with Ctrl+1..6", async () => {
    const user = userEvent.setup();
    render(<App />);
    for (const [i, s] of SCREENS.entries()) {
      await user.keyboard(`{Control>}${i + 1}{/Control}`);
      expect(await screen.findByRole("heading", { level: 1, name: s })).toBeInTheDocument();
    }
    // A plain digit typed into the page does not navigate.
    await user.keyboard("1");
    expect(screen.getByRole("heading", { level: 1, name: SCREENS[SCREENS.length - 1] })).toBeInTheDocument();
  });
});

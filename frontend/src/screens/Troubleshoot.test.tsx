import { describe, expect, it, beforeEach } from "vitest";
import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { TroubleshootScreen } from "./Troubleshoot";
import { installFakeBackend, type FakeBackend } from "../test/fakeBackend";
import { renderScreen } from "../test/render";

let fake: FakeBackend;

beforeEach(() => {
  fake = installFakeBackend();
  fake.app.TroubleshootPlan.mockImplementation(async (action) => ({
    action,
    items: [
      { path: "/home/me/.berth/vm/disk.img", what: "the VM disk: images, containers, volumes", bytes: 3 * 1024 ** 3 },
      { path: "/home/me/.berth/settings.json", what: "the settings", bytes: 0 },
    ],
    description: "  /home/me/.berth/vm/disk.img (3.0 GiB)\n      the VM disk\n",
  }));
  fake.app.Logs.mockImplementation(async (which) => (which === "vm" ? "vm booted\nkernel ok" : "service started"));
});

describe("TroubleshootScreen", () => {
  it("shows exactly what a reset loses before running it, and runs it only once confirmed", async () => {
    const user = userEvent.setup();
    let finish!: (s: string) => void;
    fake.app.RunTroubleshoot.mockImplementationOnce(() => new Promise((r) => (finish = r)));
    renderScreen(<TroubleshootScreen />);
    await user.click(screen.getByRole("button", { name: "Reset to factory defaults" }));
    expect(fake.app.TroubleshootPlan).toHaveBeenCalledWith("reset");
    const dialog = await screen.findByRole("dialog", { name: "Reset to factory defaults?" });
    const items = await within(dialog).findAllByTestId("plan-item");
    expect(items).toHaveLength(2);
    expect(items[0]).toHaveTextContent("/home/me/.berth/vm/disk.img");
    expect(items[0]).toHaveTextContent("the VM disk: images, containers, volumes");
    expect(items[0]).toHaveTextContent("3.00 GiB");
    expect(items[1]).toHaveTextContent("/home/me/.berth/settings.json");
    expect(within(dialog).getByTestId("plan-description")).toHaveTextContent("the VM disk");
    expect(dialog).toHaveTextContent("exactly what will be lost");
    expect(fake.app.RunTroubleshoot).not.toHaveBeenCalled();

    await user.click(within(dialog).getByRole("button", { name: "Confirm" }));
    expect(fake.app.RunTroubleshoot).toHaveBeenCalledWith("reset");
    expect(screen.queryByRole("dialog")).toBeNull();
    act(() => fake.emit("progress", "Stopping Berth"));
    act(() => fake.emit("progress", "Removing the VM disk"));
    expect(screen.getByTestId("troubleshoot-progress")).toHaveTextContent("Removing the VM disk");
    await act(async () => finish("Removed 2 items\n"));
    expect(await screen.findByTestId("troubleshoot-output")).toHaveTextContent("Removed 2 items");
    expect(fake.listeners("progress")).toBe(0);
  });

  it("Cancel runs nothing", async () => {
    const user = userEvent.setup();
    renderScreen(<TroubleshootScreen />);
    await user.click(screen.getByRole("button", { name: "Uninstall" }));
    const dialog = await screen.findByRole("dialog");
    await within(dialog).findAllByTestId("plan-item");
    await user.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    await user.click(screen.getByRole("button", { name: "Clean / purge data" }));
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(fake.app.TroubleshootPlan.mock.calls.map((c) => c[0])).toEqual(["uninstall", "purge"]);
    expect(fake.app.RunTroubleshoot).not.toHaveBeenCalled();
  });

  it("shows a failed action's error", async () => {
    const user = userEvent.setup();
    fake.app.RunTroubleshoot.mockRejectedValueOnce(new Error("berth purge: permission denied"));
    renderScreen(<TroubleshootScreen />);
    await user.click(screen.getByRole("button", { name: "Clean / purge data" }));
    const dialog = await screen.findByRole("dialog");
    await within(dialog).findAllByTestId("plan-item");
    await user.click(within(dialog).getByRole("button", { name: "Confirm" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("permission denied");
  });

  it("Restart restarts; Diagnostics shows where the bundle is", async () => {
    const user = userEvent.setup();
    renderScreen(<TroubleshootScreen />);
    await user.click(screen.getByRole("button", { name: "Restart" }));
    expect(fake.app.Restart).toHaveBeenCalled();
    await user.click(screen.getByRole("button", { name: "Diagnostics bundle" }));
    expect(await screen.findByTestId("diagnostics-result")).toHaveTextContent("/tmp/berth-diagnostics.zip");
  });

  it("shows the VM and engine logs by tab, and refreshes them", async () => {
    const user = userEvent.setup();
    renderScreen(<TroubleshootScreen />);
    expect(await screen.findByTestId("log-vm")).toHaveTextContent("vm booted");
    expect(fake.app.Logs).toHaveBeenCalledWith("vm");
    await user.click(screen.getByRole("tab", { name: "Engine" }));
    expect(await screen.findByTestId("log-engine")).toHaveTextContent("service started");
    expect(fake.app.Logs).toHaveBeenCalledWith("service");
    fake.app.Logs.mockResolvedValueOnce("service started\nservice restarted");
    await user.click(screen.getByRole("button", { name: "Refresh" }));
    await waitFor(() => expect(screen.getByTestId("log-engine")).toHaveTextContent("service restarted"));
  });
});

import { describe, expect, it, beforeEach } from "vitest";
import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { SettingsScreen } from "./Settings";
import { installFakeBackend, type FakeBackend } from "../test/fakeBackend";
import { renderScreen } from "../test/render";
import type { ApplyResult, Settings } from "../api";

let fake: FakeBackend;

beforeEach(() => {
  fake = installFakeBackend();
});

async function open() {
  const user = userEvent.setup();
  renderScreen(<SettingsScreen />);
  await screen.findByRole("tab", { name: "Resources" });
  return user;
}

/** Sets a controlled input's value in one change, as fill() does. */
function fill(el: HTMLElement, value: string) {
  fireEvent.change(el, { target: { value } });
}

function sent(i = 0): Settings {
  return fake.app.ApplySettings.mock.calls[i][0];
}

describe("SettingsScreen", () => {
  it("shows validation errors beside their fields and applies nothing", async () => {
    const user = await open();
    fake.app.ValidateSettings.mockResolvedValueOnce([
      { key: "resources.cpus", reason: "999 is more than the host's 8 CPUs" },
      { key: "engine.mtu", reason: "invalid MTU: -1", line: 3 },
    ]);
    await user.click(screen.getByRole("tab", { name: "Resources" }));
    fill(screen.getByLabelText("CPUs"), "999");
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    const err = await screen.findByTestId("error-resources.cpus");
    expect(err).toHaveTextContent("999 is more than the host's 8 CPUs");
    expect(err).toHaveAttribute("role", "alert");
    // Beside its field.
    expect(err.closest(".field")).toContainElement(screen.getByLabelText("CPUs"));
    const mtu = screen.getByTestId("error-engine.mtu");
    expect(mtu).toHaveTextContent("line 3");
    expect(mtu.closest(".field")).toContainElement(screen.getByLabelText("daemon.json"));
    expect(fake.app.ValidateSettings.mock.calls[0][0].resources.cpus).toBe(999);
    expect(fake.app.ApplySettings).not.toHaveBeenCalled();
    // The tabs with errors say so.
    expect(screen.getByRole("tab", { name: /Docker Engine/ })).toHaveTextContent("1");
  });

  it("applies a valid change, shows the progress and the result, and reloads", async () => {
    const user = await open();
    let finish!: (r: ApplyResult) => void;
    fake.app.ApplySettings.mockImplementationOnce(() => new Promise((r) => (finish = r)));
    await user.click(screen.getByRole("tab", { name: "Resources" }));
    fill(screen.getByLabelText("CPUs"), "4");
    fill(screen.getByLabelText("Memory (MiB)"), "4096");
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    await waitFor(() => expect(fake.app.ApplySettings).toHaveBeenCalledTimes(1));
    expect(sent().resources).toMatchObject({ cpus: 4, memoryMiB: 4096 });
    expect(fake.app.ApplySettings.mock.calls[0][1]).toBe(false);
    act(() => fake.emit("progress", "Stopping the VM"));
    act(() => fake.emit("progress", "Starting the VM with 4 CPUs"));
    expect(screen.getByTestId("apply-progress")).toHaveTextContent("Stopping the VM");
    expect(screen.getByTestId("apply-progress")).toHaveTextContent("Starting the VM with 4 CPUs");
    await act(async () => finish({ applied: ["VM restarted", "saved and applied"], changed: true }));
    expect(await screen.findByTestId("apply-result")).toHaveTextContent("VM restarted");
    await waitFor(() => expect(fake.app.Settings).toHaveBeenCalledTimes(2));
    expect(fake.listeners("progress")).toBe(0);
  });

  it("says when there was nothing to change", async () => {
    const user = await open();
    fake.app.ApplySettings.mockResolvedValueOnce({ applied: [], changed: false });
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    expect(await screen.findByTestId("apply-result")).toHaveTextContent("Nothing to change");
  });

  it("Cancel restores the loaded settings", async () => {
    const user = await open();
    await user.click(screen.getByRole("tab", { name: "Resources" }));
    fill(screen.getByLabelText("CPUs"), "7");
    fill(screen.getByLabelText("Disk location"), "/Volumes/Fast");
    expect(screen.getByLabelText("CPUs")).toHaveValue(7);
    expect(screen.getByText("Unsaved changes")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Cancel" }));
    expect(screen.getByLabelText("CPUs")).toHaveValue(2);
    expect(screen.getByLabelText("Disk location")).toHaveValue("");
    expect(screen.queryByText("Unsaved changes")).toBeNull();
  });

  it("a smaller disk warns, asks what is lost, then applies with the reset confirmed", async () => {
    const user = await open();
    fake.app.ApplySettings.mockResolvedValueOnce({ applied: [], changed: false, needsReset: true, error: "the change needs a confirmed reset" });
    await user.click(screen.getByRole("tab", { name: "Resources" }));
    fill(screen.getByLabelText("Disk size (GiB)"), "32");
    expect(screen.getByTestId("disk-warning")).toHaveTextContent("Shrinking the disk erases all images, containers and volumes");
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    const dialog = await screen.findByRole("dialog");
    expect(dialog).toHaveTextContent("64 GiB to 32 GiB");
    expect(dialog).toHaveTextContent("every image, container and volume");
    expect(fake.app.ApplySettings).toHaveBeenCalledTimes(1);
    await user.click(within(dialog).getByRole("button", { name: "Erase and apply" }));
    await waitFor(() => expect(fake.app.ApplySettings).toHaveBeenCalledTimes(2));
    expect(fake.app.ApplySettings.mock.calls[1][1]).toBe(true);
    expect(sent(1).resources.diskGiB).toBe(32);
    expect(await screen.findByTestId("apply-result")).toBeInTheDocument();
  });

  it("declining the reset applies nothing more", async () => {
    const user = await open();
    fake.app.ApplySettings.mockResolvedValueOnce({ applied: [], changed: false, needsReset: true });
    await user.click(screen.getByRole("tab", { name: "Resources" }));
    fill(screen.getByLabelText("Disk size (GiB)"), "16");
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    const dialog = await screen.findByRole("dialog");
    await user.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(fake.app.ApplySettings).toHaveBeenCalledTimes(1);
  });

  it("shows the errors and the message of a refused apply", async () => {
    const user = await open();
    fake.app.ApplySettings.mockResolvedValueOnce({
      applied: [],
      changed: false,
      errors: [{ key: "fileSharing.paths", reason: '"/nope" does not exist' }],
      error: "nothing was applied: fix the settings shown",
    });
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    expect(await screen.findByTestId("error-fileSharing.paths")).toHaveTextContent("does not exist");
    expect(screen.getByTestId("apply-error")).toHaveTextContent("nothing was applied");
    // It moved to the tab of the error.
    expect(screen.getByRole("tab", { name: /File sharing/ })).toHaveAttribute("aria-selected", "true");
    expect(screen.queryByTestId("apply-result")).toBeNull();
  });

  it("registry fields write daemon.json, and daemon.json edits show in them", async () => {
    const user = await open();
    await user.click(screen.getByRole("tab", { name: "Docker Engine" }));
    fill(screen.getByLabelText("Registry mirrors"), "http://127.0.0.1:5999/");
    fill(screen.getByLabelText("Insecure registries"), "reg.local:5000, other.local");
    const editor = screen.getByLabelText("daemon.json") as HTMLTextAreaElement;
    expect(JSON.parse(editor.value)).toEqual({
      "log-level": "info",
      "registry-mirrors": ["http://127.0.0.1:5999/"],
      "insecure-registries": ["reg.local:5000", "other.local"],
    });
    // What is typed stays as typed.
    expect(screen.getByLabelText("Insecure registries")).toHaveValue("reg.local:5000, other.local");
    fill(editor, JSON.stringify({ "registry-mirrors": ["https://m1", "https://m2"], mtu: 1400 }, null, 2));
    expect(screen.getByLabelText("Registry mirrors")).toHaveValue("https://m1\nhttps://m2");
    expect(screen.getByLabelText("Insecure registries")).toHaveValue("");
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    await waitFor(() => expect(fake.app.ApplySettings).toHaveBeenCalled());
    expect(sent().engine).toEqual({ "registry-mirrors": ["https://m1", "https://m2"], mtu: 1400 });
  });

  it("daemon.json that does not parse shows its line and is not applied", async () => {
    const user = await open();
    await user.click(screen.getByRole("tab", { name: "Docker Engine" }));
    fill(screen.getByLabelText("daemon.json"), '{\n  "debug": true,\n  "mtu": 1400,\n}');
    const err = screen.getByTestId("json-error");
    expect(err).toHaveAttribute("role", "alert");
    expect(err).toHaveTextContent(/^line 4/);
    expect(screen.getByLabelText("Registry mirrors")).toBeDisabled();
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    expect(fake.app.ValidateSettings).not.toHaveBeenCalled();
    expect(fake.app.ApplySettings).not.toHaveBeenCalled();
    expect(screen.getByTestId("apply-error")).toHaveTextContent("does not parse");
    // The editor colours the tokens.
    const hl = document.querySelector(".code-hl")!;
    expect(hl.querySelector(".tok-key")).toHaveTextContent('"debug"');
    expect(hl.querySelector(".tok-lit")).toHaveTextContent("true");
    expect(hl.querySelector(".hl-bad")).toHaveTextContent("}");
  });

  it("file sharing: Add folder asks for one, Remove takes one out", async () => {
    const user = await open();
    fake.app.PickFolder.mockResolvedValueOnce("/home/me/src").mockResolvedValueOnce("");
    await user.click(screen.getByRole("tab", { name: "File sharing" }));
    await user.click(screen.getByRole("button", { name: "Add folder" }));
    expect(fake.app.PickFolder).toHaveBeenCalledWith("Share a folder");
    expect(await screen.findByText("/home/me/src")).toBeInTheDocument();
    // Cancelled in the picker: nothing added.
    await user.click(screen.getByRole("button", { name: "Add folder" }));
    expect(within(screen.getByRole("list", { name: "Shared folders" })).getAllByRole("listitem")).toHaveLength(2);
    await user.click(screen.getByRole("button", { name: "Remove /Users" }));
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    await waitFor(() => expect(fake.app.ApplySettings).toHaveBeenCalled());
    expect(sent().fileSharing.paths).toEqual(["/home/me/src"]);
  });

  it("proxy fields are enabled in manual mode", async () => {
    const user = await open();
    await user.click(screen.getByRole("tab", { name: "Proxies" }));
    expect(screen.getByLabelText("HTTP proxy")).toBeDisabled();
    await user.click(screen.getByLabelText("Manual"));
    expect(screen.getByLabelText("HTTP proxy")).toBeEnabled();
    await user.type(screen.getByLabelText("HTTP proxy"), "http://proxy:3128");
    await user.type(screen.getByLabelText("No proxy"), "localhost");
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    await waitFor(() => expect(fake.app.ApplySettings).toHaveBeenCalled());
    expect(sent().proxies).toEqual({ mode: "manual", http: "http://proxy:3128", https: "", noProxy: "localhost" });
  });

  it("general switches are sent", async () => {
    const user = await open();
    await user.click(screen.getByLabelText("Start Berth when you log in"));
    await user.click(screen.getByRole("button", { name: "Apply & restart" }));
    await waitFor(() => expect(fake.app.ApplySettings).toHaveBeenCalled());
    expect(sent().general.startAtLogin).toBe(true);
  });
});

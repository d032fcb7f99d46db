import { describe, expect, it, beforeEach } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { VolumesScreen } from "./Volumes";
import { installFakeBackend, reply, type FakeBackend } from "../test/fakeBackend";
import { renderScreen } from "../test/render";

let fake: FakeBackend;
let volumes: { Name: string; Driver: string }[];

beforeEach(() => {
  fake = installFakeBackend();
  volumes = [
    { Name: "pgdata", Driver: "local" },
    { Name: "cache", Driver: "local" },
  ];
  fake.route("GET", "/volumes", () => ({ Volumes: volumes, Warnings: null }));
  fake.route("GET", "/system/df", {
    Volumes: [{ Name: "pgdata", UsageData: { Size: 48 * 1024 * 1024, RefCount: 1 } }, { Name: "cache", UsageData: { Size: -1, RefCount: -1 } }],
  });
  fake.app.VolumeFiles.mockImplementation(async (_v: string, path: string) => {
    if (path === "") return [
      { name: "base", dir: true, size: 4096, modified: "2024-01-01T00:00:00Z" },
      { name: "PG_VERSION", dir: false, size: 3, modified: "2024-01-01T00:00:00Z" },
    ];
    if (path === "base") return [{ name: "1", dir: true, size: 4096, modified: "2024-01-01T00:00:00Z" }];
    if (path === "base/1") return [{ name: "112", dir: false, size: 8192, modified: "2024-01-02T00:00:00Z" }];
    throw new Error("no such folder");
  });
});

function row(name: string) {
  return screen.getAllByTestId("volume-row").find((r) => r.dataset.name === name)!;
}

describe("VolumesScreen", () => {
  it("lists volumes with size and users, — when unknown", async () => {
    renderScreen(<VolumesScreen />);
    await waitFor(() => expect(within(row("pgdata")).getByTestId("volume-size")).toHaveTextContent("48.0 MiB"));
    expect(row("pgdata")).toHaveTextContent("1 container");
    expect(within(row("cache")).getByTestId("volume-size")).toHaveTextContent("—");
    expect(screen.getAllByTestId("volume-row").map((r) => r.dataset.name)).toEqual(["cache", "pgdata"]);
  });

  it("Browse navigates into folders and back by the breadcrumb", async () => {
    const user = userEvent.setup();
    renderScreen(<VolumesScreen />);
    await user.click(await screen.findByRole("button", { name: "Browse pgdata" }));
    const dialog = screen.getByRole("dialog", { name: "Browse pgdata" });
    expect(await within(dialog).findByText("PG_VERSION")).toBeInTheDocument();
    expect(fake.app.VolumeFiles).toHaveBeenLastCalledWith("pgdata", "");
    await user.click(within(dialog).getByRole("button", { name: "base/" }));
    await user.click(await within(dialog).findByRole("button", { name: "1/" }));
    expect(fake.app.VolumeFiles).toHaveBeenLastCalledWith("pgdata", "base/1");
    const entry = await within(dialog).findByText("112");
    expect(entry.closest("tr")).toHaveTextContent("8.00 KiB");
    const crumbs = within(dialog).getByRole("navigation", { name: "Breadcrumb" });
    expect(within(crumbs).getAllByRole("button").map((b) => b.textContent)).toEqual(["pgdata", "base", "1"]);
    await user.click(within(crumbs).getByRole("button", { name: "base" }));
    expect(await within(dialog).findByRole("button", { name: "1/" })).toBeInTheDocument();
    expect(fake.app.VolumeFiles).toHaveBeenLastCalledWith("pgdata", "base");
    await user.click(within(dialog).getByRole("button", { name: "Up one folder" }));
    expect(await within(dialog).findByText("PG_VERSION")).toBeInTheDocument();
  });

  it("Create sends the name", async () => {
    const user = userEvent.setup();
    fake.route("POST", "/volumes/create", ({ body }: { body: unknown }) => {
      volumes = [...volumes, { Name: (body as { Name: string }).Name, Driver: "local" }];
      return { Name: (body as { Name: string }).Name };
    });
    renderScreen(<VolumesScreen />);
    await user.type(screen.getByLabelText("Volume name"), "uploads");
    await user.click(screen.getByRole("button", { name: "Create" }));
    expect(fake.calls("POST", "/volumes/create")[0].body).toEqual({ Name: "uploads" });
    await waitFor(() => expect(row("uploads")).toBeDefined());
  });

  it("Delete asks, and shows the engine's volume-in-use error", async () => {
    const user = userEvent.setup();
    fake.route("DELETE", /^\/volumes\//, reply(409, { message: "remove pgdata: volume is in use - [abc123]" }));
    renderScreen(<VolumesScreen />);
    await user.click(await screen.findByRole("button", { name: "Delete pgdata" }));
    const dialog = screen.getByRole("dialog");
    expect(fake.calls("DELETE")).toHaveLength(0);
    await user.click(within(dialog).getByRole("button", { name: "Delete" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("volume is in use");
    expect(fake.calls("DELETE")[0].path).toBe("/volumes/pgdata");
  });
});

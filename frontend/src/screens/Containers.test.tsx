import { describe, expect, it, beforeEach, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ContainersScreen } from "./Containers";
import { container, installFakeBackend, reply, type FakeBackend } from "../test/fakeBackend";
import { renderScreen } from "../test/render";

let fake: FakeBackend;
let list: ReturnType<typeof container>[];

beforeEach(() => {
  fake = installFakeBackend();
  list = [
    container("shop-web-1", { project: "shop", ports: [
      { IP: "0.0.0.0", PrivatePort: 80, PublicPort: 8080, Type: "tcp" },
      { IP: "::", PrivatePort: 80, PublicPort: 8080, Type: "tcp" },
    ], status: "Up 2 minutes (healthy)" }),
    container("shop-db-1", { project: "shop" }),
    container("blog-app-1", { project: "blog", state: "exited" }),
    container("lonely", { state: "paused", status: "Up 1 hour (Paused)" }),
  ];
  fake.route("GET", "/containers/json", () => list);
  fake.route("POST", /^\/containers\/[^/]+\/(stop|start|restart|pause|unpause)$/, undefined);
  fake.route("GET", /\/stats\?stream=0$/, {});
});

function rows() {
  return screen.getAllByTestId("container-row").map((r) => r.getAttribute("data-name"));
}

describe("ContainersScreen", () => {
  it("groups rows by Compose project, ungrouped ones last", async () => {
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    await waitFor(() => expect(screen.getAllByTestId("container-row")).toHaveLength(4));
    expect(rows()).toEqual(["blog-app-1", "shop-db-1", "shop-web-1", "lonely"]);
    const groups = screen.getAllByTestId("container-group");
    expect(groups.map((g) => g.getAttribute("data-project"))).toEqual(["blog", "shop", ""]);
    expect(within(groups[1]).getByRole("columnheader", { name: /shop/ })).toBeInTheDocument();
    expect(within(groups[2]).getByText("Other containers")).toBeInTheDocument();

    const web = screen.getAllByTestId("container-row").find((r) => r.dataset.name === "shop-web-1")!;
    expect(within(web).getByTestId("container-state")).toHaveTextContent("running");
    expect(within(web).getByTestId("container-state")).toHaveTextContent("healthy");
    // IPv4 and IPv6 bindings of the same port are one link.
    expect(within(web).getAllByRole("link")).toHaveLength(1);
  });

  it("Stop calls POST /containers/ID/stop and refreshes", async () => {
    const user = userEvent.setup();
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    const stop = await screen.findByRole("button", { name: "Stop shop-db-1" });
    const before = fake.calls("GET", "/containers/json").length;
    list = list.map((c) => (c.Names[0] === "/shop-db-1" ? { ...c, State: "exited", Status: "Exited (0) 1 second ago" } : c));
    await user.click(stop);
    expect(fake.calls("POST").map((c) => c.path)).toEqual([`/containers/${list[1].Id}/stop`]);
    await waitFor(() => expect(fake.calls("GET", "/containers/json").length).toBeGreaterThan(before));
    const db = screen.getAllByTestId("container-row").find((r) => r.dataset.name === "shop-db-1")!;
    await waitFor(() => expect(within(db).getByTestId("container-state")).toHaveTextContent("exited"));
    expect(within(db).getByRole("button", { name: "Start shop-db-1" })).toBeEnabled();
  });

  it("shows the actions that fit each state", async () => {
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    expect(await screen.findByRole("button", { name: "Start blog-app-1" })).toBeEnabled();
    expect(screen.queryByRole("button", { name: "Stop blog-app-1" })).toBeNull();
    expect(screen.getByRole("button", { name: "Pause blog-app-1" })).toBeDisabled();
    expect(screen.getByRole("button", { name: "Unpause lonely" })).toBeEnabled();
    expect(screen.getByRole("button", { name: "Pause shop-web-1" })).toBeEnabled();
    expect(screen.getByRole("button", { name: "Restart shop-web-1" })).toBeEnabled();
  });

  it("a port link opens localhost in the browser", async () => {
    const user = userEvent.setup();
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    const link = await screen.findByRole("link", { name: "8080:80" });
    await user.click(link);
    expect(fake.app.OpenURL).toHaveBeenCalledWith("http://localhost:8080");
  });

  it("clicking the name opens the container", async () => {
    const user = userEvent.setup();
    const onOpen = vi.fn();
    renderScreen(<ContainersScreen onOpen={onOpen} />);
    await user.click(await screen.findByRole("button", { name: "lonely" }));
    expect(onOpen).toHaveBeenCalledWith(list[3].Id);
  });

  it("Delete asks first, then removes with force", async () => {
    const user = userEvent.setup();
    fake.route("DELETE", /^\/containers\//, undefined);
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    await user.click(await screen.findByRole("button", { name: "Delete lonely" }));
    const dialog = screen.getByRole("dialog");
    expect(dialog).toHaveTextContent("Delete lonely?");
    expect(fake.calls("DELETE")).toHaveLength(0);
    await user.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(fake.calls("DELETE")).toHaveLength(0);

    await user.click(screen.getByRole("button", { name: "Delete lonely" }));
    list = list.filter((c) => c.Names[0] !== "/lonely");
    await user.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Delete" }));
    expect(fake.calls("DELETE").map((c) => c.path)).toEqual([`/containers/${encodeURIComponent(`lonely-id`.padEnd(64, "0"))}?force=1`]);
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    await waitFor(() => expect(rows()).not.toContain("lonely"));
  });

  it("an action's engine error is shown", async () => {
    const user = userEvent.setup();
    fake.route("POST", /\/restart$/, reply(500, { message: "cannot restart: device busy" }));
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    await user.click(await screen.findByRole("button", { name: "Restart shop-db-1" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("cannot restart: device busy");
  });

  it("__berthRefreshContainers reads the list again and resolves with the time to the new rows", async () => {
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    await waitFor(() => expect(screen.getAllByTestId("container-row")).toHaveLength(4));
    expect(typeof window.__berthRefreshContainers).toBe("function");
    list = [...list, container("newcomer")];
    // Not inside act: act would hold the render the promise waits for.
    let ms: number | undefined;
    void window.__berthRefreshContainers!().then((v) => (ms = v));
    await waitFor(() => expect(ms).toBeDefined());
    expect(typeof ms).toBe("number");
    expect(ms).toBeGreaterThanOrEqual(0);
    // Resolved once the new row is in the DOM.
    expect(rows()).toContain("newcomer");
  });

  it("keeps unchanged rows' elements on a refresh of 200 containers", async () => {
    list = Array.from({ length: 200 }, (_, i) => container(`many-${String(i).padStart(3, "0")}`, { state: "exited" }));
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    await waitFor(() => expect(screen.getAllByTestId("container-row")).toHaveLength(200));
    const first = screen.getAllByTestId("container-row")[0];
    const cell = within(first).getByTestId("container-state");
    list = list.map((c, i) => (i === 5 ? { ...c, State: "running", Status: "Up 1 second" } : c));
    let done = false;
    void window.__berthRefreshContainers!().then(() => (done = true));
    await waitFor(() => expect(done).toBe(true));
    expect(screen.getAllByTestId("container-row")[0]).toBe(first);
    expect(within(first).getByTestId("container-state")).toBe(cell);
    expect(within(screen.getAllByTestId("container-row")[5]).getByTestId("container-state")).toHaveTextContent("running");
    // The list refresh made one call, no per-row ones.
    expect(fake.dockerCalls.filter((c) => c.path.includes("/json?") || c.path.endsWith("/json")).every((c) => c.path === "/containers/json?all=1")).toBe(true);
  });

  it("shows the engine-down panel when the engine is stopped", async () => {
    fake.status = { ...fake.status, state: "stopped" };
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    expect(await screen.findByText("The engine is not running")).toBeInTheDocument();
    await userEvent.setup().click(screen.getByRole("button", { name: "Start" }));
    expect(fake.app.Start).toHaveBeenCalled();
  });

  it("shows CPU and memory figures of running containers", async () => {
    fake.route("GET", /\/stats\?stream=0$/, {
      cpu_stats: { cpu_usage: { total_usage: 2_000_000 }, system_cpu_usage: 110_000_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 1_000_000 }, system_cpu_usage: 100_000_000 },
      memory_stats: { usage: 3 * 1024 * 1024, limit: 1 << 30, stats: { inactive_file: 1024 * 1024 } },
    });
    renderScreen(<ContainersScreen onOpen={() => {}} />);
    await waitFor(
      () => {
        const web = screen.getAllByTestId("container-row").find((r) => r.dataset.name === "shop-web-1")!;
        expect(web).toHaveTextContent("20.0 %");
        expect(web).toHaveTextContent("2.00 MiB");
      },
      { timeout: 3000 },
    );
    const stats = fake.calls("GET").filter((c) => c.path.includes("/stats"));
    // Only the running ones.
    expect(new Set(stats.map((c) => c.path.split("/")[2])).size).toBe(2);
  });
});

import { describe, expect, it, beforeEach, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ContainerPage } from "./ContainerPage";
import { installFakeBackend, type FakeBackend } from "../test/fakeBackend";
import { renderScreen } from "../test/render";

let fake: FakeBackend;
const ID = "abc123".padEnd(64, "0");

beforeEach(() => {
  fake = installFakeBackend();
  fake.route("GET", `/containers/${ID}/json`, {
    Id: ID,
    Name: "/web",
    Config: { Image: "nginx:1.27" },
    State: { Status: "running", Running: true },
  });
  fake.route("POST", /\/stop$/, undefined);
});

async function openLogs() {
  await waitFor(() => expect(fake.stream(`/containers/${ID}/logs`)).toBeDefined());
  return fake.stream(`/containers/${ID}/logs`)!;
}

describe("ContainerPage", () => {
  it("shows the name, state and the actions", async () => {
    renderScreen(<ContainerPage id={ID} onBack={() => {}} />);
    expect(await screen.findByRole("heading", { name: "web" })).toBeInTheDocument();
    expect(screen.getByTestId("container-state")).toHaveTextContent("running");
    await userEvent.setup().click(screen.getByRole("button", { name: "Stop web" }));
    expect(fake.calls("POST").map((c) => c.path)).toEqual([`/containers/${ID}/stop`]);
  });

  it("follows the logs: chunks append lines, cut lines are joined, stderr is marked", async () => {
    renderScreen(<ContainerPage id={ID} onBack={() => {}} />);
    const s = await openLogs();
    expect(s.kind).toBe("logs");
    expect(s.path).toContain("follow=1");
    expect(s.path).toContain("timestamps=1");
    s.chunk("2024-01-01T00:00:01.000000000Z tick 0\n2024-01-01T00:00:02.000000000Z tick");
    const logs = screen.getByTestId("logs");
    expect(logs).toHaveTextContent("tick 0");
    expect(logs).not.toHaveTextContent("tick 0tick");
    s.chunk(" 1\n");
    s.chunk("2024-01-01T00:00:03Z something failed\n", "stderr");
    const lines = logs.querySelectorAll(".log-line");
    expect([...lines].map((l) => l.textContent)).toEqual(["tick 0", "tick 1", "something failed"]);
    expect(lines[2]).toHaveClass("stderr");
    expect(lines[0]).not.toHaveClass("stderr");
    // Timestamps are hidden until asked for.
    expect(logs).not.toHaveTextContent("2024-01-01");
    await userEvent.setup().click(screen.getByLabelText("Timestamps"));
    expect(logs).toHaveTextContent("2024-01-01T00:00:02.000000000Z tick 1");
  });

  it("search filters the lines and highlights the match", async () => {
    const user = userEvent.setup();
    renderScreen(<ContainerPage id={ID} onBack={() => {}} />);
    const s = await openLogs();
    s.chunk("GET /index.html 200\nGET /missing 404\nPOST /login 200\n");
    await user.type(screen.getByRole("searchbox", { name: "Search logs" }), "get");
    const logs = screen.getByTestId("logs");
    const lines = [...logs.querySelectorAll(".log-line")].map((l) => l.textContent);
    expect(lines).toEqual(["GET /index.html 200", "GET /missing 404"]);
    expect([...logs.querySelectorAll("mark")].map((m) => m.textContent)).toEqual(["GET", "GET"]);
    expect(screen.getByTestId("logs-count")).toHaveTextContent("2 of 3 lines");
    // New lines are filtered too.
    s.chunk("GET /again 200\nDELETE /x 204\n");
    expect([...logs.querySelectorAll(".log-line")]).toHaveLength(3);
    await user.clear(screen.getByRole("searchbox", { name: "Search logs" }));
    expect([...logs.querySelectorAll(".log-line")]).toHaveLength(5);
  });

  it("says when the log stream ends and reconnects", async () => {
    const user = userEvent.setup();
    renderScreen(<ContainerPage id={ID} onBack={() => {}} />);
    const s = await openLogs();
    s.chunk("last words");
    s.end();
    expect(screen.getByTestId("logs")).toHaveTextContent("last words");
    expect(screen.getByText(/The log stream ended/)).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Reconnect" }));
    await waitFor(() => expect(fake.streams.filter((x) => x.path.includes("/logs"))).toHaveLength(2));
  });

  it("closes its streams when it goes", async () => {
    const { unmount } = renderScreen(<ContainerPage id={ID} onBack={() => {}} />);
    const s = await openLogs();
    expect(s.closed).toBe(false);
    unmount();
    expect(s.closed).toBe(true);
    expect(fake.listeners(`stream:${s.id}`)).toBe(0);
  });

  it("Inspect shows the container's JSON", async () => {
    const user = userEvent.setup();
    renderScreen(<ContainerPage id={ID} onBack={() => {}} />);
    await screen.findByRole("heading", { name: "web" });
    await user.click(screen.getByRole("tab", { name: "Inspect" }));
    const pre = screen.getByTestId("inspect");
    expect(JSON.parse(pre.textContent!)).toMatchObject({ Id: ID, Name: "/web", Config: { Image: "nginx:1.27" } });
  });

  it("Stats charts CPU % and memory from the stats stream", async () => {
    const user = userEvent.setup();
    renderScreen(<ContainerPage id={ID} onBack={() => {}} />);
    await screen.findByRole("heading", { name: "web" });
    await user.click(screen.getByRole("tab", { name: "Stats" }));
    await waitFor(() => expect(fake.stream(`/containers/${ID}/stats`)).toBeDefined());
    const s = fake.stream(`/containers/${ID}/stats`)!;
    expect(s.kind).toBe("lines");
    const doc = (total: number, sys: number, mem: number) =>
      JSON.stringify({
        cpu_stats: { cpu_usage: { total_usage: total }, system_cpu_usage: sys, online_cpus: 2 },
        precpu_stats: { cpu_usage: { total_usage: total - 2_500_000 }, system_cpu_usage: sys - 10_000_000 },
        memory_stats: { usage: mem, limit: 512 * 1024 * 1024, stats: {} },
      });
    s.chunk(doc(10_000_000, 100_000_000, 64 * 1024 * 1024));
    s.chunk(doc(20_000_000, 200_000_000, 128 * 1024 * 1024));
    expect(screen.getByTestId("chart-cpu")).toHaveTextContent("50.0 %");
    expect(screen.getByTestId("chart-memory")).toHaveTextContent("128 MiB");
    expect(screen.getByRole("img", { name: "CPU: 50.0 %" }).querySelector("polyline")).not.toBeNull();
  });

  it("Back goes back", async () => {
    const onBack = vi.fn();
    renderScreen(<ContainerPage id={ID} onBack={onBack} />);
    await userEvent.setup().click(screen.getByRole("button", { name: "Back to containers" }));
    expect(onBack).toHaveBeenCalled();
  });

  it("deleting from the page goes back to the list", async () => {
    const user = userEvent.setup();
    const onBack = vi.fn();
    fake.route("DELETE", /^\/containers\//, undefined);
    renderScreen(<ContainerPage id={ID} onBack={onBack} />);
    await user.click(await screen.findByRole("button", { name: "Delete web" }));
    await user.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(onBack).toHaveBeenCalled());
    expect(fake.calls("DELETE")[0].path).toBe(`/containers/${ID}?force=1`);
  });

  it("Terminal runs /bin/sh, says how it exited, reconnects, and closes when the page goes", async () => {
    const user = userEvent.setup();
    const { unmount } = renderScreen(<ContainerPage id={ID} onBack={() => {}} />);
    await screen.findByRole("heading", { name: "web" });
    await user.click(screen.getByRole("tab", { name: "Terminal" }));
    expect(screen.getByTestId("terminal")).toBeInTheDocument();
    await waitFor(() => expect(fake.app.ExecStart).toHaveBeenCalledTimes(1), { timeout: 4000 });
    const [container, cmd, cols, rows] = fake.app.ExecStart.mock.calls[0];
    expect(container).toBe(ID);
    expect(cmd).toEqual(["/bin/sh"]);
    expect(cols).toBeGreaterThan(0);
    expect(rows).toBeGreaterThan(0);
    const x = fake.execs[0];
    x.end(130);
    expect(await screen.findByText("exited with code 130")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Reconnect" }));
    await waitFor(() => expect(fake.app.ExecStart).toHaveBeenCalledTimes(2));
    expect(screen.queryByText(/exited with code/)).toBeNull();
    const y = fake.execs[1];
    await waitFor(() => expect(fake.listeners(`exec:${y.id}`)).toBe(1));
    // Keys typed in the terminal go to the exec.
    const ta = screen.getByTestId("terminal").querySelector("textarea")!;
    await user.type(ta, "ls{Enter}");
    await waitFor(() => expect(y.input.join("")).toBe("ls\r"));
    unmount();
    expect(y.closed).toBe(true);
  });
});

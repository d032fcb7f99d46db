// A fake of the Go side for the tests: window.go.ui.App with every bound
// method a vi.fn, window.runtime with an event bus, scripted Docker Engine
// answers by method and path, and handles on the streams and execs the
// screens open so a test can send their chunks and ends.
import { vi, type Mock } from "vitest";
import { act } from "@testing-library/react";
import type { DockerResponse, Plan, Settings, SettingsView, Status } from "../api";

type GoApp = NonNullable<NonNullable<NonNullable<Window["go"]>["ui"]>["App"]>;
type Mocked<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? Mock<(...a: A) => R> : never };

/** What a route returns: a value (sent as JSON with status 200), undefined
 * (204, empty body) or reply(status, body). */
export type RouteResult = unknown;
export type Route = (req: { method: string; path: string; body: unknown }) => RouteResult | Promise<RouteResult>;

class Reply {
  constructor(
    public status: number,
    public body: unknown,
  ) {}
}

/** An answer with a status: reply(409, {message: "conflict"}). */
export function reply(status: number, body: unknown): Reply {
  return new Reply(status, body);
}

export interface FakeStream {
  id: string;
  method: string;
  path: string;
  kind: "logs" | "lines";
  closed: boolean;
  /** Sends one chunk (inside act). */
  chunk(data: string, stream?: "stdout" | "stderr"): void;
  /** Ends the stream (inside act). */
  end(error?: string): void;
}

export interface FakeExec {
  id: string;
  container: string;
  cmd: string[];
  closed: boolean;
  input: string[];
  output(data: string): void;
  end(exitCode: number, error?: string): void;
}

export interface DockerCall {
  method: string;
  path: string;
  body: unknown;
}

export function runningStatus(): Status {
  return {
    state: "running",
    versions: { agent: "1.0.0", kernel: "6.6.1", engine: "27.0.1" },
    resources: { cpus: 2, memoryMiB: 2048, memUsedMiB: 512, memTotalMiB: 2000, diskUsedBytes: 1 << 30, diskSizeBytes: 64 << 30 },
    since: "2024-01-01T00:00:00Z",
  };
}

export function defaultSettings(): Settings {
  return {
    version: 1,
    general: { startAtLogin: false, checkForUpdates: true, backupVMDisk: false, useKeychain: true },
    resources: { cpus: 2, memoryMiB: 2048, swapMiB: 1024, diskGiB: 64, diskPath: "", vmSubnet: "" },
    fileSharing: { paths: ["/Users"] },
    proxies: { mode: "none", http: "", https: "", noProxy: "" },
    engine: { "log-level": "info" },
  };
}

export class FakeBackend {
  app: Mocked<GoApp>;
  status: Status = runningStatus();
  dockerCalls: DockerCall[] = [];
  streams: FakeStream[] = [];
  execs: FakeExec[] = [];
  private routes: { method: string; match: string | RegExp; route: Route }[] = [];
  private handlers = new Map<string, Set<(...d: any[]) => void>>();
  private nextId = 0;

  settingsView: SettingsView = {
    settings: defaultSettings(),
    defaults: defaultSettings(),
    limits: { maxCPUs: 8, maxMemoryMiB: 12000, currentDiskGiB: 64 },
  };

  constructor() {
    const docker = async (method: string, path: string, body: string): Promise<DockerResponse> => {
      const parsed = body === "" ? undefined : JSON.parse(body);
      this.dockerCalls.push({ method, path, body: parsed });
      const r = this.find(method, path);
      if (!r) return { status: 404, body: JSON.stringify({ message: `no route for ${method} ${path}` }) };
      const out = await r({ method, path, body: parsed });
      if (out instanceof Reply) return { status: out.status, body: typeof out.body === "string" ? out.body : JSON.stringify(out.body) };
      if (out === undefined) return { status: 204, body: "" };
      return { status: 200, body: typeof out === "string" ? out : JSON.stringify(out) };
    };
    this.app = {
      Status: vi.fn(async () => this.status),
      Start: vi.fn(async () => {}),
      Stop: vi.fn(async () => {}),
      Restart: vi.fn(async () => {}),
      Docker: vi.fn(docker),
      StreamOpen: vi.fn(async (method: string, path: string, _body: string, kind: "logs" | "lines") => {
        const id = `s${++this.nextId}`;
        const s: FakeStream = {
          id,
          method,
          path,
          kind,
          closed: false,
          chunk: (data, stream) => act(() => this.emit("stream:" + id, kind === "logs" ? { stream: stream ?? "stdout", data } : { data })),
          end: (error) => act(() => this.emit("stream-end:" + id, error ? { error } : {})),
        };
        this.streams.push(s);
        return id;
      }),
      StreamClose: vi.fn(async (id: string) => {
        const s = this.streams.find((x) => x.id === id);
        if (s) s.closed = true;
      }),
      ExecStart: vi.fn(async (container: string, cmd: string[]) => {
        const id = `x${++this.nextId}`;
        const x: FakeExec = {
          id,
          container,
          cmd,
          closed: false,
          input: [],
          output: (d) => act(() => this.emit("exec:" + id, d)),
          end: (exitCode, error) => act(() => this.emit("exec-end:" + id, { exitCode, error })),
        };
        this.execs.push(x);
        return id;
      }),
      ExecInput: vi.fn(async (id: string, d: string) => {
        this.execs.find((x) => x.id === id)?.input.push(d);
      }),
      ExecResize: vi.fn(async () => {}),
      ExecClose: vi.fn(async (id: string) => {
        const x = this.execs.find((e) => e.id === id);
        if (x) x.closed = true;
      }),
      Settings: vi.fn(async () => structuredClone(this.settingsView)),
      ValidateSettings: vi.fn(async () => []),
      ApplySettings: vi.fn(async () => ({ applied: ["engine restarted", "saved and applied"], changed: true })),
      PickFolder: vi.fn(async () => ""),
      TroubleshootPlan: vi.fn(
        async (action: Plan["action"]): Promise<Plan> => ({ action, items: [], description: "" }),
      ),
      RunTroubleshoot: vi.fn(async () => ""),
      Diagnostics: vi.fn(async () => "/tmp/berth-diagnostics.zip"),
      Logs: vi.fn(async () => ""),
      VolumeFiles: vi.fn(async () => []),
      OpenURL: vi.fn(async () => {}),
    };
  }

  /** Answers method path (a path without its query matches any query; a
   * RegExp is tested on the whole path). Later routes win. */
  route(method: string, match: string | RegExp, route: Route | RouteResult): this {
    const r: Route = typeof route === "function" ? (route as Route) : () => route;
    this.routes.unshift({ method, match, route: r });
    return this;
  }

  private find(method: string, path: string): Route | undefined {
    const bare = path.split("?")[0];
    for (const r of this.routes) {
      if (r.method !== method) continue;
      if (typeof r.match === "string" ? r.match === path || r.match === bare : r.match.test(path)) return r.route;
    }
    return undefined;
  }

  /** The Docker calls made with this method whose path starts with prefix. */
  calls(method: string, prefix = ""): DockerCall[] {
    return this.dockerCalls.filter((c) => c.method === method && c.path.startsWith(prefix));
  }

  /** The last stream opened whose path starts with prefix. */
  stream(prefix: string): FakeStream | undefined {
    return [...this.streams].reverse().find((s) => s.path.startsWith(prefix));
  }

  emit(name: string, ...data: unknown[]) {
    for (const cb of [...(this.handlers.get(name) ?? [])]) cb(...data);
  }

  /** How many handlers listen to name. */
  listeners(name: string): number {
    return this.handlers.get(name)?.size ?? 0;
  }

  install(): this {
    window.go = { ui: { App: this.app as unknown as GoApp } };
    window.runtime = {
      EventsOn: (name, cb) => {
        let set = this.handlers.get(name);
        if (!set) this.handlers.set(name, (set = new Set()));
        set.add(cb);
        return () => set!.delete(cb);
      },
      EventsOff: (name) => {
        this.handlers.delete(name);
      },
    };
    return this;
  }
}

/** A fresh fake backend, installed on window. */
export function installFakeBackend(): FakeBackend {
  return new FakeBackend().install();
}

/** A /containers/json entry. */
export function container(
  name: string,
  o: Partial<{ id: string; image: string; state: string; status: string; project: string; ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] }> = {},
) {
  const state = o.state ?? "running";
  return {
    Id: o.id ?? `${name}-id`.padEnd(64, "0"),
    Names: ["/" + name],
    Image: o.image ?? "alpine:3.20",
    Created: 1700000000,
    State: state,
    Status: o.status ?? (state === "running" ? "Up 5 minutes" : "Exited (0) 2 minutes ago"),
    Ports: o.ports ?? [],
    Labels: o.project ? { "com.docker.compose.project": o.project } : {},
  };
}

// The frontend's only door to Go: the methods app/ui binds (window.go.ui.App)
// and the events it emits (window.runtime). Every screen goes through this
// module, so unit tests replace it and nothing else.
//
// Engine data (containers, images, volumes, logs, stats, exec, pulls) is the
// Docker Engine API itself, carried by docker()/stream()/exec*() to the
// forwarded docker socket; paths are the API's own ("/containers/json?all=1").

/** The service's life-cycle state, as `berth status` reports it. */
export type State = "stopped" | "starting" | "running" | "stopping" | "error";

export interface Versions {
  agent?: string;
  kernel?: string;
  engine?: string;
}

export interface Resources {
  /** CPUs and memory given to the VM (settings in force). */
  cpus: number;
  memoryMiB: number;
  /** Guest memory in use and total (MiB), 0 when not known. */
  memUsedMiB: number;
  memTotalMiB: number;
  /** Data disk: used and size in bytes, 0 when not known. */
  diskUsedBytes: number;
  diskSizeBytes: number;
}

export interface Status {
  state: State;
  /** Progress while starting or stopping. */
  message?: string;
  /** Why the state is error, and what to do about it. */
  error?: string;
  hint?: string;
  warning?: string;
  socket?: string;
  versions: Versions;
  resources: Resources;
  /** RFC 3339 time the state began. */
  since: string;
}

/** The settings document (settings.json), as `berth settings` edits it. */
export interface Settings {
  version: number;
  general: {
    startAtLogin: boolean;
    checkForUpdates: boolean;
    backupVMDisk: boolean;
    useKeychain: boolean;
  };
  resources: {
    cpus: number;
    memoryMiB: number;
    swapMiB: number;
    diskGiB: number;
    diskPath: string;
    vmSubnet: string;
  };
  fileSharing: { paths: string[] };
  proxies: { mode: "none" | "system" | "manual"; http: string; https: string; noProxy: string };
  /** daemon.json as an object. */
  engine: Record<string, unknown>;
}

export interface Limits {
  maxCPUs: number;
  maxMemoryMiB: number;
  /** The disk's current size: smaller needs confirmReset. */
  currentDiskGiB: number;
}

export interface SettingsView {
  settings: Settings;
  defaults: Settings;
  limits: Limits;
}

/** One wrong setting: its dotted key ("resources.cpus", "engine.mtu") and why;
 * line is the daemon.json line for engine keys (1-based, 0 unknown). */
export interface FieldError {
  key: string;
  reason: string;
  line?: number;
}

export interface ApplyResult {
  /** What the change did: "engine restarted", "VM restarted", "saved", ... */
  applied: string[];
  /** False when nothing needed to change. */
  changed: boolean;
  /** Set when the change failed: settings are unchanged. */
  errors?: FieldError[];
  error?: string;
  /** The change needs the disk erased (a smaller disk): ask, then call again
   * with confirmReset true. */
  needsReset?: boolean;
}

/** A troubleshoot action's plan: exactly what it removes. */
export interface PlanItem {
  path: string;
  what: string;
  bytes: number;
}
export interface Plan {
  action: "reset" | "purge" | "uninstall";
  items: PlanItem[];
  /** Human summary, as `berth reset` prints before asking. */
  description: string;
}

export interface DockerResponse {
  status: number;
  /** The response body as text (JSON for most endpoints). */
  body: string;
}

/** A chunk of a stream. For logs, stream is "stdout" or "stderr" (demultiplexed);
 * for JSON-lines endpoints (pull, stats, events, build), data is one line. */
export interface StreamChunk {
  stream?: "stdout" | "stderr";
  data: string;
}
export interface StreamEnd {
  error?: string;
}

interface GoApp {
  Status(): Promise<Status>;
  Start(): Promise<void>;
  Stop(): Promise<void>;
  Restart(): Promise<void>;
  Docker(method: string, path: string, body: string): Promise<DockerResponse>;
  StreamOpen(method: string, path: string, body: string, kind: "logs" | "lines"): Promise<string>;
  StreamClose(id: string): Promise<void>;
  ExecStart(container: string, cmd: string[], cols: number, rows: number): Promise<string>;
  ExecInput(id: string, data: string): Promise<void>;
  ExecResize(id: string, cols: number, rows: number): Promise<void>;
  ExecClose(id: string): Promise<void>;
  Settings(): Promise<SettingsView>;
  ValidateSettings(s: Settings): Promise<FieldError[]>;
  ApplySettings(s: Settings, confirmReset: boolean): Promise<ApplyResult>;
  PickFolder(title: string): Promise<string>;
  TroubleshootPlan(action: Plan["action"]): Promise<Plan>;
  RunTroubleshoot(action: Plan["action"]): Promise<string>;
  Diagnostics(): Promise<string>;
  Logs(which: "vm" | "service"): Promise<string>;
  VolumeFiles(volume: string, path: string): Promise<VolumeEntry[]>;
  OpenURL(url: string): Promise<void>;
}

export interface VolumeEntry {
  name: string;
  dir: boolean;
  size: number;
  /** RFC 3339 */
  modified: string;
}

interface WailsRuntime {
  EventsOn(name: string, cb: (...data: any[]) => void): () => void;
  EventsOff(name: string): void;
}

declare global {
  interface Window {
    go?: { ui?: { App?: GoApp } };
    runtime?: WailsRuntime;
  }
}

function app(): GoApp {
  const a = window.go?.ui?.App;
  if (!a) throw new Error("the Berth backend is not connected");
  return a;
}

function on(name: string, cb: (...data: any[]) => void): () => void {
  const rt = window.runtime;
  if (!rt) throw new Error("the Berth backend is not connected");
  return rt.EventsOn(name, cb);
}

/** Status changes: emitted by Go on every change of state or progress message. */
export const onStatus = (cb: (s: Status) => void) => on("status", cb);
/** Progress lines of a running ApplySettings or troubleshoot action. */
export const onProgress = (cb: (line: string) => void) => on("progress", cb);

export const status = () => app().Status();
export const start = () => app().Start();
export const stop = () => app().Stop();
export const restart = () => app().Restart();

/** A Docker Engine API call; throws with the engine's message on status >= 400. */
export async function docker<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await app().Docker(method, path, body === undefined ? "" : JSON.stringify(body));
  if (r.status >= 400) {
    let msg = r.body;
    try {
      msg = JSON.parse(r.body).message ?? msg;
    } catch {
      /* not JSON */
    }
    throw new DockerError(r.status, msg);
  }
  if (r.body === "") return undefined as T;
  try {
    return JSON.parse(r.body) as T;
  } catch {
    return r.body as T;
  }
}

export class DockerError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A streaming Docker API call (logs with follow, stats, pull, events).
 * Returns a function that closes the stream. */
export async function stream(
  method: string,
  path: string,
  body: unknown,
  kind: "logs" | "lines",
  onChunk: (c: StreamChunk) => void,
  onEnd?: (e: StreamEnd) => void,
): Promise<() => void> {
  const id = await app().StreamOpen(method, path, body === undefined ? "" : JSON.stringify(body), kind);
  const offData = on("stream:" + id, onChunk);
  const offEnd = on("stream-end:" + id, (e: StreamEnd) => {
    offData();
    offEnd();
    onEnd?.(e);
  });
  return () => {
    offData();
    offEnd();
    void app().StreamClose(id);
  };
}

/** An interactive exec with a TTY. Output arrives as "exec:<id>" events with a
 * string of the terminal's bytes; "exec-end:<id>" carries {exitCode, error}. */
export interface ExecSession {
  id: string;
  input(data: string): Promise<void>;
  resize(cols: number, rows: number): Promise<void>;
  close(): void;
}
export async function exec(
  container: string,
  cmd: string[],
  cols: number,
  rows: number,
  onData: (d: string) => void,
  onEnd: (e: { exitCode: number; error?: string }) => void,
): Promise<ExecSession> {
  const id = await app().ExecStart(container, cmd, cols, rows);
  const offData = on("exec:" + id, onData);
  const offEnd = on("exec-end:" + id, (e) => {
    offData();
    offEnd();
    onEnd(e);
  });
  // Keystrokes go one call at a time: the backend serves bound calls
  // concurrently, so two calls in flight could reach the terminal out of
  // order. What is typed while a call is out goes in the next one.
  let queued = "";
  let sending: Promise<void> | undefined;
  const send = async () => {
    try {
      while (queued) {
        const chunk = queued;
        queued = "";
        await app().ExecInput(id, chunk);
      }
    } finally {
      sending = undefined;
    }
  };
  return {
    id,
    input: (d) => {
      queued += d;
      sending ??= send();
      return sending;
    },
    resize: (c, r) => app().ExecResize(id, c, r),
    close: () => {
      offData();
      offEnd();
      void app().ExecClose(id);
    },
  };
}

export const settings = () => app().Settings();
export const validateSettings = (s: Settings) => app().ValidateSettings(s);
export const applySettings = (s: Settings, confirmReset = false) => app().ApplySettings(s, confirmReset);
export const pickFolder = (title: string) => app().PickFolder(title);
export const troubleshootPlan = (a: Plan["action"]) => app().TroubleshootPlan(a);
export const runTroubleshoot = (a: Plan["action"]) => app().RunTroubleshoot(a);
export const diagnostics = () => app().Diagnostics();
export const logs = (which: "vm" | "service") => app().Logs(which);
export const volumeFiles = (volume: string, path: string) => app().VolumeFiles(volume, path);
export const openURL = (url: string) => app().OpenURL(url);

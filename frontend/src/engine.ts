/** The Docker Engine API shapes the screens read, and the small pure helpers
 * that turn them into what is shown (and forms into what is sent). */

export interface Port {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID?: string;
  Command?: string;
  Created: number;
  State: string;
  Status: string;
  Ports: Port[] | null;
  Labels: Record<string, string> | null;
}

export interface ImageSummary {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  Containers?: number;
  Labels?: Record<string, string> | null;
}

export interface Volume {
  Name: string;
  Driver: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Labels?: Record<string, string> | null;
  Scope?: string;
}

export interface VolumeUsage {
  Name: string;
  UsageData?: { Size: number; RefCount: number } | null;
}

/** The part of a /containers/{id}/stats document the screens use. */
export interface StatsDoc {
  read?: string;
  cpu_stats?: CPUStats;
  precpu_stats?: CPUStats;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes: number; tx_bytes: number }>;
}
interface CPUStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null };
  system_cpu_usage?: number;
  online_cpus?: number;
}

export const COMPOSE_PROJECT = "com.docker.compose.project";

/** The Compose project a container belongs to, if any. */
export function composeProject(c: ContainerSummary): string | undefined {
  return c.Labels?.[COMPOSE_PROJECT] || undefined;
}

export type Health = "healthy" | "unhealthy" | "starting";

/** The health check's verdict from a Status such as "Up 2 minutes (healthy)". */
export function healthOf(status: string | undefined): Health | undefined {
  const m = /\((healthy|unhealthy|health: starting)\)/.exec(status ?? "");
  if (!m) return undefined;
  return m[1] === "health: starting" ? "starting" : (m[1] as Health);
}

export interface Published {
  host: number;
  container: number;
  type: string;
}

/** Published ports, one per host port and protocol (the engine lists IPv4
 * and IPv6 bindings separately), sorted by host port. */
export function publishedPorts(ports: Port[] | null | undefined): Published[] {
  const seen = new Set<string>();
  const out: Published[] = [];
  for (const p of ports ?? []) {
    if (!p.PublicPort) continue;
    const k = `${p.PublicPort}/${p.Type}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ host: p.PublicPort, container: p.PrivatePort, type: p.Type });
  }
  return out.sort((a, b) => a.host - b.host || a.type.localeCompare(b.type));
}

/** CPU use in percent of one CPU times the CPUs, as `docker stats` computes
 * it from the sample and the one before; undefined without a previous one. */
export function cpuPercent(s: StatsDoc): number | undefined {
  const cur = s.cpu_stats;
  const pre = s.precpu_stats;
  if (!cur?.cpu_usage?.total_usage || !pre?.cpu_usage?.total_usage || !cur.system_cpu_usage || !pre.system_cpu_usage) {
    return undefined;
  }
  const cpuDelta = cur.cpu_usage.total_usage - pre.cpu_usage.total_usage;
  const sysDelta = cur.system_cpu_usage - pre.system_cpu_usage;
  const cpus = cur.online_cpus || cur.cpu_usage.percpu_usage?.length || 1;
  if (sysDelta <= 0 || cpuDelta < 0) return 0;
  return (cpuDelta / sysDelta) * cpus * 100;
}

/** Memory in use as `docker stats` shows it (the page cache that can be
 * dropped is not counted) and the limit, in bytes. */
export function memUsage(s: StatsDoc): { used: number; limit: number } | undefined {
  const m = s.memory_stats;
  if (!m || m.usage === undefined) return undefined;
  const st = m.stats ?? {};
  let cache = 0;
  if (st.total_inactive_file !== undefined && st.total_inactive_file < m.usage) cache = st.total_inactive_file;
  else if (st.inactive_file !== undefined && st.inactive_file < m.usage) cache = st.inactive_file;
  return { used: m.usage - cache, limit: m.limit ?? 0 };
}

/** Bytes received and sent over all the container's networks. */
export function netIO(s: StatsDoc): { rx: number; tx: number } | undefined {
  if (!s.networks) return undefined;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks)) {
    rx += n.rx_bytes;
    tx += n.tx_bytes;
  }
  return { rx, tx };
}

/** "nginx" → nginx/latest; "reg:5000/a/b:1.2" → reg:5000/a/b and 1.2;
 * "alpine@sha256:…" → alpine and the digest, as the docker CLI sends them. */
export function parseImageRef(ref: string): { fromImage: string; tag: string } {
  const r = ref.trim();
  const at = r.indexOf("@");
  if (at >= 0) return { fromImage: r.slice(0, at), tag: r.slice(at + 1) };
  const slash = r.lastIndexOf("/");
  const colon = r.lastIndexOf(":");
  if (colon > slash) return { fromImage: r.slice(0, colon), tag: r.slice(colon + 1) };
  return { fromImage: r, tag: "latest" };
}

/** Items of a list typed with commas or one a line. */
export function splitList(s: string): string[] {
  return s
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter((x) => x !== "");
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** "8080:80, 127.0.0.1:5353:53/udp, 9000" → the create body's ExposedPorts
 * and HostConfig.PortBindings. Throws on a spec it can't read. */
export function parsePorts(s: string): {
  exposed: Record<string, Record<string, never>>;
  bindings: Record<string, PortBinding[]>;
} {
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const spec of splitList(s)) {
    let rest = spec;
    let proto = "tcp";
    const sl = rest.lastIndexOf("/");
    if (sl >= 0) {
      proto = rest.slice(sl + 1).toLowerCase();
      rest = rest.slice(0, sl);
      if (proto !== "tcp" && proto !== "udp" && proto !== "sctp") throw new Error(`port ${spec}: protocol ${proto} (tcp, udp or sctp)`);
    }
    const parts = rest.split(":");
    if (parts.length > 3) throw new Error(`port ${spec}: use HOST:CONTAINER, IP:HOST:CONTAINER or CONTAINER`);
    const ctr = parts[parts.length - 1];
    const host = parts.length >= 2 ? parts[parts.length - 2] : "";
    const ip = parts.length === 3 ? parts[0] : "";
    if (!isPort(ctr)) throw new Error(`port ${spec}: ${ctr || "(empty)"} is not a port number`);
    if (host !== "" && !isPort(host)) throw new Error(`port ${spec}: ${host} is not a port number`);
    const key = `${Number(ctr)}/${proto}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: ip, HostPort: host === "" ? "" : String(Number(host)) });
  }
  return { exposed, bindings };
}

function isPort(s: string): boolean {
  if (!/^\d{1,5}$/.test(s)) return false;
  const n = Number(s);
  return n >= 1 && n <= 65535;
}

/** "/host:/ctr[:ro]" or "volume:/ctr" list → HostConfig.Binds; throws on one
 * without a container path. */
export function parseBinds(s: string): string[] {
  const out = splitList(s);
  for (const b of out) {
    const parts = b.split(":");
    // A Windows host path has its own colon (C:\x:/ctr).
    const hasDrive = /^[a-zA-Z]:[\\/]/.test(b);
    const n = hasDrive ? parts.length - 1 : parts.length;
    if (n < 2 || n > 3) throw new Error(`volume ${b}: use SOURCE:/container/path[:ro]`);
    const ctr = parts[hasDrive ? 2 : 1];
    if (!ctr.startsWith("/")) throw new Error(`volume ${b}: the container path ${ctr || "(empty)"} is not absolute`);
  }
  return out;
}

/** KEY=VALUE lines → Env; throws on a line without a name. */
export function parseEnv(s: string): string[] {
  const out: string[] = [];
  for (const raw of s.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`environment: ${line} is not KEY=VALUE`);
    out.push(line);
  }
  return out;
}

export interface RunForm {
  image: string;
  name: string;
  ports: string;
  volumes: string;
  env: string;
}

/** The POST /containers/create body for the Run dialog; throws with what is
 * wrong in the form. */
export function createBody(f: RunForm): Record<string, unknown> {
  const { exposed, bindings } = parsePorts(f.ports);
  const binds = parseBinds(f.volumes);
  const env = parseEnv(f.env);
  const body: Record<string, unknown> = { Image: f.image };
  if (env.length) body.Env = env;
  if (Object.keys(exposed).length) body.ExposedPorts = exposed;
  const hc: Record<string, unknown> = {};
  if (Object.keys(bindings).length) hc.PortBindings = bindings;
  if (binds.length) hc.Binds = binds;
  body.HostConfig = hc;
  return body;
}

/** An image's name as shown and as its row's reference: the first tag, or
 * the id for an untagged one. */
export function imageRef(img: ImageSummary): string {
  const t = img.RepoTags?.find((x) => x !== "<none>:<none>");
  return t ?? img.Id;
}

/** A docker log line with timestamps=1: "2024-01-02T03:04:05.123456789Z text". */
export function splitTimestamp(line: string): { ts: string; text: string } {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ?/.exec(line);
  if (!m) return { ts: "", text: line };
  return { ts: m[1], text: line.slice(m[0].length) };
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]/g;

/** Text without terminal escape sequences (colours, cursor moves). */
export function stripAnsi(s: string): string {
  return s.replace(ANSI, "");
}

export interface LogLine {
  seq: number;
  stream: "stdout" | "stderr";
  ts: string;
  text: string;
}

/** Cuts stream chunks into lines, keeping each stream's unfinished line for
 * its next chunk. */
export class LogSplitter {
  private partial: Record<string, string> = {};
  private seq = 0;

  push(stream: "stdout" | "stderr" | undefined, data: string): LogLine[] {
    const s = stream ?? "stdout";
    const text = (this.partial[s] ?? "") + data;
    const parts = text.split("\n");
    this.partial[s] = parts.pop() ?? "";
    return parts.map((p) => this.line(s, p));
  }

  /** The unfinished lines, as lines (at the end of the stream). */
  flush(): LogLine[] {
    const out: LogLine[] = [];
    for (const [s, p] of Object.entries(this.partial)) {
      if (p !== "") out.push(this.line(s as LogLine["stream"], p));
    }
    this.partial = {};
    return out;
  }

  private line(stream: LogLine["stream"], raw: string): LogLine {
    const { ts, text } = splitTimestamp(stripAnsi(raw.replace(/\r$/, "")));
    return { seq: ++this.seq, stream, ts, text };
  }
}

/** The one-line summary of a /images/create progress line. */
export interface PullLine {
  id?: string;
  status?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

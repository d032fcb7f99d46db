/** Human-readable helpers shared by the screens. */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 1536 → "1.5 KiB"; negative or non-finite values → "—". */
export function humanBytes(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n) || n < 0) return "—";
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const s = i === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${s} ${UNITS[i]}`;
}

/** "sha256:0123456789abcdef..." → "0123456789ab". */
export function shortId(id: string): string {
  const s = id.startsWith("sha256:") ? id.slice(7) : id;
  return s.slice(0, 12);
}

/** Unix seconds → "3 days ago". */
export function ago(unixSeconds: number, now = Date.now()): string {
  const d = Math.max(0, Math.round(now / 1000 - unixSeconds));
  if (d < 60) return `${d} seconds ago`;
  const steps: [number, string][] = [
    [60, "minute"],
    [3600, "hour"],
    [86400, "day"],
    [86400 * 30, "month"],
    [86400 * 365, "year"],
  ];
  let unit = steps[0];
  for (const s of steps) if (d >= s[0]) unit = s;
  const n = Math.floor(d / unit[0]);
  return `${n} ${unit[1]}${n === 1 ? "" : "s"} ago`;
}

/** A message from anything thrown. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message || String(e);
  if (typeof e === "string") return e;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

/** Container name without Docker's leading slash. */
export function containerName(names: string[] | undefined, id: string): string {
  const n = names?.[0];
  return n ? n.replace(/^\//, "") : shortId(id);
}

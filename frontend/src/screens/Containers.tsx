import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import * as api from "../api";
import { useStatus } from "../status";
import { EngineDown, isEngineDown } from "../ui/EngineDown";
import { useToast } from "../ui/Toast";
import { containerName, errorText, humanBytes } from "../format";
import {
  composeProject,
  cpuPercent,
  healthOf,
  memUsage,
  publishedPorts,
  type ContainerSummary,
  type StatsDoc,
} from "../engine";
import { ContainerActions, useContainerActions, type Action } from "./containerActions";

declare global {
  interface Window {
    /** Refreshes the containers list; resolves with the milliseconds from the
     * request until the new rows are in the DOM. */
    __berthRefreshContainers?: () => Promise<number>;
  }
}

/** How often the list is read while it shows, and the figures of the running
 * containers in view. */
const LIST_EVERY = 2000;
const STATS_EVERY = 5000;
/** At most this many containers' figures a round, this many at a time. */
const STATS_MAX = 24;
const STATS_PARALLEL = 4;

export interface RowStats {
  cpu?: number;
  mem?: number;
  limit?: number;
}

interface Group {
  project: string | null;
  rows: ContainerSummary[];
}

/** What of a container the row shows: an unchanged container keeps its
 * object, so its memoized row does not render again. */
function signature(c: ContainerSummary): string {
  return `${c.Names?.join(",")}|${c.Image}|${c.State}|${c.Status}|${JSON.stringify(c.Ports)}|${composeProject(c) ?? ""}`;
}

function visibleNow(): boolean {
  return typeof document === "undefined" || document.visibilityState !== "hidden";
}

export function ContainersScreen({ onOpen }: { onOpen(id: string): void }) {
  const { status } = useStatus();
  const [list, setList] = useState<ContainerSummary[] | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [version, setVersion] = useState(0);
  const [stats, setStats] = useState<Record<string, RowStats>>({});
  const [filter, setFilter] = useState("");

  const known = useRef(new Map<string, { sig: string; c: ContainerSummary }>());
  const pending = useRef<{ t0: number; resolve: (ms: number) => void }[]>([]);
  const seq = useRef(0);
  const applied = useRef(0);
  const inFlight = useRef(0);
  const listRef = useRef<ContainerSummary[]>([]);
  const visibleIds = useRef<Set<string> | null>(null);
  const tableRef = useRef<HTMLDivElement>(null);

  const engineDown = status !== null && status.state !== "running";

  const refresh = useCallback(async (): Promise<number> => {
    const t0 = performance.now();
    const mine = ++seq.current;
    inFlight.current++;
    let raw: ContainerSummary[];
    try {
      raw = (await api.docker<ContainerSummary[]>("GET", "/containers/json?all=1")) ?? [];
    } catch (e) {
      if (mine > applied.current) {
        applied.current = mine;
        setError(e);
      }
      throw e;
    } finally {
      inFlight.current--;
    }
    return new Promise<number>((resolve) => {
      pending.current.push({ t0, resolve });
      if (mine > applied.current) {
        applied.current = mine;
        const next = new Map<string, { sig: string; c: ContainerSummary }>();
        const out: ContainerSummary[] = [];
        for (const c of raw) {
          const sig = signature(c);
          const prev = known.current.get(c.Id);
          const keep = prev && prev.sig === sig ? prev.c : c;
          next.set(c.Id, { sig, c: keep });
          out.push(keep);
        }
        known.current = next;
        listRef.current = out;
        setList(out);
        setError(undefined);
      }
      setVersion((v) => v + 1);
    });
  }, []);

  // Resolves the refreshes waiting for their rows, once they are committed.
  useLayoutEffect(() => {
    if (pending.current.length === 0) return;
    const now = performance.now();
    for (const p of pending.current) p.resolve(now - p.t0);
    pending.current = [];
  }, [version]);

  useEffect(() => {
    window.__berthRefreshContainers = refresh;
    return () => {
      if (window.__berthRefreshContainers === refresh) delete window.__berthRefreshContainers;
      const now = performance.now();
      for (const p of pending.current) p.resolve(now - p.t0);
      pending.current = [];
    };
  }, [refresh]);

  // The list, read every LIST_EVERY while the window shows and the engine runs.
  useEffect(() => {
    if (engineDown) return;
    const tick = () => {
      if (visibleNow() && inFlight.current === 0) refresh().catch(() => {});
    };
    refresh().catch(() => {});
    const t = setInterval(tick, LIST_EVERY);
    const onVis = () => visibleNow() && tick();
    document.addEventListener("visibilitychange", onVis);
    return () => {
      clearInterval(t);
      document.removeEventListener("visibilitychange", onVis);
    };
  }, [engineDown, refresh]);

  // Which rows are in view: the figures are read for those only.
  const hasTable = list !== null && list.length > 0;
  const observer = useRef<IntersectionObserver | null>(null);
  useEffect(() => {
    const root = tableRef.current;
    if (!hasTable || !root || typeof IntersectionObserver === "undefined") return;
    const seen = new Set<string>();
    visibleIds.current = seen;
    observer.current = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          const id = (e.target as HTMLElement).dataset.id;
          if (!id) continue;
          if (e.isIntersecting) seen.add(id);
          else seen.delete(id);
        }
      },
      { root },
    );
    return () => {
      observer.current?.disconnect();
      observer.current = null;
      visibleIds.current = null;
    };
  }, [hasTable]);
  useEffect(() => {
    const io = observer.current;
    if (!io) return;
    // Observing an observed row again does nothing; new rows are added.
    tableRef.current?.querySelectorAll<HTMLElement>("tr[data-id]").forEach((el) => io.observe(el));
  }, [list, filter, hasTable]);

  // CPU and memory of the running containers in view, one sample each a round.
  useEffect(() => {
    if (engineDown) return;
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function round() {
      if (stop) return;
      if (visibleNow()) {
        const seen = visibleIds.current;
        const running = listRef.current.filter((c) => c.State === "running" && (!seen || seen.size === 0 || seen.has(c.Id)));
        const ids = running.slice(0, STATS_MAX).map((c) => c.Id);
        const got: Record<string, RowStats> = {};
        let next = 0;
        async function worker() {
          while (!stop && next < ids.length) {
            const id = ids[next++];
            try {
              const s = await api.docker<StatsDoc>("GET", `/containers/${encodeURIComponent(id)}/stats?stream=0`);
              const m = memUsage(s);
              got[id] = { cpu: cpuPercent(s), mem: m?.used, limit: m?.limit };
            } catch {
              /* the figures are left out */
            }
          }
        }
        await Promise.all(Array.from({ length: Math.min(STATS_PARALLEL, ids.length) }, worker));
        if (stop) return;
        if (ids.length > 0 || Object.keys(got).length > 0) {
          setStats((prev) => {
            const present = new Set(listRef.current.map((c) => c.Id));
            const out: Record<string, RowStats> = {};
            for (const [id, v] of Object.entries(prev)) {
              const c = known.current.get(id)?.c;
              if (present.has(id) && c?.State === "running") out[id] = v;
            }
            for (const [id, v] of Object.entries(got)) {
              const p = prev[id];
              out[id] = p && p.cpu === v.cpu && p.mem === v.mem && p.limit === v.limit ? p : v;
            }
            return out;
          });
        }
      }
      if (!stop) timer = setTimeout(round, STATS_EVERY);
    }
    timer = setTimeout(round, 300);
    return () => {
      stop = true;
      if (timer) clearTimeout(timer);
    };
  }, [engineDown]);

  const done = useCallback(() => {
    refresh().catch(() => {});
  }, [refresh]);
  const { busy, onAction, dialog } = useContainerActions(done);

  const onOpenRef = useRef(onOpen);
  onOpenRef.current = onOpen;
  const open = useCallback((id: string) => onOpenRef.current(id), []);

  const groups = useMemo(() => groupRows(list ?? [], filter), [list, filter]);
  const running = useMemo(() => (list ?? []).filter((c) => c.State === "running").length, [list]);

  if (engineDown || (error !== undefined && isEngineDown(error) && list === null)) {
    return (
      <section className="screen" aria-labelledby="containers-h">
        <h1 id="containers-h">Containers</h1>
        <EngineDown error={error} />
      </section>
    );
  }

  return (
    <section className="screen fill" aria-labelledby="containers-h">
      <div className="screen-head">
        <h1 id="containers-h">Containers</h1>
        {list && (
          <span className="muted" data-testid="containers-count">
            {list.length} containers, {running} running
          </span>
        )}
        <div className="spacer" />
        <input
          type="search"
          className="filter"
          placeholder="Filter by name or image"
          aria-label="Filter containers"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
        />
      </div>
      {error !== undefined && (
        <p className="error-text" role="alert">
          Could not read the containers: {errorText(error)}
        </p>
      )}
      {list === null ? (
        <p className="muted">Loading…</p>
      ) : list.length === 0 ? (
        <div className="empty">
          <p>No containers yet.</p>
          <p className="muted">
            Run one from the Images screen, or with <code>docker run</code> in a terminal.
          </p>
        </div>
      ) : (
        <div className="table-wrap" ref={tableRef}>
          <table className="table containers">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Image</th>
                <th scope="col">State</th>
                <th scope="col">Ports</th>
                <th scope="col" className="num">
                  CPU
                </th>
                <th scope="col" className="num">
                  Memory
                </th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            {groups.map((g) => (
              <tbody key={g.project ?? "\u0000"} data-testid="container-group" data-project={g.project ?? ""}>
                {(g.project !== null || groups.length > 1) && (
                  <tr className="group-row">
                    <th colSpan={7} scope="colgroup">
                      {g.project ?? "Other containers"}
                      <span className="muted"> · {g.rows.length}</span>
                    </th>
                  </tr>
                )}
                {g.rows.map((c) => (
                  <Row key={c.Id} c={c} stats={stats[c.Id]} busy={busy.has(c.Id)} onOpen={open} onAction={onAction} />
                ))}
              </tbody>
            ))}
          </table>
          {groups.length === 0 && <p className="muted pad">No container matches “{filter}”.</p>}
        </div>
      )}
      {dialog}
    </section>
  );
}

/** Rows by Compose project (projects by name, then the others), each group
 * by name; filter keeps the names or images that contain it. */
export function groupRows(list: ContainerSummary[], filter: string): Group[] {
  const f = filter.trim().toLowerCase();
  const byProject = new Map<string, ContainerSummary[]>();
  const other: ContainerSummary[] = [];
  for (const c of list) {
    if (f && !containerName(c.Names, c.Id).toLowerCase().includes(f) && !c.Image.toLowerCase().includes(f)) continue;
    const p = composeProject(c);
    if (p === undefined) other.push(c);
    else {
      let g = byProject.get(p);
      if (!g) byProject.set(p, (g = []));
      g.push(c);
    }
  }
  const byName = (a: ContainerSummary, b: ContainerSummary) =>
    containerName(a.Names, a.Id).localeCompare(containerName(b.Names, b.Id), undefined, { numeric: true });
  const out: Group[] = [...byProject.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).map((p) => ({ project: p, rows: byProject.get(p)!.sort(byName) }));
  if (other.length) out.push({ project: null, rows: other.sort(byName) });
  return out;
}

const Row = memo(function Row({
  c,
  stats,
  busy,
  onOpen,
  onAction,
}: {
  c: ContainerSummary;
  stats: RowStats | undefined;
  busy: boolean;
  onOpen: (id: string) => void;
  onAction: (id: string, name: string, action: Action) => void;
}) {
  const toast = useToast();
  const name = containerName(c.Names, c.Id);
  const health = healthOf(c.Status);
  const ports = publishedPorts(c.Ports);
  return (
    <tr data-testid="container-row" data-name={name} data-id={c.Id}>
      <td className="name-cell">
        <button type="button" className="link strong" onClick={() => onOpen(c.Id)}>
          {name}
        </button>
      </td>
      <td className="ellipsis" title={c.Image}>
        {c.Image}
      </td>
      <td data-testid="container-state" title={c.Status}>
        <span className={`pill pill-${c.State}`}>
          <span className="dot" aria-hidden="true" />
          {c.State}
        </span>
        {health && <span className={`health health-${health}`}>{health}</span>}
      </td>
      <td className="ports">
        {ports.map((p) => (
          <a
            key={`${p.host}/${p.type}`}
            href={`http://localhost:${p.host}`}
            title={`localhost:${p.host} → ${p.container}/${p.type}`}
            onClick={(e) => {
              e.preventDefault();
              api.openURL(`http://localhost:${p.host}`).catch((err) => toast.error(err, "Open"));
            }}
          >
            {p.host}:{p.container}
            {p.type !== "tcp" ? `/${p.type}` : ""}
          </a>
        ))}
      </td>
      <td className="num">{stats?.cpu !== undefined ? `${stats.cpu.toFixed(1)} %` : ""}</td>
      <td className="num">{stats?.mem !== undefined ? humanBytes(stats.mem) : ""}</td>
      <td>
        <ContainerActions id={c.Id} name={name} state={c.State} busy={busy} onAction={onAction} />
      </td>
    </tr>
  );
});

import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import * as api from "../api";
import { DockerError } from "../api";
import { Tabs, TabPanel } from "../ui/Tabs";
import { LineChart } from "../ui/LineChart";
import { highlightJSON } from "../ui/json";
import { errorText, humanBytes, shortId } from "../format";
import { cpuPercent, LogSplitter, memUsage, netIO, type LogLine, type StatsDoc } from "../engine";
import { ContainerActions, useContainerActions } from "./containerActions";

const TABS = ["Logs", "Inspect", "Stats", "Terminal"] as const;
type Tab = (typeof TABS)[number];

/** The part of /containers/{id}/json the header uses. */
interface Inspect {
  Id: string;
  Name: string;
  Config?: { Image?: string };
  State?: { Status: string; Running: boolean; Health?: { Status: string } };
}

/** How many log lines are kept; older ones go. */
const MAX_LINES = 5000;
/** Stats samples kept for the charts (one a second). */
const SAMPLES = 60;

export function ContainerPage({ id, onBack }: { id: string; onBack(): void }) {
  const [info, setInfo] = useState<Inspect | null>(null);
  const [raw, setRaw] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [tab, setTab] = useState<Tab>("Logs");
  const [visited, setVisited] = useState<ReadonlySet<Tab>>(new Set<Tab>(["Logs"]));

  const load = useCallback(async () => {
    try {
      const r = await api.docker<Inspect>("GET", `/containers/${encodeURIComponent(id)}/json`);
      setRaw(r);
      setInfo(r);
      setError(undefined);
    } catch (e) {
      setError(e);
    }
  }, [id]);

  useEffect(() => {
    void load();
    const t = setInterval(() => {
      if (document.visibilityState !== "hidden") void load();
    }, 3000);
    return () => clearInterval(t);
  }, [load]);

  const onBackRef = useRef(onBack);
  onBackRef.current = onBack;
  const { busy, onAction, dialog } = useContainerActions(
    () => void load(),
    () => onBackRef.current(),
  );

  function choose(t: Tab) {
    setTab(t);
    setVisited((v) => (v.has(t) ? v : new Set(v).add(t)));
  }

  const name = info?.Name?.replace(/^\//, "") || shortId(id);
  const state = info?.State?.Status ?? "unknown";
  const health = info?.State?.Health?.Status;
  const running = state === "running";
  const gone = error instanceof DockerError && error.status === 404;

  return (
    <section className="screen fill" aria-labelledby="container-h">
      <div className="screen-head">
        <button type="button" className="back" onClick={onBack} aria-label="Back to containers">
          ← Containers
        </button>
        <h1 id="container-h">{name}</h1>
        <span className={`pill pill-${state}`} data-testid="container-state">
          <span className="dot" aria-hidden="true" />
          {state}
        </span>
        {health && health !== "none" && <span className={`health health-${health}`}>{health}</span>}
        {info?.Config?.Image && <span className="muted ellipsis">{info.Config.Image}</span>}
        <div className="spacer" />
        {info && <ContainerActions id={id} name={name} state={state} busy={busy.has(id)} onAction={onAction} />}
      </div>
      {gone ? (
        <p className="error-text" role="alert">
          This container no longer exists.
        </p>
      ) : (
        error !== undefined && (
          <p className="error-text" role="alert">
            {errorText(error)}
          </p>
        )
      )}
      <Tabs tabs={TABS} value={tab} onChange={choose} label="Container" idPrefix="ctr" />
      <TabPanel idPrefix="ctr" tab="Logs" active={tab === "Logs"}>
        <LogsPanel id={id} running={running} />
      </TabPanel>
      <TabPanel idPrefix="ctr" tab="Inspect" active={tab === "Inspect"}>
        {tab === "Inspect" && <InspectPanel doc={raw} reload={load} />}
      </TabPanel>
      <TabPanel idPrefix="ctr" tab="Stats" active={tab === "Stats"}>
        {visited.has("Stats") && <StatsPanel id={id} running={running} />}
      </TabPanel>
      <TabPanel idPrefix="ctr" tab="Terminal" active={tab === "Terminal"}>
        {visited.has("Terminal") && <TerminalPanel id={id} active={tab === "Terminal"} running={running} />}
      </TabPanel>
      {dialog}
    </section>
  );
}

/** Opens a stream while mounted (and again when key changes); closes it when
 * it goes. */
function useStream(
  open: (() => Promise<() => void>) | null,
  key: unknown[],
  onError: (e: unknown) => void,
) {
  useEffect(() => {
    if (!open) return;
    let closed = false;
    let close: (() => void) | undefined;
    open().then(
      (c) => {
        if (closed) c();
        else close = c;
      },
      (e) => {
        if (!closed) onError(e);
      },
    );
    return () => {
      closed = true;
      close?.();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, key);
}

function LogsPanel({ id, running }: { id: string; running: boolean }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [ended, setEnded] = useState<api.StreamEnd | null>(null);
  const [gen, setGen] = useState(0);
  const [query, setQuery] = useState("");
  const [timestamps, setTimestamps] = useState(false);
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLDivElement>(null);

  useStream(
    () => {
      const split = new LogSplitter();
      setLines([]);
      setEnded(null);
      const add = (ls: LogLine[]) => {
        if (ls.length) setLines((prev) => (prev.length + ls.length > MAX_LINES ? prev.concat(ls).slice(-MAX_LINES) : prev.concat(ls)));
      };
      return api.stream(
        "GET",
        `/containers/${encodeURIComponent(id)}/logs?follow=1&stdout=1&stderr=1&timestamps=1&tail=500`,
        undefined,
        "logs",
        (c) => add(split.push(c.stream, c.data)),
        (e) => {
          add(split.flush());
          setEnded(e);
        },
      );
    },
    [id, gen],
    (e) => setEnded({ error: errorText(e) }),
  );

  // A stream that ended because the container stopped comes back when it runs.
  const wasRunning = useRef(running);
  useEffect(() => {
    if (running && !wasRunning.current && ended) setGen((g) => g + 1);
    wasRunning.current = running;
  }, [running, ended]);

  const q = query.trim().toLowerCase();
  const shown = useMemo(() => (q ? lines.filter((l) => l.text.toLowerCase().includes(q)) : lines), [lines, q]);

  useLayoutEffect(() => {
    const el = box.current;
    if (follow && el) el.scrollTop = el.scrollHeight;
  }, [shown, follow, timestamps]);

  function onScroll() {
    const el = box.current;
    if (!el) return;
    const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    if (!atEnd && follow) setFollow(false);
    else if (atEnd && !follow && el.scrollTop > 0) setFollow(true);
  }

  return (
    <div className="logs-panel">
      <div className="toolbar">
        <input
          type="search"
          aria-label="Search logs"
          placeholder="Search"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <label className="check">
          <input type="checkbox" checked={timestamps} onChange={(e) => setTimestamps(e.target.checked)} />
          Timestamps
        </label>
        <label className="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
          Follow
        </label>
        <span className="muted" data-testid="logs-count">
          {q ? `${shown.length} of ${lines.length} lines` : `${lines.length} lines`}
        </span>
        <div className="spacer" />
        <button type="button" onClick={() => setLines([])} disabled={lines.length === 0}>
          Clear
        </button>
      </div>
      <div className="logs" data-testid="logs" ref={box} onScroll={onScroll} tabIndex={0} aria-label="Log lines">
        {shown.map((l) => (
          <LogRow key={l.seq} line={l} q={q} ts={timestamps} />
        ))}
        {lines.length === 0 && !ended && <div className="muted">Waiting for output…</div>}
      </div>
      {ended && (
        <div className={ended.error ? "error-text" : "muted"} role={ended.error ? "alert" : "status"}>
          {ended.error ? `The log stream failed: ${ended.error}` : "The log stream ended (the container stopped)."}{" "}
          <button type="button" className="link" onClick={() => setGen((g) => g + 1)}>
            Reconnect
          </button>
        </div>
      )}
    </div>
  );
}

const LogRow = memo(function LogRow({ line, q, ts }: { line: LogLine; q: string; ts: boolean }) {
  return (
    <div className={line.stream === "stderr" ? "log-line stderr" : "log-line"} data-stream={line.stream}>
      {ts && line.ts && <span className="ts">{line.ts} </span>}
      {q ? highlight(line.text, q) : line.text}
    </div>
  );
});

/** text with each occurrence of q (lower case) marked. */
function highlight(text: string, q: string) {
  const out: React.ReactNode[] = [];
  const low = text.toLowerCase();
  let i = 0;
  let k = 0;
  for (;;) {
    const j = low.indexOf(q, i);
    if (j < 0) break;
    if (j > i) out.push(text.slice(i, j));
    out.push(<mark key={k++}>{text.slice(j, j + q.length)}</mark>);
    i = j + q.length;
  }
  out.push(text.slice(i));
  return out;
}

function InspectPanel({ doc, reload }: { doc: unknown; reload: () => Promise<void> }) {
  const text = useMemo(() => (doc ? JSON.stringify(doc, null, 2) : ""), [doc]);
  return (
    <div className="inspect-panel">
      <div className="toolbar">
        <button type="button" onClick={() => void reload()}>
          Refresh
        </button>
        <button type="button" onClick={() => void navigator.clipboard?.writeText(text)} disabled={!text}>
          Copy
        </button>
      </div>
      <pre className="code" data-testid="inspect">
        {text ? highlightJSON(text) : "Loading…"}
      </pre>
    </div>
  );
}

interface Sample {
  cpu?: number;
  mem?: number;
  limit?: number;
  rx?: number;
  tx?: number;
}

function StatsPanel({ id, running }: { id: string; running: boolean }) {
  const [samples, setSamples] = useState<Sample[]>([]);
  const [ended, setEnded] = useState<string | null>(null);

  useStream(
    running
      ? () => {
          setEnded(null);
          return api.stream(
            "GET",
            `/containers/${encodeURIComponent(id)}/stats?stream=1`,
            undefined,
            "lines",
            (c) => {
              let d: StatsDoc;
              try {
                d = JSON.parse(c.data);
              } catch {
                return;
              }
              const m = memUsage(d);
              const n = netIO(d);
              const s: Sample = { cpu: cpuPercent(d), mem: m?.used, limit: m?.limit, rx: n?.rx, tx: n?.tx };
              setSamples((prev) => [...prev.slice(-(SAMPLES - 1)), s]);
            },
            (e) => setEnded(e.error ?? ""),
          );
        }
      : null,
    [id, running],
    (e) => setEnded(errorText(e)),
  );

  const cpu = samples.filter((s) => s.cpu !== undefined).map((s) => s.cpu!);
  const mem = samples.filter((s) => s.mem !== undefined).map((s) => s.mem!);
  const last = samples[samples.length - 1];
  if (!running && samples.length === 0) return <p className="muted">The container is not running: it has no figures.</p>;
  return (
    <div className="stats-panel">
      <div className="grid2">
        <div className="card">
          <LineChart label="CPU" values={cpu} max={100} format={(v) => `${v.toFixed(1)} %`} capacity={SAMPLES} />
        </div>
        <div className="card">
          <LineChart label="Memory" values={mem} max={last?.limit || 0} format={humanBytes} capacity={SAMPLES} />
          {last?.limit ? <p className="muted">limit {humanBytes(last.limit)}</p> : null}
        </div>
      </div>
      {last?.rx !== undefined && (
        <dl className="kv">
          <dt>Network received</dt>
          <dd>{humanBytes(last.rx)}</dd>
          <dt>Network sent</dt>
          <dd>{humanBytes(last.tx)}</dd>
        </dl>
      )}
      {!running && <p className="muted">The container stopped.</p>}
      {ended && (
        <p className="error-text" role="alert">
          The stats stream failed: {ended}
        </p>
      )}
    </div>
  );
}

/** An interactive shell in the container (xterm.js over api.exec). */
function TerminalPanel({ id, active, running }: { id: string; active: boolean; running: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const [gen, setGen] = useState(0);
  const [ended, setEnded] = useState<{ exitCode: number; error?: string } | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const fitRef = useRef<(() => void) | null>(null);

  useEffect(() => {
    let disposed = false;
    let term: import("@xterm/xterm").Terminal | undefined;
    let session: api.ExecSession | undefined;
    let ro: ResizeObserver | undefined;
    const el = host.current;
    setEnded(null);
    setFailed(null);
    (async () => {
      const x = await import("./terminal");
      if (disposed || !host.current) return;
      const t = new x.Terminal({
        cursorBlink: true,
        fontSize: 13,
        fontFamily: 'ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace',
        scrollback: 5000,
        theme: { background: "#16181d", foreground: "#e6e6e6" },
      });
      term = t;
      const fit = new x.FitAddon();
      t.loadAddon(fit);
      t.open(host.current);
      const doFit = () => {
        const el = host.current;
        if (!el || el.clientWidth === 0 || el.clientHeight === 0) return;
        try {
          fit.fit();
        } catch {
          /* not laid out yet */
        }
      };
      fitRef.current = doFit;
      doFit();
      t.onData((d) => {
        session?.input(d).catch(() => {});
      });
      t.onResize(({ cols, rows }) => {
        session?.resize(cols, rows).catch(() => {});
      });
      ro = new ResizeObserver(doFit);
      ro.observe(host.current);
      try {
        const s = await api.exec(
          id,
          ["/bin/sh"],
          t.cols,
          t.rows,
          (d) => t.write(d),
          (e) => {
            session = undefined;
            if (!disposed) setEnded(e);
          },
        );
        if (disposed) {
          s.close();
          return;
        }
        session = s;
        t.focus();
      } catch (e) {
        if (!disposed) setFailed(errorText(e));
      }
    })().catch((e) => {
      if (!disposed) setFailed(errorText(e));
    });
    return () => {
      disposed = true;
      fitRef.current = null;
      ro?.disconnect();
      session?.close();
      term?.dispose();
      el?.replaceChildren();
    };
  }, [id, gen]);

  useEffect(() => {
    if (active) fitRef.current?.();
  }, [active]);

  return (
    <div className="terminal-panel">
      <div className="term-host" data-testid="terminal" ref={host} />
      {(ended || failed) && (
        <div className="terminal-end" role="status">
          {failed ? (
            <span className="error-text" role="alert">
              {running ? failed : `The container is not running (${failed})`}
            </span>
          ) : (
            <span>
              exited with code {ended!.exitCode}
              {ended!.error ? ` (${ended!.error})` : ""}
            </span>
          )}
          <button type="button" className="primary" onClick={() => setGen((g) => g + 1)}>
            Reconnect
          </button>
        </div>
      )}
    </div>
  );
}

import { useEffect, useState } from "react";
import * as api from "../api";
import { useStatus } from "../status";
import { useToast } from "../ui/Toast";
import { Bar } from "../ui/Bar";
import { humanBytes } from "../format";

export function StatusScreen() {
  const { status, refresh } = useStatus();
  const toast = useToast();
  const [busy, setBusy] = useState<string | null>(null);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const state = status?.state;
  async function run(name: string, f: () => Promise<void>) {
    setBusy(name);
    try {
      await f();
    } catch (e) {
      toast.error(e, name);
    } finally {
      setBusy(null);
      void refresh();
    }
  }
  const r = status?.resources;
  const v = status?.versions;
  const MiB = 1024 * 1024;

  return (
    <section className="screen" aria-labelledby="status-h">
      <h1 id="status-h">Status</h1>
      <div className="card">
        <div className="state-line">
          <span className={`pill pill-${state ?? "unknown"}`} data-testid="engine-state">
            <span className="dot" aria-hidden="true" />
            {state ?? "unknown"}
          </span>
          {(state === "starting" || state === "stopping") && status?.message && (
            <span className="muted" data-testid="engine-message">
              {status.message}
            </span>
          )}
        </div>
        {state === "error" && (
          <div className="error-box" role="alert">
            <strong>{status?.error || "The engine failed"}</strong>
            {status?.hint && <p>{status.hint}</p>}
          </div>
        )}
        {status?.warning && <p className="warning">{status.warning}</p>}
        <div className="actions">
          <button
            className="primary"
            disabled={!status || busy !== null || !(state === "stopped" || state === "error")}
            onClick={() => run("Start", api.start)}
          >
            Start
          </button>
          <button
            disabled={!status || busy !== null || !(state === "running" || state === "starting" || state === "error")}
            onClick={() => run("Stop", api.stop)}
          >
            Stop
          </button>
          <button disabled={!status || busy !== null || state !== "running"} onClick={() => run("Restart", api.restart)}>
            Restart
          </button>
        </div>
      </div>

      <div className="grid2">
        <div className="card">
          <h2>Versions</h2>
          <dl className="kv">
            <dt>Agent</dt>
            <dd>{v?.agent || "—"}</dd>
            <dt>Kernel</dt>
            <dd>{v?.kernel || "—"}</dd>
            <dt>Engine</dt>
            <dd>{v?.engine || "—"}</dd>
            {status?.socket && (
              <>
                <dt>Socket</dt>
                <dd className="mono">{status.socket}</dd>
              </>
            )}
          </dl>
        </div>
        <div className="card">
          <h2>Resources</h2>
          <dl className="kv">
            <dt>CPUs</dt>
            <dd>{r?.cpus || "—"}</dd>
          </dl>
          <Bar
            label="Memory"
            value={r?.memUsedMiB ?? 0}
            max={r?.memTotalMiB || r?.memoryMiB || 0}
            text={
              r && (r.memTotalMiB || r.memoryMiB)
                ? `${r.memUsedMiB ? humanBytes(r.memUsedMiB * MiB) : "—"} / ${humanBytes((r.memTotalMiB || r.memoryMiB) * MiB)}`
                : "—"
            }
          />
          <Bar
            label="Disk"
            value={r?.diskUsedBytes ?? 0}
            max={r?.diskSizeBytes ?? 0}
            text={r?.diskSizeBytes ? `${humanBytes(r.diskUsedBytes)} / ${humanBytes(r.diskSizeBytes)}` : "—"}
          />
        </div>
      </div>
    </section>
  );
}

import { useCallback, useEffect, useRef, useState } from "react";
import * as api from "../api";
import type { Plan } from "../api";
import { useStatus } from "../status";
import { Dialog } from "../ui/Dialog";
import { Tabs, TabPanel } from "../ui/Tabs";
import { errorText, humanBytes } from "../format";

type Action = Plan["action"];

const ACTIONS: { action: Action; label: string; title: string; help: string; confirm: string }[] = [
  {
    action: "reset",
    label: "Reset to factory defaults",
    title: "Reset to factory defaults?",
    help: "Puts every setting back to its default and erases the VM: images, containers and volumes.",
    confirm: "Reset",
  },
  {
    action: "purge",
    label: "Clean / purge data",
    title: "Purge all data?",
    help: "Erases the VM disk (images, containers, volumes) and the logs; the settings stay.",
    confirm: "Purge",
  },
  {
    action: "uninstall",
    label: "Uninstall",
    title: "Uninstall Berth?",
    help: "Removes everything Berth put on this computer; then remove the app itself.",
    confirm: "Uninstall",
  },
];

const LOG_TABS = ["VM", "Engine"] as const;
type LogTab = (typeof LOG_TABS)[number];

export function TroubleshootScreen() {
  const { refresh } = useStatus();
  const [plan, setPlan] = useState<Plan | null>(null);
  const [planFor, setPlanFor] = useState<Action | null>(null);
  const [planError, setPlanError] = useState<string | null>(null);
  const [running, setRunning] = useState<string | null>(null);
  const [progress, setProgress] = useState<string[]>([]);
  const [output, setOutput] = useState<{ what: string; text: string; error?: string } | null>(null);
  const [diag, setDiag] = useState<{ path?: string; error?: string } | null>(null);
  const [diagBusy, setDiagBusy] = useState(false);

  /** Runs f with the progress lines shown; its text (or error) after. */
  async function withProgress(what: string, f: () => Promise<string | void>) {
    setRunning(what);
    setProgress([]);
    setOutput(null);
    let off: (() => void) | undefined;
    try {
      off = api.onProgress((l) => setProgress((p) => [...p, l]));
    } catch {
      /* no progress lines */
    }
    try {
      const text = await f();
      setOutput({ what, text: text || "Done." });
    } catch (e) {
      setOutput({ what, text: "", error: errorText(e) });
    } finally {
      off?.();
      setRunning(null);
      void refresh();
    }
  }

  async function ask(action: Action) {
    setPlanFor(action);
    setPlan(null);
    setPlanError(null);
    try {
      setPlan(await api.troubleshootPlan(action));
    } catch (e) {
      setPlanError(errorText(e));
    }
  }

  function confirm() {
    const action = planFor!;
    const label = ACTIONS.find((a) => a.action === action)!.label;
    setPlanFor(null);
    setPlan(null);
    void withProgress(label, () => api.runTroubleshoot(action));
  }

  async function diagnostics() {
    setDiagBusy(true);
    setDiag(null);
    try {
      setDiag({ path: await api.diagnostics() });
    } catch (e) {
      setDiag({ error: errorText(e) });
    } finally {
      setDiagBusy(false);
    }
  }

  const spec = ACTIONS.find((a) => a.action === planFor);
  return (
    <section className="screen" aria-labelledby="trouble-h">
      <h1 id="trouble-h">Troubleshoot</h1>
      <div className="card">
        <div className="trouble-list">
          <div className="trouble-item">
            <div>
              <strong>Restart</strong>
              <p className="help">Stops and starts the VM and the engine. Containers with a restart policy come back.</p>
            </div>
            <button type="button" disabled={running !== null} onClick={() => void withProgress("Restart", () => api.restart())}>
              Restart
            </button>
          </div>
          <div className="trouble-item">
            <div>
              <strong>Diagnostics bundle</strong>
              <p className="help">Writes the logs, settings and versions into one file to attach to a bug report.</p>
            </div>
            <button type="button" disabled={diagBusy} onClick={() => void diagnostics()}>
              Diagnostics bundle
            </button>
          </div>
          {diag?.path && (
            <p className="ok-text" role="status" data-testid="diagnostics-result">
              Diagnostics written to <span className="mono">{diag.path}</span>
            </p>
          )}
          {diag?.error && (
            <p className="error-text" role="alert">
              {diag.error}
            </p>
          )}
          {ACTIONS.map((a) => (
            <div className="trouble-item" key={a.action}>
              <div>
                <strong>{a.label}</strong>
                <p className="help">{a.help}</p>
              </div>
              <button type="button" className="danger" disabled={running !== null} onClick={() => void ask(a.action)}>
                {a.label}
              </button>
            </div>
          ))}
        </div>
        {(running || progress.length > 0 || output) && (
          <div className="run-output">
            <h2>{running ?? output?.what}</h2>
            {(running || progress.length > 0) && (
              <pre className="progress-lines" data-testid="troubleshoot-progress" aria-live="polite">
                {progress.length ? progress.join("\n") : "Working…"}
              </pre>
            )}
            {output && !output.error && output.text && (
              <pre className="progress-lines" data-testid="troubleshoot-output">
                {output.text}
              </pre>
            )}
            {output?.error && (
              <p className="error-text" role="alert">
                {output.error}
              </p>
            )}
          </div>
        )}
      </div>

      <LogsCard />

      {planFor && spec && (
        <Dialog
          title={spec.title}
          onClose={() => setPlanFor(null)}
          wide
          footer={
            <>
              <button type="button" onClick={() => setPlanFor(null)} data-autofocus>
                Cancel
              </button>
              <button type="button" className="danger" onClick={confirm} disabled={!plan}>
                Confirm
              </button>
            </>
          }
        >
          {planError && (
            <p className="error-text" role="alert">
              {planError}
            </p>
          )}
          {!plan && !planError && <p className="muted">Listing what would be removed…</p>}
          {plan && (
            <>
              <p>
                <strong>This is exactly what will be lost:</strong>
              </p>
              {plan.items.length === 0 ? (
                <p className="muted">Nothing: there is nothing to remove.</p>
              ) : (
                <div className="table-wrap plan">
                  <table className="table" data-testid="plan-items">
                    <thead>
                      <tr>
                        <th scope="col">Path</th>
                        <th scope="col">What</th>
                        <th scope="col" className="num">
                          Size
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {plan.items.map((it) => (
                        <tr key={it.path} data-testid="plan-item">
                          <td className="mono">{it.path}</td>
                          <td>{it.what}</td>
                          <td className="num">{it.bytes > 0 ? humanBytes(it.bytes) : "—"}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
              {plan.description && (
                <details>
                  <summary>As the command line prints it</summary>
                  <pre className="progress-lines" data-testid="plan-description">
                    {plan.description}
                  </pre>
                </details>
              )}
              <p className="warning">This cannot be undone.</p>
            </>
          )}
        </Dialog>
      )}
    </section>
  );
}

function LogsCard() {
  const [tab, setTab] = useState<LogTab>("VM");
  const [text, setText] = useState<Record<LogTab, string | null>>({ VM: null, Engine: null });
  const [error, setError] = useState<string | null>(null);
  const pre = useRef<HTMLPreElement>(null);

  const load = useCallback(async (t: LogTab) => {
    setError(null);
    try {
      const s = await api.logs(t === "VM" ? "vm" : "service");
      setText((x) => ({ ...x, [t]: s }));
    } catch (e) {
      setError(errorText(e));
    }
  }, []);

  useEffect(() => {
    void load(tab);
  }, [tab, load]);

  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [text, tab]);

  const shown = text[tab];
  return (
    <div className="card logs-card">
      <div className="screen-head">
        <h2>Logs</h2>
        <div className="spacer" />
        <button type="button" onClick={() => void load(tab)}>
          Refresh
        </button>
      </div>
      <Tabs tabs={LOG_TABS} value={tab} onChange={setTab} label="Logs" idPrefix="tlog" />
      {LOG_TABS.map((t) => (
        <TabPanel key={t} idPrefix="tlog" tab={t} active={tab === t}>
          {t === tab && (
            <pre className="log-text" ref={pre} data-testid={`log-${t.toLowerCase()}`} tabIndex={0}>
              {shown === null ? "Loading…" : shown || "The log is empty."}
            </pre>
          )}
        </TabPanel>
      ))}
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

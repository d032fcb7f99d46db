import { useCallback, useEffect, useId, useMemo, useRef, useState, type ReactNode } from "react";
import * as api from "../api";
import type { ApplyResult, FieldError, Settings, SettingsView } from "../api";
import { Tabs, TabPanel } from "../ui/Tabs";
import { Confirm } from "../ui/Dialog";
import { highlightJSON, jsonErrorLine } from "../ui/json";
import { errorText } from "../format";
import { splitList } from "../engine";

const TABS = ["General", "Resources", "File sharing", "Proxies", "Docker Engine"] as const;
type Tab = (typeof TABS)[number];

const SECTION_TAB: Record<string, Tab> = {
  general: "General",
  resources: "Resources",
  fileSharing: "File sharing",
  proxies: "Proxies",
  engine: "Docker Engine",
};

/** The keys that have a field of their own; errors of other keys are listed
 * above the tabs (engine.* ones under the daemon.json editor). */
const FIELD_KEYS = new Set([
  "general.startAtLogin",
  "general.checkForUpdates",
  "general.backupVMDisk",
  "general.useKeychain",
  "resources.cpus",
  "resources.memoryMiB",
  "resources.swapMiB",
  "resources.diskGiB",
  "resources.diskPath",
  "resources.vmSubnet",
  "fileSharing.paths",
  "proxies.mode",
  "proxies.http",
  "proxies.https",
  "proxies.noProxy",
]);

function isEngineKey(k: string): boolean {
  return k === "engine" || k.startsWith("engine.");
}

/** The tab showing the error of key, if any. */
export function tabOf(key: string): Tab | undefined {
  if (isEngineKey(key)) return "Docker Engine";
  if (!FIELD_KEYS.has(key)) return undefined;
  return SECTION_TAB[key.split(".")[0]];
}

const GENERAL: { key: keyof Settings["general"]; label: string; help: string }[] = [
  { key: "startAtLogin", label: "Start Berth when you log in", help: "Berth's VM starts with your session (berth start), so docker works at once." },
  { key: "checkForUpdates", label: "Check for updates", help: "Off: nothing is fetched." },
  { key: "backupVMDisk", label: "Include the VM disk in backups", help: "The disk holds images, containers and volumes; it can be large." },
  { key: "useKeychain", label: "Store registry credentials in the keychain", help: "docker login keeps passwords in the system keychain." },
];

function engineText(engine: Record<string, unknown> | null | undefined): string {
  return JSON.stringify(engine ?? {}, null, 2);
}

export function SettingsScreen() {
  const [view, setView] = useState<SettingsView | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [draft, setDraft] = useState<Settings | null>(null);
  const [text, setText] = useState("");
  const [parseError, setParseError] = useState<{ message: string; line: number } | null>(null);
  const [tab, setTab] = useState<Tab>("General");
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState<string[]>([]);
  const [result, setResult] = useState<ApplyResult | null>(null);
  const [applyError, setApplyError] = useState<string | null>(null);
  const [askReset, setAskReset] = useState<{ doc: Settings; message?: string } | null>(null);

  const restore = useCallback((v: SettingsView) => {
    const s = structuredClone(v.settings);
    s.engine ??= {};
    s.fileSharing.paths ??= [];
    setDraft(s);
    setText(engineText(s.engine));
    setParseError(null);
  }, []);

  const load = useCallback(async () => {
    try {
      const v = await api.settings();
      setView(v);
      restore(v);
      setLoadError(null);
    } catch (e) {
      setLoadError(errorText(e));
    }
  }, [restore]);

  useEffect(() => {
    void load();
  }, [load]);

  const update = useCallback((f: (d: Settings) => void) => {
    setDraft((d) => {
      if (!d) return d;
      const n = structuredClone(d);
      f(n);
      return n;
    });
  }, []);

  /** A change of the engine document from a field: the editor follows. */
  function setEngine(f: (e: Record<string, unknown>) => void) {
    if (!draft) return;
    const n = structuredClone(draft);
    f(n.engine);
    setDraft(n);
    setText(engineText(n.engine));
    setParseError(null);
  }

  function onText(t: string) {
    setText(t);
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch (e) {
      setParseError({ message: errorText(e), line: jsonErrorLine(t, e) });
      return;
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      setParseError({ message: "daemon.json must be an object ({ … })", line: 1 });
      return;
    }
    setParseError(null);
    update((d) => {
      d.engine = v as Record<string, unknown>;
    });
  }

  const showErrors = useCallback(
    (errs: FieldError[]) => {
      setErrors(errs);
      const tabs = errs.map((e) => tabOf(e.key)).filter((t): t is Tab => t !== undefined);
      if (tabs.length && !tabs.includes(tab)) setTab(tabs[0]);
    },
    [tab],
  );

  async function applyDoc(doc: Settings, confirmReset: boolean) {
    setProgress([]);
    let off: (() => void) | undefined;
    try {
      off = api.onProgress((l) => setProgress((p) => [...p, l]));
    } catch {
      /* no progress lines */
    }
    try {
      const r = await api.applySettings(doc, confirmReset);
      if (r.needsReset && !confirmReset) {
        setAskReset({ doc, message: r.error });
        return;
      }
      if (r.errors?.length) showErrors(r.errors);
      if (r.error) setApplyError(r.error);
      if (!r.errors?.length && !r.error) {
        setResult(r);
        await load();
      }
    } finally {
      off?.();
    }
  }

  async function apply() {
    if (!draft) return;
    setErrors([]);
    setResult(null);
    setApplyError(null);
    if (parseError) {
      setTab("Docker Engine");
      setApplyError(`daemon.json does not parse${parseError.line ? ` (line ${parseError.line})` : ""}: fix it first`);
      return;
    }
    // The editor shows the document as Go lays it out, so error lines match.
    setText(engineText(draft.engine));
    const doc = structuredClone(draft);
    setBusy(true);
    try {
      const errs = await api.validateSettings(doc);
      if (errs && errs.length) {
        showErrors(errs);
        return;
      }
      await applyDoc(doc, false);
    } catch (e) {
      setApplyError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  async function confirmReset() {
    if (!askReset) return;
    const doc = askReset.doc;
    setAskReset(null);
    setBusy(true);
    try {
      await applyDoc(doc, true);
    } catch (e) {
      setApplyError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  function cancel() {
    if (view) restore(view);
    setErrors([]);
    setApplyError(null);
    setResult(null);
  }

  const dirty = useMemo(() => {
    if (!view || !draft) return false;
    return JSON.stringify(draft) !== JSON.stringify({ ...view.settings, engine: view.settings.engine ?? {}, fileSharing: { paths: view.settings.fileSharing.paths ?? [] } }) || parseError !== null;
  }, [view, draft, parseError]);

  const badges = useMemo(() => {
    const b: Partial<Record<Tab, number>> = {};
    for (const e of errors) {
      const t = tabOf(e.key);
      if (t) b[t] = (b[t] ?? 0) + 1;
    }
    return b;
  }, [errors]);

  if (!view || !draft) {
    return (
      <section className="screen" aria-labelledby="settings-h">
        <h1 id="settings-h">Settings</h1>
        {loadError ? (
          <div className="error-box" role="alert">
            <strong>Could not read the settings</strong>
            <p>{loadError}</p>
            <button onClick={() => void load()}>Try again</button>
          </div>
        ) : (
          <p className="muted">Loading…</p>
        )}
      </section>
    );
  }

  const errs = (key: string) => <FieldErrors errors={errors} k={key} />;
  const other = errors.filter((e) => !FIELD_KEYS.has(e.key) && !isEngineKey(e.key));
  const limits = view.limits;
  const r = draft.resources;
  const manual = draft.proxies.mode === "manual";

  return (
    <section className="screen fill settings" aria-labelledby="settings-h">
      <div className="screen-head">
        <h1 id="settings-h">Settings</h1>
        {dirty && <span className="muted">Unsaved changes</span>}
      </div>
      {other.length > 0 && (
        <div className="error-box">
          {other.map((e, i) => (
            <p key={i} role="alert" data-testid={`error-${e.key}`}>
              {e.key ? `${e.key}: ` : ""}
              {e.reason}
            </p>
          ))}
        </div>
      )}
      <Tabs tabs={TABS} value={tab} onChange={setTab} label="Settings" idPrefix="set" badges={badges} />
      <div className="settings-body">
        <TabPanel idPrefix="set" tab="General" active={tab === "General"}>
          <div className="form">
            {GENERAL.map((g) => (
              <div key={g.key} className="field">
                <label className="check">
                  <input
                    type="checkbox"
                    checked={draft.general[g.key]}
                    onChange={(e) => update((d) => void (d.general[g.key] = e.target.checked))}
                  />
                  {g.label}
                </label>
                <p className="help">{g.help}</p>
                {errs(`general.${g.key}`)}
              </div>
            ))}
          </div>
        </TabPanel>

        <TabPanel idPrefix="set" tab="Resources" active={tab === "Resources"}>
          <div className="form">
            <Slider
              label="CPUs"
              value={r.cpus}
              min={1}
              max={Math.max(1, limits.maxCPUs)}
              step={1}
              onChange={(v) => update((d) => void (d.resources.cpus = v))}
              help={`The host has ${limits.maxCPUs}.`}
              error={errs("resources.cpus")}
            />
            <Slider
              label="Memory (MiB)"
              value={r.memoryMiB}
              min={512}
              max={Math.max(512, limits.maxMemoryMiB)}
              step={256}
              onChange={(v) => update((d) => void (d.resources.memoryMiB = v))}
              help={`At most ${limits.maxMemoryMiB} MiB on this host.`}
              error={errs("resources.memoryMiB")}
            />
            <NumberField
              label="Swap (MiB)"
              value={r.swapMiB}
              min={0}
              max={65536}
              step={256}
              onChange={(v) => update((d) => void (d.resources.swapMiB = v))}
              error={errs("resources.swapMiB")}
            />
            <NumberField
              label="Disk size (GiB)"
              value={r.diskGiB}
              min={4}
              step={1}
              onChange={(v) => update((d) => void (d.resources.diskGiB = v))}
              help={`The disk is ${limits.currentDiskGiB} GiB now.`}
              error={
                <>
                  {r.diskGiB < limits.currentDiskGiB && (
                    <p className="warning" data-testid="disk-warning">
                      Shrinking the disk erases all images, containers and volumes
                    </p>
                  )}
                  {errs("resources.diskGiB")}
                </>
              }
            />
            <TextField
              label="Disk location"
              value={r.diskPath}
              placeholder="the default, in Berth's folder"
              onChange={(v) => update((d) => void (d.resources.diskPath = v))}
              extra={
                <button
                  type="button"
                  onClick={async () => {
                    try {
                      const p = await api.pickFolder("Disk location");
                      if (p) update((d) => void (d.resources.diskPath = p));
                    } catch (e) {
                      setApplyError(errorText(e));
                    }
                  }}
                >
                  Choose…
                </button>
              }
              help="The folder holding the VM disk; empty is the default."
              error={errs("resources.diskPath")}
            />
            <TextField
              label="VM subnet"
              value={r.vmSubnet}
              placeholder="the default"
              onChange={(v) => update((d) => void (d.resources.vmSubnet = v))}
              help="The VM's network, such as 192.168.64.0/24."
              error={errs("resources.vmSubnet")}
            />
          </div>
        </TabPanel>

        <TabPanel idPrefix="set" tab="File sharing" active={tab === "File sharing"}>
          <div className="form">
            <p className="help">These host folders are shared into the VM at the same path, for bind mounts.</p>
            <ul className="paths" aria-label="Shared folders">
              {draft.fileSharing.paths.map((p) => (
                <li key={p}>
                  <span className="mono">{p}</span>
                  <button
                    type="button"
                    aria-label={`Remove ${p}`}
                    onClick={() => update((d) => void (d.fileSharing.paths = d.fileSharing.paths.filter((x) => x !== p)))}
                  >
                    Remove
                  </button>
                </li>
              ))}
              {draft.fileSharing.paths.length === 0 && <li className="muted">No folder is shared.</li>}
            </ul>
            <div>
              <button
                type="button"
                onClick={async () => {
                  try {
                    const p = await api.pickFolder("Share a folder");
                    if (p) update((d) => void (d.fileSharing.paths.includes(p) || d.fileSharing.paths.push(p)));
                  } catch (e) {
                    setApplyError(errorText(e));
                  }
                }}
              >
                Add folder
              </button>
            </div>
            {errs("fileSharing.paths")}
          </div>
        </TabPanel>

        <TabPanel idPrefix="set" tab="Proxies" active={tab === "Proxies"}>
          <div className="form">
            <fieldset className="radios">
              <legend>Proxy</legend>
              {(
                [
                  ["none", "None"],
                  ["system", "System proxy settings"],
                  ["manual", "Manual"],
                ] as const
              ).map(([m, label]) => (
                <label key={m} className="check">
                  <input
                    type="radio"
                    name="proxy-mode"
                    value={m}
                    checked={draft.proxies.mode === m}
                    onChange={() => update((d) => void (d.proxies.mode = m))}
                  />
                  {label}
                </label>
              ))}
              {errs("proxies.mode")}
            </fieldset>
            <TextField
              label="HTTP proxy"
              value={draft.proxies.http}
              placeholder="http://proxy:3128"
              disabled={!manual}
              onChange={(v) => update((d) => void (d.proxies.http = v))}
              error={errs("proxies.http")}
            />
            <TextField
              label="HTTPS proxy"
              value={draft.proxies.https}
              placeholder="http://proxy:3128"
              disabled={!manual}
              onChange={(v) => update((d) => void (d.proxies.https = v))}
              error={errs("proxies.https")}
            />
            <TextField
              label="No proxy"
              value={draft.proxies.noProxy}
              placeholder="localhost,127.0.0.1,.internal"
              disabled={!manual}
              onChange={(v) => update((d) => void (d.proxies.noProxy = v))}
              error={errs("proxies.noProxy")}
            />
          </div>
        </TabPanel>

        <TabPanel idPrefix="set" tab="Docker Engine" active={tab === "Docker Engine"}>
          <EngineTab
            text={text}
            onText={onText}
            engine={draft.engine}
            setEngine={setEngine}
            parseError={parseError}
            errors={errors.filter((e) => isEngineKey(e.key))}
          />
        </TabPanel>
      </div>

      <div className="settings-foot">
        <div className="settings-status">
          {(busy || progress.length > 0) && (
            <pre className="progress-lines" data-testid="apply-progress" aria-live="polite">
              {progress.length ? progress.join("\n") : "Checking…"}
            </pre>
          )}
          {result && (
            <p className="ok-text" data-testid="apply-result" role="status">
              {result.changed && result.applied.length ? `Applied: ${result.applied.join("; ")}` : "Nothing to change"}
            </p>
          )}
          {applyError && (
            <p className="error-text" role="alert" data-testid="apply-error">
              {applyError}
            </p>
          )}
        </div>
        <button type="button" onClick={cancel} disabled={busy}>
          Cancel
        </button>
        <button type="button" className="primary" onClick={() => void apply()} disabled={busy}>
          Apply &amp; restart
        </button>
      </div>

      {askReset && (
        <Confirm
          title="Erase the VM disk?"
          confirmLabel="Erase and apply"
          danger
          onCancel={() => setAskReset(null)}
          onConfirm={() => void confirmReset()}
        >
          <p>
            The disk shrinks from {limits.currentDiskGiB} GiB to {askReset.doc.resources.diskGiB} GiB. A disk cannot
            shrink in place: it is erased and made anew.
          </p>
          <p>
            <strong>Lost: every image, container and volume</strong>, with the data in them. Settings and shared host
            folders are kept.
          </p>
          {askReset.message && <p className="muted">{askReset.message}</p>}
        </Confirm>
      )}
    </section>
  );
}

function FieldErrors({ errors, k }: { errors: FieldError[]; k: string }) {
  const mine = errors.filter((e) => e.key === k);
  if (!mine.length) return null;
  return (
    <>
      {mine.map((e, i) => (
        <p key={i} className="field-error" role="alert" data-testid={`error-${k}`}>
          {e.reason}
        </p>
      ))}
    </>
  );
}

/** An integer input that keeps what is typed while it is not a number yet. */
function useIntText(value: number, onChange: (v: number) => void) {
  const [t, setT] = useState(String(value));
  useEffect(() => {
    setT((cur) => (toInt(cur) === value ? cur : String(value)));
  }, [value]);
  return {
    text: t,
    set(s: string) {
      setT(s);
      onChange(toInt(s));
    },
  };
}

function toInt(s: string): number {
  const n = Number(s);
  return s.trim() === "" || !Number.isFinite(n) ? 0 : Math.trunc(n);
}

function NumberField({
  label,
  value,
  min,
  max,
  step,
  onChange,
  help,
  error,
}: {
  label: string;
  value: number;
  min?: number;
  max?: number;
  step?: number;
  onChange: (v: number) => void;
  help?: string;
  error?: ReactNode;
}) {
  const id = useId();
  const f = useIntText(value, onChange);
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} type="number" inputMode="numeric" min={min} max={max} step={step} value={f.text} onChange={(e) => f.set(e.target.value)} />
      {help && <p className="help">{help}</p>}
      {error}
    </div>
  );
}

function Slider({
  label,
  value,
  min,
  max,
  step,
  onChange,
  help,
  error,
}: {
  label: string;
  value: number;
  min: number;
  max: number;
  step: number;
  onChange: (v: number) => void;
  help?: string;
  error?: ReactNode;
}) {
  const id = useId();
  const f = useIntText(value, onChange);
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <div className="slider">
        <input
          type="range"
          aria-label={`${label} slider`}
          min={min}
          max={max}
          step={step}
          value={Math.min(max, Math.max(min, value))}
          onChange={(e) => f.set(e.target.value)}
        />
        <input id={id} type="number" inputMode="numeric" min={min} max={max} step={step} value={f.text} onChange={(e) => f.set(e.target.value)} />
      </div>
      {help && <p className="help">{help}</p>}
      {error}
    </div>
  );
}

function TextField({
  label,
  value,
  onChange,
  placeholder,
  disabled,
  help,
  error,
  extra,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  placeholder?: string;
  disabled?: boolean;
  help?: string;
  error?: ReactNode;
  extra?: ReactNode;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <div className="inline">
        <input
          id={id}
          value={value}
          placeholder={placeholder}
          disabled={disabled}
          spellCheck={false}
          autoCapitalize="off"
          onChange={(e) => onChange(e.target.value)}
        />
        {extra}
      </div>
      {help && <p className="help">{help}</p>}
      {error}
    </div>
  );
}

/** daemon.json: the editor with its highlighting, its errors, and the two
 * registry lists as fields of their own. */
function EngineTab({
  text,
  onText,
  engine,
  setEngine,
  parseError,
  errors,
}: {
  text: string;
  onText: (t: string) => void;
  engine: Record<string, unknown>;
  setEngine: (f: (e: Record<string, unknown>) => void) => void;
  parseError: { message: string; line: number } | null;
  errors: FieldError[];
}) {
  const id = useId();
  const pre = useRef<HTMLPreElement>(null);
  const leaving = useRef(false);
  const lines = text.split("\n");
  const bad = new Set<number>();
  if (parseError?.line) bad.add(parseError.line);
  for (const e of errors) if (e.line) bad.add(e.line);

  return (
    <div className="form engine-tab">
      <ListField
        label="Insecure registries"
        placeholder="myregistry.local:5000"
        value={engine["insecure-registries"]}
        disabled={parseError !== null}
        onChange={(list) => setEngine((e) => setList(e, "insecure-registries", list))}
        help="Registries reached over plain HTTP or with an untrusted certificate; commas or one a line."
      />
      <ListField
        label="Registry mirrors"
        placeholder="https://mirror.example.com"
        value={engine["registry-mirrors"]}
        disabled={parseError !== null}
        onChange={(list) => setEngine((e) => setList(e, "registry-mirrors", list))}
        help="Pulls from Docker Hub try these first; commas or one a line."
      />
      <div className="field">
        <label htmlFor={id}>daemon.json</label>
        <div className="code-editor">
          <pre ref={pre} className="code-hl" aria-hidden="true">
            {lines.map((l, i) => (
              <div key={i} className={bad.has(i + 1) ? "hl-line hl-bad" : "hl-line"}>
                {l === "" ? "\u200b" : highlightJSON(l)}
              </div>
            ))}
          </pre>
          <textarea
            id={id}
            className="code-input"
            value={text}
            spellCheck={false}
            autoCapitalize="off"
            autoCorrect="off"
            wrap="off"
            aria-invalid={parseError !== null || errors.length > 0}
            onChange={(e) => onText(e.target.value)}
            onScroll={(e) => {
              if (pre.current) {
                pre.current.scrollTop = e.currentTarget.scrollTop;
                pre.current.scrollLeft = e.currentTarget.scrollLeft;
              }
            }}
            onKeyDown={(e) => {
              // Tab indents; Escape then Tab leaves, as in other editors.
              if (e.key === "Tab" && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !leaving.current) {
                e.preventDefault();
                const el = e.currentTarget;
                const s = el.selectionStart;
                const v = el.value.slice(0, s) + "  " + el.value.slice(el.selectionEnd);
                onText(v);
                requestAnimationFrame(() => el.setSelectionRange(s + 2, s + 2));
              }
              leaving.current = e.key === "Escape";
            }}
          />
        </div>
        <p className="help">The engine's configuration (dockerd's daemon.json). Press Escape, then Tab, to leave the editor.</p>
        {parseError && (
          <p className="field-error" role="alert" data-testid="json-error">
            {parseError.line ? `line ${parseError.line}: ` : ""}
            {parseError.message}
          </p>
        )}
        {errors.map((e, i) => (
          <p key={i} className="field-error" role="alert" data-testid={`error-${e.key}`}>
            {e.line ? `line ${e.line}: ` : ""}
            {e.key === "engine" ? "" : `${e.key.slice("engine.".length)}: `}
            {e.reason}
          </p>
        ))}
      </div>
    </div>
  );
}

function setList(e: Record<string, unknown>, key: string, list: string[]) {
  if (list.length) e[key] = list;
  else delete e[key];
}

function asList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** A list of strings typed with commas or one a line; what is typed stays
 * while it means the same list. */
function ListField({
  label,
  value,
  onChange,
  placeholder,
  disabled,
  help,
}: {
  label: string;
  value: unknown;
  onChange: (list: string[]) => void;
  placeholder?: string;
  disabled?: boolean;
  help?: string;
}) {
  const id = useId();
  const list = asList(value);
  const key = list.join("\n");
  const [t, setT] = useState(key);
  useEffect(() => {
    setT((cur) => (splitList(cur).join("\n") === key ? cur : key));
  }, [key]);
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        rows={2}
        value={t}
        placeholder={placeholder}
        disabled={disabled}
        spellCheck={false}
        autoCapitalize="off"
        onChange={(e) => {
          setT(e.target.value);
          onChange(splitList(e.target.value));
        }}
      />
      {help && <p className="help">{help}</p>}
    </div>
  );
}

import { useCallback, useEffect, useId, useState, type FormEvent } from "react";
import * as api from "../api";
import { useStatus } from "../status";
import { useToast } from "../ui/Toast";
import { Confirm, Dialog } from "../ui/Dialog";
import { EngineDown, isEngineDown } from "../ui/EngineDown";
import { Icon } from "../ui/icons";
import { errorText, humanBytes } from "../format";
import type { Volume, VolumeUsage } from "../engine";

interface Usage {
  size: number;
  refs: number;
}

export function VolumesScreen() {
  const { status } = useStatus();
  const toast = useToast();
  const [volumes, setVolumes] = useState<Volume[] | null>(null);
  const [usage, setUsage] = useState<Record<string, Usage>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [name, setName] = useState("");
  const [createError, setCreateError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [del, setDel] = useState<string | null>(null);
  const [delBusy, setDelBusy] = useState(false);
  const [delError, setDelError] = useState<string | null>(null);
  const [browse, setBrowse] = useState<string | null>(null);
  const nameId = useId();

  const engineDown = status !== null && status.state !== "running";

  const load = useCallback(async () => {
    try {
      const r = await api.docker<{ Volumes: Volume[] | null }>("GET", "/volumes");
      const list = r?.Volumes ?? [];
      list.sort((a, b) => a.Name.localeCompare(b.Name));
      setVolumes(list);
      setError(undefined);
    } catch (e) {
      setError(e);
      return;
    }
    // Sizes take the engine a walk of each volume: they come after the list.
    try {
      const df = await api.docker<{ Volumes: VolumeUsage[] | null }>("GET", "/system/df?type=volume");
      const u: Record<string, Usage> = {};
      for (const v of df?.Volumes ?? []) {
        if (v.UsageData) u[v.Name] = { size: v.UsageData.Size, refs: v.UsageData.RefCount };
      }
      setUsage(u);
    } catch {
      /* sizes stay unknown: "—" */
    }
  }, []);

  useEffect(() => {
    if (engineDown) return;
    void load();
    const t = setInterval(() => {
      if (document.visibilityState !== "hidden") void load();
    }, 10000);
    return () => clearInterval(t);
  }, [engineDown, load]);

  async function create(e: FormEvent) {
    e.preventDefault();
    setCreating(true);
    setCreateError(null);
    try {
      const v = await api.docker<Volume>("POST", "/volumes/create", { Name: name.trim() });
      toast.info(`Created volume ${v?.Name ?? name.trim()}`);
      setName("");
    } catch (err) {
      setCreateError(errorText(err));
    } finally {
      setCreating(false);
      void load();
    }
  }

  async function doDelete() {
    if (!del) return;
    setDelBusy(true);
    setDelError(null);
    try {
      await api.docker("DELETE", `/volumes/${encodeURIComponent(del)}`);
      setDel(null);
    } catch (e) {
      setDelError(errorText(e));
    } finally {
      setDelBusy(false);
      void load();
    }
  }

  if (engineDown || (error !== undefined && isEngineDown(error) && volumes === null)) {
    return (
      <section className="screen" aria-labelledby="volumes-h">
        <h1 id="volumes-h">Volumes</h1>
        <EngineDown error={error} />
      </section>
    );
  }

  return (
    <section className="screen fill" aria-labelledby="volumes-h">
      <div className="screen-head">
        <h1 id="volumes-h">Volumes</h1>
        {volumes && <span className="muted">{volumes.length} volumes</span>}
      </div>
      <form className="card pull-form" onSubmit={create}>
        <label htmlFor={nameId}>Volume name</label>
        <input id={nameId} value={name} onChange={(e) => setName(e.target.value)} placeholder="mydata" spellCheck={false} />
        <button type="submit" className="primary" disabled={creating}>
          Create
        </button>
      </form>
      {createError && (
        <p className="error-text" role="alert">
          {createError}
        </p>
      )}
      {error !== undefined && (
        <p className="error-text" role="alert">
          Could not read the volumes: {errorText(error)}
        </p>
      )}
      {volumes === null ? (
        <p className="muted">Loading…</p>
      ) : volumes.length === 0 ? (
        <div className="empty">
          <p>No volumes.</p>
        </div>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Driver</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col" className="num">
                  Used by
                </th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {volumes.map((v) => {
                const u = usage[v.Name];
                return (
                  <tr key={v.Name} data-testid="volume-row" data-name={v.Name}>
                    <td className="ellipsis strong" title={v.Name}>
                      {v.Name}
                    </td>
                    <td>{v.Driver}</td>
                    <td className="num" data-testid="volume-size">
                      {u && u.size >= 0 ? humanBytes(u.size) : "—"}
                    </td>
                    <td className="num">{u && u.refs >= 0 ? `${u.refs} ${u.refs === 1 ? "container" : "containers"}` : "—"}</td>
                    <td>
                      <div className="row-actions">
                        <button type="button" aria-label={`Browse ${v.Name}`} onClick={() => setBrowse(v.Name)}>
                          Browse
                        </button>
                        <button
                          type="button"
                          className="icon"
                          aria-label={`Delete ${v.Name}`}
                          title="Delete"
                          onClick={() => {
                            setDelError(null);
                            setDel(v.Name);
                          }}
                        >
                          <Icon name="delete" />
                        </button>
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {del && (
        <Confirm
          title={`Delete ${del}?`}
          confirmLabel="Delete"
          danger
          busy={delBusy}
          onCancel={() => setDel(null)}
          onConfirm={() => void doDelete()}
        >
          <p>
            The volume <strong>{del}</strong> and every file in it
            {usage[del] && usage[del].size >= 0 ? ` (${humanBytes(usage[del].size)})` : ""} are deleted.
          </p>
          {delError && (
            <p className="error-text" role="alert">
              {delError}
            </p>
          )}
        </Confirm>
      )}
      {browse && <Browser volume={browse} onClose={() => setBrowse(null)} />}
    </section>
  );
}

/** A volume's files, folder by folder, with a breadcrumb back up. */
function Browser({ volume, onClose }: { volume: string; onClose: () => void }) {
  const [path, setPath] = useState<string[]>([]);
  const [entries, setEntries] = useState<api.VolumeEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stale = false;
    setEntries(null);
    setError(null);
    api.volumeFiles(volume, path.join("/")).then(
      (es) => !stale && setEntries(es ?? []),
      (e) => !stale && setError(errorText(e)),
    );
    return () => {
      stale = true;
    };
  }, [volume, path]);

  return (
    <Dialog title={`Browse ${volume}`} onClose={onClose} wide footer={<button onClick={onClose}>Close</button>}>
      <nav aria-label="Breadcrumb" className="crumbs">
        <ol>
          <li>
            <button type="button" className="link" onClick={() => setPath([])} aria-current={path.length === 0 ? "location" : undefined}>
              {volume}
            </button>
          </li>
          {path.map((p, i) => (
            <li key={i}>
              <span aria-hidden="true" className="sep">
                /
              </span>
              <button
                type="button"
                className="link"
                onClick={() => setPath(path.slice(0, i + 1))}
                aria-current={i === path.length - 1 ? "location" : undefined}
              >
                {p}
              </button>
            </li>
          ))}
        </ol>
      </nav>
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
      {entries === null && !error && <p className="muted">Loading…</p>}
      {entries && (
        <div className="table-wrap browse">
          <table className="table" data-testid="volume-files">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col">Modified</th>
              </tr>
            </thead>
            <tbody>
              {path.length > 0 && (
                <tr>
                  <td colSpan={3}>
                    <button type="button" className="link" onClick={() => setPath(path.slice(0, -1))} aria-label="Up one folder">
                      ..
                    </button>
                  </td>
                </tr>
              )}
              {entries.map((e) => (
                <tr key={e.name} data-testid="volume-entry" data-name={e.name}>
                  <td>
                    {e.dir ? (
                      <button type="button" className="link strong" onClick={() => setPath([...path, e.name])}>
                        <Icon name="folder" />{" "}
                        {e.name}/
                      </button>
                    ) : (
                      <span>{e.name}</span>
                    )}
                  </td>
                  <td className="num">{e.dir ? "" : humanBytes(e.size)}</td>
                  <td>{formatTime(e.modified)}</td>
                </tr>
              ))}
              {entries.length === 0 && (
                <tr>
                  <td colSpan={3} className="muted">
                    This folder is empty.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
    </Dialog>
  );
}

function formatTime(rfc3339: string): string {
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? "—" : d.toLocaleString();
}

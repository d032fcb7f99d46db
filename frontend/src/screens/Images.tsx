import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from "react";
import * as api from "../api";
import { useStatus } from "../status";
import { useToast } from "../ui/Toast";
import { Confirm, Dialog } from "../ui/Dialog";
import { EngineDown, isEngineDown } from "../ui/EngineDown";
import { Icon } from "../ui/icons";
import { ago, errorText, humanBytes, shortId } from "../format";
import { createBody, imageRef, parseImageRef, type ImageSummary, type PullLine } from "../engine";

interface Layer {
  id: string;
  status: string;
  current?: number;
  total?: number;
}

interface Pull {
  ref: string;
  layers: Layer[];
  /** The last line without a layer ("Digest: …", "Status: …"). */
  status: string;
  error?: string;
  done: boolean;
}

const COMPLETE = /complete|already exists|^pushed/i;

/** The pull state after one progress line of POST /images/create. */
export function pullStep(p: Pull, line: PullLine): Pull {
  if (line.error || line.errorDetail?.message) return { ...p, error: line.errorDetail?.message || line.error };
  // Lines about the whole image ("Pulling from library/x" has the tag as id).
  if (!line.id || line.status?.startsWith("Pulling from")) return { ...p, status: line.status ?? p.status };
  const layers = p.layers.slice();
  const i = layers.findIndex((l) => l.id === line.id);
  const prev = i >= 0 ? layers[i] : undefined;
  const d = line.progressDetail;
  const next: Layer = {
    id: line.id!,
    status: line.status ?? prev?.status ?? "",
    current: d?.total ? d.current : COMPLETE.test(line.status ?? "") ? prev?.total : prev?.current,
    total: d?.total ? d.total : prev?.total,
  };
  if (COMPLETE.test(next.status) && next.total) next.current = next.total;
  if (i >= 0) layers[i] = next;
  else layers.push(next);
  return { ...p, layers };
}

export function ImagesScreen() {
  const { status } = useStatus();
  const toast = useToast();
  const [images, setImages] = useState<ImageSummary[] | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [pullRef, setPullRef] = useState("");
  const [pull, setPull] = useState<Pull | null>(null);
  const [del, setDel] = useState<{ img: ImageSummary; ref: string } | null>(null);
  const [delBusy, setDelBusy] = useState(false);
  const [delError, setDelError] = useState<string | null>(null);
  const [delForce, setDelForce] = useState(false);
  const [run, setRun] = useState<string | null>(null);
  const [prune, setPrune] = useState<"ask" | "busy" | null>(null);
  const [pruneAll, setPruneAll] = useState(false);
  const [pruned, setPruned] = useState<string | null>(null);
  const closePull = useRef<(() => void) | null>(null);
  const refId = useId();

  const engineDown = status !== null && status.state !== "running";

  const load = useCallback(async () => {
    try {
      const list = (await api.docker<ImageSummary[]>("GET", "/images/json")) ?? [];
      list.sort((a, b) => b.Created - a.Created);
      setImages(list);
      setError(undefined);
    } catch (e) {
      setError(e);
    }
  }, []);

  useEffect(() => {
    if (engineDown) return;
    void load();
    const t = setInterval(() => {
      if (document.visibilityState !== "hidden") void load();
    }, 5000);
    return () => clearInterval(t);
  }, [engineDown, load]);

  useEffect(() => () => closePull.current?.(), []);

  async function startPull(e: FormEvent) {
    e.preventDefault();
    const ref = pullRef.trim();
    if (!ref) return;
    const { fromImage, tag } = parseImageRef(ref);
    closePull.current?.();
    let state: Pull = { ref, layers: [], status: "Pulling…", done: false };
    setPull(state);
    try {
      closePull.current = await api.stream(
        "POST",
        `/images/create?fromImage=${encodeURIComponent(fromImage)}&tag=${encodeURIComponent(tag)}`,
        undefined,
        "lines",
        (c) => {
          let line: PullLine;
          try {
            line = JSON.parse(c.data);
          } catch {
            return;
          }
          state = pullStep(state, line);
          setPull(state);
        },
        (end) => {
          closePull.current = null;
          state = { ...state, done: true, error: state.error ?? (end.error || undefined) };
          setPull(state);
          void load();
        },
      );
    } catch (err) {
      setPull({ ...state, done: true, error: errorText(err) });
    }
  }

  async function doDelete() {
    if (!del) return;
    setDelBusy(true);
    setDelError(null);
    try {
      await api.docker("DELETE", `/images/${encodeURIComponent(del.img.Id)}${delForce ? "?force=1" : ""}`);
      setDel(null);
      toast.info(`Deleted ${del.ref}`);
    } catch (e) {
      setDelError(errorText(e));
    } finally {
      setDelBusy(false);
      void load();
    }
  }

  async function doPrune() {
    setPrune("busy");
    try {
      const q = pruneAll ? `?filters=${encodeURIComponent(JSON.stringify({ dangling: ["false"] }))}` : "";
      const r = await api.docker<{ ImagesDeleted: unknown[] | null; SpaceReclaimed: number }>("POST", `/images/prune${q}`);
      const n = r?.ImagesDeleted?.length ?? 0;
      setPruned(`Reclaimed ${humanBytes(r?.SpaceReclaimed ?? 0)} (${n} ${n === 1 ? "image" : "images"} deleted)`);
    } catch (e) {
      toast.error(e, "Prune");
    } finally {
      setPrune(null);
      void load();
    }
  }

  if (engineDown || (error !== undefined && isEngineDown(error) && images === null)) {
    return (
      <section className="screen" aria-labelledby="images-h">
        <h1 id="images-h">Images</h1>
        <EngineDown error={error} />
      </section>
    );
  }

  const pulling = pull !== null && !pull.done;
  return (
    <section className="screen fill" aria-labelledby="images-h">
      <div className="screen-head">
        <h1 id="images-h">Images</h1>
        {images && <span className="muted">{images.length} images</span>}
        <div className="spacer" />
        <button type="button" onClick={() => (setPruned(null), setPrune("ask"))} disabled={prune !== null}>
          Prune
        </button>
      </div>
      <form className="card pull-form" onSubmit={startPull}>
        <label htmlFor={refId}>Image to pull</label>
        <input
          id={refId}
          value={pullRef}
          onChange={(e) => setPullRef(e.target.value)}
          placeholder="alpine:latest"
          spellCheck={false}
          autoCapitalize="off"
        />
        <button type="submit" className="primary" disabled={pulling || pullRef.trim() === ""}>
          Pull
        </button>
      </form>
      {pull && <PullProgress pull={pull} onDismiss={pull.done ? () => setPull(null) : undefined} />}
      {pruned && (
        <p className="ok-text" role="status" data-testid="prune-result">
          {pruned}
        </p>
      )}
      {error !== undefined && (
        <p className="error-text" role="alert">
          Could not read the images: {errorText(error)}
        </p>
      )}
      {images === null ? (
        <p className="muted">Loading…</p>
      ) : images.length === 0 ? (
        <div className="empty">
          <p>No images yet: pull one above.</p>
        </div>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Image</th>
                <th scope="col">ID</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {images.map((img) => {
                const ref = imageRef(img);
                const tags = (img.RepoTags ?? []).filter((t) => t !== "<none>:<none>");
                return (
                  <tr key={img.Id} data-testid="image-row" data-ref={ref}>
                    <td>
                      {tags.length ? (
                        tags.map((t) => (
                          <div key={t} className="strong">
                            {t}
                          </div>
                        ))
                      ) : (
                        <span className="muted">&lt;none&gt;</span>
                      )}
                    </td>
                    <td className="mono">{shortId(img.Id)}</td>
                    <td className="num">{humanBytes(img.Size)}</td>
                    <td>{img.Created ? ago(img.Created) : "—"}</td>
                    <td>
                      <div className="row-actions">
                        <button type="button" aria-label={`Run ${ref}`} title="Run" onClick={() => setRun(ref)}>
                          Run
                        </button>
                        <button
                          type="button"
                          className="icon"
                          aria-label={`Delete ${ref}`}
                          title="Delete"
                          onClick={() => {
                            setDelError(null);
                            setDelForce(false);
                            setDel({ img, ref });
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
          title={`Delete ${del.ref}?`}
          confirmLabel="Delete"
          danger
          busy={delBusy}
          onCancel={() => setDel(null)}
          onConfirm={() => void doDelete()}
        >
          <p>
            The image <strong>{del.ref}</strong> ({humanBytes(del.img.Size)}) is removed
            {(del.img.RepoTags?.length ?? 0) > 1 ? `, with all its ${del.img.RepoTags!.length} tags` : ""}.
          </p>
          <label className="check">
            <input type="checkbox" checked={delForce} onChange={(e) => setDelForce(e.target.checked)} />
            Force (even when stopped containers use it or it has several names)
          </label>
          {delError && (
            <p className="error-text" role="alert">
              {delError}
            </p>
          )}
        </Confirm>
      )}
      {prune !== null && (
        <Confirm
          title="Prune images?"
          confirmLabel="Prune"
          danger
          busy={prune === "busy"}
          onCancel={() => setPrune(null)}
          onConfirm={() => void doPrune()}
        >
          <p>Images that no container uses and that have no name (dangling) are removed.</p>
          <label className="check">
            <input type="checkbox" checked={pruneAll} onChange={(e) => setPruneAll(e.target.checked)} />
            Also remove named images no container uses
          </label>
        </Confirm>
      )}
      {run && <RunDialog image={run} onClose={() => setRun(null)} />}
    </section>
  );
}

function PullProgress({ pull, onDismiss }: { pull: Pull; onDismiss?: () => void }) {
  return (
    <div className="card pull-progress" data-testid="pull-progress" aria-live="polite">
      <div className="pull-head">
        <strong>{pull.ref}</strong>
        <span className="muted">{pull.done && !pull.error ? "Done" : pull.status}</span>
        <div className="spacer" />
        {onDismiss && (
          <button type="button" className="link" onClick={onDismiss}>
            Dismiss
          </button>
        )}
      </div>
      {pull.layers.length > 0 && (
        <ul className="layers">
          {pull.layers.map((l) => (
            <li key={l.id}>
              <span className="mono">{l.id}</span>
              <progress
                aria-label={`layer ${l.id}`}
                max={l.total ?? 1}
                value={l.total ? (l.current ?? 0) : COMPLETE.test(l.status) ? 1 : 0}
              />
              <span className="muted layer-status">
                {l.status}
                {l.total && !COMPLETE.test(l.status) ? ` ${humanBytes(l.current ?? 0)} / ${humanBytes(l.total)}` : ""}
              </span>
            </li>
          ))}
        </ul>
      )}
      {pull.error && (
        <p className="error-text" role="alert">
          {pull.error}
        </p>
      )}
    </div>
  );
}

/** Create and start a container of image, as `docker run -d` does. */
function RunDialog({ image, onClose }: { image: string; onClose: () => void }) {
  const toast = useToast();
  const [name, setName] = useState("");
  const [ports, setPorts] = useState("");
  const [volumes, setVolumes] = useState("");
  const [env, setEnv] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = useId();

  async function submit(e?: FormEvent) {
    e?.preventDefault();
    setError(null);
    let body: Record<string, unknown>;
    try {
      body = createBody({ image, name, ports, volumes, env });
    } catch (err) {
      setError(errorText(err));
      return;
    }
    setBusy(true);
    try {
      const q = name.trim() ? `?name=${encodeURIComponent(name.trim())}` : "";
      const created = await api.docker<{ Id: string; Warnings?: string[] }>("POST", `/containers/create${q}`, body);
      try {
        await api.docker("POST", `/containers/${encodeURIComponent(created.Id)}/start`);
      } catch (err) {
        setError(`Created ${name.trim() || shortId(created.Id)}, but it did not start: ${errorText(err)}`);
        return;
      }
      toast.info(`Started ${name.trim() || shortId(created.Id)} from ${image}`);
      onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog
      title={`Run ${image}`}
      onClose={onClose}
      wide
      footer={
        <>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form={`${id}-form`} className="primary" disabled={busy}>
            Run
          </button>
        </>
      }
    >
      <form id={`${id}-form`} className="form" onSubmit={submit}>
        <label htmlFor={`${id}-name`}>Container name</label>
        <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} placeholder="optional" data-autofocus />
        <label htmlFor={`${id}-ports`}>Ports</label>
        <input
          id={`${id}-ports`}
          value={ports}
          onChange={(e) => setPorts(e.target.value)}
          placeholder="8080:80, 5353:53/udp"
          aria-describedby={`${id}-ports-help`}
        />
        <p className="help" id={`${id}-ports-help`}>
          HOST:CONTAINER, comma separated; a bare port gets a free host port.
        </p>
        <label htmlFor={`${id}-volumes`}>Volumes</label>
        <textarea
          id={`${id}-volumes`}
          rows={2}
          value={volumes}
          onChange={(e) => setVolumes(e.target.value)}
          placeholder="/host/path:/container/path, myvolume:/data"
          spellCheck={false}
        />
        <label htmlFor={`${id}-env`}>Environment</label>
        <textarea
          id={`${id}-env`}
          rows={3}
          value={env}
          onChange={(e) => setEnv(e.target.value)}
          placeholder={"KEY=value, one a line"}
          spellCheck={false}
        />
      </form>
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
    </Dialog>
  );
}

import { useState } from "react";
import * as api from "../api";
import { useStatus } from "../status";
import { useToast } from "./Toast";
import { errorText } from "../format";

/** True when an error from docker() means the engine can't be reached (not an
 * engine answer such as 404 or 409). */
export function isEngineDown(e: unknown): boolean {
  return !(e instanceof api.DockerError);
}

/** Shown by the engine screens when the engine isn't running. */
export function EngineDown({ error }: { error?: unknown }) {
  const { status } = useStatus();
  const toast = useToast();
  const [busy, setBusy] = useState(false);
  const starting = status?.state === "starting" || status?.state === "stopping";
  async function start() {
    setBusy(true);
    try {
      await api.start();
    } catch (e) {
      toast.error(e, "Start");
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="engine-down" role="status">
      <p className="engine-down-title">The engine is not running</p>
      {starting && status?.message && <p className="muted">{status.message}</p>}
      {status?.state === "error" && status.error && <p className="error-text">{status.error}</p>}
      {error !== undefined && status?.state === "running" && <p className="muted">{errorText(error)}</p>}
      <button className="primary" onClick={start} disabled={busy || starting}>
        Start
      </button>
    </div>
  );
}

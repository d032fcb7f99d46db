import { memo, useCallback, useRef, useState, type ReactNode } from "react";
import * as api from "../api";
import { useToast } from "../ui/Toast";
import { Confirm } from "../ui/Dialog";
import { errorText } from "../format";
import { Icon, type IconName } from "../ui/icons";

export type Action = "start" | "stop" | "restart" | "pause" | "unpause" | "delete";

const LABEL: Record<Action, string> = {
  start: "Start",
  stop: "Stop",
  restart: "Restart",
  pause: "Pause",
  unpause: "Unpause",
  delete: "Delete",
};

/** The engine call of an action on a container. */
export function runAction(id: string, action: Action): Promise<unknown> {
  const p = "/containers/" + encodeURIComponent(id);
  if (action === "delete") return api.docker("DELETE", p + "?force=1");
  return api.docker("POST", `${p}/${action}`);
}

/** The actions of a container in a state, with a busy flag while one runs.
 * Delete is asked for by onAction; the caller confirms (useContainerActions). */
export const ContainerActions = memo(function ContainerActions({
  id,
  name,
  state,
  busy,
  onAction,
}: {
  id: string;
  name: string;
  state: string;
  busy: boolean;
  onAction: (id: string, name: string, action: Action) => void;
}) {
  const running = state === "running" || state === "restarting";
  const paused = state === "paused";
  const b = (action: Action, icon: IconName, disabled = false) => (
    <button
      type="button"
      className="icon"
      aria-label={`${LABEL[action]} ${name}`}
      title={LABEL[action]}
      disabled={busy || disabled}
      onClick={() => onAction(id, name, action)}
    >
      <Icon name={icon} />
    </button>
  );
  return (
    <div className="row-actions">
      {running || paused ? b("stop", "stop") : b("start", "start")}
      {b("restart", "restart", paused)}
      {paused ? b("unpause", "start") : b("pause", "pause", !running)}
      {b("delete", "delete")}
    </div>
  );
});

/** Runs container actions: the busy ids, the confirmation of Delete (its
 * dialog is returned to be rendered), errors as toasts; done is called after
 * each action (the list refreshes), deleted after a delete. */
export function useContainerActions(done: () => void, deleted?: (id: string) => void) {
  const toast = useToast();
  const [busy, setBusy] = useState<ReadonlySet<string>>(new Set());
  const [confirm, setConfirm] = useState<{ id: string; name: string } | null>(null);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const doneRef = useRef(done);
  doneRef.current = done;
  const deletedRef = useRef(deleted);
  deletedRef.current = deleted;

  const run = useCallback(
    async (id: string, name: string, action: Action) => {
      setBusy((s) => new Set(s).add(id));
      try {
        await runAction(id, action);
        if (action === "delete") {
          setConfirm(null);
          deletedRef.current?.(id);
        }
      } catch (e) {
        if (action === "delete") setDeleteError(errorText(e));
        else toast.error(e, `${LABEL[action]} ${name}`);
      } finally {
        setBusy((s) => {
          const n = new Set(s);
          n.delete(id);
          return n;
        });
        doneRef.current();
      }
    },
    [toast],
  );

  const onAction = useCallback(
    (id: string, name: string, action: Action) => {
      if (action === "delete") {
        setDeleteError(null);
        setConfirm({ id, name });
      } else void run(id, name, action);
    },
    [run],
  );

  let dialog: ReactNode = null;
  if (confirm) {
    dialog = (
      <Confirm
        title={`Delete ${confirm.name}?`}
        confirmLabel="Delete"
        danger
        busy={busy.has(confirm.id)}
        onCancel={() => setConfirm(null)}
        onConfirm={() => void run(confirm.id, confirm.name, "delete")}
      >
        <p>
          The container <strong>{confirm.name}</strong> is stopped if it runs and removed, with its file system changes.
          Its volumes are kept.
        </p>
        {deleteError && (
          <p className="error-text" role="alert">
            {deleteError}
          </p>
        )}
      </Confirm>
    );
  }
  return { busy, onAction, dialog };
}

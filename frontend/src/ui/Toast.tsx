import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";
import { errorText } from "../format";

interface Toast {
  id: number;
  kind: "error" | "info";
  text: string;
}
interface ToastApi {
  error(e: unknown, context?: string): void;
  info(text: string): void;
}

const Ctx = createContext<ToastApi | null>(null);

/** Where screens report errors that have no inline place: never swallowed. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);
  const dismiss = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);
  const push = useCallback(
    (kind: Toast["kind"], text: string) => {
      const id = next.current++;
      setToasts((t) => [...t.slice(-4), { id, kind, text }]);
      setTimeout(() => dismiss(id), kind === "error" ? 10000 : 4000);
    },
    [dismiss],
  );
  const api = useMemo<ToastApi>(
    () => ({
      error: (e, context) => push("error", context ? `${context}: ${errorText(e)}` : errorText(e)),
      info: (text) => push("info", text),
    }),
    [push],
  );
  return (
    <Ctx.Provider value={api}>
      {children}
      <div className="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.kind}`} role={t.kind === "error" ? "alert" : "status"}>
            <span>{t.text}</span>
            <button className="link" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </Ctx.Provider>
  );
}

const fallback: ToastApi = {
  error: (e, c) => console.error(c ?? "error", e),
  info: (t) => console.info(t),
};

export function useToast(): ToastApi {
  return useContext(Ctx) ?? fallback;
}

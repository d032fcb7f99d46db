import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import * as api from "./api";
import { useToast } from "./ui/Toast";

interface StatusCtx {
  status: api.Status | null;
  /** Asks Go for the status now (besides the pushed events). */
  refresh(): Promise<void>;
}

const Ctx = createContext<StatusCtx>({ status: null, refresh: async () => {} });

/** Holds the engine status: api.onStatus events plus api.status() on mount. */
export function StatusProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<api.Status | null>(null);
  const toast = useToast();
  const refresh = useCallback(async () => {
    try {
      setStatus(await api.status());
    } catch (e) {
      toast.error(e, "Could not read the engine status");
    }
  }, [toast]);
  useEffect(() => {
    let off: (() => void) | undefined;
    try {
      off = api.onStatus((s) => setStatus(s));
    } catch (e) {
      toast.error(e, "Status updates");
    }
    void refresh();
    return () => off?.();
  }, [refresh, toast]);
  const value = useMemo(() => ({ status, refresh }), [status, refresh]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useStatus(): StatusCtx {
  return useContext(Ctx);
}

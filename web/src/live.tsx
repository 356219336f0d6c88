/**
 * The app-wide view of sandboxes: one REST load, then kept current by the control plane's event
 * stream (sandbox frames replace records; event frames bump last activity). Reloaded on reconnect,
 * since frames sent while the socket was down are gone.
 */
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
import { api, errorMessage, type LiveFrame, type Sandbox, wsUrl } from './api.js';
import { type StreamStatus, useLiveSocket } from './hooks.js';

/** A full reload now and then catches anything a missed frame left stale. */
const RELOAD_EVERY_MS = 60_000;

interface LiveSandboxes {
  sandboxes: Map<string, Sandbox>;
  loaded: boolean;
  error: string | null;
  stream: StreamStatus;
  reload: () => Promise<void>;
  /** Puts a record the UI got from a REST reply (create, pause, ...) into the view. */
  upsert: (s: Sandbox) => void;
  remove: (id: string) => void;
}

const Ctx = createContext<LiveSandboxes | null>(null);

export function LiveSandboxesProvider({ children }: { children: ReactNode }) {
  const [sandboxes, setSandboxes] = useState<Map<string, Sandbox>>(new Map());
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(async () => {
    try {
      const list = await api.listSandboxes();
      setSandboxes(new Map(list.filter((s) => s.state !== 'deleted').map((s) => [s.id, s])));
      setError(null);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setLoaded(true);
    }
  }, []);

  const upsert = useCallback((s: Sandbox) => {
    setSandboxes((prev) => {
      // A REST reply can arrive after the live frame that already moved the sandbox on (a create
      // answered 'starting' while the stream said 'running'): 'starting' never replaces a later state.
      const known = prev.get(s.id);
      if (s.state === 'starting' && known && known.state !== 'starting') return prev;
      const next = new Map(prev);
      if (s.state === 'deleted') next.delete(s.id);
      else next.set(s.id, s);
      return next;
    });
  }, []);

  const remove = useCallback((id: string) => {
    setSandboxes((prev) => {
      if (!prev.has(id)) return prev;
      const next = new Map(prev);
      next.delete(id);
      return next;
    });
  }, []);

  const onMessage = useCallback(
    (data: unknown) => {
      const frame = data as LiveFrame;
      if (!frame || typeof frame !== 'object') return;
      if ('type' in frame && frame.type === 'sandbox' && frame.sandbox) {
        upsert(frame.sandbox);
        return;
      }
      if ('sandbox_id' in frame && typeof frame.at === 'string') {
        setSandboxes((prev) => {
          const s = prev.get(frame.sandbox_id);
          if (!s || s.last_activity_at >= frame.at) return prev;
          const next = new Map(prev);
          next.set(s.id, { ...s, last_activity_at: frame.at });
          return next;
        });
      }
    },
    [upsert],
  );

  // The first open follows the mount's own load; later opens are reconnects that may have missed frames.
  const opened = useRef(false);
  const stream = useLiveSocket({
    url: () => wsUrl('/api/events/stream'),
    onMessage,
    onOpen: () => {
      if (opened.current) void reload();
      opened.current = true;
    },
    enabled: true,
  });

  useEffect(() => {
    void reload();
    const t = setInterval(() => void reload(), RELOAD_EVERY_MS);
    return () => clearInterval(t);
  }, [reload]);

  const value = useMemo(
    () => ({ sandboxes, loaded, error, stream, reload, upsert, remove }),
    [sandboxes, loaded, error, stream, reload, upsert, remove],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useLiveSandboxes(): LiveSandboxes {
  const v = useContext(Ctx);
  if (!v) throw new Error('useLiveSandboxes outside LiveSandboxesProvider');
  return v;
}

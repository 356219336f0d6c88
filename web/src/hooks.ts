/** Shared hooks: hash routing, a ticking clock, and a WebSocket that reconnects with backoff. */
import { useEffect, useRef, useState } from 'react';
import { parseHash, type Route } from './parse.js';

export type { Route };

export function useHashRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}

export function navigate(path: string): void {
  location.hash = `#${path}`;
}

export const sandboxHref = (id: string) => `#/sandboxes/${encodeURIComponent(id)}`;

/** The current time, re-read every `everyMs` so relative times stay fresh. */
export function useNow(everyMs = 5000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

/** First reconnect delay; doubled on each failure up to RECONNECT_MAX_MS. */
export const RECONNECT_MIN_MS = 500;
/** Longest pause between reconnects, so a restarted control plane is picked up within seconds. */
export const RECONNECT_MAX_MS = 8000;

export type StreamStatus = 'connecting' | 'live' | 'offline';

interface LiveSocketOptions {
  /** The URL to (re)connect to; read on each attempt so it can carry a cursor. null: stay closed. */
  url: () => string | null;
  onMessage: (data: unknown) => void;
  /** Called on every successful (re)open. */
  onOpen?: () => void;
  enabled: boolean;
}

/** A JSON WebSocket that reconnects with backoff while enabled; returns its status. */
export function useLiveSocket({ url, onMessage, onOpen, enabled }: LiveSocketOptions): StreamStatus {
  const [status, setStatus] = useState<StreamStatus>('connecting');
  const handlers = useRef({ url, onMessage, onOpen });
  handlers.current = { url, onMessage, onOpen };

  useEffect(() => {
    if (!enabled) {
      setStatus('offline');
      return;
    }
    let ws: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = RECONNECT_MIN_MS;
    let stopped = false;

    const connect = () => {
      const target = handlers.current.url();
      if (!target) return;
      setStatus((s) => (s === 'live' ? 'connecting' : s));
      const socket = new WebSocket(target);
      ws = socket;
      socket.onopen = () => {
        delay = RECONNECT_MIN_MS;
        setStatus('live');
        handlers.current.onOpen?.();
      };
      socket.onmessage = (e) => {
        let data: unknown;
        try {
          data = JSON.parse(String(e.data));
        } catch {
          return;
        }
        handlers.current.onMessage(data);
      };
      socket.onclose = () => {
        if (stopped) return;
        setStatus('offline');
        timer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
      };
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      ws?.close();
    };
  }, [enabled]);

  return status;
}

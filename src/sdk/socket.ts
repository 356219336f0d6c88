/**
 * A WebSocket to the control plane from Node.js or a browser, as one small interface. In Node.js the
 * key goes in the Authorization header (on `ws`, loaded here only when needed); in a browser, whose
 * WebSocket cannot send headers, as `?token=`.
 */

import { errorFromResponse } from './errors.js';

export interface ClientSocket {
  send(text: string): void;
  close(): void;
}

export interface SocketHandlers {
  onOpen?(): void;
  onMessage(text: string): void;
  /** Called once, when the socket is closed from either side or could not open. */
  onClose(error?: Error): void;
}

/** Opens `wsUrl` (ws:// or wss://); frames sent before it is open wait for it. */
export function openSocket(
  wsUrl: string,
  authorization: string | undefined,
  handlers: SocketHandlers,
): ClientSocket {
  const pending: string[] = [];
  let open = false;
  let closed = false;
  let socket: { send(t: string): void; close(): void } | undefined;
  let closedOnce = false;
  const finish = (err?: Error) => {
    if (closedOnce) return;
    closedOnce = true;
    handlers.onClose(err);
  };
  const opened = () => {
    open = true;
    for (const m of pending.splice(0)) socket?.send(m);
    handlers.onOpen?.();
  };
  if ('document' in globalThis && typeof globalThis.WebSocket === 'function') {
    const key = authorization?.replace(/^Bearer /, '');
    // A client on the page's own origin (url '') has a relative URL: resolved against the page.
    const page = (globalThis as { location?: { href: string } }).location?.href;
    const sep = wsUrl.includes('?') ? '&' : '?';
    const url = new URL(key ? `${wsUrl}${sep}token=${encodeURIComponent(key)}` : wsUrl, page);
    url.protocol = url.protocol.replace(/^http/, 'ws');
    const ws = new globalThis.WebSocket(url);
    socket = ws;
    ws.onopen = opened;
    ws.onmessage = (m) => handlers.onMessage(String(m.data));
    ws.onclose = () => finish();
    ws.onerror = () => finish(new Error(`WebSocket ${url.pathname} failed`));
  } else {
    void import('ws').then(
      ({ default: WebSocket }) => {
        if (closed) return finish();
        const ws = new WebSocket(wsUrl, { headers: authorization ? { authorization } : {} });
        socket = ws;
        ws.on('open', opened);
        // Refused at the upgrade (a wrong key, no such sandbox): the answer's own error.
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            body += d;
          });
          res.on('end', () => finish(errorFromResponse(res.statusCode ?? 500, body)));
          res.on('error', (err) => finish(err));
        });
        ws.on('message', (raw) => handlers.onMessage(raw.toString()));
        ws.on('close', () => finish());
        ws.on('error', (err) => finish(err));
      },
      (err: Error) => finish(err),
    );
  }
  return {
    send(text) {
      if (open) socket?.send(text);
      else pending.push(text);
    },
    close() {
      closed = true;
      socket?.close();
    },
  };
}

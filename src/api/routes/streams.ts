/**
 * WebSockets: live events (all sandboxes, or one with replay from a seq), and the terminal, which is
 * relayed to the runtime server's own terminal endpoint so a shell outlives any one viewer.
 */
import type { FastifyPluginAsync } from 'fastify';
import WebSocket from 'ws';
import type * as z from 'zod';
import { holdBackWhileBehind } from '../../http/ws-backpressure.js';
import type { SandboxEvent } from '../../protocol/api.js';
import { EventPage, EventsQuery } from '../../protocol/api.js';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import type { SandboxManager } from '../../sandboxes/manager.js';
import { MAX_EVENT_PAGE } from '../../store/index.js';
import type { Store } from '../../store/store.js';
import { errorResponses, IdParams } from '../schemas.js';

type IdReq = { Params: { id: string } };

export function streamRoutes(manager: SandboxManager, store: Store): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/api/sandboxes/:id/events',
      {
        schema: {
          operationId: 'listSandboxEvents',
          tags: ['events'],
          summary: "A page of the sandbox's event log (actions, observations, lifecycle), after a seq",
          params: IdParams,
          querystring: EventsQuery,
          response: { 200: EventPage, ...errorResponses(404) },
        },
      },
      async (req) => {
        const { id } = req.params as z.output<typeof IdParams>;
        const q = req.query as z.output<typeof EventsQuery>;
        store.sandboxes.get(id);
        return store.events.page(id, q.after, q.limit);
      },
    );

    // The WebSockets below are left out of openapi.json (@fastify/websocket hides its routes): OpenAPI
    // cannot describe a WebSocket, and HTTP fuzzers such as schemathesis cannot speak it.
    app.get('/api/events/stream', { websocket: true }, (socket) => {
      const onEvent = (e: SandboxEvent) => socket.send(JSON.stringify(e));
      const onSandbox = (s: unknown) => socket.send(JSON.stringify({ type: 'sandbox', sandbox: s }));
      manager.on('event', onEvent);
      manager.on('sandbox', onSandbox);
      socket.on('close', () => {
        manager.off('event', onEvent);
        manager.off('sandbox', onSandbox);
      });
    });

    app.get<IdReq & { Querystring: { after?: string } }>(
      '/api/sandboxes/:id/events/stream',
      { websocket: true },
      (socket, req) => {
        const id = req.params.id;
        const rec = store.sandboxes.find(id);
        if (!rec) {
          socket.send(
            JSON.stringify({ type: 'error', code: ErrorCode.NOT_FOUND, message: `No sandbox ${id}` }),
          );
          socket.close(WS_CLOSE_NOT_FOUND);
          return;
        }
        // Subscribe first, then replay, then drop live duplicates by seq: no gap, no repeat.
        let lastSent = Number(req.query.after ?? 0) || 0;
        const queue: SandboxEvent[] = [];
        let replaying = true;
        const send = (e: SandboxEvent) => {
          if (e.seq <= lastSent) return;
          lastSent = e.seq;
          socket.send(JSON.stringify(e));
        };
        const onEvent = (e: SandboxEvent) => {
          if (e.sandbox_id !== id) return;
          if (replaying) queue.push(e);
          else send(e);
        };
        manager.on('event', onEvent);
        socket.on('close', () => manager.off('event', onEvent));
        for (;;) {
          const page = store.events.page(id, lastSent, MAX_EVENT_PAGE);
          for (const e of page.events) send(e);
          if (page.events.length < MAX_EVENT_PAGE) break;
        }
        replaying = false;
        for (const e of queue) send(e);
      },
    );

    /** The running sandbox's runtime server, or a close with the reason. */
    const runningTarget = (socket: WebSocket, id: string): { url: string; key: string } | undefined => {
      try {
        const rec = manager.get(id);
        if (rec.state !== 'running')
          throw new BerthError(ErrorCode.CONFLICT, `Sandbox ${rec.id} is ${rec.state}`);
        return { url: rec.url, key: rec.session_api_key };
      } catch (err) {
        const e = err as BerthError;
        failSocket(socket, e.code ?? ErrorCode.INTERNAL, e.message);
        return undefined;
      }
    };

    app.get<IdReq & { Querystring: { session?: string; cols?: string; rows?: string } }>(
      '/api/sandboxes/:id/terminal',
      { websocket: true },
      (socket, req) => {
        const target = runningTarget(socket, req.params.id);
        if (!target) return;
        const session =
          (req.query.session ?? 'main').replace(/[^A-Za-z0-9_-]/g, '').slice(0, MAX_TERMINAL_SESSION_CHARS) ||
          'main';
        const q = new URLSearchParams({
          cols: req.query.cols ?? DEFAULT_TERMINAL_COLS,
          rows: req.query.rows ?? DEFAULT_TERMINAL_ROWS,
        });
        relaySocket(socket, target, `/berth/terminals/${session}?${q}`, 'terminal', () =>
          manager.touch(req.params.id),
        );
      },
    );

    // One fresh process per socket, like `docker exec` (protocol: ExecClientMessage in protocol/api.ts).
    app.get<IdReq>('/api/sandboxes/:id/exec', { websocket: true }, (socket, req) => {
      const target = runningTarget(socket, req.params.id);
      if (!target) return;
      // A long exec sends few frames: the sandbox is held busy (never idle-reaped) while it runs.
      const release = manager.hold(req.params.id);
      socket.once('close', release);
      relaySocket(socket, target, '/berth/exec', 'exec', () => manager.touch(req.params.id));
    });
  };
}

/** Close code for an unknown sandbox: the application range (4000-4999), 4000 + the HTTP status. */
const WS_CLOSE_NOT_FOUND = 4404;
/** RFC 6455 close code 1011: the server met a condition that prevents it from serving the socket. */
const WS_CLOSE_INTERNAL_ERROR = 1011;
/** Characters kept of a terminal session name (it becomes part of the runtime server's URL path). */
const MAX_TERMINAL_SESSION_CHARS = 64;
/** Terminal size when the client gives none: the runtime server's own default (berth-routes.ts). */
const DEFAULT_TERMINAL_COLS = '120';
const DEFAULT_TERMINAL_ROWS = '32';

function failSocket(socket: WebSocket, code: string, message: string): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: 'error', code, message }));
  socket.close(WS_CLOSE_INTERNAL_ERROR);
}

/**
 * Relays a client's WebSocket to one of the runtime server's, text frames both ways: frames the client
 * sends before the upstream is open wait, and either side's close closes the other.
 */
function relaySocket(
  socket: WebSocket,
  target: { url: string; key: string },
  path: string,
  what: string,
  onClientFrame: () => void,
): void {
  const upstream = new WebSocket(`${target.url.replace(/^http/, 'ws')}${path}`, {
    headers: { 'X-Session-API-Key': target.key },
  });
  const pending: string[] = [];
  upstream.on('open', () => {
    for (const m of pending.splice(0)) upstream.send(m);
  });
  upstream.on('message', (data) => {
    if (socket.readyState !== socket.OPEN) return;
    socket.send(data.toString());
    // A slow client holds the upstream back (and so the process's output) instead of this memory.
    holdBackWhileBehind(socket, {
      pause: () => upstream.pause(),
      resume: () => upstream.resume(),
      isPaused: () => upstream.isPaused,
    });
  });
  upstream.on('close', () => socket.close());
  upstream.on('error', (err) =>
    failSocket(socket, ErrorCode.UNAVAILABLE, `${what} unavailable: ${err.message}`),
  );
  socket.on('message', (data: Buffer) => {
    onClientFrame();
    const text = data.toString('utf8');
    if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
    else pending.push(text);
  });
  socket.on('close', () => upstream.close());
}

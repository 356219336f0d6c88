/**
 * Berth's own additions to the runtime server, beside the OpenHands protocol: a reset (see
 * RuntimeServices.reset), setting the sandbox's environment variables, commands run on their own (exec, like `docker
 * exec`), and an interactive terminal
 * over WebSocket for people watching a sandbox. JSON text frames, as in src/protocol/api.ts.
 */
import type { FastifyInstance } from 'fastify';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { RuntimeServices } from './services.js';

export function registerBerthRoutes(app: FastifyInstance, services: RuntimeServices): void {
  // Outside the action queue on purpose: it is what frees a queue stuck behind a runaway command.
  app.post('/berth/reset', async () => services.reset());

  app.post<{ Body: { env?: unknown } }>('/berth/env', async (req) => {
    const env = req.body?.env;
    if (typeof env !== 'object' || env === null || Array.isArray(env))
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        'body.env must be an object of variable names to values',
      );
    return services.setEnv(env as Record<string, unknown>);
  });

  app.get('/berth/exec', { websocket: true }, async (socket) => {
    // Paused while its code loads, so a start frame sent at once waits in the socket (see below).
    socket.pause();
    const { serveExec } = await import('./exec-socket.js');
    if (socket.readyState !== socket.OPEN) return;
    serveExec(socket, services.processes, services.options.workingDir);
    socket.resume();
  });

  app.get<{ Params: { id: string }; Querystring: { cols?: string; rows?: string } }>(
    '/berth/terminals/:id',
    { websocket: true },
    async (socket, req) => {
      const cols = clamp(Number(req.query.cols ?? 120), 2, 1000);
      const rows = clamp(Number(req.query.rows ?? 32), 2, 500);
      // The terminals and the frame handling (with the protocol's schemas) are loaded on the first
      // terminal, not at start-up (see lazy.ts). Until their listeners are attached the socket is
      // paused, so frames the client sends straight away wait in it instead of reaching no listener.
      socket.pause();
      const [terminals, { serveTerminal }] = await Promise.all([
        services.terminals.get(),
        import('./terminal-socket.js'),
      ]);
      // The client may have gone while they loaded; a terminal attached to no socket is never detached.
      if (socket.readyState !== socket.OPEN) return;
      serveTerminal(socket, terminals, { id: req.params.id, cols, rows });
      socket.resume();
    },
  );
}

function clamp(n: number, lo: number, hi: number): number {
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, Math.round(n))) : lo;
}

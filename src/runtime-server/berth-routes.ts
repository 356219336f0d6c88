/**
 * Berth's own additions to the runtime server, beside the OpenHands protocol: an interactive terminal
 * over WebSocket for people watching a sandbox. JSON text frames, as in src/protocol/api.ts.
 */
import type { FastifyInstance } from 'fastify';
import { TerminalClientMessage, type TerminalServerMessage } from '../protocol/api.js';
import type { RuntimeServices } from './services.js';

export function registerBerthRoutes(app: FastifyInstance, services: RuntimeServices): void {
  app.get<{ Params: { id: string }; Querystring: { cols?: string; rows?: string } }>(
    '/berth/terminals/:id',
    { websocket: true },
    (socket, req) => {
      const send = (m: TerminalServerMessage) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(m));
      };
      const cols = clamp(Number(req.query.cols ?? 120), 2, 1000);
      const rows = clamp(Number(req.query.rows ?? 32), 2, 500);
      let terminal: ReturnType<typeof services.terminals.open>;
      try {
        terminal = services.terminals.open(req.params.id, cols, rows);
      } catch (err) {
        send({ type: 'error', code: 'CONFLICT', message: (err as Error).message });
        socket.close(1011);
        return;
      }
      terminal.resize(cols, rows);
      const replay = terminal.replay();
      if (replay) send({ type: 'output', data: replay });
      const detach = terminal.attach();
      const onOutput = (data: string) => send({ type: 'output', data });
      const onExit = (code: number) => {
        send({ type: 'exit', code });
        socket.close(1000);
      };
      terminal.on('output', onOutput);
      terminal.once('exit', onExit);
      socket.on('message', (raw: Buffer) => {
        let msg: TerminalClientMessage;
        try {
          msg = TerminalClientMessage.parse(JSON.parse(raw.toString('utf8')));
        } catch {
          send({
            type: 'error',
            code: 'VALIDATION_FAILED',
            message: 'expected {type:"input",data} or {type:"resize",cols,rows}',
          });
          return;
        }
        if (msg.type === 'input') terminal.write(msg.data);
        else terminal.resize(msg.cols, msg.rows);
      });
      socket.on('close', () => {
        terminal.off('output', onOutput);
        terminal.off('exit', onExit);
        detach();
      });
    },
  );
}

function clamp(n: number, lo: number, hi: number): number {
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, Math.round(n))) : lo;
}

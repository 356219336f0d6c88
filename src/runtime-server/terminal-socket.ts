/**
 * One viewer of an interactive terminal over a WebSocket (GET /berth/terminals/:id, registered in
 * berth-routes.ts): replays recent output, then relays output, input and resizes as JSON text frames.
 */
import type { WebSocket } from 'ws';
import { TerminalClientMessage, type TerminalServerMessage } from '../protocol/api.js';
import { ErrorCode } from '../protocol/errors.js';
import type { TerminalManager } from './core/terminal/terminals.js';

export function serveTerminal(
  socket: WebSocket,
  terminals: TerminalManager,
  { id, cols, rows }: { id: string; cols: number; rows: number },
): void {
  const send = (m: TerminalServerMessage) => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(m));
  };
  let terminal: ReturnType<TerminalManager['open']>;
  try {
    terminal = terminals.open(id, cols, rows);
  } catch (err) {
    send({ type: 'error', code: ErrorCode.CONFLICT, message: (err as Error).message });
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
        code: ErrorCode.VALIDATION_FAILED,
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
}

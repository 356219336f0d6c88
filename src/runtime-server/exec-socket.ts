/**
 * One exec over a WebSocket (GET /berth/exec, registered in berth-routes.ts): a fresh process in the
 * process table, like `docker exec`. Not the agent's shell: its cwd, variables and jobs neither leak
 * in nor out. stdout and stderr stay apart (one `pty` stream with a PTY), are sent as they come, whole,
 * and the socket's close before the exit ends the process through the table's kill path.
 */
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { WebSocket } from 'ws';
import { holdBackWhileBehind } from '../http/ws-backpressure.js';
import { ExecClientMessage, type ExecServerMessage, type ExecStart } from '../protocol/api.js';
import type { ManagedProcess, ProcessTable } from './core/process/table.js';
import { runAs, spawnAs } from './core/process/users.js';

/** Exit code for a program that could not be started (not found, not executable), as a shell gives. */
const NOT_STARTED_EXIT_CODE = 127;

export function serveExec(socket: WebSocket, processes: ProcessTable, workingDir: string): void {
  const send = (m: ExecServerMessage) => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(m));
  };
  const fail = (code: string, message: string) => {
    send({ type: 'error', code, message });
    socket.close(1011);
  };
  let proc: ManagedProcess | undefined;
  let exitSent = false;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;

  socket.on('message', (raw: Buffer) => {
    let msg: ExecClientMessage;
    try {
      msg = ExecClientMessage.parse(JSON.parse(raw.toString('utf8')));
    } catch (err) {
      const detail =
        err instanceof SyntaxError
          ? 'not JSON'
          : ((err as { issues?: { message: string; path: unknown[] }[] }).issues ?? [])
              .map((i) => `${i.path.join('.') || 'frame'}: ${i.message}`)
              .join('; ');
      // A bad start leaves nothing to do on this socket; a bad later frame is only reported.
      if (!proc) return fail('VALIDATION_FAILED', `invalid start frame (${detail})`);
      send({ type: 'error', code: 'VALIDATION_FAILED', message: `invalid exec frame (${detail})` });
      return;
    }
    if (msg.type === 'start') {
      if (proc)
        return send({
          type: 'error',
          code: 'CONFLICT',
          message: 'this socket has started its process already',
        });
      try {
        proc = start(processes, msg, workingDir);
      } catch (err) {
        return fail('VALIDATION_FAILED', (err as Error).message);
      }
      const p = proc;
      if (msg.timeout_ms !== undefined)
        timer = setTimeout(() => {
          timedOut = true;
          void p.terminate('SIGTERM');
        }, msg.timeout_ms);
      if (msg.pty)
        p.on('data', (_s, d) => send({ type: 'pty', data: Buffer.from(d, 'utf8').toString('base64') }));
      else {
        relay(p.stdout, 'stdout');
        relay(p.stderr, 'stderr');
      }
      // The exit is sent after the last output (as with `docker exec`, that waits for whatever the
      // process left holding the pipes).
      void p.finished().then((status) => {
        if (timer) clearTimeout(timer);
        if (status.error)
          send({ type: 'stderr', data: Buffer.from(`berth: ${status.error}\n`).toString('base64') });
        exitSent = true;
        send({
          type: 'exit',
          exit_code: status.error ? NOT_STARTED_EXIT_CODE : status.exitCode,
          signal: status.signal,
          timed_out: timedOut,
        });
        socket.close(1000);
      });
      // Only once it runs: a program that cannot start gets its exit (127) and the reason instead.
      void p.started().then(
        () => send({ type: 'started', id: p.id, pid: p.pid }),
        () => undefined,
      );
      return;
    }
    if (!proc) return send({ type: 'error', code: 'CONFLICT', message: 'send a start frame first' });
    switch (msg.type) {
      case 'input':
        proc.write(Buffer.from(msg.data, 'base64'));
        break;
      case 'close_stdin':
        proc.closeStdin();
        break;
      case 'signal':
        if (!proc.signal(msg.signal))
          send({
            type: 'error',
            code: 'CONFLICT',
            message: `could not send ${msg.signal}: the process is gone`,
          });
        break;
      case 'kill':
        void proc.terminate(msg.signal ?? 'SIGTERM');
        break;
      case 'resize':
        proc.resize(msg.cols, msg.rows);
        break;
    }
  });

  socket.on('close', () => {
    if (timer) clearTimeout(timer);
    // Nobody is left to read it: the process goes, as a terminal's does when its window closes.
    // Also after the leader's exit while its children still hold the output open (`sleep 1e6 &`).
    if (proc && !exitSent) void proc.terminate(proc.spec.io.type === 'pty' ? 'SIGHUP' : 'SIGTERM');
  });

  function relay(stream: Readable | null, type: 'stdout' | 'stderr'): void {
    stream?.on('data', (chunk: Buffer) => {
      send({ type, data: chunk.toString('base64') });
      // A client that reads slowly holds the process back instead of growing this server's memory.
      holdBackWhileBehind(socket, stream);
    });
  }
}

function start(processes: ProcessTable, msg: ExecStart, workingDir: string): ManagedProcess {
  const env = msg.env ?? {};
  const as = runAs(msg.user);
  const cwd = msg.cwd ?? workingDir;
  // Said here: a missing cwd otherwise reads as the program's own ENOENT.
  if (!existsSync(cwd)) throw new Error(`the working directory ${cwd} does not exist in the sandbox`);
  // Through sudo the sandbox's variables and the request's survive sudo's reset by name.
  const keep = [...new Set([...Object.keys(processes.environment.variables), ...Object.keys(env)])];
  return processes.spawn({
    kind: 'exec',
    ...spawnAs(as, msg.argv, cwd, keep),
    env: as.kind === 'ids' ? { HOME: as.home, ...env } : env,
    io: msg.pty
      ? { type: 'pty', cols: msg.pty.cols, rows: msg.pty.rows, term: 'xterm-256color' }
      : { type: 'pipes', stdin: msg.stdin === true },
  });
}

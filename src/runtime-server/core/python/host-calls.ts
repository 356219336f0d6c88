/**
 * Calls from code running in the Python kernel back into the runtime server, over a pipe pair of their
 * own (not the driver's control pipes, so the driver's protocol is untouched):
 * - fd 5 (kernel → server): one JSON object a line, {"id", "call", "args"};
 * - fd 6 (server → kernel): one JSON object a line, {"id", "result"} or {"id", "error"}.
 * A reply always carries its request's id; the Python side skips replies to calls it gave up on
 * (an interrupted cell), so a late reply can never answer the wrong call.
 */
import type { Readable, Writable } from 'node:stream';
import type { ManagedProcess } from '../process/table.js';

export const HOST_CALL_REQUEST_FD = 5;
export const HOST_CALL_REPLY_FD = 6;

/** One server-side function callable from the kernel; its JSON-able result is the reply. */
export type HostCall = (args: unknown) => Promise<unknown>;
export type HostCalls = Readonly<Record<string, HostCall>>;

export interface HostCallLogger {
  warn(...args: unknown[]): void;
}

/** Serves `calls` to the child (spawned with pipes at HOST_CALL_REQUEST_FD and HOST_CALL_REPLY_FD). */
export function serveHostCalls(child: ManagedProcess, calls: HostCalls, logger: HostCallLogger): void {
  const stdio = child.stdio as unknown as (Readable | Writable | null | undefined)[];
  const requests = stdio[HOST_CALL_REQUEST_FD] as Readable | null | undefined;
  const replies = stdio[HOST_CALL_REPLY_FD] as Writable | null | undefined;
  if (!requests || !replies) throw new Error('the kernel was spawned without the host-call pipes');
  requests.setEncoding('utf8');
  // EPIPE and friends once the kernel is gone; the kernel reports its own death.
  requests.on('error', () => undefined);
  replies.on('error', () => undefined);
  child.once('exit', () => {
    requests.destroy();
    replies.destroy();
  });

  const reply = (message: Record<string, unknown>) => {
    if (replies.destroyed || !replies.writable) return;
    replies.write(`${JSON.stringify(message)}\n`);
  };
  const handle = (line: string) => {
    let request: { id?: unknown; call?: unknown; args?: unknown };
    try {
      request = JSON.parse(line) as typeof request;
    } catch {
      logger.warn('python kernel: unparsable host call', line.slice(0, 200));
      return;
    }
    const { id, call } = request;
    const fn = typeof call === 'string' && Object.hasOwn(calls, call) ? calls[call] : undefined;
    if (!fn) {
      reply({ id, error: `unknown call ${JSON.stringify(call)}` });
      return;
    }
    Promise.resolve()
      .then(() => fn(request.args))
      .then(
        (result) => reply({ id, result }),
        (err: unknown) => reply({ id, error: (err as Error)?.message ?? String(err) }),
      );
  };

  // Requests can be megabytes (a whole file's text): look for the newline in new data only.
  let pending: string[] = [];
  requests.on('data', (data: string) => {
    let start = 0;
    let newline = data.indexOf('\n');
    while (newline >= 0) {
      pending.push(data.slice(start, newline));
      const line = pending.join('');
      pending = [];
      if (line.trim()) handle(line);
      start = newline + 1;
      newline = data.indexOf('\n', start);
    }
    if (start < data.length) pending.push(data.slice(start));
  });
}

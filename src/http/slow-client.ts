/**
 * Writing a streamed HTTP answer (a process's output, a watch, code results) to a client that may
 * read slower than the output comes, or not at all:
 * - `behind`: written, but more waits than the socket's high-water mark; a producer that can wait
 *   (a process's pipes) pauses until `drained(res)`, so the client's pace holds it back;
 * - past MAX_UNREAD_BYTES (a producer that cannot wait: a PTY, file events) the client is dropped,
 *   its connection destroyed, instead of the output piling up here until the server runs out of
 *   memory. A dropped E2B client can reconnect to its process by pid.
 */
import type { ServerResponse } from 'node:http';

/** Output queued for one client before it is dropped: far above what a paused producer leaves. */
export const MAX_UNREAD_BYTES = 16 * 1024 * 1024;

export type WriteOutcome = 'written' | 'behind' | 'closed';

/** Writes `data` to `res` unless it is closed or its client is too far behind (then drops it). */
export function writeUnlessBehind(res: ServerResponse, data: string | Buffer): WriteOutcome {
  if (res.destroyed || res.writableEnded) return 'closed';
  if (res.writableLength > MAX_UNREAD_BYTES) {
    res.destroy(new Error(`the client read nothing while ${MAX_UNREAD_BYTES} bytes waited for it`));
    return 'closed';
  }
  return res.write(data) ? 'written' : 'behind';
}

/** Resolves when what waits for the client has gone out, or the answer is closed. */
export function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed || !res.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

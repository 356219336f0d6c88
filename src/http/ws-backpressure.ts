/**
 * Backpressure from a WebSocket to what feeds it: when more than MAX_UNSENT_BYTES wait to go out to a
 * slow client, the source is paused until half of that has gone (or the socket closes), so a slow
 * reader holds the producer back instead of growing this process's memory. `ws` reports no drain
 * event, so the buffer is looked at every DRAIN_POLL_MS while paused (a cheap field read).
 */
import type { WebSocket } from 'ws';

/** Bytes queued towards a client before the source is paused. */
export const MAX_UNSENT_BYTES = 4 * 1024 * 1024;
const DRAIN_POLL_MS = 10;

export interface Pausable {
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
}

/** Call after each send on `socket`: pauses `source` while the client is behind. */
export function holdBackWhileBehind(socket: WebSocket, source: Pausable): void {
  if (socket.bufferedAmount <= MAX_UNSENT_BYTES || source.isPaused()) return;
  source.pause();
  const poll = setInterval(() => {
    if (socket.bufferedAmount <= MAX_UNSENT_BYTES / 2 || socket.readyState !== socket.OPEN) {
      clearInterval(poll);
      source.resume();
    }
  }, DRAIN_POLL_MS);
}

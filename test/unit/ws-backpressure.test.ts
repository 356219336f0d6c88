/** holdBackWhileBehind: the source pauses while a client is behind, and resumes once it caught up. */
import { afterEach, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import { holdBackWhileBehind, MAX_UNSENT_BYTES } from '../../src/http/ws-backpressure.js';

afterEach(() => vi.useRealTimers());

function fakes() {
  const socket = { bufferedAmount: 0, readyState: 1, OPEN: 1 };
  let paused = false;
  const source = {
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
    },
    isPaused: () => paused,
  };
  return { socket, source, hold: () => holdBackWhileBehind(socket as unknown as WebSocket, source) };
}

it('leaves the source alone while the client keeps up', () => {
  const { socket, source, hold } = fakes();
  socket.bufferedAmount = MAX_UNSENT_BYTES;
  hold();
  expect(source.isPaused()).toBe(false);
});

it('pauses past the limit and resumes at half of it, not before', () => {
  vi.useFakeTimers();
  const { socket, source, hold } = fakes();
  socket.bufferedAmount = MAX_UNSENT_BYTES + 1;
  hold();
  expect(source.isPaused()).toBe(true);
  socket.bufferedAmount = MAX_UNSENT_BYTES / 2 + 1;
  vi.advanceTimersByTime(100);
  expect(source.isPaused()).toBe(true);
  socket.bufferedAmount = MAX_UNSENT_BYTES / 2;
  vi.advanceTimersByTime(100);
  expect(source.isPaused()).toBe(false);
});

it('resumes when the socket closes, so the source can end', () => {
  vi.useFakeTimers();
  const { socket, source, hold } = fakes();
  socket.bufferedAmount = MAX_UNSENT_BYTES * 2;
  hold();
  socket.readyState = 3;
  vi.advanceTimersByTime(100);
  expect(source.isPaused()).toBe(false);
});

/**
 * writeUnlessBehind and drained on a real HTTP server: a producer that waits when told its client is
 * behind delivers everything to a client slower than it; a producer that cannot wait has a client
 * that stopped reading dropped once MAX_UNREAD_BYTES wait for it, and never holds much more.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { drained, MAX_UNREAD_BYTES, writeUnlessBehind } from '../../src/http/slow-client.js';

const CHUNK = Buffer.alloc(1024 * 1024, 120);
/** Twice what the limit lets wait, so a client that does not read must be dropped on the way. */
const TOTAL_CHUNKS = (2 * MAX_UNREAD_BYTES) / CHUNK.length + 32;

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/**
 * A server that writes TOTAL_CHUNKS chunks as fast as it may (waiting when behind if `waits`);
 * reports how it ended and the most it held for the client.
 */
function serve(waits: boolean): Promise<{
  port: number;
  result: Promise<{ dropped: boolean; written: number; maxHeld: number }>;
}> {
  let settle!: (v: { dropped: boolean; written: number; maxHeld: number }) => void;
  const result = new Promise<{ dropped: boolean; written: number; maxHeld: number }>((r) => {
    settle = r;
  });
  server = createServer((_req, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let written = 0;
    let maxHeld = 0;
    const tick = () => {
      maxHeld = Math.max(maxHeld, res.writableLength);
      if (written === TOTAL_CHUNKS) {
        res.end();
        return settle({ dropped: false, written, maxHeld });
      }
      const outcome = writeUnlessBehind(res, CHUNK);
      if (outcome === 'closed') return settle({ dropped: true, written, maxHeld });
      written++;
      if (outcome === 'behind' && waits) void drained(res).then(tick);
      else setImmediate(tick);
    };
    tick();
  });
  return new Promise((resolve) =>
    server!.listen(0, '127.0.0.1', () => resolve({ port: (server!.address() as AddressInfo).port, result })),
  );
}

it('a client slower than a producer that waits gets every byte', async () => {
  const { port, result } = await serve(true);
  const res = await fetch(`http://127.0.0.1:${port}/`);
  const body = Buffer.from(await res.arrayBuffer());
  expect(body.length).toBe(TOTAL_CHUNKS * CHUNK.length);
  const end = await result;
  expect(end.dropped).toBe(false);
  expect(end.maxHeld).toBeLessThanOrEqual(2 * CHUNK.length);
}, 60_000);

it('a client that stops reading is dropped by a producer that cannot wait; what waits stays bounded', async () => {
  const { port, result } = await serve(false);
  const sock = connect(port, '127.0.0.1');
  sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  sock.pause(); // reads nothing
  const end = await result;
  sock.destroy();
  expect(end.dropped).toBe(true);
  expect(end.written).toBeLessThan(TOTAL_CHUNKS);
  expect(end.maxHeld).toBeLessThanOrEqual(MAX_UNREAD_BYTES + CHUNK.length);
}, 60_000);

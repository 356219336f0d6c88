/**
 * Waits for a runtime server to answer /alive, polling with a short backoff rather than a fixed 2 s,
 * and gives up at once when the container has exited. Uses node:http: Node 20's fetch can hang when a
 * port proxy accepts a connection and closes it without answering, which Docker's does until the
 * server inside listens.
 */
import { request } from 'node:http';

/**
 * Probes come every POLL_MS: a refused connection costs the engine nothing, and a server that is up
 * is seen within that much. Asking the engine whether the container exited costs more, so that is
 * done only every CHECK_EVERY_MS.
 */
const POLL_MS = 15;
const CHECK_EVERY_MS = 250;
/** One /alive probe may take this long before it counts as a failed try. */
const PROBE_TIMEOUT_MS = 2000;

export function probeAlive(url: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const u = new URL('/alive', url);
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'GET', timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('"ok"')));
        res.on('error', () => resolve(false));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

export interface WaitOptions {
  url: string;
  timeoutMs: number;
  /** Called between failed probes; throw to stop waiting (e.g. the container exited). */
  check: () => Promise<void>;
}

export async function waitUntilAlive({ url, timeoutMs, check }: WaitOptions): Promise<number> {
  const started = Date.now();
  let lastCheck = started;
  let tries = 0;
  for (;;) {
    tries++;
    if (await probeAlive(url)) return tries;
    const now = Date.now();
    if (now - lastCheck >= CHECK_EVERY_MS) {
      lastCheck = now;
      await check();
    }
    if (now - started > timeoutMs) {
      await check();
      throw new Error(`the runtime server did not answer /alive within ${Math.round(timeoutMs / 1000)} s`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

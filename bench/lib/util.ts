/**
 * Helpers the Docker and control-plane benchmarks share: raw kept-alive HTTP on node:http, the docker
 * CLI, machine load, and a key/value table. Calls to the control plane go through the SDK
 * (src/sdk, `Cp.client` in control-plane.ts); httpJson is kept for the raw floors only: straight to a
 * runtime server (docker.ts) and the proxy-overhead comparison, where no client library may sit in
 * the measured path.
 */
import { execFile } from 'node:child_process';
import { type Agent, request } from 'node:http';
import { cpus, loadavg, uptime } from 'node:os';
import { pathToFileURL } from 'node:url';

/** True when the module with this URL is the script node was started with (`npx tsx bench/x.ts`). */
export function isMain(metaUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && metaUrl === pathToFileURL(script).href;
}

/** Reads a positive integer from the environment, else the default. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wall-clock milliseconds with sub-millisecond precision, comparable with container timestamps. */
export const epochMs = () => performance.timeOrigin + performance.now();

export interface MachineLoad {
  at: string;
  /** 1, 5 and 15 minute load averages. */
  loadavg: number[];
  cpus: number;
  uptimeSeconds: number;
}

export function machineLoad(): MachineLoad {
  return {
    at: new Date().toISOString(),
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
    cpus: cpus().length,
    uptimeSeconds: Math.round(uptime()),
  };
}

export function describeLoad(l: MachineLoad): string {
  return `load average ${l.loadavg.join(', ')} on ${l.cpus} CPUs (${l.at})`;
}

export interface HttpResult {
  status: number;
  text: string;
  json: any;
}

export interface HttpOptions {
  agent: Agent;
  method: string;
  url: string;
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** One JSON request on a kept-alive agent; rejects on network errors and on timeout, never on status. */
export function httpJson(o: HttpOptions): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(o.url);
    const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
    const req = request(
      {
        agent: o.agent,
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: o.method,
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...o.headers,
        },
        timeout: o.timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`${o.method} ${u.pathname} timed out after ${o.timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export const RUN_TRUE = { action: { action: 'run', args: { command: 'true' } } };

/** Throws unless an observation (from the SDK) is a successful `run` (exit code 0). */
export function expectObservationOk(obs: unknown, what: string): void {
  const o = obs as {
    observation?: string;
    extras?: { exit_code?: number; metadata?: { exit_code?: number } };
  };
  const exit = o?.extras?.metadata?.exit_code ?? o?.extras?.exit_code;
  if (o?.observation !== 'run' || exit !== 0) {
    throw new Error(
      `${what}: expected a run observation with exit code 0, got ${JSON.stringify(obs).slice(0, 300)}`,
    );
  }
}

/** Throws unless a raw response is a successful `run` observation (exit code 0). */
export function expectRunOk(res: HttpResult, what: string): void {
  const exit = res.json?.extras?.metadata?.exit_code ?? res.json?.extras?.exit_code;
  if (res.status !== 200 || res.json?.observation !== 'run' || exit !== 0) {
    throw new Error(
      `${what}: expected a run observation with exit code 0, got ${res.status} ${res.text.slice(0, 300)}`,
    );
  }
}

/** Runs the docker CLI; resolves with stdout, rejects with stderr on a non-zero exit. */
export function docker(args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('docker', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** RFC 3339 with nanoseconds (Docker's timestamps) to epoch milliseconds with sub-ms precision. */
export function parseDockerTime(s: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s.trim());
  if (!m) return Number.NaN;
  const whole = Date.parse(`${m[1]}${m[3]}`);
  const frac = m[2] ? Number(`0.${m[2]}`) * 1000 : 0;
  return whole + frac;
}

/** Removes every container carrying this label (key=value); returns how many there were. */
export async function removeLabelled(label: string): Promise<number> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=${label}`])).split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 20)
    await docker(['rm', '-f', '-v', ...ids.slice(i, i + 20)]).catch(() => '');
  return ids.length;
}

/** Prints `key  value` lines under a title, aligned. */
export function printKeyValues(title: string, pairs: Array<[string, string]>): void {
  const w = Math.max(...pairs.map(([k]) => k.length));
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of pairs) process.stdout.write(`  ${k.padEnd(w)}  ${v}\n`);
}

export const ms = (v: number) => (Number.isFinite(v) ? `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms` : '-');

/** Median of a list (not sorted in place). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

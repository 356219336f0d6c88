/** A real control plane for tests: in-process, or as a child process that can be killed with SIGKILL. */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type RunningControlPlane, startControlPlane } from '../../src/api/start.js';
import { loadControlPlaneConfig } from '../../src/config/control-plane.js';
import { waitForListening } from '../support/listening-child.js';

const ROOT = resolve(import.meta.dirname, '../..');

export interface CpOptions {
  dataDir?: string;
  poolSize?: number;
  env?: Record<string, string>;
  /** @default random hex */
  apiKey?: string;
}

export function testEnv(o: CpOptions & { apiKey: string }): Record<string, string> {
  return {
    BERTH_DATA_DIR: o.dataDir ?? mkdtempSync(join(tmpdir(), 'berth-cp-')),
    BERTH_API_KEY: o.apiKey,
    BERTH_POOL_SIZE: String(o.poolSize ?? 0),
    BERTH_REAPER_INTERVAL_SECONDS: '1',
    BERTH_LOG_LEVEL: 'warn',
    BERTH_CONFIG: join(ROOT, 'test/integration/no-config.toml'),
    SANDBOX_USER_ID: '1000',
    ...o.env,
  };
}

export async function startInProcess(o: CpOptions = {}): Promise<RunningControlPlane & { apiKey: string }> {
  const apiKey = o.apiKey ?? randomBytes(12).toString('hex');
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    ...testEnv({ ...o, apiKey }),
  };
  const config = loadControlPlaneConfig({ env, flags: { port: 0 } });
  const cp = await startControlPlane({ config, env });
  return Object.assign(cp, { apiKey });
}

export interface ChildControlPlane {
  url: string;
  apiKey: string;
  dataDir: string;
  child: ChildProcess;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export async function startChild(
  o: CpOptions & { apiKey?: string; port?: number } = {},
): Promise<ChildControlPlane> {
  const apiKey = o.apiKey ?? randomBytes(12).toString('hex');
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'berth-cp-'));
  const env = { ...process.env, ...testEnv({ ...o, dataDir, apiKey }) };
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'up', '--port', String(o.port ?? 0)],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const url = await waitForListening(child, 'control plane', 120_000);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    url,
    apiKey,
    dataDir,
    child,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** fetch with the bearer key; returns status and parsed JSON. */
export async function api(
  base: string,
  key: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any; text: string }> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** A control plane for the E2B SDKs, and the three variables docs/e2b.md tells their users to set. */
export interface E2bTarget {
  cp: RunningControlPlane & { apiKey: string };
  env: { E2B_API_KEY: string; E2B_API_URL: string; E2B_SANDBOX_URL: string };
  /** Closes the control plane and removes the sandboxes it left. */
  close(): Promise<void>;
}

/** Starts one, without a warm pool; its key is shaped e2b_<hex>, as the Python SDK demands. */
export async function startForE2b(): Promise<E2bTarget> {
  const cp = await startInProcess({ poolSize: 0, apiKey: `e2b_${randomBytes(16).toString('hex')}` });
  return {
    cp,
    env: { E2B_API_KEY: cp.apiKey, E2B_API_URL: `${cp.url}/e2b`, E2B_SANDBOX_URL: cp.url },
    async close() {
      await cp.close();
      await cp.manager['runtime'].reap(new Set());
    },
  };
}

/**
 * Where the contract suite's runtime server comes from. By default a `berth runtime-server` child
 * process on this machine; the Docker suite supplies a factory that starts one inside a container.
 * Tests talk to the server only over HTTP, so the same assertions hold for both.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitForListening } from '../support/listening-child.js';
import { postOversized } from '../support/oversized.js';

export interface RuntimeTarget {
  url: string;
  key: string;
  /** The server's working directory, as the server sees it. */
  workspace: string;
  /** The server's pid on this machine, when it runs here (for memory measurements). */
  pid?: number;
  close(): Promise<void>;
}

export interface TargetOptions {
  env?: Record<string, string>;
}

export type TargetFactory = (options: TargetOptions) => Promise<RuntimeTarget>;

let factory: TargetFactory = startHostTarget;

/** Lets another suite (the Docker one) run the same contract against its own servers. */
export function useTargetFactory(f: TargetFactory): void {
  factory = f;
}

export function startRuntimeTarget(options: TargetOptions = {}): Promise<RuntimeTarget> {
  return factory(options);
}

const ROOT = resolve(import.meta.dirname, '../..');

export async function startHostTarget(options: TargetOptions = {}): Promise<RuntimeTarget> {
  const workspace = mkdtempSync(join(tmpdir(), 'berth-contract-'));
  const key = randomBytes(16).toString('hex');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/main.ts'),
      'runtime-server',
      '--port',
      '0',
      '--working-dir',
      workspace,
    ],
    {
      cwd: ROOT,
      env: { ...process.env, SESSION_API_KEY: key, BERTH_LOG_LEVEL: 'warn', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const url = await waitForListening(child, 'runtime server', 30_000);
  return {
    url,
    key,
    workspace,
    pid: child.pid,
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(workspace, { recursive: true, force: true });
    },
  };
}

/** A thin client: the suite's only way to reach the server. */
export class RuntimeClient {
  constructor(readonly target: RuntimeTarget) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { 'X-Session-API-Key': this.target.key, ...extra };
  }

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(this.target.url + path, {
      method,
      headers: this.headers(
        body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ),
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json: json as any, text, headers: res.headers };
  }

  /** POSTs a body the server will refuse for its size (see postOversized). */
  oversized(path: string, body: string): Promise<{ status: number; text: string }> {
    return postOversized(this.target.url + path, this.headers({ 'content-type': 'application/json' }), body);
  }

  /** Sends an action and returns the observation; fails the test on a non-200 answer. */
  async act(action: string, args: Record<string, unknown>, timeout?: number): Promise<Obs> {
    const body: Record<string, unknown> = { action: { action, args, ...(timeout ? { timeout } : {}) } };
    const res = await this.request('POST', '/execute_action', body);
    if (res.status !== 200) throw new Error(`execute_action answered ${res.status}: ${res.text}`);
    return res.json as Obs;
  }

  run(command: string, extra: Record<string, unknown> = {}, timeout?: number): Promise<Obs> {
    return this.act('run', { command, ...extra }, timeout);
  }
}

export interface Obs {
  observation: string;
  content: string;
  extras: Record<string, any>;
  message: string;
  success?: boolean;
}

/**
 * A test-only SandboxRuntime that runs each sandbox's REAL runtime server as a child process on this
 * machine (no container), in the workspace directory the sandbox was created with. It lets the browser
 * tests drive the real control plane (routes, auth, event log, terminal relay, file proxy) and the real
 * runtime server without Docker or a runtime image. Pause and resume are SIGSTOP and SIGCONT.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type {
  ContainerState,
  SandboxEndpoint,
  SandboxRuntime,
  SandboxSpec,
} from '../../src/sandboxes/types.js';
import { waitForListening } from '../support/listening-child.js';
import { REPO } from './browser.js';

/** How long a runtime server gets to print its address. */
const START_TIMEOUT_MS = 30_000;

interface HostSandbox {
  child: ChildProcess;
  endpoint: SandboxEndpoint;
  paused: boolean;
  labels: Record<string, string>;
  /** What the server printed (its log), as a container's logs would hold it. */
  output: string[];
}

export class HostProcessRuntime implements SandboxRuntime {
  private readonly sandboxes = new Map<string, HostSandbox>();

  async start(spec: SandboxSpec): Promise<SandboxEndpoint> {
    const workspace = spec.workspaceHostPath ?? mkdtempSync(join(tmpdir(), 'berth-host-sandbox-'));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO, 'src/cli/main.ts'),
        'runtime-server',
        '--port',
        '0',
        '--working-dir',
        workspace,
      ],
      {
        cwd: REPO,
        env: { ...process.env, ...spec.env, SESSION_API_KEY: spec.sessionApiKey, BERTH_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const url = await waitForListening(child, 'runtime server', START_TIMEOUT_MS);
    const endpoint: SandboxEndpoint = {
      id: spec.id,
      containerId: `host-pid-${child.pid}`,
      url,
      sessionApiKey: spec.sessionApiKey,
      ports: { runtime: Number(new URL(url).port), app: [] },
    };
    const output: string[] = [];
    child.stdout?.on('data', (d: Buffer) => output.push(d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => output.push(d.toString('utf8')));
    this.sandboxes.set(spec.id, { child, endpoint, paused: false, labels: spec.labels, output });
    child.once('exit', () => {
      const s = this.sandboxes.get(spec.id);
      if (s?.child === child) this.sandboxes.delete(spec.id);
    });
    return endpoint;
  }

  /** The server's output so far (following is not needed by the tests that use this runtime). */
  async logs(id: string, opts: { tail: number }): Promise<Readable> {
    const lines = (this.sandboxes.get(id)?.output ?? []).join('').split('\n');
    return Readable.from([lines.slice(-opts.tail - 1).join('\n')]);
  }

  async attach(id: string): Promise<SandboxEndpoint> {
    const s = this.sandboxes.get(id);
    if (!s) throw new Error(`no host sandbox ${id}`);
    return s.endpoint;
  }

  async state(id: string): Promise<ContainerState> {
    const s = this.sandboxes.get(id);
    if (!s) return 'missing';
    return s.paused ? 'paused' : 'running';
  }

  async pause(id: string): Promise<void> {
    const s = this.must(id);
    s.child.kill('SIGSTOP');
    s.paused = true;
  }

  async resume(id: string): Promise<void> {
    const s = this.must(id);
    s.child.kill('SIGCONT');
    s.paused = false;
  }

  async stop(id: string): Promise<void> {
    await this.remove(id);
  }

  async restart(): Promise<SandboxEndpoint> {
    throw new Error('the host runtime cannot restart a stopped sandbox');
  }

  async remove(id: string): Promise<void> {
    const s = this.sandboxes.get(id);
    if (!s) return;
    this.sandboxes.delete(id);
    if (s.child.exitCode !== null || s.child.signalCode !== null) return;
    const exited = new Promise((r) => s.child.once('exit', r));
    s.child.kill('SIGCONT');
    s.child.kill('SIGTERM');
    const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  async list(): Promise<Array<{ id: string; state: ContainerState; labels: Record<string, string> }>> {
    return [...this.sandboxes].map(([id, s]) => ({
      id,
      state: s.paused ? 'paused' : 'running',
      labels: s.labels,
    }));
  }

  async reap(keep: Set<string>): Promise<string[]> {
    const gone = [...this.sandboxes.keys()].filter((id) => !keep.has(id));
    await Promise.all(gone.map((id) => this.remove(id)));
    return gone;
  }

  /** Ends every runtime server this runtime started. */
  async dispose(): Promise<void> {
    await Promise.all([...this.sandboxes.keys()].map((id) => this.remove(id)));
  }

  private must(id: string): HostSandbox {
    const s = this.sandboxes.get(id);
    if (!s) throw new Error(`no host sandbox ${id}`);
    return s;
  }
}

/**
 * The reference OpenHands V0 action-execution server, run on this machine as an oracle for the
 * differential suite. Installed by scripts/oracle/setup.sh into $BERTH_ORACLE_VENV (default
 * /opt/berth-oracle); started the way the reference's LocalRuntime starts it on a host, through
 * scripts/oracle/launch.py, which only pins every listener to 127.0.0.1.
 *
 * Its tmux server gets a private socket directory (TMUX_TMPDIR), and the whole process group
 * (server, kernel gateway, kernel) is ended by its group id on close.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { RuntimeTarget, TargetOptions } from '../contract/harness.js';

const ROOT = resolve(import.meta.dirname, '../..');
export const ORACLE_VENV = process.env.BERTH_ORACLE_VENV || '/opt/berth-oracle';
const PYTHON = join(ORACLE_VENV, 'bin/python');
const LAUNCHER = join(ROOT, 'scripts/oracle/launch.py');

/** How to turn the differential suite on; part of every skip message. */
export const ORACLE_HOWTO = 'set BERTH_ORACLE=1 after scripts/oracle/setup.sh';

/**
 * Why the oracle does not run here, or undefined when it does. Opt-in: it runs only with
 * BERTH_ORACLE=1 (so CI, which never sets it, depends neither on PyPI nor on the reference's own
 * flakiness), and then only when the reference is installed.
 */
export function oracleUnavailableReason(): string | undefined {
  if (process.env.BERTH_ORACLE !== '1') return ORACLE_HOWTO;
  const missing = oracleMissingReason();
  return missing && `BERTH_ORACLE=1, but ${missing}`;
}

/** What is missing to start the reference server here, or undefined when nothing is. */
export function oracleMissingReason(): string | undefined {
  if (!existsSync(PYTHON)) {
    return `reference server not installed: no ${PYTHON} (run scripts/oracle/setup.sh, or set BERTH_ORACLE_VENV)`;
  }
  if (!existsSync(join(ORACLE_VENV, '.berth-oracle-ok'))) {
    return `reference venv ${ORACLE_VENV} is incomplete (re-run scripts/oracle/setup.sh)`;
  }
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'tmux is not installed (scripts/oracle/setup.sh installs it)';
  }
  return undefined;
}

/** A free loopback port whose +1..+1024 range (the reference's file-viewer port) stays valid. */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res, rej) => {
      const srv = createServer();
      srv.once('error', rej);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => res(p));
      });
    });
    if (port + 1024 <= 65535) return port;
  }
}

export interface OracleOptions extends TargetOptions {
  /** Plugins to load (default agent_skills + jupyter). */
  plugins?: string[];
  /** Startup limit in ms (default 120 s; the jupyter plugin alone can take ~20 s). */
  startTimeoutMs?: number;
}

export interface OracleTarget extends RuntimeTarget {
  /** The tail of the reference server's log, for failure messages. */
  log(): string;
  plugins: string[];
}

export async function startOracleTarget(options: OracleOptions = {}): Promise<OracleTarget> {
  const reason = oracleMissingReason();
  if (reason) throw new Error(reason);
  const plugins = options.plugins ?? ['agent_skills', 'jupyter'];
  const workspace = realpathSync(mkdtempSync(join(tmpdir(), 'berth-oracle-ws-')));
  const tmuxDir = mkdtempSync(join(tmpdir(), 'berth-oracle-tmux-'));
  const key = randomBytes(16).toString('hex');
  const port = await freePort();
  const sitePackages = execFileSync(
    PYTHON,
    ['-c', 'import os, openhands; print(os.path.dirname(os.path.dirname(openhands.__file__)))'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 },
  ).trim();
  const user = userInfo();
  const args = [
    '-u',
    LAUNCHER,
    String(port),
    '--working-dir',
    workspace,
    ...(plugins.length ? ['--plugins', ...plugins] : []),
    '--username',
    user.username,
    '--user-id',
    String(user.uid),
    '--no-enable-browser',
  ];
  // The environment LocalRuntime gives the server (local_runtime.py::_create_server).
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    USER: user.username,
    PYTHONPATH: sitePackages,
    OPENHANDS_REPO_PATH: sitePackages,
    LOCAL_RUNTIME_MODE: '1',
    PATH: `${join(ORACLE_VENV, 'bin')}:${process.env.PATH ?? ''}`,
    SESSION_API_KEY: key,
    TMUX_TMPDIR: tmuxDir,
    LOG_LEVEL: process.env.BERTH_ORACLE_LOG_LEVEL ?? 'warning',
    ...options.env,
  };
  delete env.TMUX; // never attach to a tmux server the caller may be inside
  const child: ChildProcess = spawn(PYTHON, args, {
    cwd: sitePackages,
    env,
    detached: true, // own process group: close() ends the gateway and kernel with it
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const append = (d: string) => {
    log = (log + d).slice(-8000);
  };
  child.stdout?.setEncoding('utf8').on('data', append);
  child.stderr?.setEncoding('utf8').on('data', append);
  const url = `http://127.0.0.1:${port}`;

  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const cleanup = () => {
    try {
      execFileSync('tmux', ['kill-server'], { env: { ...env }, stdio: 'ignore', timeout: 10_000 });
    } catch {
      // no tmux server left
    }
    rmSync(tmuxDir, { recursive: true, force: true });
    rmSync(workspace, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 120_000);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  for (;;) {
    if (exited) {
      cleanup();
      throw new Error(`reference server exited during startup:\n${log}`);
    }
    if (Date.now() > deadline) {
      killGroup('SIGKILL');
      cleanup();
      throw new Error(`reference server did not answer /alive with {"status":"ok"} in time:\n${log}`);
    }
    try {
      const res = await fetch(`${url}/alive`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { status?: string };
      if (body.status === 'ok') break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }

  return {
    url,
    key,
    workspace,
    pid: child.pid,
    plugins,
    log: () => log,
    async close() {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        killGroup('SIGTERM');
        const t = setTimeout(() => killGroup('SIGKILL'), 5000);
        await gone;
        clearTimeout(t);
      }
      // Anything left in the group (the kernel gateway ignores SIGTERM while busy).
      killGroup('SIGKILL');
      cleanup();
    },
  };
}

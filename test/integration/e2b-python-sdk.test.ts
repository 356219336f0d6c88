/**
 * The official `e2b` Python SDK (PyPI), unchanged, against a real control plane and real sandboxes:
 * test/e2b/python_sdk_check.py run with only E2B_API_KEY, E2B_API_URL and E2B_SANDBOX_URL set. The
 * SDK comes from PyPI into a venv under .cache/; when PyPI cannot be reached the suite says SKIPPED.
 */
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureVenv, type Venv } from '../support/python-venv.js';
import { runCommand } from '../support/run-command.js';
import { type E2bTarget, startForE2b } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const ROOT = resolve(import.meta.dirname, '../..');
/** The versions tested (named in docs/e2b.md); pinned so a run is repeatable. */
const PACKAGES = ['e2b==2.63.0', 'e2b-code-interpreter==2.11.5'];
const VENV = join(ROOT, '.cache', 'e2b-python-venv');
const SCRIPT = join(ROOT, 'test', 'e2b', 'python_sdk_check.py');
/** The whole script (a dozen checks, two sandboxes) is killed, and the test fails, past this. */
const SCRIPT_TIMEOUT_MS = 4 * 60_000;

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: e2b Python SDK (no Docker engine: ${unavailable})`);

describe.skipIf(unavailable !== undefined)('the e2b Python SDK against Berth', () => {
  let venv: Venv;
  let target: E2bTarget | undefined;

  beforeAll(async () => {
    venv = await ensureVenv({ dir: VENV, packages: PACKAGES, timeoutMs: 300_000 });
    if ('skipped' in venv) {
      console.warn(`SKIPPED: e2b Python SDK (PyPI unreachable: ${venv.skipped})`);
      return;
    }
    target = await startForE2b();
  }, 420_000);

  afterAll(async () => {
    await target?.close();
  }, 120_000);

  it(
    'commands, stdin, PTY, files, signed URLs, both watchers, info, list, pause, connect, kill; sync and async',
    async (ctx) => {
      if ('skipped' in venv) ctx.skip(`SKIPPED: e2b Python SDK (PyPI unreachable: ${venv.skipped})`);
      // (ctx.skip throws; the check again is for the type.)
      if ('skipped' in venv || !target) throw new Error('the control plane did not start');
      const run = await runCommand(venv.python, [SCRIPT], {
        timeoutMs: SCRIPT_TIMEOUT_MS,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          ...target.env,
        },
      });
      const failed = run.out.split('\n').filter((l) => l.startsWith('FAIL'));
      expect(failed, run.out).toEqual([]);
      expect(run.timedOut).toBe(false);
      expect(run.code, run.out).toBe(0);
      // Every check ran (a crash before the end would leave some unreported).
      for (const name of [
        'commands_run',
        'files',
        'signed_urls',
        'sync_watch',
        'pty',
        'async_sandbox',
        'code_interpreter',
        'kill',
      ]) {
        expect(run.out).toContain(`ok ${name}`);
      }
    },
    SCRIPT_TIMEOUT_MS + 30_000,
  );
});

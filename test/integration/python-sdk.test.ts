import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { ensureVenv, pipInstall, type Venv } from '../support/python-venv.js';
import { runCommand as run } from '../support/run-command.js';
import { api, startInProcess } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const ROOT = resolve(import.meta.dirname, '../..');
const PYTHON_DIR = join(ROOT, 'python');
/** Test tools, pinned so a run is repeatable; the SDK's own dependencies come from pyproject.toml. */
const TOOLS = ['pytest==9.2.0', 'mypy==2.4.1'];
const VENV = join(ROOT, '.cache', 'python-sdk-venv');
const PY = join(VENV, 'bin', 'python');
/** The pytest run is killed (and the test fails) past this. */
const PYTEST_TIMEOUT_MS = 4 * 60_000;

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: python-sdk (no Docker engine: ${unavailable})`);

/**
 * The venv with the test tools (made once, then reused), the SDK installed afresh from python/ every
 * run (its build backend and dependencies from PyPI), or why PyPI could not be reached.
 */
async function install(): Promise<Venv> {
  const venv = await ensureVenv({ dir: VENV, packages: TOOLS, timeoutMs: 300_000 });
  if ('skipped' in venv) return venv;
  // Reinstalled each run, so the tests always see the package as it is in python/ now.
  const args = ['--force-reinstall', '--no-cache-dir', PYTHON_DIR];
  const skipped = await pipInstall(venv.python, args, 300_000, './python');
  return skipped ? { skipped } : venv;
}

describe.skipIf(unavailable !== undefined)('the Python SDK against a real control plane', () => {
  let tool: Venv;
  let cp: (RunningControlPlane & { apiKey: string }) | undefined;

  beforeAll(async () => {
    tool = await install();
    if ('skipped' in tool) {
      console.warn(`SKIPPED: python-sdk (PyPI unreachable: ${tool.skipped})`);
      return;
    }
    cp = await startInProcess({ poolSize: 0 });
  }, 420_000);

  afterAll(async () => {
    if (!cp) return;
    // Whatever a failed run left behind.
    const list = await api(cp.url, cp.apiKey, 'GET', '/api/sandboxes').catch(() => undefined);
    for (const s of list?.json?.sandboxes ?? []) {
      if (s.state !== 'deleted') await api(cp.url, cp.apiKey, 'DELETE', `/api/sandboxes/${s.id}`);
    }
    await cp.close();
  }, 120_000);

  it('mypy --strict is clean on the package and its tests', async (ctx) => {
    if ('skipped' in tool) ctx.skip(`SKIPPED: python-sdk (PyPI unreachable: ${tool.skipped})`);
    const res = await run(
      PY,
      ['-m', 'mypy', '--strict', '--no-incremental', '--cache-dir=/dev/null', 'src/berth', 'tests'],
      { cwd: PYTHON_DIR, timeoutMs: 180_000 },
    );
    expect(res.code, res.out).toBe(0);
    expect(res.out).toMatch(/Success: no issues found/);
  }, 200_000);

  it(
    'pytest passes: lifecycle, commands, files, edit, IPython, events, exec, errors, the async client',
    async (ctx) => {
      if ('skipped' in tool) ctx.skip(`SKIPPED: python-sdk (PyPI unreachable: ${tool.skipped})`);
      const c = cp!;
      const started = Date.now();
      const res = await run(PY, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--durations=5', 'tests'], {
        cwd: PYTHON_DIR,
        timeoutMs: PYTEST_TIMEOUT_MS,
        env: {
          ...process.env,
          BERTH_URL: c.url,
          BERTH_API_KEY: c.apiKey,
          PYTHONUNBUFFERED: '1',
          PYTHONDONTWRITEBYTECODE: '1',
        },
      });
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const passed = Number(/(\d+) passed/.exec(res.out)?.[1] ?? 0);
      const failed = Number(/(\d+) failed/.exec(res.out)?.[1] ?? 0);
      const errors = Number(/(\d+) errors?/.exec(res.out)?.[1] ?? 0);
      console.log(`python-sdk: ${passed} passed, ${failed + errors} failed (pytest, ${seconds} s)`);
      if (res.code !== 0) console.log(res.out);
      expect(res.timedOut, `pytest ran longer than ${PYTEST_TIMEOUT_MS / 1000} s`).toBe(false);
      expect(res.code, res.out.slice(-6000)).toBe(0);
      expect(failed + errors).toBe(0);
      expect(passed).toBeGreaterThanOrEqual(30);
    },
    PYTEST_TIMEOUT_MS + 30_000,
  );
});

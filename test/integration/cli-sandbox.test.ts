/** The `berth` CLI against a real control plane: create --json, ls, exec exit codes, pause, rm. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildControlPlane, startChild } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const unavailable = await engineAvailable();

describe.skipIf(unavailable !== undefined)('berth CLI', () => {
  let cp: ChildControlPlane;
  const berth = (...args: string[]) => berthIn(ROOT, ...args);
  const berthIn = async (cwd: string, ...args: string[]) => {
    try {
      // tsx by its path: the working directory may be outside this checkout.
      const tsx = pathToFileURL(resolve(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
      const r = await run(process.execPath, ['--import', tsx, resolve(ROOT, 'src/cli/main.ts'), ...args], {
        cwd,
        env: { ...process.env, BERTH_URL: cp.url, BERTH_API_KEY: cp.apiKey },
        timeout: 120_000,
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  const tmp = mkdtempSync(join(tmpdir(), 'berth-cli-'));
  beforeAll(async () => {
    cp = await startChild({ env: { BERTH_ALLOWED_MOUNT_ROOTS: tmp } });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('create --json gives id, url and session_api_key; exec prints output and exits with the exit code', async () => {
    const created = await berth('sandbox', 'create', '--json', '--label', 'cli=yes', '-e', 'WHO=cli');
    expect(created.code).toBe(0);
    const s = JSON.parse(created.stdout);
    expect(s.id).toMatch(/^[0-9a-f]{12}$/);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(typeof s.session_api_key).toBe('string');

    const hello = await berth('exec', s.id, '--', 'echo', 'hello', '$WHO');
    expect(hello.code).toBe(0);
    expect(hello.stdout).toBe('hello cli\n');
    const failing = await berth('exec', s.id, '--', 'sh', '-c', "'echo oops >&2; exit 3'");
    expect(failing.code).toBe(3);
    expect(failing.stdout).toContain('oops');

    const ls = await berth('sandbox', 'ls', '--json', '--label', 'cli=yes');
    expect(JSON.parse(ls.stdout).map((x: { id: string }) => x.id)).toEqual([s.id]);
    const table = await berth('sandbox', 'ls');
    expect(table.stdout).toMatch(/^ID\s+STATE\s+IMAGE/);
    expect(table.stdout).toContain(s.id);

    expect((await berth('sandbox', 'pause', s.id)).stdout).toBe(`${s.id} paused\n`);
    expect((await berth('sandbox', 'resume', s.id)).stdout).toBe(`${s.id} running\n`);
    expect((await berth('sandbox', 'rm', s.id)).stdout).toBe(`${s.id} deleted\n`);
  });

  it('--workspace is a directory relative to the current one, which must exist unless --mkdir; --user picks the agent', async () => {
    const missing = await berthIn(tmp, 'sandbox', 'create', '--workspace', 'not-there');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `no such directory (${join(tmp, 'not-there')}); create it, or add --mkdir`,
    );
    expect(existsSync(join(tmp, 'not-there'))).toBe(false);
    const made = await berthIn(
      tmp,
      'sandbox',
      'create',
      '--json',
      '--workspace',
      'ws',
      '--mkdir',
      '--user',
      'agent:1000',
    );
    expect(made.code, made.stderr).toBe(0);
    const s = JSON.parse(made.stdout);
    expect(s.workspace).toBe(join(tmp, 'ws'));
    const who = await berth('exec', s.id, '--', 'sh', '-c', "'whoami; pwd'");
    expect(who.stdout).toBe('agent\n/workspace\n');
    await berth('sandbox', 'rm', s.id);
    writeFileSync(join(tmp, 'a-file'), '');
    const notDir = await berthIn(tmp, 'sandbox', 'create', '--workspace', 'a-file');
    expect(notDir.code).toBe(1);
    expect(notDir.stderr).toContain('is not a directory');
  });

  it('errors say what to do and exit non-zero', async () => {
    const missing = await berth('exec', '000000000000', '--', 'true');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/sandbox 000000000000 not found.*berth sandbox ls.*NOT_FOUND/);
    const badKey = await run(
      process.execPath,
      ['--import', 'tsx', resolve(ROOT, 'src/cli/main.ts'), 'sandbox', 'ls'],
      {
        cwd: ROOT,
        env: { ...process.env, BERTH_URL: cp.url, BERTH_API_KEY: 'wrong' },
      },
    ).catch((e: { code: number; stderr: string }) => e);
    expect((badKey as { code: number }).code).toBe(1);
    expect((badKey as { stderr: string }).stderr).toContain('BERTH_API_KEY');
    // A port nothing listens on: bind one, then let it go.
    const free = await new Promise<number>((res) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port;
        srv.close(() => res(port));
      });
    });
    const down = await run(
      process.execPath,
      ['--import', 'tsx', resolve(ROOT, 'src/cli/main.ts'), 'sandbox', 'ls'],
      {
        cwd: ROOT,
        env: { ...process.env, BERTH_URL: `http://127.0.0.1:${free}`, BERTH_API_KEY: '' },
      },
    ).catch((e: { code: number; stderr: string }) => e);
    expect((down as { stderr: string }).stderr).toContain('berth up');
  });
});

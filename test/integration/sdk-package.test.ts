/**
 * The SDK as a package of its own: `@berth/sdk` (packages/sdk) packed into a tarball, installed with
 * `npm install <tarball>` into an empty project, type-checked there by a strict program (its
 * declarations and its dependencies' too), and run against a real control plane. The install must
 * bring no native module and at most the SDK's two small dependencies; its sizes are printed.
 *
 * The package is built into a staging directory by tsconfig.sdk.json (src/sdk and what it imports,
 * src/protocol), never from dist/ or packages/sdk/dist, which a running Berth or a release may use.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { startInProcess } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const INSTALL_TIMEOUT_MS = 120_000;
const PACKAGE_DIR = join(ROOT, 'packages/sdk');
const run = promisify(execFile);
const unavailable = await engineAvailable();

/** A consumer's program: only the package's public entry points, strict types. */
const PROGRAM = `
import { BerthApiError, BerthClient, NotFoundError, type Observation, type Sandbox } from '@berth/sdk';
import { BerthClient as BrowserClient, errorClassByCode } from '@berth/sdk/browser';

const berth = new BerthClient({ url: process.env.BERTH_URL, apiKey: process.env.BERTH_API_KEY });
// The types are real, not any: a number is not a sandbox id.
// @ts-expect-error sandboxes.get takes a string
void (() => berth.sandboxes.get(42));
const health: { status: string } = await berth.health();
const before: Sandbox[] = await berth.sandboxes.list();
let missing = '';
try {
  await berth.sandboxes.get('no-such-sandbox');
} catch (err) {
  if (err instanceof NotFoundError && err instanceof BerthApiError) missing = \`\${err.status} \${err.code}\`;
}
const sb: Sandbox = await berth.sandboxes.create({});
const obs: Observation = await berth.sandbox(sb.id).run('echo from-the-package');
await berth.sandboxes.delete(sb.id);
const browser = new BrowserClient({ url: process.env.BERTH_URL, apiKey: process.env.BERTH_API_KEY });
console.log(
  JSON.stringify({
    health: health.status,
    before: before.length,
    missing,
    content: obs.content.trim(),
    after: (await browser.sandboxes.list()).length,
    codes: Object.keys(errorClassByCode).length,
  }),
);
`;

describe.skipIf(unavailable !== undefined)('@berth/sdk as an installed package', () => {
  const work = mkdtempSync(join(tmpdir(), 'berth-sdk-package-'));
  const staging = join(work, 'package');
  const consumer = join(work, 'consumer');
  let cp: RunningControlPlane & { apiKey: string };

  beforeAll(async () => {
    cp = await startInProcess({ poolSize: 0 });
  });
  afterAll(async () => {
    if (cp) {
      for (const r of cp.manager.list({})) await cp.manager.delete(r.id).catch(() => undefined);
      await cp.close();
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('npm install <tarball> in another project: no native modules, a strict program imports @berth/sdk and calls it', {
    timeout: INSTALL_TIMEOUT_MS + 180_000,
  }, async () => {
    mkdirSync(staging, { recursive: true });
    copyFileSync(join(PACKAGE_DIR, 'package.json'), join(staging, 'package.json'));
    copyFileSync(join(PACKAGE_DIR, 'README.md'), join(staging, 'README.md'));
    execFileSync(
      process.execPath,
      [
        TSC,
        '-p',
        join(ROOT, 'tsconfig.sdk.json'),
        '--emitDeclarationOnly',
        'false',
        '--sourceMap',
        'false',
        '--outDir',
        join(staging, 'dist'),
      ],
      { cwd: ROOT, stdio: 'pipe', timeout: 120_000 },
    );
    execFileSync('npm', ['pack', '--silent', '--pack-destination', work], {
      cwd: staging,
      stdio: 'pipe',
      timeout: 60_000,
    });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const tarballBytes = statSync(join(work, tarball!)).size;

    mkdirSync(consumer);
    writeFileSync(
      join(consumer, 'package.json'),
      JSON.stringify({ name: 'berth-sdk-consumer', private: true, type: 'module' }),
    );
    execFileSync(
      'npm',
      ['install', join(work, tarball!), '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline'],
      { cwd: consumer, stdio: 'pipe', timeout: INSTALL_TIMEOUT_MS },
    );
    // What the install brought: the SDK and its two dependencies, nothing native.
    const installed = packagesIn(join(consumer, 'node_modules'));
    expect(installed.sort()).toEqual(['@berth/sdk', 'ws', 'zod']);
    expect(nativeFiles(join(consumer, 'node_modules'))).toEqual([]);
    console.log(
      `@berth/sdk: tarball ${tarballBytes} bytes; installed ${installed.length} packages, ${dirBytes(join(consumer, 'node_modules'))} bytes`,
    );

    // A Node.js project has Node's types (the runtime-server client's declarations name node:http's);
    // the install usually brings them already (a dependency's dependency), else this checkout's.
    if (!existsSync(join(consumer, 'node_modules/@types/node'))) {
      mkdirSync(join(consumer, 'node_modules/@types'), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules/@types/node'), join(consumer, 'node_modules/@types/node'));
    }

    writeFileSync(join(consumer, 'index.ts'), PROGRAM);
    // The declarations of berth and its dependencies are checked too (no --skipLibCheck).
    const check = (extra: string[]) =>
      execFileSync(
        process.execPath,
        [
          TSC,
          '--strict',
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--target',
          'es2022',
          // TypeScript 6 includes no @types by default: a Node.js project names Node's.
          '--types',
          'node',
          ...extra,
          'index.ts',
        ],
        { cwd: consumer, encoding: 'utf8', stdio: 'pipe', timeout: 120_000 },
      );
    check(['--outDir', 'out']);

    // Asynchronous: the control plane runs in this process and must answer meanwhile.
    const { stdout: out } = await run(process.execPath, [join(consumer, 'out/index.js')], {
      cwd: consumer,
      encoding: 'utf8',
      env: { ...process.env, BERTH_URL: cp.url, BERTH_API_KEY: cp.apiKey },
      timeout: 120_000,
    });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({
      health: 'ok',
      before: 0,
      missing: '404 NOT_FOUND',
      content: 'from-the-package',
      after: 0,
      // The exhaustive map: one class for every code.
      codes: Object.keys(ErrorCode).length,
    });

    // A deep import is not part of the package's surface.
    writeFileSync(
      join(consumer, 'index.ts'),
      "import { BerthClient } from '@berth/sdk/dist/sdk/client.js';\nvoid BerthClient;\n",
    );
    let refused = '';
    try {
      check(['--noEmit']);
    } catch (err) {
      refused = String((err as { stdout?: string }).stdout);
    }
    expect(refused).toMatch(/TS2307.*@berth\/sdk\/dist\/sdk\/client\.js/);
  });
});

/** Package names under a node_modules directory (scoped ones as @scope/name). */
function packagesIn(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) {
      // @types/node may be linked in below for the type check; it is not installed by the package.
      for (const sub of readdirSync(join(dir, name))) out.push(`${name}/${sub}`);
    } else out.push(name);
  }
  return out;
}

/** Compiled addons or native build files anywhere below `dir`. */
function nativeFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.node') || e.name === 'binding.gyp') found.push(p);
    }
  };
  walk(dir);
  return found;
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return total;
}

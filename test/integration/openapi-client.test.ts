/**
 * openapi.json is complete enough for a generated client: openapi-typescript (a standard generator)
 * makes types from it, and test/openapi/calls.ts, one typed call of every operation through
 * openapi-fetch, type-checks strictly against them, wrong calls (`@ts-expect-error`) included. The
 * generator and the client come from the npm registry into a directory of the test's own; when the
 * registry cannot be reached the suite says SKIPPED with the reason.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OPERATIONS } from '../openapi/calls-list.js';

const ROOT = resolve(import.meta.dirname, '../..');
const GENERATOR = 'openapi-typescript@7';
const CLIENT = 'openapi-fetch@0.17';
const INSTALL_TIMEOUT_MS = 180_000;

const dir = mkdtempSync(join(tmpdir(), 'berth-openapi-client-'));
writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'openapi-client-check', private: true }));
const install = spawnSync(
  'npm',
  ['install', '--no-audit', '--no-fund', '--ignore-scripts', GENERATOR, CLIENT],
  {
    cwd: dir,
    encoding: 'utf8',
    timeout: INSTALL_TIMEOUT_MS,
  },
);
const unavailable =
  install.status === 0
    ? undefined
    : `npm could not install ${GENERATOR} and ${CLIENT}: ${(install.stderr || install.error?.message || '').trim().split('\n').slice(-2).join(' ')}`;
if (unavailable) console.warn(`SKIPPED: openapi-client (${unavailable})`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(unavailable !== undefined)('a client generated from openapi.json', () => {
  const doc = JSON.parse(readFileSync(join(ROOT, 'openapi.json'), 'utf8')) as {
    paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, unknown> }>>;
  };
  const operations = Object.values(doc.paths).flatMap((p) => Object.values(p));

  it('every operation has an operationId and answers 401 without a key', () => {
    for (const op of operations) {
      expect(op.operationId, JSON.stringify(op).slice(0, 80)).toMatch(/^[a-z][A-Za-z]+$/);
      expect(Object.keys(op.responses ?? {}), op.operationId).toContain('401');
    }
    expect(new Set(operations.map((o) => o.operationId)).size).toBe(operations.length);
  });

  it('test/openapi/calls.ts calls every operation, no more, no fewer', () => {
    expect([...OPERATIONS].sort()).toEqual(operations.map((o) => o.operationId).sort());
  });

  it('openapi-typescript generates types, and one typed call of each operation type-checks strictly', {
    timeout: 120_000,
  }, () => {
    const gen = spawnSync(
      process.execPath,
      [
        join(dir, 'node_modules/openapi-typescript/bin/cli.js'),
        join(ROOT, 'openapi.json'),
        '-o',
        join(dir, 'schema.d.ts'),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(gen.status, gen.stderr).toBe(0);
    copyFileSync(join(ROOT, 'test/openapi/calls.ts'), join(dir, 'calls.ts'));
    copyFileSync(join(ROOT, 'test/openapi/calls-list.ts'), join(dir, 'calls-list.ts'));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2022', 'dom'],
          skipLibCheck: true,
          types: [],
        },
        files: ['calls.ts'],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], {
      encoding: 'utf8',
      timeout: 90_000,
    });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });
});

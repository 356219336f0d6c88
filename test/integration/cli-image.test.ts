/**
 * `berth image bootstrap|build|ls` and `berth gc` as a user runs them (the real CLI in a child process)
 * against the real Docker engine. Skipped as a whole, loudly, only when no engine is reachable.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceOwner } from '../../src/api/start.js';
import { loadDockerConfig } from '../../src/config/docker.js';
import { connectEngine } from '../../src/docker/engine.js';
import { Store } from '../../src/store/store.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const config = loadDockerConfig();
const engine = connectEngine({ dockerHost: config.dockerHost });
const BASE = config.baseImage;
/** A first build of the runtime image (or of the base) takes minutes; a cached one a second. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

const skip = await engine.ping().then(
  () => undefined,
  (err: unknown) => (err as Error).message,
);
if (skip) {
  console.warn(
    `\n${'!'.repeat(100)}\nSKIPPING test/integration/cli-image.test.ts: ${skip}\n${'!'.repeat(100)}\n`,
  );
}

const dataDir = mkdtempSync(join(tmpdir(), 'berth-cli-gc-'));
const containers: string[] = [];
const images: string[] = [];

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function berth(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      {
        cwd: repoRoot,
        env: { ...process.env, BERTH_DATA_DIR: dataDir },
        timeout: timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function berthJson<T>(args: string[], timeoutMs?: number): Promise<T> {
  const r = await berth([...args, '--json'], timeoutMs);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** A build context holding only a Dockerfile. */
function dockerfileContext(text: string): Readable {
  const p = pack();
  p.entry({ name: 'Dockerfile' }, text);
  p.finalize();
  return p as unknown as Readable;
}

/** A cheap stand-in for a runtime image: the base plus Berth's runtime-image labels, on a made-up base name. */
async function fakeRuntimeImage(fakeBase: string, n: number): Promise<string> {
  const tag = `berth-test-gc:${fakeBase.split(':')[1]}-${n}`;
  const labels = `berth.managed=true berth.kind=runtime-image berth.base=${fakeBase} berth.content-hash=${n}`;
  const { id } = await engine.images.build(dockerfileContext(`FROM ${BASE}\nLABEL ${labels}\n`), { tag });
  images.push(id);
  return id;
}

afterAll(async () => {
  for (const id of containers) await engine.containers.remove(id).catch(() => undefined);
  for (const id of images) await engine.images.remove(id, { force: true }).catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

interface ImageRow {
  tag: string | null;
  id: string;
  kind: 'base' | 'runtime';
  base: string | null;
  size_bytes: number;
  created_at: string;
}

interface BuildJson {
  tag: string;
  image_id: string;
  cached: boolean;
  base: string;
  duration_ms: number;
}

interface GcJson {
  dry_run: boolean;
  containers: Array<{ id: string; name: string; sandbox_id: string | null; state: string }>;
  images: Array<{ id: string; tags: string[]; base: string }>;
  other_instances: number;
  failures: unknown[];
}

describe.skipIf(skip)('berth image', () => {
  let built: BuildJson;

  beforeAll(async () => {
    // The base is bootstrapped only where it is missing; otherwise this answers at once.
    const boot = await berthJson<{ tag: string; cached: boolean }>(['image', 'bootstrap'], BUILD_TIMEOUT_MS);
    expect(boot.tag).toBe(BASE);
    built = await berthJson<BuildJson>(['image', 'build'], BUILD_TIMEOUT_MS);
  }, BUILD_TIMEOUT_MS * 2);

  it('build prints the tag, and a second build is a cache hit with the same tag', async () => {
    expect(built.tag).toMatch(/^berth-runtime:[0-9a-f]{16}$/);
    expect(built.base).toBe(BASE);
    const again = await berthJson<BuildJson>(['image', 'build']);
    expect(again).toMatchObject({ tag: built.tag, cached: true, image_id: built.image_id });

    const plain = await berth(['image', 'build']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe(`${built.tag}\n`);
    // Progress lines carry the elapsed time.
    expect(plain.stderr).toMatch(/^\[\s*\d+\.\d+s\] /m);
  });

  it('ls lists the base and the runtime image with size and age', async () => {
    const rows = await berthJson<ImageRow[]>(['image', 'ls']);
    const base = rows.find((r) => r.tag === BASE);
    const runtime = rows.find((r) => r.tag === built.tag);
    expect(base).toMatchObject({ kind: 'base', base: null });
    expect(runtime).toMatchObject({ kind: 'runtime', base: BASE, id: built.image_id });
    for (const r of [base!, runtime!]) {
      expect(r.size_bytes).toBeGreaterThan(10_000_000);
      expect(Date.parse(r.created_at)).toBeLessThanOrEqual(Date.now());
    }
    const table = await berth(['image', 'ls']);
    expect(table.stdout).toMatch(/^IMAGE\s+KIND\s+BASE\s+SIZE\s+AGE/);
    expect(table.stdout).toContain(built.tag);
  });

  it('a missing base image is one line saying what to do', async () => {
    const r = await berth(['image', 'build', '--base', 'berth-test-no-such-image:latest']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(
      /^berth: base image berth-test-no-such-image:latest not found locally.*pull, load or build/,
    );
  });
});

describe.skipIf(skip)('berth gc', () => {
  const suffix = randomBytes(4).toString('hex');
  const orphanId = `gc-orphan-${suffix}`;
  const ownedOrphanId = `gc-owned-${suffix}`;
  const liveId = `gc-live-${suffix}`;
  // Owned too: an exited sandbox resumes on its next action; keep_alive asked for the container to stay.
  const exitedId = `gc-exited-${suffix}`;
  const keptId = `gc-kept-${suffix}`;
  const foreignId = `gc-foreign-${suffix}`;
  const fakeBase = `berth-test-gc-base:${suffix}`;
  const fake: string[] = [];
  const byName: Record<string, string> = {};

  function sandboxContainer(sandboxId: string, image: string, owner?: string): Promise<string> {
    return engine.containers
      .run({
        name: `berth-test-gc-${sandboxId}`,
        Image: image,
        Cmd: ['sleep', '300'],
        Labels: {
          'berth.managed': 'true',
          'berth.kind': 'sandbox',
          'berth.sandbox.id': sandboxId,
          ...(owner ? { 'berth.owner': owner } : {}),
        },
        HostConfig: { NetworkMode: 'none', AutoRemove: false },
      })
      .then((id) => {
        containers.push(id);
        byName[sandboxId] = id;
        return id;
      });
  }

  beforeAll(async () => {
    // Three "runtime images" on one made-up base, a second apart (the engine's clock has seconds).
    for (let n = 1; n <= 3; n++) {
      fake.push(await fakeRuntimeImage(fakeBase, n));
      if (n < 3) await new Promise((r) => setTimeout(r, 1100));
    }
    const store = Store.open(join(dataDir, 'berth.db'));
    try {
      store.sandboxes.insert({ id: liveId, state: 'running', image: 'x', session_api_key: 'k', spec: {} });
      store.sandboxes.insert({ id: exitedId, state: 'exited', image: 'x', session_api_key: 'k', spec: {} });
      store.sandboxes.insert({
        id: keptId,
        state: 'running',
        image: 'x',
        session_api_key: 'k',
        spec: {},
        keep_alive: true,
      });
      store.sandboxes.markDeleted(keptId);
      store.sandboxes.insert({
        id: `gc-deleted-${suffix}`,
        state: 'deleted',
        image: 'x',
        session_api_key: 'k',
        spec: {},
      });
    } finally {
      store.close();
    }
    await sandboxContainer(orphanId, BASE);
    await sandboxContainer(ownedOrphanId, BASE, instanceOwner(dataDir));
    await sandboxContainer(`gc-deleted-${suffix}`, BASE, instanceOwner(dataDir));
    // The live sandbox uses the oldest fake image, so that one must stay.
    await sandboxContainer(liveId, fake[0]!, instanceOwner(dataDir));
    await sandboxContainer(exitedId, fake[0]!, instanceOwner(dataDir));
    await sandboxContainer(keptId, fake[0]!, instanceOwner(dataDir));
    await sandboxContainer(foreignId, BASE, 'another-berth-instance');
  }, 120_000);

  it('--dry-run lists orphans and old unused runtime images, and removes nothing', async () => {
    const plan = await berthJson<GcJson>(['gc', '--dry-run', '--min-age', '0']);
    expect(plan.dry_run).toBe(true);
    const listed = plan.containers.map((c) => c.sandbox_id);
    expect(listed).toContain(orphanId);
    expect(listed).toContain(ownedOrphanId);
    expect(listed).toContain(`gc-deleted-${suffix}`);
    expect(listed).not.toContain(liveId);
    expect(listed).not.toContain(foreignId);
    expect(plan.containers.find((c) => c.sandbox_id === orphanId)?.id).toBe(byName[orphanId]);
    expect(plan.other_instances).toBeGreaterThanOrEqual(1);
    const imageIds = plan.images.map((i) => i.id);
    expect(imageIds).toContain(fake[1]);
    expect(imageIds).not.toContain(fake[0]); // used by the live sandbox
    expect(imageIds).not.toContain(fake[2]); // the newest on its base
    expect(imageIds).not.toContain((await engine.images.inspect(BASE)).id); // base images are never collected

    for (const id of Object.values(byName)) expect(await engine.containers.find(id)).toBeDefined();
    expect(await engine.images.exists(fake[1]!)).toBe(true);

    const text = await berth(['gc', '--dry-run', '--min-age', '0']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Would remove:/);
    expect(text.stdout).toContain(`berth-test-gc-${orphanId}`);
  });

  it('removes the orphans, keeps live and foreign sandboxes, and leaves images younger than --min-age', async () => {
    // The default minimum age keeps images built moments ago (and any other test's images) in place.
    const result = await berthJson<GcJson>(['gc']);
    expect(result.dry_run).toBe(false);
    expect(result.failures).toEqual([]);
    const removed = result.containers.map((c) => c.sandbox_id);
    expect(removed).toEqual(expect.arrayContaining([orphanId, ownedOrphanId, `gc-deleted-${suffix}`]));
    expect(await engine.containers.find(byName[orphanId]!)).toBeUndefined();
    expect(await engine.containers.find(byName[ownedOrphanId]!)).toBeUndefined();
    expect(await engine.containers.find(byName[liveId]!)).toBeDefined();
    expect(await engine.containers.find(byName[exitedId]!)).toBeDefined();
    expect(await engine.containers.find(byName[keptId]!)).toBeDefined();
    expect(await engine.containers.find(byName[foreignId]!)).toBeDefined();
    expect(result.images.map((i) => i.id)).not.toContain(fake[1]);
    expect(await engine.images.exists(fake[1]!)).toBe(true);

    const again = await berthJson<GcJson>(['gc', '--dry-run']);
    expect(again.containers.map((c) => c.sandbox_id)).not.toContain(orphanId);
  });
});

/** The host port allocator: lock files in a temporary directory, real test binds, real child processes. */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canBind, PortAllocator, STALE_LOCK_GRACE_MS } from '../../src/docker/ports.js';
import { BerthError } from '../../src/protocol/errors.js';

const childScript = fileURLToPath(new URL('./fixtures/reserve-ports.ts', import.meta.url));

let dir: string;
const servers: Server[] = [];
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-ports-'));
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A random range of `size` ports below the ephemeral range, so ports other tests get from the kernel
 * (port 0) are not there, and two test runs at once rarely pick the same range.
 */
function randomRange(size: number): { min: number; max: number } {
  const min = 20000 + Math.floor(Math.random() * (12000 - size));
  return { min, max: min + size - 1 };
}

function lockFiles(): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.lock'));
}

function listen(port: number, host: string): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen({ port, host }, () => {
      servers.push(s);
      resolve(s);
    });
  });
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

function writeLock(port: number, lock: Record<string, unknown>): void {
  writeFileSync(join(dir, `${port}.lock`), JSON.stringify(lock));
}

function oldIso(): string {
  return new Date(Date.now() - STALE_LOCK_GRACE_MS - 60_000).toISOString();
}

async function expectUnavailable(p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BerthError);
  expect((err as BerthError).code).toBe('UNAVAILABLE');
}

describe('PortAllocator in one process', () => {
  it('gives 200 concurrent reservations distinct ports, each under a lock file', async () => {
    const range = randomRange(300);
    const allocator = new PortAllocator({ lockDir: dir, ...range, bindHost: '127.0.0.1' });
    const leases = await Promise.all(Array.from({ length: 200 }, (_, i) => allocator.reserve(`sb-${i}`, 1)));
    const ports = leases.flatMap((l) => l.ports);
    expect(new Set(ports).size).toBe(200);
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(range.min);
      expect(p).toBeLessThanOrEqual(range.max);
    }
    expect(lockFiles()).toHaveLength(200);
    const lock = JSON.parse(readFileSync(join(dir, `${leases[7]!.ports[0]}.lock`), 'utf8'));
    expect(lock).toMatchObject({ owner: 'sb-7', pid: process.pid });
    expect(Date.parse(lock.at)).toBeGreaterThan(Date.now() - 60_000);
    await Promise.all(leases.map((l) => l.release()));
    expect(lockFiles()).toHaveLength(0);
  });

  it('gives multi-port reservations from several allocators on one directory distinct ports', async () => {
    const range = randomRange(220);
    const a = new PortAllocator({ lockDir: dir, ...range, bindHost: '127.0.0.1' });
    const b = new PortAllocator({ lockDir: dir, ...range, bindHost: '127.0.0.1' });
    const leases = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).reserve(`multi-${i}`, 4)),
    );
    const ports = leases.flatMap((l) => l.ports);
    expect(leases.every((l) => new Set(l.ports).size === 4)).toBe(true);
    expect(new Set(ports).size).toBe(200);
  });

  it('never hands out a port a real socket listens on', async () => {
    let range = randomRange(10);
    // Find a range whose upper half is free, then listen on the lower half.
    for (let i = 0; i < 20; i++) {
      const upper = Array.from({ length: 5 }, (_, k) => range.min + 5 + k);
      if ((await Promise.all(upper.map((p) => canBind(p, '0.0.0.0')))).every(Boolean)) break;
      range = randomRange(10);
    }
    const listened: number[] = [];
    for (let p = range.min; p < range.min + 5; p++) {
      // Some on one address only: a test bind on the wildcard address must still see them.
      if (await listen(p, p % 2 ? '127.0.0.1' : '0.0.0.0')) listened.push(p);
    }
    const allocator = new PortAllocator({ lockDir: dir, ...range, bindHost: '0.0.0.0' });
    const got: number[] = [];
    for (let i = 0; i < 10 - listened.length; i++)
      got.push(...(await allocator.reserve(`free-${i}`, 1)).ports);
    for (const p of listened) expect(got).not.toContain(p);
    expect(new Set(got).size).toBe(got.length);
    // Nothing is left: the next reservation fails fast, and leaves no lock behind.
    const started = Date.now();
    await expectUnavailable(allocator.reserve('one-too-many', 1));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(lockFiles()).toHaveLength(got.length);
  });

  it('rolls back a partial multi-port reservation that cannot be completed', async () => {
    const range = randomRange(4);
    const allocator = new PortAllocator({ lockDir: dir, ...range, bindHost: '127.0.0.1' });
    const first = await allocator.reserve('first', 2);
    await expectUnavailable(allocator.reserve('second', 3));
    expect(lockFiles()).toHaveLength(2);
    // Only 'first' holds ports: the two 'second' had taken are free for the next reservation.
    const third = await allocator.reserve('third', 2);
    expect([...first.ports, ...third.ports].sort((x, y) => x - y)).toEqual(
      [0, 1, 2, 3].map((i) => range.min + i),
    );
  });

  it('rejects bad ranges and counts', async () => {
    expect(() => new PortAllocator({ lockDir: dir, min: 40000, max: 30000 })).toThrow(/not valid/);
    expect(() => new PortAllocator({ lockDir: dir, min: 0 })).toThrow(/not valid/);
    const allocator = new PortAllocator({ lockDir: dir, ...randomRange(5) });
    await expect(allocator.reserve('x', 0)).rejects.toThrow(/cannot reserve 0/);
    await expect(allocator.reserve('x', 6)).rejects.toThrow(/cannot reserve 6/);
  });

  it('release frees a lease once; releaseOwner frees all of an owner, even locks another process wrote', async () => {
    const range = randomRange(50);
    const allocator = new PortAllocator({ lockDir: dir, ...range, bindHost: '127.0.0.1' });
    const a1 = await allocator.reserve('a', 2);
    const a2 = await allocator.reserve('a', 1);
    const b = await allocator.reserve('b', 2);
    expect(lockFiles()).toHaveLength(5);
    await a1.release();
    await a1.release();
    expect(lockFiles().sort()).toEqual([...a2.ports, ...b.ports].map((p) => `${p}.lock`).sort());

    // A lock for 'a' that another (live) process wrote: the parent of this test process.
    const foreign = [range.min, range.max].find((p) => ![...a2.ports, ...b.ports].includes(p))!;
    writeLock(foreign, { owner: 'a', pid: process.ppid, host: hostname(), at: new Date().toISOString() });
    await allocator.releaseOwner('a');
    expect(lockFiles().sort()).toEqual(b.ports.map((p) => `${p}.lock`).sort());
    // 'a' holds nothing here either: another reservation (same process, same lock dir) gets a2's port.
    const again = new PortAllocator({
      lockDir: dir,
      min: a2.ports[0]!,
      max: a2.ports[0]!,
      bindHost: '127.0.0.1',
    });
    const taken = await again.reserve('c', 1);
    expect(taken.ports).toEqual(a2.ports);
    await taken.release();
    // Releasing a lease whose owner was released already changes nothing.
    await a2.release();
    expect(lockFiles()).toHaveLength(2);
  });

  it('markBad keeps a port out of the next reservations', async () => {
    const range = randomRange(2);
    const allocator = new PortAllocator({ lockDir: dir, ...range, bindHost: '127.0.0.1' });
    const lease = await allocator.reserve('sb', 1);
    const bad = lease.ports[0]!;
    allocator.markBad('sb', bad);
    await lease.release();
    for (let i = 0; i < 5; i++) {
      const next = await allocator.reserve('sb', 1);
      expect(next.ports).not.toContain(bad);
      await next.release();
    }
    await expectUnavailable(allocator.reserve('sb', 2));
  });
});

describe('PortAllocator stale locks', () => {
  it('takes over a lock only when its writer is dead and it is older than the grace period', async () => {
    const dead = await deadPid();
    const cases = [
      { name: 'dead-old', pid: dead, at: oldIso(), taken: true },
      { name: 'dead-fresh', pid: dead, at: new Date().toISOString(), taken: false },
      { name: 'alive-old', pid: process.ppid, at: oldIso(), taken: false },
    ];
    for (const c of cases) {
      const range = randomRange(1);
      writeLock(range.min, { owner: c.name, pid: c.pid, host: hostname(), at: c.at });
      const allocator = new PortAllocator({ lockDir: dir, ...range, bindHost: '127.0.0.1' });
      if (c.taken) {
        const lease = await allocator.reserve('taker', 1);
        expect(lease.ports).toEqual([range.min]);
        expect(JSON.parse(readFileSync(join(dir, `${range.min}.lock`), 'utf8')).owner).toBe('taker');
      } else {
        await expectUnavailable(allocator.reserve('taker', 1));
        expect(JSON.parse(readFileSync(join(dir, `${range.min}.lock`), 'utf8')).owner).toBe(c.name);
      }
    }
  });

  it('takes over an old lock that was never written completely, but not a fresh one', async () => {
    const range = randomRange(1);
    const file = join(dir, `${range.min}.lock`);
    writeFileSync(file, '');
    const allocator = new PortAllocator({ lockDir: dir, ...range, bindHost: '127.0.0.1' });
    await expectUnavailable(allocator.reserve('taker', 1));
    const later = new PortAllocator({
      lockDir: dir,
      ...range,
      bindHost: '127.0.0.1',
      now: () => Date.now() + STALE_LOCK_GRACE_MS + 60_000,
    });
    expect((await later.reserve('taker', 1)).ports).toEqual([range.min]);
  });

  it('sweep drops dead owners, keeps live processes and fresh starts, and adopts live owners', async () => {
    const range = randomRange(20);
    const dead = await deadPid();
    const p = (i: number) => range.min + i;
    writeLock(p(0), { owner: 'gone', pid: dead, host: hostname(), at: oldIso() });
    writeLock(p(1), { owner: 'survivor', pid: dead, host: hostname(), at: oldIso() });
    writeLock(p(2), { owner: 'other-plane', pid: process.ppid, host: hostname(), at: oldIso() });
    writeLock(p(3), { owner: 'elsewhere', pid: dead, host: `not-${hostname()}`, at: oldIso() });
    writeFileSync(join(dir, `${p(4)}.lock.123.abc.moved`), 'x');
    const allocator = new PortAllocator({ lockDir: dir, ...range, bindHost: '127.0.0.1' });
    // On ports away from the leftovers, so it takes none of them over.
    const upper = new PortAllocator({ lockDir: dir, min: p(10), max: range.max, bindHost: '127.0.0.1' });
    const starting = await upper.reserve('not-recorded-yet', 1);

    expect(await allocator.sweep(new Set(['survivor']))).toBe(1);
    const left = lockFiles().sort();
    expect(left).toEqual(
      [p(1), p(2), p(3), starting.ports[0]!].map((x) => `${x}.lock`).sort((x, y) => (x < y ? -1 : 1)),
    );
    // Adopted: re-stamped with this pid, held here, so it is neither taken over nor swept again.
    const adopted = JSON.parse(readFileSync(join(dir, `${p(1)}.lock`), 'utf8'));
    expect(adopted).toMatchObject({ owner: 'survivor', pid: process.pid });
    const onlyAdopted = new PortAllocator({ lockDir: dir, min: p(1), max: p(1), bindHost: '127.0.0.1' });
    await expectUnavailable(onlyAdopted.reserve('taker', 1));
    await allocator.releaseOwner('survivor');
    expect(existsSync(join(dir, `${p(1)}.lock`))).toBe(false);

    // Much later, this process's own forgotten reservation counts as a leftover too; moved files go.
    const later = new PortAllocator({
      lockDir: dir,
      ...range,
      bindHost: '127.0.0.1',
      now: () => Date.now() + STALE_LOCK_GRACE_MS + 60_000,
    });
    expect(await later.sweep(new Set())).toBe(1);
    expect(lockFiles().sort()).toEqual([p(2), p(3)].map((x) => `${x}.lock`).sort());
    expect(readdirSync(dir).some((n) => n.endsWith('.moved'))).toBe(false);
  });
});

describe('PortAllocator across processes', () => {
  // Two rounds: a lost race shows up only sometimes, so one run gives it two chances.
  it.each([1, 2])(
    'gives 4 processes reserving 50 ports each at once distinct ports, through stale locks (round %i)',
    async () => {
      const range = randomRange(230);
      // Crash leftovers on most of the range, so most claims are takeovers racing each other.
      const dead = await deadPid();
      mkdirSync(dir, { recursive: true });
      const seeded = new Set<number>();
      for (let i = 0; i <= range.max - range.min; i += i % 10 === 9 ? 2 : 1) {
        writeLock(range.min + i, { owner: `crashed-${i}`, pid: dead, host: hostname(), at: oldIso() });
        seeded.add(range.min + i);
      }
      const outputs = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const child = spawn(
            process.execPath,
            ['--import', 'tsx', childScript, dir, String(range.min), String(range.max), '50', '1'],
            { stdio: ['pipe', 'pipe', 'inherit'] },
          );
          children.push(child);
          const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
          const first = await lines.next();
          expect(first.value).toBe('ready');
          return { child, lines };
        }),
      );
      for (const { child } of outputs) child.stdin!.write('go\n');
      const results = await Promise.all(
        outputs.map(async ({ lines }) => JSON.parse((await lines.next()).value as string) as number[]),
      );
      const all = results.flat();
      expect(results.every((r) => r.length === 50)).toBe(true);
      expect(new Set(all).size).toBe(200);
      for (const p of all) {
        const lock = JSON.parse(readFileSync(join(dir, `${p}.lock`), 'utf8'));
        expect(lock.owner).toMatch(/^child-/);
      }
      expect(all.filter((p) => seeded.has(p)).length).toBeGreaterThan(100);
      expect(readdirSync(dir).some((n) => n.endsWith('.moved') || n.endsWith('.takeover'))).toBe(false);
    },
    60_000,
  );
});

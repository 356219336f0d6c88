/**
 * Host port allocation for sandboxes, safe between concurrent starts in one process and across processes
 * (two control planes, or a CLI, on one host).
 *
 * A port is held by a lock file `<lockDir>/<port>.lock`, created with O_EXCL and holding
 * `{ owner, pid, host, at, nonce }`, where `owner` is the sandbox id. This process also keeps the ports it
 * holds or is trying in memory (shared by every allocator on the same lockDir), so two calls here never
 * race for one file. A claimed port is then test-bound on `bindHost`, so ports that something outside
 * Berth listens on are skipped. The lock stays until `release()` / `releaseOwner()`: the container holds
 * the port while it lives, and with iptables-only publishing (no docker-proxy) a bind test alone would not
 * see it.
 *
 * Crash leftovers: a lock whose writer process is gone and which is older than STALE_LOCK_GRACE_MS may be
 * taken over by `reserve()`; `sweep(live)` drops the locks of owners that are gone and adopts (re-stamps
 * with this pid) the locks of live owners whose writer died, so a restarted control plane keeps its
 * sandboxes' ports. Every takeover, drop or re-stamp of a lock this process does not hold happens while
 * holding `<port>.takeover` (created with O_EXCL), so two processes never work on one lock at once; the
 * lock itself is removed by rename-then-check: renamed to a unique name (only one process can), then
 * compared with what was judged stale, and linked back if it differs.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { BerthError, ErrorCode } from '../protocol/errors.js';

/**
 * Default range: wholly below Linux's ephemeral range (32768-60999), where the kernel puts the local
 * end of outgoing connections: a port picked there can be taken by one between the check and the
 * listen (30000-39999 overlapped it, and CI saw a sandbox's own port in use).
 */
export const DEFAULT_MIN_PORT = 20000;
export const DEFAULT_MAX_PORT = 32767;
/** Test-binding the wildcard address also catches listeners on any single address. */
export const DEFAULT_BIND_HOST = '0.0.0.0';
/**
 * A lock whose writer died may be taken over only after this long: long enough for any sandbox start
 * (image build excluded) to have written its record, so `sweep` and takeovers never race a start.
 */
export const STALE_LOCK_GRACE_MS = 10 * 60_000;
/** How long `reserve()` keeps trying before it gives up: candidates are tried in microseconds each. */
export const RESERVE_TIMEOUT_MS = 15_000;
/** A test bind answers at once; this only bounds a wedged kernel call. */
export const BIND_TEST_TIMEOUT_MS = 2_000;
/** A takeover holds `<port>.takeover` for milliseconds; one this old was left by a crashed process. */
export const TAKEOVER_STALE_MS = 30_000;
/** How long a port Docker called "already allocated" is skipped: it belongs to a container Berth did not lock. */
export const BAD_PORT_QUARANTINE_MS = 5 * 60_000;
/** Pause between rounds when every candidate is being tried by another call of this process. */
const BUSY_RETRY_MS = 5;
/** Random picks before falling back to listing the free candidates (a nearly full range). */
const RANDOM_PICKS = 32;

export interface PortAllocatorOptions {
  /** Directory of the lock files; shared by every process that allocates from the same range. */
  lockDir: string;
  /** @default 20000 */
  min?: number;
  /** @default 32767 */
  max?: number;
  /** Address to test-bind, e.g. 127.0.0.1 or 0.0.0.0. @default 0.0.0.0 */
  bindHost?: string;
  /** For tests. @default Date.now */
  now?: () => number;
}

export interface PortLease {
  readonly ports: number[];
  /** Releases these ports (those the owner still holds). Idempotent. */
  release(): Promise<void>;
}

/** What a lock file holds. */
export interface PortLock {
  owner: string;
  pid: number;
  /** Host name of the writer: a pid means nothing on another host (a lockDir on a shared filesystem). */
  host: string;
  /** ISO 8601 */
  at: string;
  /** Makes every lock's content unique, for the rename-then-check takeover. */
  nonce: string;
}

interface Held {
  owner: string;
  atMs: number;
}

/** What this process knows about one lockDir, shared by every allocator on it. */
interface ProcessState {
  held: Map<number, Held>;
  /** Ports some call here is trying right now. */
  trying: Set<number>;
  /** Port -> time until which it is skipped. */
  bad: Map<number, number>;
}

const states = new Map<string, ProcessState>();

function processState(lockDir: string): ProcessState {
  let s = states.get(lockDir);
  if (!s) {
    s = { held: new Map(), trying: new Set(), bad: new Map() };
    states.set(lockDir, s);
  }
  return s;
}

const LOCK_FILE = /^(\d+)\.lock$/;
const MOVED_FILE = /^\d+\.(lock|takeover)\..+\.moved$/;
const TAKEOVER_FILE = /^\d+\.takeover$/;
const HOST = hostname();

type ClaimResult = 'claimed' | 'taken' | 'in-use';

export class PortAllocator {
  readonly lockDir: string;
  readonly min: number;
  readonly max: number;
  readonly bindHost: string;
  private readonly now: () => number;
  private readonly state: ProcessState;
  private dirReady: Promise<void> | undefined;

  constructor(opts: PortAllocatorOptions) {
    this.lockDir = resolve(opts.lockDir);
    this.min = opts.min ?? DEFAULT_MIN_PORT;
    this.max = opts.max ?? DEFAULT_MAX_PORT;
    this.bindHost = opts.bindHost ?? DEFAULT_BIND_HOST;
    this.now = opts.now ?? Date.now;
    const valid = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;
    if (!valid(this.min) || !valid(this.max) || this.min > this.max) {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        `port range ${this.min}-${this.max} is not valid: use ports from 1 to 65535, min <= max`,
      );
    }
    this.state = processState(this.lockDir);
  }

  /** Reserves `count` distinct free ports for `owner` (a sandbox id). */
  async reserve(owner: string, count: number): Promise<PortLease> {
    const size = this.max - this.min + 1;
    if (!Number.isInteger(count) || count < 1 || count > size) {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        `cannot reserve ${count} ports from ${this.min}-${this.max} (${size} ports)`,
      );
    }
    if (!owner) throw new BerthError(ErrorCode.VALIDATION_FAILED, 'a port reservation needs an owner');
    await this.ensureDir();
    const deadline = this.now() + RESERVE_TIMEOUT_MS;
    const got: number[] = [];
    const tried = new Set<number>();
    try {
      while (got.length < count) {
        if (this.now() > deadline) throw this.exhausted(count, got.length, 'timed out');
        const port = this.pickCandidate(tried);
        if (port === undefined) {
          // Every candidate is either tried or being tried by another call here, which may yet fail.
          if (this.state.trying.size === 0 || tried.size >= size) {
            throw this.exhausted(count, got.length, 'no free port left');
          }
          await sleep(BUSY_RETRY_MS);
          continue;
        }
        tried.add(port);
        this.state.trying.add(port);
        try {
          if ((await this.claim(port, owner)) === 'claimed') got.push(port);
        } finally {
          this.state.trying.delete(port);
        }
      }
    } catch (err) {
      await this.releasePorts(owner, got);
      throw err;
    }
    let released = false;
    return {
      ports: got,
      release: async () => {
        if (released) return;
        released = true;
        await this.releasePorts(owner, got);
      },
    };
  }

  /** Releases every port `owner` holds (the sandbox was removed), including locks other processes wrote. */
  async releaseOwner(owner: string): Promise<void> {
    const mine = [...this.state.held].filter(([, h]) => h.owner === owner).map(([p]) => p);
    await this.releasePorts(owner, mine);
    for (const { port, raw, lock } of await this.scan()) {
      if (lock?.owner !== owner || this.state.held.has(port) || this.state.trying.has(port)) continue;
      await this.seize(port, raw);
    }
  }

  /**
   * Drops lock files whose owner is not in `live` (crash leftovers), and returns how many it dropped.
   * Kept: locks of another live process (its sandboxes are not in this `live`), and this process's own
   * locks younger than STALE_LOCK_GRACE_MS (a start whose record is not written yet). Locks of live
   * owners whose writer died are adopted: re-stamped with this pid and held here, so a restarted control
   * plane keeps its sandboxes' ports; release them with `releaseOwner`.
   */
  async sweep(live: Set<string>): Promise<number> {
    await this.ensureDir();
    let dropped = 0;
    const now = this.now();
    for (const [port, h] of [...this.state.held]) {
      if (!live.has(h.owner) && now - h.atMs > STALE_LOCK_GRACE_MS) {
        await this.releasePorts(h.owner, [port]);
        dropped++;
      }
    }
    for (const entry of await this.scan()) {
      const { port, raw, lock, mtimeMs } = entry;
      if (this.state.held.has(port) || this.state.trying.has(port)) continue;
      if (lock && !this.writerGone(lock)) continue;
      if (!lock && now - mtimeMs <= STALE_LOCK_GRACE_MS) continue; // being written right now
      if (lock && live.has(lock.owner)) {
        await this.adopt(port, raw, lock.owner);
      } else if (await this.seize(port, raw)) {
        dropped++;
      }
    }
    // Files a crashed takeover left behind.
    for (const name of await readdir(this.lockDir).catch(() => [] as string[])) {
      const file = join(this.lockDir, name);
      if (TAKEOVER_FILE.test(name)) await this.clearStaleFile(file, TAKEOVER_STALE_MS);
      if (!MOVED_FILE.test(name)) continue;
      const info = await stat(file).catch(() => undefined);
      if (info && now - info.mtimeMs > STALE_LOCK_GRACE_MS) await unlink(file).catch(() => undefined);
    }
    return dropped;
  }

  /**
   * Marks a port as bad for this owner's next try (Docker said "port is already allocated": a container
   * Berth holds no lock for publishes it). No reservation in this process picks it for
   * BAD_PORT_QUARANTINE_MS. The owner's lease is unchanged: release it as usual and reserve again.
   */
  markBad(_owner: string, port: number): void {
    this.state.bad.set(port, this.now() + BAD_PORT_QUARANTINE_MS);
  }

  private ensureDir(): Promise<void> {
    this.dirReady ??= mkdir(this.lockDir, { recursive: true, mode: 0o700 })
      .then(() => undefined)
      .catch((err: unknown) => {
        this.dirReady = undefined;
        throw new BerthError(
          ErrorCode.UNAVAILABLE,
          `cannot create the port lock directory ${this.lockDir}: ${(err as Error).message}`,
        );
      });
    return this.dirReady;
  }

  private lockPath(port: number): string {
    return join(this.lockDir, `${port}.lock`);
  }

  private pickCandidate(tried: Set<number>): number | undefined {
    const now = this.now();
    const usable = (p: number) => {
      if (tried.has(p) || this.state.held.has(p) || this.state.trying.has(p)) return false;
      const badUntil = this.state.bad.get(p);
      if (badUntil === undefined) return true;
      if (badUntil > now) return false;
      this.state.bad.delete(p);
      return true;
    };
    const size = this.max - this.min + 1;
    for (let i = 0; i < RANDOM_PICKS; i++) {
      const p = this.min + Math.floor(Math.random() * size);
      if (usable(p)) return p;
    }
    const free: number[] = [];
    for (let p = this.min; p <= this.max; p++) if (usable(p)) free.push(p);
    return free.length ? free[Math.floor(Math.random() * free.length)] : undefined;
  }

  /** Lock file, then test bind. The caller has put `port` in `trying`. */
  private async claim(port: number, owner: string): Promise<ClaimResult> {
    let created = await this.createLock(port, owner);
    if (!created) {
      const existing = await this.readLock(port);
      if (!existing || !this.isStale(existing)) return 'taken';
      if (!(await this.seize(port, existing.raw))) return 'taken';
      created = await this.createLock(port, owner);
      if (!created) return 'taken';
    }
    if (!(await canBind(port, this.bindHost))) {
      await unlink(this.lockPath(port)).catch(() => undefined);
      return 'in-use';
    }
    this.state.held.set(port, { owner, atMs: created.atMs });
    return 'claimed';
  }

  /** Creates the lock with O_EXCL; undefined when it exists. */
  private async createLock(port: number, owner: string): Promise<{ atMs: number } | undefined> {
    const atMs = this.now();
    try {
      await writeFile(this.lockPath(port), lockContent(owner, atMs), { flag: 'wx', mode: 0o600 });
      return { atMs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
      throw new BerthError(
        ErrorCode.UNAVAILABLE,
        `cannot write a port lock in ${this.lockDir}: ${(err as Error).message}`,
      );
    }
  }

  private async readLock(
    port: number,
  ): Promise<{ raw: string; lock: PortLock | undefined; mtimeMs: number } | undefined> {
    const file = this.lockPath(port);
    try {
      const [raw, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
      return { raw, lock: parseLock(raw), mtimeMs: info.mtimeMs };
    } catch {
      return undefined; // gone meanwhile
    }
  }

  /** Whether a lock may be taken over: its writer is gone and it is older than the grace period. */
  private isStale(entry: { lock: PortLock | undefined; mtimeMs: number }): boolean {
    const { lock } = entry;
    // Unreadable content: a writer died between creating and writing; judge by the file's age.
    const atMs = lock ? Date.parse(lock.at) : entry.mtimeMs;
    if (!(this.now() - (Number.isFinite(atMs) ? atMs : entry.mtimeMs) > STALE_LOCK_GRACE_MS)) return false;
    return !lock || this.writerGone(lock);
  }

  /**
   * Whether the process that wrote `lock` is gone. Our own pid counts as gone for a port this process
   * neither holds nor tries: it is a previous incarnation with the same pid (pid 1 in a container).
   */
  private writerGone(lock: PortLock): boolean {
    if (lock.host !== HOST) return false; // cannot tell; another host's locks are left alone
    if (lock.pid === process.pid) return true; // callers check `held` and `trying` first
    return !pidAlive(lock.pid);
  }

  /**
   * Runs `fn` holding `<port>.takeover`, created with O_EXCL: every removal or rewrite of a lock this
   * process does not hold goes through it, so no two processes take over (or drop) one lock at once.
   * Undefined when another process holds it; one left by a crashed process is cleared for the next try.
   */
  private async withTakeover<T>(port: number, fn: () => Promise<T>): Promise<T | undefined> {
    const file = join(this.lockDir, `${port}.takeover`);
    const token = `${process.pid} ${HOST} ${randomBytes(8).toString('hex')}`;
    try {
      await writeFile(file, token, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
      await this.clearStaleFile(file, TAKEOVER_STALE_MS);
      return undefined;
    }
    try {
      return await fn();
    } finally {
      // Only ours: a takeover file is cleared by others only when far older than any takeover takes.
      if ((await readFile(file, 'utf8').catch(() => undefined)) === token)
        await unlink(file).catch(() => undefined);
    }
  }

  /** Removes `file` if it is older than `maxAgeMs`, by rename-then-check so a fresh one is never lost. */
  private async clearStaleFile(file: string, maxAgeMs: number): Promise<void> {
    const [content, info] = await Promise.all([
      readFile(file, 'utf8').catch(() => undefined),
      stat(file).catch(() => undefined),
    ]);
    if (content === undefined || !info || this.now() - info.mtimeMs <= maxAgeMs) return;
    await this.renameAndCheck(file, content);
  }

  /**
   * Moves `file` aside (only one process can) and checks it still holds `expected`; if it holds
   * something else (rewritten since it was read), it is put back. True when `file` was removed.
   */
  private async renameAndCheck(file: string, expected: string): Promise<boolean> {
    const moved = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.moved`;
    try {
      await rename(file, moved);
    } catch {
      return false; // someone else moved or removed it first
    }
    const content = await readFile(moved, 'utf8').catch(() => undefined);
    if (content !== expected) await link(moved, file).catch(() => undefined);
    await unlink(moved).catch(() => undefined);
    return content === expected;
  }

  /**
   * Removes the lock of `port` if it still holds `expected` (the content judged stale or released).
   * True when this call removed it.
   */
  private async seize(port: number, expected: string): Promise<boolean> {
    const file = this.lockPath(port);
    const removed = await this.withTakeover(port, async () => {
      // Checked first, under the takeover file: a lock written since `expected` was read (a takeover
      // that finished meanwhile) is never moved, so the port is never free while someone holds it.
      // A lock that still reads `expected` cannot change now: its writer is gone, and every other
      // remover holds the takeover file.
      if ((await readFile(file, 'utf8').catch(() => undefined)) !== expected) return false;
      return this.renameAndCheck(file, expected);
    });
    return removed ?? false;
  }

  /**
   * Re-stamps a live owner's lock whose writer died with this pid, and holds it here. The new content
   * replaces the old in one rename, so the port is never free in between.
   */
  private async adopt(port: number, expected: string, owner: string): Promise<void> {
    const file = this.lockPath(port);
    const atMs = this.now();
    const fresh = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.moved`;
    this.state.trying.add(port);
    try {
      await this.withTakeover(port, async () => {
        if ((await readFile(file, 'utf8').catch(() => undefined)) !== expected) return;
        await writeFile(fresh, lockContent(owner, atMs), { mode: 0o600 });
        await rename(fresh, file);
        this.state.held.set(port, { owner, atMs });
      });
    } finally {
      await unlink(fresh).catch(() => undefined);
      this.state.trying.delete(port);
    }
  }

  /** Unlinks the locks of `ports` that `owner` holds in this process. */
  private async releasePorts(owner: string, ports: readonly number[]): Promise<void> {
    await Promise.all(
      ports.map(async (port) => {
        if (this.state.held.get(port)?.owner !== owner) return;
        await unlink(this.lockPath(port)).catch(() => undefined);
        this.state.held.delete(port);
      }),
    );
  }

  private async scan(): Promise<
    Array<{ port: number; raw: string; lock: PortLock | undefined; mtimeMs: number }>
  > {
    const names = await readdir(this.lockDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw new BerthError(ErrorCode.UNAVAILABLE, `cannot read ${this.lockDir}: ${err.message}`);
    });
    const out: Array<{ port: number; raw: string; lock: PortLock | undefined; mtimeMs: number }> = [];
    for (const name of names) {
      const m = LOCK_FILE.exec(name);
      if (!m) continue;
      const port = Number(m[1]);
      const entry = await this.readLock(port);
      if (entry) out.push({ port, ...entry });
    }
    return out;
  }

  private exhausted(count: number, got: number, why: string): BerthError {
    return new BerthError(
      ErrorCode.UNAVAILABLE,
      `no ${count} free host ports in ${this.min}-${this.max} (${why} after finding ${got}); ` +
        `free some by removing sandboxes (berth gc), or widen the port range`,
      { min: this.min, max: this.max, count },
    );
  }
}

function lockContent(owner: string, atMs: number): string {
  const lock: PortLock = {
    owner,
    pid: process.pid,
    host: HOST,
    at: new Date(atMs).toISOString(),
    nonce: randomBytes(8).toString('hex'),
  };
  return JSON.stringify(lock);
}

function parseLock(raw: string): PortLock | undefined {
  try {
    const v = JSON.parse(raw) as Partial<PortLock>;
    if (typeof v.owner !== 'string' || typeof v.pid !== 'number' || typeof v.at !== 'string')
      return undefined;
    return {
      owner: v.owner,
      pid: v.pid,
      host: typeof v.host === 'string' ? v.host : HOST,
      at: v.at,
      nonce: v.nonce ?? '',
    };
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a listening socket can be opened on `port` at `host` right now. */
export function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      server.removeAllListeners('error');
      server.on('error', () => undefined);
      if (server.listening) server.close(() => resolvePromise(ok));
      else resolvePromise(ok);
    };
    const timer = setTimeout(() => finish(false), BIND_TEST_TIMEOUT_MS);
    server.once('error', () => finish(false));
    server.listen({ port, host, exclusive: true }, () => finish(true));
    server.unref();
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The control plane, started in-process on a temporary data directory (port 0, no API key):
 *  (a) warm pool: POST /api/sandboxes {} (a pool hit) then the first `run true` through the proxy,
 *      waiting for the pool to refill between samples so every sample is a hit;
 *  (b) proxy overhead: `run true` through the control plane vs straight to the sandbox's runtime
 *      server, both on kept-alive connections, interleaved; with an in-process breakdown;
 *  (c) a burst of simultaneous creates on a second control plane with pool size 0 (real cold starts).
 *
 * Run: npx tsx bench/control-plane.ts   (or: npm run bench -- control-plane)
 * Counts: BENCH_POOL_SIZE (2), BENCH_POOL_N (20), BENCH_POOL_DIAG (1: interleave diagnostic samples),
 *         BENCH_PROXY_N (300), BENCH_BURST_N (50; 0 skips), BENCH_SANDBOX_UID (1000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { instanceOwner, type RunningControlPlane, startControlPlane } from '../src/api/start.js';
import { loadControlPlaneConfig } from '../src/config/control-plane.js';
import { BerthApiError, BerthClient, RuntimeServerClient } from '../src/sdk/index.js';
import { Store } from '../src/store/store.js';
import { printTable, type Row, summarize, writeJson } from './lib/stats.js';
import {
  describeLoad,
  docker,
  envInt,
  epochMs,
  expectObservationOk,
  expectRunOk,
  httpJson,
  isMain,
  type MachineLoad,
  machineLoad,
  median,
  ms,
  parseDockerTime,
  printKeyValues,
  RUN_TRUE,
  removeLabelled,
  sleep,
} from './lib/util.js';

const POOL_SIZE = envInt('BENCH_POOL_SIZE', 2);
const POOL_N = envInt('BENCH_POOL_N', 20);
const PROXY_N = envInt('BENCH_PROXY_N', 300);
const BURST_N = envInt('BENCH_BURST_N', 50);
const POOL_DIAG = envInt('BENCH_POOL_DIAG', 1) > 0;
const SANDBOX_UID = envInt('BENCH_SANDBOX_UID', 1000);
/** Per create in the burst (and the sandbox start timeout the control plane is given). */
const CREATE_TIMEOUT_MS = 120_000;
/** How long to wait for the pool to refill before a sample counts as a miss anyway. */
const REFILL_TIMEOUT_MS = 120_000;

export interface Cp {
  cp: RunningControlPlane;
  dataDir: string;
  /** The SDK's client of this control plane: every call the benchmarks make but the raw floor's. */
  client: BerthClient;
  /** A kept-alive agent for the raw node:http requests of the proxy-overhead floor comparison. */
  agent: Agent;
  close(): Promise<void>;
}

/** A control plane on a fresh data directory (port 0, no key), removed with everything it made by close(). */
export async function startCp(poolSize: number): Promise<Cp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-bench-cp-'));
  // The environment holds only HOME (a fresh directory), so no user config file or variable leaks in.
  const config = loadControlPlaneConfig({
    env: { HOME: dataDir },
    flags: {
      data_dir: dataDir,
      port: 0,
      host: '127.0.0.1',
      log_level: 'error',
      'sandbox.pool_size': poolSize,
      'sandbox.user_id': SANDBOX_UID,
      'sandbox.startup_timeout_seconds': CREATE_TIMEOUT_MS / 1000,
    },
  });
  const cp = await startControlPlane({ config, env: process.env });
  const agent = new Agent({ keepAlive: true });
  return {
    cp,
    dataDir,
    client: new BerthClient({ url: cp.url, requestTimeoutMs: CREATE_TIMEOUT_MS }),
    agent,
    async close() {
      agent.destroy();
      await cp.close();
      // Pooled and any left-over sandboxes of this instance: their containers carry its owner label.
      await removeLabelled(`berth.owner=${instanceOwner(dataDir)}`);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const create = (c: Cp) => c.client.sandboxes.create({}, CREATE_TIMEOUT_MS);
const remove = (c: Cp, id: string) => c.client.sandboxes.delete(id);

async function poolSize(c: Cp): Promise<number> {
  const m = /^berth_pool_size (\d+)$/m.exec(await c.client.metrics());
  return m ? Number(m[1]) : 0;
}

async function waitForPool(c: Cp, size: number): Promise<number> {
  const t0 = performance.now();
  while ((await poolSize(c)) < size) {
    if (performance.now() - t0 > REFILL_TIMEOUT_MS)
      throw new Error(`the pool did not refill to ${size} in time`);
    await sleep(20);
  }
  return performance.now() - t0;
}

// ---------------------------------------------------------------------------------------------
// (a) warm pool

interface PoolResult {
  rows: Row[];
  misses: number;
  refillMs: number[];
}

async function benchWarmPool(c: Cp): Promise<PoolResult> {
  const creates: number[] = [];
  const first: number[] = [];
  const total: number[] = [];
  const refillMs: number[] = [];
  const diagCreate: number[] = [];
  const diagFirst: number[] = [];
  let misses = 0;
  const settle = async () => {
    refillMs.push(await waitForPool(c, POOL_SIZE));
    // Let the refilled sandbox's own start settle (its shell, its first connections) before timing.
    await sleep(100);
  };
  const firstAction = async (id: string) => {
    const t0 = performance.now();
    const obs = await c.client.sandbox(id).executeAction('run', { command: 'true' });
    const t = performance.now() - t0;
    expectObservationOk(obs, 'first action through the control plane');
    return t;
  };
  // Warm-up: the first request on the connection, the first statements.
  await settle();
  const warm = await create(c);
  await firstAction(warm.id);
  await remove(c, warm.id);
  refillMs.length = 0;

  for (let i = 0; i < POOL_N; i++) {
    // The sample: create over HTTP, then the first action; the pool's refill starts meanwhile.
    await settle();
    const t0 = performance.now();
    const sb = await create(c);
    const t1 = performance.now();
    const t = await firstAction(sb.id);
    if (!sb.from_pool) misses++;
    creates.push(t1 - t0);
    first.push(t);
    total.push(t1 - t0 + t);
    await remove(c, sb.id);
    if (!POOL_DIAG) continue;
    // Diagnostic, interleaved: the manager's create alone (no HTTP), then the first action only once
    // the refill it triggered has finished, so no container is starting on the same two cores.
    await settle();
    const d0 = performance.now();
    const rec = await c.cp.manager.create({});
    diagCreate.push(performance.now() - d0);
    if (!rec.from_pool) misses++;
    await settle();
    diagFirst.push(await firstAction(rec.id));
    await remove(c, rec.id);
  }
  const rows = [
    summarize('pool: create -> first true', total, { note: 'goal p50 <= 30 ms' }),
    summarize('pool: POST /api/sandboxes (hit)', creates),
    summarize('pool: first run true (new conn)', first, { note: 'while the refill starts a container' }),
  ];
  if (POOL_DIAG) {
    rows.push(
      summarize('diag: manager.create() in-process (hit)', diagCreate, { note: 'no HTTP' }),
      summarize('diag: first run true, refill finished', diagFirst, { note: 'no container starting' }),
    );
  }
  return { rows, misses, refillMs };
}

// ---------------------------------------------------------------------------------------------
// (b) proxy overhead

interface ProxyResult {
  rows: Row[];
  overheadP50: number;
  overheadP99: number;
  pairedMedian: number;
  breakdown: Row[];
}

const DIRECT = 'direct: run true -> runtime server';
const THROUGH = 'through the control plane';

async function benchProxy(c: Cp): Promise<ProxyResult> {
  const { id, url, session_api_key: key } = await create(c);
  if (!url || !key) throw new Error(`sandbox ${id} has no runtime server url or session key`);
  // The floor comparison is raw on purpose: the same node:http request, kept alive on an agent of
  // its own, straight to the runtime server and through the control plane, so that the difference is
  // the proxy's cost alone and no client library's (the SDK's own cost is in the warm-pool rows).
  const direct = new Agent({ keepAlive: true, maxSockets: 1 });
  const through = new Agent({ keepAlive: true, maxSockets: 1 });
  const viaDirect = async () =>
    expectRunOk(
      await httpJson({
        agent: direct,
        method: 'POST',
        url: `${url}/execute_action`,
        body: RUN_TRUE,
        headers: { 'X-Session-API-Key': key },
      }),
      'direct',
    );
  const viaCp = async () =>
    expectRunOk(
      await httpJson({
        agent: through,
        method: 'POST',
        url: `${c.cp.url}/api/sandboxes/${id}/execute_action`,
        body: RUN_TRUE,
      }),
      'through',
    );

  // In-process pieces of the proxy path, for the breakdown.
  const client = new RuntimeServerClient(url, key);
  const viaClient = async () => {
    await client.executeAction(RUN_TRUE, 60_000);
  };
  const viaManager = async () => {
    await c.cp.manager.executeAction(id, RUN_TRUE);
  };
  const cpHop = async () => {
    await httpJson({ agent: through, method: 'GET', url: `${c.cp.url}/api/auth/check` });
  };
  const rsHop = async () => {
    await httpJson({ agent: direct, method: 'GET', url: `${url}/alive` });
  };
  // The store's writes per proxied action, on a store of our own on the same disk.
  const storeDir = mkdtempSync(join(tmpdir(), 'berth-bench-store-'));
  const store = Store.open(join(storeDir, 'berth.db'));
  store.sandboxes.insert({ id: 'bench', state: 'running', image: 'x', session_api_key: 'k', spec: {} });
  const obs = await client.executeAction(RUN_TRUE, 60_000);
  const bookkeeping = async () => {
    store.events.append({ sandbox_id: 'bench', kind: 'action', payload: RUN_TRUE, duration_ms: null });
    store.events.append({ sandbox_id: 'bench', kind: 'observation', payload: obs, duration_ms: 1 });
    store.sandboxes.touch('bench');
  };
  const db = (store as unknown as { db: { pragma(s: string): unknown } }).db;
  const bookkeepingNormal = async () => {
    db.pragma('synchronous = NORMAL');
    try {
      await bookkeeping();
    } finally {
      db.pragma('synchronous = FULL');
    }
  };

  const kinds: Array<[string, () => Promise<void>]> = [
    [DIRECT, viaDirect],
    [THROUGH, viaCp],
    ['in-process: RuntimeServerClient.executeAction', viaClient],
    ['in-process: manager.executeAction', viaManager],
    ['GET /api/auth/check (control plane, no work)', cpHop],
    ['GET /alive (runtime server, no work)', rsHop],
    ['store: 2 event appends + touch (sync FULL)', bookkeeping],
    ['store: the same with synchronous = NORMAL', bookkeepingNormal],
  ];
  const samples = new Map<string, number[]>(kinds.map(([n]) => [n, []]));
  const paired: number[] = [];
  for (let i = 0; i < 20; i++) for (const [, fn] of kinds) await fn();
  for (let i = 0; i < PROXY_N; i++) {
    // Rotate the order each round; the direct/through pair is always timed back to back.
    const order = kinds.map((_, j) => kinds[(j + i) % kinds.length]!);
    const round = new Map<string, number>();
    for (const [name, fn] of order) {
      const t0 = performance.now();
      await fn();
      round.set(name, performance.now() - t0);
    }
    for (const [name, t] of round) samples.get(name)!.push(t);
    paired.push(round.get(THROUGH)! - round.get(DIRECT)!);
  }
  direct.destroy();
  through.destroy();
  client.close();
  store.close();
  rmSync(storeDir, { recursive: true, force: true });
  await remove(c, id);

  const rows = [
    summarize(DIRECT, samples.get(DIRECT)!),
    summarize(THROUGH, samples.get(THROUGH)!, { floor: DIRECT }),
  ];
  const breakdown = kinds.slice(2).map(([n]) => summarize(n, samples.get(n)!));
  return {
    rows,
    overheadP50: rows[1]!.p50 - rows[0]!.p50,
    overheadP99: rows[1]!.p99 - rows[0]!.p99,
    pairedMedian: median(paired),
    breakdown,
  };
}

// ---------------------------------------------------------------------------------------------
// (c) burst

interface BurstResult {
  n: number;
  ok: number;
  wallMs: number;
  firstOkMs: number;
  rows: Row[];
  errors: string[];
  timeline: Row[];
}

async function benchBurst(c: Cp): Promise<BurstResult> {
  const t0 = performance.now();
  const epoch0 = epochMs();
  const endedAt = new Map<string, number>();
  const results = await Promise.all(
    Array.from({ length: BURST_N }, async () => {
      const s = performance.now();
      try {
        const sb = await create(c);
        const t = performance.now() - s;
        if (sb.state === 'running') {
          endedAt.set(sb.id, epochMs());
          return { ok: true, t, id: sb.id };
        }
        return { ok: false, t, error: `201 state ${sb.state}` };
      } catch (err) {
        const error =
          err instanceof BerthApiError ? `${err.status} ${err.code} ${err.message}` : (err as Error).message;
        return { ok: false, t: performance.now() - s, error: error.slice(0, 300) };
      }
    }),
  );
  const wallMs = performance.now() - t0;
  const okTimes = results.filter((r) => r.ok).map((r) => r.t);
  const errors = [...new Set(results.filter((r) => !r.ok).map((r) => r.error!))].slice(0, 5);
  const timeline = await burstTimeline(c, epoch0, endedAt).catch(() => [] as Row[]);
  // Delete everything (untimed), a few at a time; then anything the control plane still lists.
  const ids = results.filter((r) => r.ok).map((r) => r.id!);
  const listed = await c.client.sandboxes.list().catch(() => []);
  for (const s of listed) if (!ids.includes(s.id)) ids.push(s.id);
  for (let i = 0; i < ids.length; i += 5) {
    await Promise.all(ids.slice(i, i + 5).map((id) => remove(c, id).catch(() => undefined)));
  }
  return {
    n: BURST_N,
    ok: okTimes.length,
    wallMs,
    firstOkMs: Math.min(...okTimes),
    rows: [
      summarize(`burst: ${BURST_N} simultaneous creates (ok ones)`, okTimes),
      summarize(
        'burst: every create (incl. failures)',
        results.map((r) => r.t),
      ),
    ],
    errors,
    timeline,
  };
}

/**
 * Where the burst's time went, per sandbox, from the containers' own timestamps: how long after the
 * burst began the engine created each container, how long its start took, and how long from its process
 * starting to its create call answering (server start under contention, readiness polling, response).
 */
async function burstTimeline(c: Cp, epoch0: number, endedAt: Map<string, number>): Promise<Row[]> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=berth.owner=${instanceOwner(c.dataDir)}`]))
    .split('\n')
    .filter(Boolean);
  if (ids.length === 0) return [];
  const out = await docker([
    'inspect',
    '-f',
    '{{index .Config.Labels "berth.sandbox.id"}} {{.Created}} {{.State.StartedAt}}',
    ...ids,
  ]);
  const created: number[] = [];
  const start: number[] = [];
  const ready: number[] = [];
  for (const line of out.trim().split('\n')) {
    const [id, cr, st] = line.trim().split(' ');
    const end = endedAt.get(id ?? '');
    if (!id || !cr || !st || end === undefined) continue;
    const tc = parseDockerTime(cr);
    const ts = parseDockerTime(st);
    created.push(tc - epoch0);
    start.push(ts - tc);
    ready.push(end - ts);
  }
  return [
    summarize('burst: container created, after the burst began', created),
    summarize('burst: engine start (Created -> StartedAt)', start),
    summarize('burst: process start -> create answered', ready),
  ];
}

// ---------------------------------------------------------------------------------------------

export interface ControlPlaneBenchResult {
  poolSize: number;
  pool: PoolResult;
  proxy: ProxyResult;
  burst?: BurstResult;
  load: { before: MachineLoad; afterPoolAndProxy: MachineLoad; after: MachineLoad };
}

export async function benchControlPlane(): Promise<ControlPlaneBenchResult> {
  const before = machineLoad();
  const c = await startCp(POOL_SIZE);
  let pool: PoolResult;
  let proxy: ProxyResult;
  try {
    if (POOL_SIZE < 1) throw new Error('BENCH_POOL_SIZE must be at least 1 for the warm-pool benchmark');
    pool = await benchWarmPool(c);
    await waitForPool(c, POOL_SIZE);
    proxy = await benchProxy(c);
  } finally {
    await c.close();
  }
  const afterPoolAndProxy = machineLoad();
  let burst: BurstResult | undefined;
  if (BURST_N > 0) {
    const b = await startCp(0);
    try {
      burst = await benchBurst(b);
    } finally {
      await b.close();
    }
  }
  return {
    poolSize: POOL_SIZE,
    pool,
    proxy,
    burst,
    load: { before, afterPoolAndProxy, after: machineLoad() },
  };
}

export function printControlPlane(r: ControlPlaneBenchResult): void {
  printTable(
    `Warm pool (pool size ${r.poolSize}): create to the first action, every sample a pool hit`,
    r.pool.rows,
  );
  const p50 = r.pool.rows[0]!.p50;
  printKeyValues('Warm pool verdict', [
    ['create -> first true p50', `${ms(p50)} (goal <= 30 ms: ${p50 <= 30 ? 'met' : 'MISSED'})`],
    ['pool misses', `${r.pool.misses} of ${r.pool.rows[0]!.n}`],
    ['refill wait between samples (median)', ms(median(r.pool.refillMs))],
  ]);
  printTable('Proxy overhead: run true on kept-alive connections, interleaved', r.proxy.rows);
  printKeyValues('Proxy verdict', [
    [
      'p50 through - p50 direct',
      `${ms(r.proxy.overheadP50)} (goal <= 1 ms: ${r.proxy.overheadP50 <= 1 ? 'met' : 'MISSED'})`,
    ],
    ['median of paired differences', ms(r.proxy.pairedMedian)],
    ['p99 through - p99 direct', ms(r.proxy.overheadP99)],
  ]);
  printTable('Proxy path pieces (same rounds, interleaved)', r.proxy.breakdown);
  if (r.burst) {
    const b = r.burst;
    printTable(
      `Burst: ${b.n} simultaneous creates, pool size 0 (cold starts), per-create timeout 120 s`,
      b.rows,
    );
    if (b.timeline.length) printTable('Burst timeline per sandbox (container timestamps)', b.timeline);
    printKeyValues('Burst summary', [
      ['succeeded', `${b.ok} of ${b.n} (${((100 * b.ok) / b.n).toFixed(0)}%)`],
      ['wall time for all', ms(b.wallMs)],
      ['first success after', ms(b.firstOkMs)],
      ['errors', b.errors.length ? b.errors.join(' | ') : 'none'],
    ]);
  }
  printKeyValues('Machine load', [
    ['before', describeLoad(r.load.before)],
    ['after pool + proxy', describeLoad(r.load.afterPoolAndProxy)],
    ['after', describeLoad(r.load.after)],
  ]);
}

if (isMain(import.meta.url)) {
  const r = await benchControlPlane();
  printControlPlane(r);
  process.stdout.write(`\nJSON: ${writeJson('control-plane', { ...r, at: new Date().toISOString() })}\n`);
  // Kept-alive sockets of the in-process control plane's clients may hold the loop open.
  process.exit(0);
}

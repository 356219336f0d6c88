/**
 * Sandboxes on the real Docker engine:
 *  (a) cold start: DockerSandboxRuntime.start(spec) up to the first `run true` observation, next to the
 *      floor `docker run --rm IMAGE true` (docker CLI), interleaved round by round so drift hits both;
 *      with a per-phase breakdown of every Berth sample and a few diagnostic floors;
 *  (b) runtime image builds: cached (unchanged inputs) and uncached (force: true).
 *
 * Run: npx tsx bench/docker.ts   (or: npm run bench -- docker)
 * Counts: BENCH_COLD_N (15), BENCH_COLD_DIAG (1: also run the diagnostic floors; 0: only the floor),
 *         BENCH_ABLATION_N (6: rounds of `docker run IMAGE true` with one of Berth's options at a time; 0: skip),
 *         BENCH_DIAG_REPEAT (5: repeats of each in-container timing), BENCH_BUILD_CACHED_N (5),
 *         BENCH_BUILD_UNCACHED_N (2), BENCH_SANDBOX_UID (1000: uid of the sandbox user).
 * The uncached build adds a no-op `--extra-deps` step so it gets its own tag and never replaces the
 * shared runtime image that other processes may be using; BENCH_BUILD_SHARED_TAG=1 forces that tag instead.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadDockerConfig } from '../src/config/docker.js';
import { ISOLATED_NETWORK, SANDBOX_CAPABILITIES } from '../src/docker/container-spec.js';
import { connectEngine, type DockerodeEngine } from '../src/docker/engine.js';
import { buildRuntimeImage } from '../src/docker/image-builder.js';
import { PortAllocator } from '../src/docker/ports.js';
import { DockerSandboxRuntime } from '../src/docker/sandbox-runtime.js';
import type { SandboxSpec } from '../src/sandboxes/types.js';
import { printTable, type Row, summarize, writeJson } from './lib/stats.js';
import {
  describeLoad,
  docker,
  envInt,
  epochMs,
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
} from './lib/util.js';

const COLD_N = envInt('BENCH_COLD_N', 15);
const COLD_DIAG = envInt('BENCH_COLD_DIAG', 1) > 0;
const DIAG_REPEAT = envInt('BENCH_DIAG_REPEAT', 5);
const BUILD_CACHED_N = envInt('BENCH_BUILD_CACHED_N', 5);
const BUILD_UNCACHED_N = envInt('BENCH_BUILD_UNCACHED_N', 2);
const SANDBOX_UID = envInt('BENCH_SANDBOX_UID', 1000);
const ABLATION_N = envInt('BENCH_ABLATION_N', 6);
const SHARED_TAG = envInt('BENCH_BUILD_SHARED_TAG', 0) > 0;
/** A sample that takes longer than this is a failure, not a data point. */
const START_TIMEOUT_MS = 120_000;

const FLOOR = 'floor: docker run --rm IMAGE true';
const BERTH = 'berth: start() -> first true';

// ---------------------------------------------------------------------------------------------
// Timing the engine calls DockerSandboxRuntime makes, without touching src/

interface Span {
  op: string;
  t0: number;
  t1: number;
}

/** Wraps the engine so every containers.* and networks.* call is recorded in `spans` (epoch ms). */
function instrument(engine: DockerodeEngine, spans: { current: Span[] }): DockerodeEngine {
  const wrap = <T extends object>(target: T, prefix: string): T =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const v = Reflect.get(t, prop, receiver);
        if (typeof v !== 'function') return v;
        return async (...args: unknown[]) => {
          const t0 = epochMs();
          try {
            return await (v as (...a: unknown[]) => Promise<unknown>).apply(t, args);
          } finally {
            spans.current.push({ op: `${prefix}.${String(prop)}`, t0, t1: epochMs() });
          }
        };
      },
    });
  const containers = wrap(engine.containers, 'containers');
  // containers.run is createContainer + start in one call; do the same two calls here, timed apart.
  const run = async (options: Parameters<DockerodeEngine['containers']['run']>[0]): Promise<string> => {
    const t0 = epochMs();
    let id: string | undefined;
    try {
      const c = await engine.docker.createContainer(options);
      id = c.id;
      const t1 = epochMs();
      spans.current.push({ op: 'containers.create', t0, t1 });
      await c.start();
      spans.current.push({ op: 'containers.start', t0: t1, t1: epochMs() });
      return c.id;
    } catch (err) {
      if (id) await engine.containers.remove(id).catch(() => undefined);
      throw engine.toError(err, `start container ${options.name ?? ''}`.trim());
    } finally {
      spans.current.push({ op: 'containers.run', t0, t1: epochMs() });
    }
  };
  const containersWithRun = new Proxy(containers, {
    get: (t, prop, receiver) => (prop === 'run' ? run : Reflect.get(t, prop, receiver)),
  });
  const networks = wrap(engine.networks, 'networks');
  return new Proxy(engine, {
    get(t, prop, receiver) {
      if (prop === 'containers') return containersWithRun;
      if (prop === 'networks') return networks;
      return Reflect.get(t, prop, receiver);
    },
  });
}

interface Phases {
  /** networks.ensure (the berth bridge network; exists after the first sandbox). */
  ensureNetwork: number;
  /** Between the network check and containers.run: port reservation (lock files + bind tests). */
  reservePorts: number;
  /** The create API call (dockerode createContainer). */
  create: number;
  /** From the start API call up to the container's State.StartedAt: network, ports, runc, init. */
  startToExec: number;
  /** From StartedAt up to the start API returning to Berth. */
  startReturn: number;
  /** containers.inspect after the start. */
  inspect: number;
  /** StartedAt up to the runtime server's "listening" log line: entrypoint, node, bundle, bash PTY, listen. */
  execToListening: number;
  /** Listening up to start() returning: /alive polling cadence (and the port proxy). */
  readinessLag: number;
  /** /alive probes made (failed ones are followed by a containers.find). */
  probes: number;
  /** start() returning up to the first `run true` observation (new connection + the action). */
  firstAction: number;
  /** Not part of the sample: a second `run true` on a new connection, then a third on the first one. */
  secondActionNewConn: number;
  thirdActionSameConn: number;
  total: number;
}

// ---------------------------------------------------------------------------------------------
// (a) cold start

interface ColdStartResult {
  rows: Row[];
  ratioP50: number;
  phases: Phases[];
  phaseRows: Row[];
  ablationRows: Row[];
  inContainer: Row[];
  failures: string[];
}

function dockerRunArgs(image: string, label: string, extra: string[], cmd: string[]): string[] {
  return ['run', '--rm', '--label', label, ...extra, image, ...cmd];
}

/** Berth's container options (src/docker/container-spec.ts) in docker CLI form, one group at a time. */
const OPTION_GROUPS: Record<string, string[]> = {
  '--init': ['--init'],
  [`--network ${ISOLATED_NETWORK}`]: ['--network', ISOLATED_NETWORK],
  '3 published ports (-p 127.0.0.1::P)': ['8000', '8001', '8002'].flatMap((p) => ['-p', `127.0.0.1::${p}`]),
  'cap-drop ALL + cap-add list': [
    '--cap-drop',
    'ALL',
    ...SANDBOX_CAPABILITIES.flatMap((c) => ['--cap-add', c]),
  ],
  'limits (cpus, memory, pids)': [
    '--cpus',
    '2',
    '--memory',
    '4096m',
    '--memory-swap',
    '4096m',
    '--pids-limit',
    '1024',
  ],
  '--add-host host-gateway': ['--add-host', 'host.docker.internal:host-gateway'],
};

/** `docker run` options as close to Berth's container options as the CLI allows. */
function berthLikeOptions(): string[] {
  return [...Object.values(OPTION_GROUPS).flat(), '-e', `SANDBOX_USER_ID=${SANDBOX_UID}`];
}

async function timeCli(args: string[]): Promise<number> {
  const t0 = performance.now();
  await docker(args, START_TIMEOUT_MS);
  return performance.now() - t0;
}

export async function benchColdStart(
  engine: DockerodeEngine,
  image: string,
  runId: string,
): Promise<ColdStartResult> {
  const label = `berth.bench=${runId}`;
  const spans = { current: [] as Span[] };
  const lockDir = mkdtempSync(join(tmpdir(), 'berth-bench-ports-'));
  const runtime = new DockerSandboxRuntime({
    engine: instrument(engine, spans),
    ports: new PortAllocator({ lockDir, bindHost: '127.0.0.1' }),
    logger: pino({ level: 'warn' }),
    owner: `bench-${runId}`,
    reach: { kind: 'host-ports' },
  });
  const spec = (): SandboxSpec => ({
    id: `bench${randomBytes(5).toString('hex')}`,
    image,
    workspaceMountPathInSandbox: '/workspace',
    mounts: [],
    userId: SANDBOX_UID,
    bindingAddress: '127.0.0.1',
    network: { mode: 'isolated' },
    env: {},
    // The control plane's defaults.
    limits: { cpus: 2, memoryMb: 4096, pids: 1024 },
    labels: { 'berth.bench': runId },
    startTimeoutMs: START_TIMEOUT_MS,
    sessionApiKey: randomBytes(16).toString('hex'),
  });

  const failures: string[] = [];
  const phases: Phases[] = [];
  let keptForDiag: { id: string; containerId: string } | undefined;

  /** One Berth sample; returns its time, records its phases, removes the sandbox (untimed). */
  const berthOnce = async (record: boolean, keep = false): Promise<number | undefined> => {
    const s = spec();
    spans.current = [];
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const t0 = epochMs();
    let tStarted = Number.NaN;
    let tDone = Number.NaN;
    let containerId = '';
    let later = { newConn: Number.NaN, sameConn: Number.NaN };
    try {
      const ep = await runtime.start(s);
      tStarted = epochMs();
      containerId = ep.containerId;
      const res = await httpJson({
        agent,
        method: 'POST',
        url: `${ep.url}/execute_action`,
        body: RUN_TRUE,
        headers: { 'x-session-api-key': s.sessionApiKey },
        timeoutMs: START_TIMEOUT_MS,
      });
      tDone = epochMs();
      expectRunOk(res, 'first action');
      // Untimed in the sample: is the first action's extra cost the new connection or the cold server?
      const again = async (a: Agent) => {
        const t = performance.now();
        expectRunOk(
          await httpJson({
            agent: a,
            method: 'POST',
            url: `${ep.url}/execute_action`,
            body: RUN_TRUE,
            headers: { 'x-session-api-key': s.sessionApiKey },
          }),
          'later action',
        );
        return performance.now() - t;
      };
      const fresh = new Agent({ keepAlive: true, maxSockets: 1 });
      later = { newConn: await again(fresh), sameConn: await again(agent) };
      fresh.destroy();
    } catch (err) {
      failures.push((err as Error).message.slice(0, 500));
      await runtime.remove(s.id).catch(() => undefined);
      agent.destroy();
      return undefined;
    }
    agent.destroy();
    const myspans = spans.current;
    if (record) {
      try {
        phases.push({
          ...(await phasesOf(containerId, myspans, t0, tStarted, tDone)),
          secondActionNewConn: later.newConn,
          thirdActionSameConn: later.sameConn,
        });
      } catch (err) {
        failures.push(`breakdown: ${(err as Error).message}`);
      }
    }
    if (keep) keptForDiag = { id: s.id, containerId };
    else await runtime.remove(s.id).catch((err) => failures.push(`remove: ${(err as Error).message}`));
    return tDone - t0;
  };

  type Variant = { name: string; run: () => Promise<number | undefined> };
  try {
    const variants: Variant[] = [
      { name: FLOOR, run: () => timeCli(dockerRunArgs(image, label, [], ['true'])) },
      { name: BERTH, run: () => berthOnce(true) },
    ];
    if (COLD_DIAG) {
      variants.push(
        {
          name: 'diag: docker run --rm --entrypoint true IMAGE',
          run: () => timeCli(dockerRunArgs(image, label, ['--entrypoint', 'true'], [])),
        },
        {
          name: "diag: docker run --rm <berth's options> IMAGE true",
          run: () => timeCli(dockerRunArgs(image, label, berthLikeOptions(), ['true'])),
        },
        {
          name: 'diag: docker run --rm IMAGE node -e 0',
          run: () => timeCli(dockerRunArgs(image, label, [], ['/berth/bin/node', '-e', '0'])),
        },
      );
    }
    const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));

    // Warm-up: one unmeasured run of each (first network creation, page cache).
    for (const v of variants) await v.run().catch(() => undefined);
    phases.length = 0;
    failures.length = 0;

    for (let round = 0; round < COLD_N; round++) {
      // Rotate the order every round so no variant always runs first (or right after another).
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      for (const v of order) {
        try {
          const t = await v.run();
          if (t !== undefined) samples.get(v.name)!.push(t);
        } catch (err) {
          failures.push(`${v.name}: ${(err as Error).message.slice(0, 300)}`);
        }
      }
    }

    // Which of Berth's container options cost start time: one group at a time, interleaved.
    const ablation: Variant[] = [
      { name: 'ablation: no options (floor)', run: () => timeCli(dockerRunArgs(image, label, [], ['true'])) },
      ...Object.entries(OPTION_GROUPS).map(([name, opts]) => ({
        name: `ablation: ${name}`,
        run: () => timeCli(dockerRunArgs(image, label, opts, ['true'])),
      })),
      {
        name: "ablation: all of Berth's options",
        run: () => timeCli(dockerRunArgs(image, label, berthLikeOptions(), ['true'])),
      },
    ];
    const ablationSamples = new Map<string, number[]>(ablation.map((v) => [v.name, []]));
    for (let round = 0; round < ABLATION_N; round++) {
      for (let i = 0; i < ablation.length; i++) {
        const v = ablation[(i + round) % ablation.length]!;
        try {
          ablationSamples.get(v.name)!.push((await v.run())!);
        } catch (err) {
          failures.push(`${v.name}: ${(err as Error).message.slice(0, 300)}`);
        }
      }
    }
    const ablationRows = ABLATION_N
      ? ablation.map((v, i) =>
          summarize(v.name, ablationSamples.get(v.name)!, i === 0 ? {} : { floor: ablation[0]!.name }),
        )
      : [];

    // In-container timings on one more sandbox (kept for the purpose, removed after).
    await berthOnce(false, true);
    let inContainer: Row[] = [];
    if (keptForDiag) {
      try {
        inContainer = await inContainerTimings(keptForDiag.containerId);
      } catch (err) {
        failures.push(`in-container timings: ${(err as Error).message}`);
      }
      await runtime.remove(keptForDiag.id).catch(() => undefined);
    }
    const rows = variants.map((v) =>
      summarize(v.name, samples.get(v.name)!, v.name === FLOOR ? {} : { floor: FLOOR }),
    );
    const floorRow = rows.find((r) => r.name === FLOOR)!;
    const berthRow = rows.find((r) => r.name === BERTH)!;
    const keys = Object.keys(phases[0] ?? {}) as Array<keyof Phases>;
    const phaseRows = keys.map((k) =>
      summarize(
        k,
        phases.map((p) => p[k]),
      ),
    );
    return {
      rows,
      ratioP50: berthRow.p50 / floorRow.p50,
      phases,
      phaseRows,
      ablationRows,
      inContainer,
      failures,
    };
  } finally {
    const kept = keptForDiag as { id: string } | undefined;
    if (kept) await runtime.remove(kept.id).catch(() => undefined);
    await removeLabelled(label).catch(() => 0);
    rmSync(lockDir, { recursive: true, force: true });
  }
}

async function phasesOf(
  containerId: string,
  spans: Span[],
  t0: number,
  tStarted: number,
  tDone: number,
): Promise<Omit<Phases, 'secondActionNewConn' | 'thirdActionSameConn'>> {
  const one = (op: string) => spans.find((s) => s.op === op);
  const ensure = one('networks.ensure');
  const run = one('containers.run');
  const create = one('containers.create');
  const start = one('containers.start');
  const inspect = one('containers.inspect');
  if (!run || !create || !start || !inspect) {
    throw new Error(`missing engine calls in ${spans.map((s) => s.op).join(', ')}`);
  }
  const startedAt = parseDockerTime(await docker(['inspect', '-f', '{{.State.StartedAt}}', containerId]));
  const logText = await dockerLogs(containerId);
  let listening = Number.NaN;
  for (const line of logText.split('\n')) {
    if (!line.includes('runtime server listening') || !line.startsWith('{')) continue;
    try {
      listening = (JSON.parse(line) as { time: number }).time;
    } catch {
      /* not pino */
    }
  }
  const probes = spans.filter((s) => s.op === 'containers.find').length + 1;
  return {
    ensureNetwork: ensure ? ensure.t1 - ensure.t0 : 0,
    reservePorts: run.t0 - (ensure?.t1 ?? t0),
    create: create.t1 - create.t0,
    startToExec: startedAt - start.t0,
    startReturn: start.t1 - startedAt,
    inspect: inspect.t1 - inspect.t0,
    execToListening: listening - startedAt,
    readinessLag: tStarted - Math.max(listening, inspect.t1),
    probes,
    firstAction: tDone - tStarted,
    total: tDone - t0,
  };
}

/** The container's log, stdout and stderr together (the runtime server logs JSON to stderr). */
function dockerLogs(containerId: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('docker', ['logs', containerId], { maxBuffer: 4 * 1024 * 1024 }, (_e, out, err) =>
      resolve(`${out}\n${err}`),
    );
  });
}

/**
 * Timings inside a running sandbox (warm page cache), as the sandbox user: node's own start, an
 * interactive bash, and the runtime server from exec to its "listening" line. Each the median of a few.
 */
async function inContainerTimings(containerId: string): Promise<Row[]> {
  const script = `
const { spawn } = require('node:child_process');
const REPEAT = ${DIAG_REPEAT};
// Time from spawn to a line matching pattern (then kill), or to exit when there is no pattern.
function timeIt(cmd, args, env, pattern) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const finish = (ok) => { if (done) return; done = true; const t = performance.now() - t0; p.kill('SIGKILL'); ok ? resolve(t) : reject(new Error(cmd + ' failed: ' + out.slice(-300))); };
    const onData = (d) => { out += d; if (pattern && pattern.test(out)) finish(true); };
    p.stdout.on('data', onData); p.stderr.on('data', onData);
    p.on('exit', () => finish(!pattern));
    setTimeout(() => finish(false), 30000);
  });
}
// An interactive bash on a PTY (as the runtime server starts it) up to its first output (the prompt).
function ptyBash() {
  const pty = require('/berth/node_modules/@lydell/node-pty');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const t = pty.spawn('/bin/bash', ['--noediting', '-i'], { name: 'dumb', cols: 1000, rows: 1000, cwd: '/tmp', env: { ...process.env, TERM: 'dumb' } });
    let done = false;
    t.onData(() => { if (done) return; done = true; const ms = performance.now() - t0; t.kill('SIGKILL'); resolve(ms); });
    setTimeout(() => { if (!done) { done = true; t.kill('SIGKILL'); reject(new Error('no prompt')); } }, 30000);
  });
}
(async () => {
  const out = {};
  const cases = {
    'node -e 0': () => timeIt('/berth/bin/node', ['-e', '0'], {}, null),
    'node: load the bundle (exits at its argument check)': () => timeIt('/berth/bin/node', ['/berth/runtime-server.mjs', '--bench-no-such-flag'], {}, null),
    'bash -i on a PTY to its first prompt': () => ptyBash(),
    'runtime server: exec to "listening"': () => timeIt('/berth/bin/node', ['/berth/runtime-server.mjs', '--port', '0', '--working-dir', '/tmp/bench-wd'], { SESSION_API_KEY: 'x' }, /listening on/),
  };
  for (const [name, fn] of Object.entries(cases)) {
    out[name] = [];
    for (let i = 0; i < REPEAT; i++) out[name].push(await fn());
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e)); process.exit(1); });
`;
  const raw = await docker(['exec', '-u', String(SANDBOX_UID), containerId, '/berth/bin/node', '-e', script]);
  const parsed = JSON.parse(raw) as Record<string, number[]>;
  return Object.entries(parsed).map(([name, values]) => summarize(`in sandbox: ${name}`, values));
}

// ---------------------------------------------------------------------------------------------
// (b) image builds

interface BuildResult {
  rows: Row[];
  tag: string;
  uncachedTag?: string;
  notes: string[];
}

export async function benchImageBuild(
  engine: DockerodeEngine,
  cacheDir: string,
  firstCallMs?: number,
): Promise<BuildResult> {
  const notes: string[] = [];
  const cached: number[] = [];
  let tag = '';
  for (let i = 0; i < BUILD_CACHED_N; i++) {
    const t0 = performance.now();
    const r = await buildRuntimeImage({ engine, cacheDir });
    cached.push(performance.now() - t0);
    tag = r.tag;
    if (!r.cached) notes.push(`cached build ${i + 1} was not a cache hit (inputs changed?): built ${r.tag}`);
  }
  const uncached: number[] = [];
  let uncachedTag: string | undefined;
  const extraDeps = SHARED_TAG ? undefined : ': berth-bench uncached build';
  for (let i = 0; i < BUILD_UNCACHED_N; i++) {
    const t0 = performance.now();
    const r = await buildRuntimeImage({ engine, cacheDir, force: true, ...(extraDeps ? { extraDeps } : {}) });
    uncached.push(performance.now() - t0);
    uncachedTag = r.tag;
  }
  if (uncachedTag && !SHARED_TAG) {
    await engine.images
      .remove(uncachedTag)
      .catch((err: unknown) => notes.push(`could not remove ${uncachedTag}: ${err}`));
    notes.push(
      `uncached builds used tag ${uncachedTag} (one extra no-op RUN step) so the shared ${tag} was never replaced`,
    );
  }
  return {
    rows: [
      ...(firstCallMs === undefined
        ? []
        : [summarize('build: first call in the process (cached)', [firstCallMs], { note: 'cold hashing' })]),
      summarize('build: unchanged inputs (cached)', cached, { note: 'hash inputs + 1 image inspect' }),
      summarize('build: force (no layer cache)', uncached, { note: SHARED_TAG ? '' : '+1 no-op RUN step' }),
    ],
    tag,
    uncachedTag,
    notes,
  };
}

// ---------------------------------------------------------------------------------------------

export interface DockerBenchResult {
  image: string;
  coldStart: ColdStartResult;
  build: BuildResult;
  load: { before: MachineLoad; after: MachineLoad };
}

export async function benchDocker(): Promise<DockerBenchResult> {
  const before = machineLoad();
  const cfg = loadDockerConfig();
  const engine = connectEngine({ dockerHost: cfg.dockerHost });
  await engine.ping();
  // The first call in a process hashes every input from disk; later calls in the same process too,
  // but with the files in the page cache. Both are answered by one image inspect when nothing changed.
  const t0 = performance.now();
  const first = await buildRuntimeImage({ engine, cacheDir: cfg.cacheDir });
  const firstCallMs = performance.now() - t0;
  const image = first.tag;
  const runId = randomBytes(4).toString('hex');
  const coldStart = await benchColdStart(engine, image, runId);
  const build = await benchImageBuild(engine, cfg.cacheDir, first.cached ? firstCallMs : undefined);
  return { image, coldStart, build, load: { before, after: machineLoad() } };
}

export function printDocker(r: DockerBenchResult): void {
  const c = r.coldStart;
  printTable(`Sandbox cold start on Docker (${r.image}), interleaved with the floor`, c.rows);
  const goal = c.ratioP50 <= 1.5 ? 'met' : 'MISSED';
  printKeyValues('Cold start verdict', [
    ['berth p50 / floor p50', `${c.ratioP50.toFixed(2)}x (goal <= 1.5x: ${goal})`],
    ['failures', c.failures.length ? c.failures.join(' | ') : 'none'],
  ]);
  printTable(
    'Where a Berth cold start goes (per sample, ms; from engine-call spans, container timestamps, server log)',
    c.phaseRows,
  );
  if (c.ablationRows.length) {
    printTable(
      "What Berth's container options cost: docker run --rm IMAGE true with one option group",
      c.ablationRows,
    );
  }
  if (c.inContainer.length)
    printTable('Inside a running sandbox (warm page cache), as the sandbox user', c.inContainer);
  if (c.phases.length) {
    const sum = (k: keyof Phases) => median(c.phases.map((p) => p[k]));
    printKeyValues('Median phases, in order', [
      ['network ensure + port reservation', ms(sum('ensureNetwork') + sum('reservePorts'))],
      ['create API', ms(sum('create'))],
      ['start API until the process runs', ms(sum('startToExec'))],
      ['start API return + inspect', ms(sum('startReturn') + sum('inspect'))],
      ['process start -> server listening', ms(sum('execToListening'))],
      ['listening -> /alive seen (polling)', `${ms(sum('readinessLag'))} (${sum('probes')} probes)`],
      ['first action (new connection)', ms(sum('firstAction'))],
      ['(untimed) 2nd action, new connection', ms(sum('secondActionNewConn'))],
      ['(untimed) 3rd action, same connection', ms(sum('thirdActionSameConn'))],
    ]);
  }
  printTable('Runtime image builds', r.build.rows);
  if (r.build.notes.length)
    printKeyValues(
      'Build notes',
      r.build.notes.map((n, i) => [`${i + 1}`, n]),
    );
  printKeyValues('Machine load', [
    ['before', describeLoad(r.load.before)],
    ['after', describeLoad(r.load.after)],
  ]);
}

if (isMain(import.meta.url)) {
  const r = await benchDocker();
  printDocker(r);
  process.stdout.write(`\nJSON: ${writeJson('docker', { ...r, at: new Date().toISOString() })}\n`);
}

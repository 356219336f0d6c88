/**
 * The event log under large payloads: BENCH_EVENTLOG_N (1000) `write` actions of 1 MB each through the
 * control plane's proxy to one real sandbox, each recorded in the event log with its observation.
 * Prints the database's size on disk afterwards (the file and its WAL) and the action latency of the
 * first 100 against the last 100 (whether an action gets slower as the log grows), with the floor:
 * the same write straight to the sandbox's runtime server, sampled before and after.
 *
 * Run: npx tsx bench/event-log.ts   (or: npm run bench -- event-log)
 * Knobs: BENCH_EVENTLOG_N (1000), BENCH_EVENTLOG_MB (1), BENCH_EVENTLOG_FLOOR_N (100),
 *        BENCH_EVENTLOG_BUDGET_S (600: stops writing, and says so, once this much time has gone).
 */
import { statSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startCp } from './control-plane.js';
import { printTable, type Row, summarize, writeJson } from './lib/stats.js';
import { envInt, httpJson, isMain, printKeyValues } from './lib/util.js';

const N = envInt('BENCH_EVENTLOG_N', 1000);
const MB = envInt('BENCH_EVENTLOG_MB', 1);
const FLOOR_N = envInt('BENCH_EVENTLOG_FLOOR_N', 100);
const BUDGET_MS = envInt('BENCH_EVENTLOG_BUDGET_S', 600) * 1000;
const WINDOW = 100;

export interface EventLogResult {
  rows: Row[];
  writes: number;
  stoppedEarly: boolean;
  payloadBytes: number;
  dbBytes: number;
  walBytes: number;
  eventBytes: number;
  events: number;
}

const size = (f: string) => {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
};

/** A 1 MB `write` action whose content differs per call (no two payloads alike). */
function writeAction(i: number, bytes: number): unknown {
  const line = `${String(i).padStart(8, '0')} ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3)}\n`;
  const content = line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes - 1);
  return { action: { action: 'write', args: { path: '/workspace/event-log-bench.txt', content } } };
}

export async function benchEventLog(): Promise<EventLogResult> {
  const c = await startCp(0);
  const t0 = performance.now();
  try {
    const created = await httpJson({
      agent: c.agent,
      method: 'POST',
      url: `${c.cp.url}/api/sandboxes`,
      body: {},
      timeoutMs: 120_000,
    });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${created.text.slice(0, 300)}`);
    const {
      id,
      url,
      session_api_key: key,
    } = created.json as { id: string; url: string; session_api_key: string };
    const payloadBytes = MB * 1024 * 1024;
    const direct = new Agent({ keepAlive: true, maxSockets: 1 });
    const through = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = async (agent: Agent, target: string, i: number, headers?: Record<string, string>) => {
      const body = writeAction(i, payloadBytes);
      const s = performance.now();
      const res = await httpJson({ agent, method: 'POST', url: target, body, headers, timeoutMs: 120_000 });
      const t = performance.now() - s;
      if (res.status !== 200 || res.json?.observation !== 'write') {
        throw new Error(`write ${i}: ${res.status} ${res.text.slice(0, 300)}`);
      }
      return t;
    };
    const viaDirect = (i: number) => send(direct, `${url}/execute_action`, i, { 'X-Session-API-Key': key });
    const viaCp = (i: number) => send(through, `${c.cp.url}/api/sandboxes/${id}/execute_action`, i);

    // Warm-up on both paths (connections, statements, the file's first creation).
    for (let i = 0; i < 5; i++) {
      await viaDirect(i);
      await viaCp(i);
    }
    const floor: number[] = [];
    for (let i = 0; i < FLOOR_N / 2; i++) floor.push(await viaDirect(i));
    const samples: number[] = [];
    let stoppedEarly = false;
    for (let i = 0; i < N; i++) {
      if (performance.now() - t0 > BUDGET_MS) {
        stoppedEarly = true;
        break;
      }
      samples.push(await viaCp(i));
    }
    for (let i = 0; i < FLOOR_N / 2; i++) floor.push(await viaDirect(i));
    direct.destroy();
    through.destroy();

    const dbFile = join(c.dataDir, 'berth.db');
    const dbBytes = size(dbFile);
    const walBytes = size(`${dbFile}-wal`);
    const raw = new Database(dbFile, { readonly: true });
    const totals = raw
      .prepare(
        'SELECT count(*) AS events, coalesce(sum(length(CAST(payload AS BLOB))), 0) AS bytes FROM events',
      )
      .get() as { events: number; bytes: number };
    raw.close();

    const FLOOR = 'direct: write -> runtime server';
    const rows = [
      summarize(FLOOR, floor),
      summarize(`through the control plane: first ${WINDOW}`, samples.slice(0, WINDOW), { floor: FLOOR }),
      summarize(`through the control plane: last ${WINDOW}`, samples.slice(-WINDOW), { floor: FLOOR }),
      summarize('through the control plane: all', samples, { floor: FLOOR }),
    ];
    return {
      rows,
      writes: samples.length,
      stoppedEarly,
      payloadBytes,
      dbBytes,
      walBytes,
      eventBytes: totals.bytes,
      events: totals.events,
    };
  } finally {
    await c.close();
  }
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

export function printEventLog(r: EventLogResult): void {
  printTable(
    `Event log: ${r.writes} writes of ${mib(r.payloadBytes)} (one kept-alive connection each path)`,
    r.rows,
  );
  printKeyValues('Event log on disk afterwards', [
    [
      'writes through the control plane',
      `${r.writes}${r.stoppedEarly ? ' (stopped early: time budget)' : ''}`,
    ],
    ['database file', mib(r.dbBytes)],
    ['WAL file', mib(r.walBytes)],
    ['events', String(r.events)],
    ['payload bytes stored', mib(r.eventBytes)],
  ]);
}

if (isMain(import.meta.url)) {
  const r = await benchEventLog();
  printEventLog(r);
  process.stdout.write(`\nJSON: ${writeJson('event-log', r)}\n`);
  process.exit(0);
}

/** Shared helpers for benchmarks: percentiles, a fixed-width table, and a JSON results file. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface Row {
  name: string;
  n: number;
  p50: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
  /** Name of the floor this row is compared with, if any. */
  floor?: string;
  note?: string;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function summarize(name: string, samplesMs: number[], extra: Partial<Row> = {}): Row {
  const s = [...samplesMs].sort((a, b) => a - b);
  return {
    name,
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    min: s[0] ?? Number.NaN,
    max: s.at(-1) ?? Number.NaN,
    ...extra,
  };
}

/** Runs `fn` `warmup` times unmeasured, then `n` times measured (milliseconds each). */
export async function measure(
  n: number,
  fn: () => Promise<unknown>,
  warmup = Math.min(10, n),
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const fmt = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) : '-');

export function printTable(title: string, rows: Row[]): void {
  const header = ['benchmark', 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'vs floor p50'];
  const byName = new Map(rows.map((r) => [r.name, r]));
  const lines = rows.map((r) => {
    const floor = r.floor ? byName.get(r.floor) : undefined;
    const ratio = floor ? `${(r.p50 / floor.p50).toFixed(2)}x ${r.floor}` : (r.note ?? '');
    return [r.name, String(r.n), fmt(r.p50), fmt(r.p95), fmt(r.p99), fmt(r.max), ratio];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`\n${title}\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const l of lines) process.stdout.write(`${line(l)}\n`);
}

export function writeJson(name: string, data: unknown): string {
  const dir = resolve(import.meta.dirname, '../results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  // bench/** is linted: leave the file as the formatter would, so `npm run lint` stays clean.
  const biome = resolve(import.meta.dirname, '../../node_modules/.bin/biome');
  if (existsSync(biome)) {
    try {
      execFileSync(biome, ['format', '--write', file], { stdio: 'ignore' });
    } catch {
      // Formatting is a courtesy; the JSON is valid either way.
    }
  }
  return file;
}

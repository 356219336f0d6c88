/** How the CLI talks to people and scripts: --json for machines, short tables and hints for people. */
import { BerthApiError, NetworkError } from '../sdk/errors.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(rows: string[][], header: string[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(header)}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

/** Prints an image build's result: the tag on stdout, or JSON with --json. */
export function printBuildResult(
  r: { tag: string; imageId: string; cached: boolean; base: string; baseId: string; durationMs: number },
  json: boolean | undefined,
): void {
  if (json) {
    printJson({
      tag: r.tag,
      image_id: r.imageId,
      cached: r.cached,
      base: r.base,
      base_id: r.baseId,
      duration_ms: Math.round(r.durationMs),
    });
  } else process.stdout.write(`${r.tag}\n`);
}

/** Turns any error into one line that says what to do, and an exit code. */
export function explain(err: unknown): { message: string; code: number } {
  // Not reaching the control plane: said as before, from the error fetch gave.
  if (err instanceof NetworkError) return explainOther(err.cause ?? err);
  if (err instanceof BerthApiError) {
    const hint =
      err.code === 'UNAUTHORIZED'
        ? ' (set BERTH_API_KEY to a key the control plane accepts)'
        : err.code === 'NOT_FOUND'
          ? ' (list sandboxes with `berth sandbox ls`)'
          : '';
    return { message: `${err.message}${hint} [${err.code}]`, code: 1 };
  }
  return explainOther(err);
}

function explainOther(err: unknown): { message: string; code: number } {
  const e = err as NodeJS.ErrnoException & { cause?: { code?: string } };
  if (e?.cause?.code === 'ECONNREFUSED' || e?.code === 'ECONNREFUSED') {
    return {
      message: 'Cannot reach the control plane: start it with `berth up` (or set BERTH_URL)',
      code: 1,
    };
  }
  return { message: e?.message ?? String(err), code: 1 };
}

export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A one-line spinner on a terminal; silent when stdout is not a TTY or --json is set. */
export function spinner(text: string, enabled = process.stderr.isTTY === true) {
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let i = 0;
  let current = text;
  const t0 = Date.now();
  const timer = enabled
    ? setInterval(() => {
        process.stderr.write(
          `\r${frames[i++ % frames.length]} ${current} (${Math.round((Date.now() - t0) / 1000)}s)\x1b[K`,
        );
      }, 100)
    : undefined;
  if (!enabled) process.stderr.write(`${text}...\n`);
  return {
    update(t: string) {
      current = t;
      if (!enabled) process.stderr.write(`${t}\n`);
    },
    stop(final?: string) {
      if (timer) clearInterval(timer);
      if (enabled) process.stderr.write('\r\x1b[K');
      if (final) process.stderr.write(`${final}\n`);
    },
  };
}

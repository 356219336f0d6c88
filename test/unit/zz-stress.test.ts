import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const childScript = fileURLToPath(new URL('./fixtures/reserve-ports.ts', import.meta.url));
it.each(Array.from({ length: 15 }, (_, i) => i))(
  'stress %i',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pstress-'));
    const min = 20000 + Math.floor(Math.random() * 10000);
    const max = min + 329;
    const dead = await new Promise<number>((r) => {
      const c = spawn(process.execPath, ['-e', '']);
      c.once('exit', () => r(c.pid!));
    });
    for (let i = 0; i < 330; i += 2)
      writeFileSync(
        join(dir, `${min + i}.lock`),
        JSON.stringify({
          owner: 'x',
          pid: dead,
          host: hostname(),
          at: new Date(Date.now() - 3600e3).toISOString(),
        }),
      );
    const kids = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', childScript, dir, String(min), String(max), '50', '1'],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        );
        const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
        await lines.next();
        return { child, lines };
      }),
    );
    for (const k of kids) k.child.stdin!.write('go\n');
    const all = (
      await Promise.all(kids.map(async (k) => JSON.parse((await k.lines.next()).value as string) as number[]))
    ).flat();
    expect(new Set(all).size).toBe(300);
    expect(readdirSync(dir).filter((n) => n.endsWith('.lock')).length).toBeGreaterThanOrEqual(300);
    rmSync(dir, { recursive: true, force: true });
  },
  60_000,
);

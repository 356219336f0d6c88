/**
 * `@e2b/code-interpreter` (npm), unchanged, against Berth: its runCode and code contexts reach the
 * runtime server's code interpreter through the control plane's origin (E2b-Sandbox-Port: 49999),
 * pointed there by the same three environment variables as the e2b SDK.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type E2bTarget, startForE2b } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: E2B code interpreter suite (${unavailable})`);

const { Sandbox } = await import('@e2b/code-interpreter');
type CodeSandbox = InstanceType<typeof Sandbox>;

describe.skipIf(unavailable !== undefined)('@e2b/code-interpreter against Berth', () => {
  let target: E2bTarget;
  let cp: E2bTarget['cp'];
  let sbx: CodeSandbox;
  const saved = { ...process.env };

  beforeAll(async () => {
    target = await startForE2b();
    cp = target.cp;
    Object.assign(process.env, target.env);
    // The SDK's default template, code-interpreter-v1, is the runtime image.
    sbx = await Sandbox.create({ envs: { SANDBOX_WIDE: 'on' } });
  }, 120_000);

  afterAll(async () => {
    process.env = saved;
    await target?.close();
  });

  it('runCode: the value as the main result, prints as logs, state kept between runs', async () => {
    const first = await sbx.runCode('x = 40\nprint("hello")\nx + 2');
    expect(first.error).toBeUndefined();
    expect(first.logs.stdout).toEqual(['hello\n']);
    expect(first.results.map((r) => [r.text, r.isMainResult])).toEqual([['42', true]]);
    expect(first.text).toBe('42');
    const second = await sbx.runCode('x * 2');
    expect(second.text).toBe('80');
    expect(second.executionCount).toBeGreaterThan(first.executionCount ?? 0);
  });

  it('errors come back as name, value and traceback; stderr and subprocess output are logs', async () => {
    const failed = await sbx.runCode('1 / 0');
    expect(failed.error?.name).toBe('ZeroDivisionError');
    expect(failed.error?.value).toContain('division by zero');
    expect(failed.error?.traceback).toContain('ZeroDivisionError');
    const logs = await sbx.runCode(
      'import sys, os\nsys.stderr.write("to err\\n")\nos.system("echo from-a-subprocess")',
    );
    expect(logs.logs.stderr.join('')).toBe('to err\n');
    expect(logs.logs.stdout.join('')).toContain('from-a-subprocess');
  });

  it('streams output as it is produced, and rich displays are results too', async () => {
    const seen: string[] = [];
    const run = await sbx.runCode(
      'import time\nfrom IPython.display import display, HTML\nprint("a", flush=True)\ntime.sleep(0.3)\ndisplay(HTML("<b>bold</b>"))\nprint("b")',
      { onStdout: (m) => void seen.push(m.line) },
    );
    expect(seen.join('')).toBe('a\nb\n');
    expect(run.results.map((r) => [r.html, r.isMainResult])).toEqual([['<b>bold</b>', false]]);
  });

  it('a plot: PNG display data comes back as base64 PNG', async () => {
    // The offline image has no matplotlib: the plot is drawn by hand, a PNG made with zlib.
    const code = [
      'import struct, zlib',
      'from IPython.display import Image, display',
      'w, h = 32, 16',
      'rows = b"".join(b"\\x00" + bytes((255 if y == h - 1 - x // 2 else 0) for x in range(w)) for y in range(h))',
      'def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))',
      'png = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")',
      'display(Image(data=png, format="png"))',
    ].join('\n');
    const run = await sbx.runCode(code);
    expect(run.error).toBeUndefined();
    const png = run.results.find((r) => r.png)?.png;
    expect(png).toBeDefined();
    expect([...Buffer.from(png!, 'base64').subarray(1, 4)]).toEqual([...Buffer.from('PNG')]);
  });

  it('env vars for one execution; the sandbox env vars for all', async () => {
    const run = await sbx.runCode('import os\nos.environ.get("ONLY_HERE")', { envs: { ONLY_HERE: 'yes' } });
    expect(run.text).toBe("'yes'");
    expect((await sbx.runCode('import os\nos.environ.get("ONLY_HERE")')).text).toBeUndefined();
    expect((await sbx.runCode('import os\nos.environ.get("SANDBOX_WIDE")')).text).toBe("'on'");
  });

  it('contexts: separate state, listed, restarted (state gone), removed', async () => {
    const ctx = await sbx.createCodeContext({ cwd: '/tmp' });
    expect(ctx).toMatchObject({ language: 'python', cwd: '/tmp' });
    await sbx.runCode('y = "in ctx"', { context: ctx });
    expect((await sbx.runCode('y', { context: ctx })).text).toBe("'in ctx'");
    expect((await sbx.runCode('import os\nos.getcwd()', { context: ctx })).text).toBe("'/tmp'");
    // The default context has no y.
    expect((await sbx.runCode('y')).error?.name).toBe('NameError');
    expect((await sbx.listCodeContexts()).map((c) => c.id)).toContain(ctx.id);
    await sbx.restartCodeContext(ctx);
    expect((await sbx.runCode('y', { context: ctx })).error?.name).toBe('NameError');
    await sbx.removeCodeContext(ctx);
    expect((await sbx.listCodeContexts()).map((c) => c.id)).not.toContain(ctx.id);
    const gone = await sbx.runCode('1', { context: ctx }).catch((e: unknown) => e);
    expect(String((gone as Error).message)).toMatch(/not found/i);
  });

  it('an unknown language is refused with a clear error; context calls need the sandbox tokens', async () => {
    const err = await sbx.runCode('1', { language: 'cobol' }).catch((e: unknown) => e);
    expect(String((err as Error).message)).toMatch(/cobol/);
    // Without E2B-Traffic-Access-Token or X-Access-Token: refused at the control plane.
    const res = await fetch(`${cp.url}/contexts`, {
      headers: { 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '49999' },
    });
    expect(res.status).toBe(401);
  });
});

import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { COMMAND_OUTPUT } from '../../src/runtime-server/core/process/output-buffer.js';
import { ProcessTable } from '../../src/runtime-server/core/process/table.js';
import { PythonKernel } from '../../src/runtime-server/core/python/kernel.js';
import type { CellRequest } from '../../src/runtime-server/core/python/types.js';
import { stripEscapes } from '../../src/runtime-server/core/shell/terminal-text.js';

/** A 1x1 PNG. */
const PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const PNG_URL = `data:image/png;base64,${PNG_BASE64}`;
const DEFAULT_TIMEOUT_MS = 20_000;

const hasIPython = spawnSync('python3', ['-c', 'import IPython'], { stdio: 'ignore' }).status === 0;

let scratch: string;
/** Every kernel here starts its processes in this table, as the runtime server's do in its own. */
const processes = new ProcessTable();
/** On PYTHONPATH, a package named IPython whose import fails: forces the driver's plain fallback. */
let noIPythonDir: string;

beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'berth-kernel-test-'));
  noIPythonDir = path.join(scratch, 'no-ipython');
  mkdirSync(path.join(noIPythonDir, 'IPython'), { recursive: true });
  writeFileSync(
    path.join(noIPythonDir, 'IPython', '__init__.py'),
    'raise ImportError("IPython hidden by the test")\n',
  );
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  // A zombie nobody has reaped yet still answers kill(pid, 0); it is dead all the same.
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

async function waitUntil(check: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

const modes = [
  { name: 'plain fallback', ipython: false, skip: false },
  { name: 'IPython', ipython: true, skip: !hasIPython },
];

for (const mode of modes) {
  describe.skipIf(mode.skip)(`PythonKernel (${mode.name})`, () => {
    let kernel: PythonKernel;
    const warnings: unknown[][] = [];

    const makeKernel = (extra: Partial<ConstructorParameters<typeof PythonKernel>[0]> = {}) =>
      new PythonKernel({
        processes,
        env: mode.ipython ? {} : { PYTHONPATH: noIPythonDir },
        logger: { warn: (...a: unknown[]) => warnings.push(a) },
        ...extra,
      });

    const run = (code: string, req: Partial<CellRequest> = {}) =>
      kernel.run({ code, cwd: scratch, timeoutMs: DEFAULT_TIMEOUT_MS, ...req });

    beforeEach(() => {
      warnings.length = 0;
      kernel = makeKernel();
    });

    afterEach(async () => {
      await kernel.dispose();
    });

    it('runs in the intended mode', async () => {
      const r = await run(
        'import sys\nprint("IPython" in sys.modules and sys.modules["IPython"] is not None)',
      );
      expect(r.text).toBe(mode.ipython ? 'True' : 'False');
    });

    it('keeps variables and imports across cells and prints a trailing expression', async () => {
      expect((await run('import math\nx = 41')).text).toBe('');
      const r = await run('print("hello")\nmath.floor(x + 1.5)');
      expect(r).toMatchObject({ text: 'hello\n42', imageUrls: [], timedOut: false });
      expect(path.isAbsolute(r.interpreter)).toBe(true);
      expect(existsSync(r.interpreter)).toBe(true);
    });

    it('does not print None or a result after a trailing semicolon', async () => {
      expect((await run('None')).text).toBe('');
      expect((await run('print("a")\n1 + 1;')).text).toBe('a');
      expect((await run('"s"')).text).toBe("'s'");
    });

    it('joins stdout and stderr (with subprocesses) as ipykernel flushes them: stdout first in a quick cell', async () => {
      // As the reference (checked with test/oracle): ipykernel buffers each stream and flushes it 0.2 s
      // after its first write, and both, stdout first, at the end of the cell.
      const r = await run(
        [
          'import os, sys',
          'print("before")',
          'print("to stderr", file=sys.stderr)',
          "os.system('echo hi; echo err >&2')",
          'print("after")',
        ].join('\n'),
      );
      expect(r.text).toBe('before\nhi\nafter\nto stderr\nerr');
    });

    it('writes further apart than the flush interval keep their order', async () => {
      const r = await run(
        'import sys, time\nprint("a")\ntime.sleep(0.6)\nprint("e", file=sys.stderr)\ntime.sleep(0.6)\nprint("b")',
      );
      expect(r.text).toBe('a\ne\nb');
    });

    it('a display, a result or a traceback comes after the prints before it, stdout then stderr', async () => {
      const display = mode.ipython ? 'from IPython.display import display\n' : '';
      // The text/plain of a display is joined to what follows with nothing between, as the
      // reference's client joins its outputs.
      expect((await run(`${display}print("a")\ndisplay(1)\nprint("b")\ndisplay("s")\nprint("c")`)).text).toBe(
        "a\n1b\n's'c",
      );
      expect(
        (
          await run(
            'import sys\nsys.stderr.write("e1\\n")\nprint("o1")\ndisplay(5)\nsys.stderr.write("e2\\n")',
          )
        ).text,
      ).toBe('o1\ne1\n5e2\n3');
      // IPython's first traceback takes longer than the flush interval to format (so, as in ipykernel,
      // the prints are flushed on time before it): warm it up.
      await run('1/0');
      const tb = await run('import sys\nprint("x", file=sys.stderr)\nprint("o")\n1/0');
      expect(tb.text.startsWith('o\nx\n')).toBe(true);
      expect(tb.text).toContain('ZeroDivisionError');
      // Output that is only whitespace is output (no "no output" note); none at all is none.
      expect(await run('print("")')).toMatchObject({ text: '', hadOutput: true });
      expect(await run('x_ = 1')).toMatchObject({ text: '', hadOutput: false });
    });

    it('puts the traceback of an error into the text and keeps the kernel', async () => {
      await run('y = 7');
      const r = await run('def f():\n    raise ValueError("boom")\nf()');
      expect(r.timedOut).toBe(false);
      expect(r.text).toContain('ValueError: boom');
      expect(r.text).toContain('raise ValueError("boom")');
      if (mode.ipython) {
        expect(r.text).toMatch(/^-+\nValueError\s+Traceback \(most recent call last\)/);
      } else {
        expect(r.text).toMatch(/^Traceback \(most recent call last\):\n {2}File "<cell-\d+>", line 3/);
        // The driver's own frames (run with -c, so named <string>) are not shown.
        expect(r.text).not.toContain('<string>');
      }
      expect((await run('y * 6')).text).toBe('42');
    });

    it('reports a syntax error and keeps the kernel', async () => {
      const r = await run('x = (1,');
      expect(r.text).toContain('SyntaxError');
      expect((await run('1 + 1')).text).toBe('2');
    });

    it('reports exit() without losing the kernel', async () => {
      await run('z = 3');
      expect((await run('raise SystemExit(2)')).text).toContain('SystemExit');
      expect((await run('z')).text).toBe('3');
    });

    it("chdirs to the request cwd when it changes; a cell's own chdir lasts until then", async () => {
      const a = realpathSync(mkdtempSync(path.join(scratch, 'cwd-a-')));
      const b = realpathSync(mkdtempSync(path.join(scratch, 'cwd-b-')));
      expect((await run('import os\nprint(os.getcwd())', { cwd: a })).text).toBe(a);
      expect((await run('print(os.getcwd())', { cwd: b })).text).toBe(b);
      // As the reference: the kernel is sent to the shell's cwd only when that changed, so the
      // cell's own chdir persists while the request cwd stays b...
      await run('os.chdir("/")', { cwd: b });
      expect((await run('print(os.getcwd())', { cwd: b })).text).toBe('/');
      // ...and ends when it changes.
      expect((await run('print(os.getcwd())', { cwd: a })).text).toBe(a);
    });

    it('a cwd that cannot be entered is skipped silently; the kernel stays where it was', async () => {
      const a = realpathSync(mkdtempSync(path.join(scratch, 'cwd-a-')));
      expect((await run('import os\nprint(os.getcwd())', { cwd: a })).text).toBe(a);
      expect((await run('print(os.getcwd())', { cwd: path.join(scratch, 'no-such-dir') })).text).toBe(a);
    });

    it('gives input() EOF instead of hanging', async () => {
      const started = Date.now();
      const r = await run('input("name? ")', { timeoutMs: 10_000 });
      expect(r.timedOut).toBe(false);
      expect(r.text).toContain('EOFError');
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('interrupts a cell at the timeout and keeps its variables', async () => {
      await run('kept = "still here"');
      const started = Date.now();
      const r = await run('import time\nprint("sleeping")\ntime.sleep(100)\nprint("never")', {
        timeoutMs: 1_000,
      });
      expect(r.timedOut).toBe(true);
      expect(r.text).toBe('sleeping');
      expect(Date.now() - started).toBeLessThan(4_000);
      const after = await run('kept');
      expect(after).toMatchObject({ text: "'still here'", timedOut: false });
    });

    it('kills and restarts a kernel whose cell ignores the interrupt', async () => {
      await kernel.dispose();
      kernel = makeKernel({ interruptGraceMs: 500 });
      await run('lost = 1');
      const started = Date.now();
      const r = await run(
        'import time\nprint("stubborn")\nwhile True:\n    try:\n        time.sleep(100)\n    except KeyboardInterrupt:\n        pass',
        { timeoutMs: 500 },
      );
      expect(r.timedOut).toBe(true);
      expect(r.text).toMatch(
        /^stubborn\n\[The cell did not stop after the interrupt, so the Python kernel was killed/,
      );
      expect(Date.now() - started).toBeLessThan(5_000);
      const after = await run('print("fresh")\n"lost" in dir()');
      expect(after.text).toBe('fresh\nFalse');
      expect(warnings.length).toBeGreaterThan(0);
    });

    it('restarts after the kernel process dies, saying so', async () => {
      await run('gone = 1');
      const r = await run('import os\nprint("bye")\nos._exit(3)');
      expect(r.timedOut).toBe(false);
      expect(r.text).toBe(
        'bye\n[The Python kernel died (exit code 3) and was restarted; variables and imports from earlier cells are lost.]',
      );
      const after = await run('print("back")\n"gone" in dir()');
      expect(after.text).toBe('back\nFalse');
    });

    it('reports a PNG display as an image URL', async () => {
      const code = mode.ipython
        ? [
            'import base64',
            'from IPython.display import Image, display',
            `display(Image(data=base64.b64decode("${PNG_BASE64}")))`,
          ].join('\n')
        : [
            'import base64',
            'class Chart:',
            '    def _repr_png_(self):',
            `        return base64.b64decode("${PNG_BASE64}")`,
            '    def __repr__(self):',
            "        return '<Chart>'",
            'display(Chart())',
            'print("shown")',
          ].join('\n');
      const r = await run(code);
      expect(r.imageUrls).toEqual([PNG_URL]);
      expect(r.text).toBe(mode.ipython ? '<IPython.core.display.Image object>' : '<Chart>shown');
    });

    it('reports a trailing expression with a PNG form as an image', async () => {
      const r = await run(
        [
          'import base64',
          'class Pic:',
          '    def _repr_png_(self):',
          `        return base64.b64decode("${PNG_BASE64}")`,
          '    def __repr__(self):',
          "        return '<Pic>'",
          'Pic()',
        ].join('\n'),
      );
      expect(r.imageUrls).toEqual([PNG_URL]);
      expect(r.text).toBe('<Pic>');
    });

    it('keeps only the head and tail of a huge output', async () => {
      const r = await run('print("S" + "x" * 5_000_000 + "E")');
      expect(r.text.length).toBeLessThan(COMMAND_OUTPUT.headChars + COMMAND_OUTPUT.tailChars + 200);
      expect(r.text.startsWith('Sxxx')).toBe(true);
      expect(r.text.endsWith('xxxE')).toBe(true);
      expect(r.text).toMatch(/\n\[\.\.\. \d+ characters of output omitted \.\.\.\]\n/);
      expect((await run('print("next")')).text).toBe('next');
    });

    it('is not confused by a cell printing protocol-like text', async () => {
      const code =
        'print(\'{"type": "done", "id": 1, "images": []}\')\nprint("\\x1e<berth-cell-end 00>\\x1e")';
      const r = await run(code);
      expect(r.text).toBe('{"type": "done", "id": 1, "images": []}\n\x1e<berth-cell-end 00>\x1e');
    });

    it('strips ANSI escapes', async () => {
      expect((await run('print("\\x1b[31mred\\x1b[0m plain")')).text).toBe('red plain');
    });

    it('runs concurrent requests one at a time, in order', async () => {
      const results = await Promise.all([
        run('import time\ntime.sleep(0.3)\nseq = [1]'),
        run('seq.append(2)\nseq'),
        run('seq.append(3)\nseq'),
      ]);
      expect(results.map((r) => r.text)).toEqual(['', '[1, 2]', '[1, 2, 3]']);
    });

    it('dispose kills the kernel and the processes it started', async () => {
      const r = await run(
        'import os, subprocess\nchild = subprocess.Popen(["sleep", "100"])\nprint(os.getpid(), child.pid)',
      );
      const [kernelPid, childPid] = r.text.split(' ').map(Number);
      expect(kernelPid).toBeGreaterThan(0);
      expect(childPid).toBeGreaterThan(0);
      expect(isGone(kernelPid!)).toBe(false);
      await kernel.dispose();
      expect(await waitUntil(() => isGone(kernelPid!) && isGone(childPid!))).toBe(true);
      await expect(run('1')).rejects.toThrow(/disposed/);
    });

    it('ends a running cell when disposed', async () => {
      await run('started = True');
      const pending = run('import time\ntime.sleep(100)');
      await new Promise((r) => setTimeout(r, 300));
      await kernel.dispose();
      const r = await pending;
      expect(r.text).toContain('[The Python kernel was shut down.]');
    });

    if (mode.ipython) {
      it('supports shell escapes and magics, without colours', async () => {
        expect((await run('!echo bang')).text).toBe('bang');
        expect((await run("!printf 'a\\nb\\n'")).text).toBe('a\nb');
        const r = await run('%env BERTH_TEST_VAR=hello\nimport os\nos.environ["BERTH_TEST_VAR"]');
        expect(r.text).toContain("'hello'");
        const err = await run('1/0');
        expect(err.text).toContain('ZeroDivisionError');
        expect(err.text).not.toContain('\x1b');
      });
    }
  });
}

describe('PythonKernel start-up', () => {
  it('rejects when the interpreter does not exist', async () => {
    const kernel = new PythonKernel({ processes, pythonPath: path.join(tmpdir(), 'no-such-python3') });
    await expect(kernel.run({ code: '1', cwd: tmpdir(), timeoutMs: 5_000 })).rejects.toThrow(
      /could not start/,
    );
    await kernel.dispose();
  });

  it('rejects when no python is on PATH', async () => {
    const kernel = new PythonKernel({ processes, env: { PATH: path.join(tmpdir(), 'empty-path-dir') } });
    await expect(kernel.run({ code: '1', cwd: tmpdir(), timeoutMs: 5_000 })).rejects.toThrow(/python3/);
    await kernel.dispose();
  });

  it('rejects with the interpreter error when the driver cannot run', async () => {
    // `false` ignores its arguments and exits 1 at once, like a broken interpreter.
    const kernel = new PythonKernel({ processes, pythonPath: 'false' });
    await expect(kernel.run({ code: '1', cwd: tmpdir(), timeoutMs: 5_000 })).rejects.toThrow(/exit code 1/);
    await kernel.dispose();
  });
});

describe('stripEscapes', () => {
  it('removes colour, cursor and OSC sequences', () => {
    expect(stripEscapes('\x1b[1;31mred\x1b[0m \x1b[2K\x1b]0;title\x07done')).toBe('red done');
  });
});

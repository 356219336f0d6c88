/** Contract: read, write, the str_replace editor and run_ipython over HTTP, and file ownership. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RuntimeClient, type RuntimeTarget, startRuntimeTarget } from './harness.js';

let target: RuntimeTarget;
let c: RuntimeClient;
let ws: string;

// A 1x1 transparent PNG.
const PNG_B64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

beforeAll(async () => {
  target = await startRuntimeTarget();
  c = new RuntimeClient(target);
  ws = target.workspace;
});
afterAll(async () => {
  await target?.close();
});

describe('files that would block: FIFOs, devices', () => {
  it('read, write and the editor refuse them at once, and the sandbox keeps working', async () => {
    const mk = await c.act('run', { command: 'mkfifo pipe && ls -l pipe' });
    expect(mk.extras.metadata.exit_code).toBe(0);
    const read = await c.act('read', { path: 'pipe' });
    expect(read.observation).toBe('error');
    expect(read.content).toBe(
      `Path is a FIFO, not a regular file: ${ws}/pipe. You can only read regular files`,
    );
    const write = await c.act('write', { path: 'pipe', content: 'x' });
    expect(write.observation).toBe('error');
    expect(write.content).toContain('not a regular file');
    for (const command of ['view', 'str_replace']) {
      const edit = await c.act('edit', { command, path: `${ws}/pipe`, old_str: 'a', new_str: 'b' });
      expect(edit.content).toContain('is not a regular file');
    }
    const dev = await c.act('read', { path: '/dev/zero' });
    expect(dev.content).toContain('Path is a character device, not a regular file');
    // The queue moved on: the next action runs.
    expect((await c.act('run', { command: 'echo still-here' })).content).toContain('still-here');
  });

  it('a write leaves no temporary file behind and keeps a symbolic link a link', async () => {
    await c.act('write', { path: 'real.txt', content: 'one' });
    await c.act('run', { command: 'ln -sf real.txt link.txt' });
    await c.act('write', { path: 'link.txt', content: 'two' });
    const ls = await c.act('run', { command: 'ls -A; readlink link.txt; cat real.txt' });
    expect(ls.content).not.toContain('.berth-');
    expect(ls.content).toContain('real.txt\ntwo');
  });
});

describe('write and read', () => {
  it('write adds a newline to every line; read returns it; messages and extras', async () => {
    const w = await c.act('write', { path: 'notes/a.txt', content: 'one\ntwo\nthree' });
    expect(w).toEqual({
      observation: 'write',
      content: '',
      extras: { path: `${ws}/notes/a.txt` },
      message: `I wrote to the file ${ws}/notes/a.txt.`,
    });
    const r = await c.act('read', { path: 'notes/a.txt' });
    expect(r.observation).toBe('read');
    expect(r.content).toBe('one\ntwo\nthree\n');
    expect(r.extras).toEqual({ path: `${ws}/notes/a.txt`, impl_source: 'default' });
    expect(r.message).toBe(`I read the file ${ws}/notes/a.txt.`);
  });

  it('line ranges: 0-based, exclusive end, -1 to the end', async () => {
    await c.act('write', { path: 'r.txt', content: 'l0\nl1\nl2\nl3' });
    expect((await c.act('read', { path: 'r.txt', start: 1, end: 3 })).content).toBe('l1\nl2\n');
    expect((await c.act('read', { path: 'r.txt', start: 2 })).content).toBe('l2\nl3\n');
    await c.act('write', { path: 'r.txt', content: 'X\nY', start: 1, end: 3 });
    expect((await c.act('read', { path: 'r.txt' })).content).toBe('l0\nX\nY\nl3\n');
  });

  it("explicit end: the reference's read_lines picks at least one line and starts at most at the second-to-last", async () => {
    // Checked against the reference (0.62) with test/oracle. With end -1 a start past the end is
    // empty; with an explicit end, a start at or past the end gives the last two lines, start == end
    // the line at start, end < start the line at start.
    await c.act('write', { path: 'rl.txt', content: 'a\nb\nc\nd' });
    const read = async (start: number, end: number, path = 'rl.txt') =>
      (await c.act('read', { path, start, end })).content;
    expect(await read(10, -1)).toBe('');
    expect(await read(4, -1)).toBe('');
    expect(await read(10, 12)).toBe('c\nd\n');
    expect(await read(4, 4)).toBe('c\nd\n');
    expect(await read(3, 4)).toBe('c\nd\n');
    expect(await read(3, 3)).toBe('c\n');
    expect(await read(1, 1)).toBe('b\n');
    expect(await read(0, 0)).toBe('a\n');
    expect(await read(2, 1)).toBe('c\n');
    expect(await read(1, -5)).toBe('b\n');
    expect(await read(2, 100)).toBe('c\nd\n');
    await c.act('write', { path: 'one.txt', content: 'only' });
    expect(await read(5, 6, 'one.txt')).toBe('only\n');
    expect(await read(1, -1, 'one.txt')).toBe('');
    await c.run(': > empty.txt');
    expect(await read(3, 5, 'empty.txt')).toBe('');
  });

  it('relative paths resolve against the shell cwd', async () => {
    await c.run('mkdir -p deep && cd deep');
    await c.act('write', { path: 'here.txt', content: 'deep file' });
    expect((await c.run(`cat ${ws}/deep/here.txt`)).content).toBe('deep file');
    await c.run(`cd ${ws}`);
  });

  it('reference error texts', async () => {
    const missing = await c.act('read', { path: 'nope.txt' });
    expect(missing.observation).toBe('error');
    expect(missing.content).toBe(`File not found: ${ws}/nope.txt. Your current working directory is ${ws}.`);
    const dir = await c.act('read', { path: ws });
    expect(dir.content).toBe(`Path is a directory: ${ws}. You can only read files`);
    const wdir = await c.act('write', { path: ws, content: 'x' });
    expect(wdir.content).toBe(`Path is a directory: ${ws}. You can only write to files`);
    await c.run("printf '\\x00\\x01\\x02binary' > bin.dat");
    expect((await c.act('read', { path: 'bin.dat' })).content).toBe('ERROR_BINARY_FILE');
    await c.run("printf 'caf\\xe9 latin1' > latin.txt");
    expect((await c.act('read', { path: 'latin.txt' })).content).toBe(
      `File could not be decoded as utf-8: ${ws}/latin.txt.`,
    );
  });

  it('images and PDFs come back as data URLs', async () => {
    await c.run(`echo ${PNG_B64} | base64 -d > pixel.png`);
    const img = await c.act('read', { path: 'pixel.png' });
    expect(img.content).toBe(`data:image/png;base64,${PNG_B64}`);
    await c.run("printf '%%PDF-1.4\\n%%\\xe2\\xe3\\n' > doc.pdf");
    expect((await c.act('read', { path: 'doc.pdf' })).content).toMatch(
      /^data:application\/pdf;base64,JVBERi0xLjQK/,
    );
  });
});

describe('binary files', () => {
  // As the reference (openhands-ai 0.62, checked with test/oracle): a read asks binaryornot's
  // is_binary on the path first, so impl_source "oh_aci" answers the error observation
  // ERROR_BINARY_FILE before its editor sees the file (also over the 10 MB editor limit, also with a
  // view_range); the editor's own view says "File validation failed"; a ".pyc" name is binary
  // whatever it holds, even when missing.
  const BINARY = 'File appears to be binary and this file type cannot be read or edited by this tool.';

  it('read with impl_source oh_aci: the error observation ERROR_BINARY_FILE', async () => {
    await c.run("printf 'a\\0b' > nul.bin && head -c 11000000 /dev/zero > big.bin && : > empty.bin");
    for (const args of [
      { path: `${ws}/nul.bin`, impl_source: 'oh_aci' },
      { path: `${ws}/nul.bin`, impl_source: 'oh_aci', view_range: [1, 1] },
      { path: `${ws}/big.bin`, impl_source: 'oh_aci' },
      { path: `${ws}/nul.bin` },
    ]) {
      const o = await c.act('read', args);
      expect(o.observation, JSON.stringify(args)).toBe('error');
      expect(o.content).toBe('ERROR_BINARY_FILE');
    }
    const empty = await c.act('read', { path: `${ws}/empty.bin`, impl_source: 'oh_aci' });
    expect(empty.observation).toBe('read');
    expect(empty.content).toBe(`Here's the result of running \`cat -n\` on ${ws}/empty.bin:\n     1\t\n`);
  });

  it("the editor's view: File validation failed; over 10 MB the size comes first", async () => {
    const view = await c.act('edit', { command: 'view', path: `${ws}/nul.bin` });
    expect(view.observation).toBe('edit');
    expect(view.content).toBe(`ERROR:\nFile validation failed for ${ws}/nul.bin: ${BINARY}`);
    const big = await c.act('edit', { command: 'view', path: `${ws}/big.bin` });
    expect(big.content).toBe(
      `ERROR:\nFile validation failed for ${ws}/big.bin: File is too large (10.5MB). Maximum allowed size is 10MB.`,
    );
  });

  it('a .pyc name is binary, even holding text or missing', async () => {
    await c.run("echo 'print(1)' > t.pyc");
    for (const args of [
      { path: `${ws}/t.pyc` },
      { path: 't.pyc' },
      { path: `${ws}/t.pyc`, impl_source: 'oh_aci' },
      { path: `${ws}/missing.pyc` },
    ]) {
      const o = await c.act('read', args);
      expect(o.observation, JSON.stringify(args)).toBe('error');
      expect(o.content).toBe('ERROR_BINARY_FILE');
    }
    const view = await c.act('edit', { command: 'view', path: `${ws}/t.pyc` });
    expect(view.content).toBe(`ERROR:\nFile validation failed for ${ws}/t.pyc: ${BINARY}`);
  });

  it('only the first KiB is sniffed: a NUL after it is text', async () => {
    await c.run(`python3 -c "open('late-nul.txt','wb').write(b'x'*2000+b'\\0')"`);
    const o = await c.act('read', { path: `${ws}/late-nul.txt` });
    expect(o.observation).toBe('read');
    expect(o.content).toBe(`${'x'.repeat(2000)}\0`);
  });
});

describe('str_replace editor', () => {
  it('create, view, str_replace, insert, undo with the reference texts and a diff', async () => {
    const p = `${ws}/ed.py`;
    const created = await c.act('edit', { command: 'create', path: p, file_text: 'a = 1\nb = 2\n' });
    expect(created.observation).toBe('edit');
    expect(created.content).toBe(`File created successfully at: ${p}`);
    expect(created.extras.prev_exist).toBe(false);
    expect(created.message).toBe(`I edited the file ${p}.`);
    expect(created.extras.diff).toContain('+a = 1');

    const view = await c.act('read', { path: p, impl_source: 'oh_aci' });
    expect(view.observation).toBe('read');
    expect(view.extras.impl_source).toBe('oh_aci');
    expect(view.content).toBe(
      `Here's the result of running \`cat -n\` on ${p}:\n     1\ta = 1\n     2\tb = 2\n     3\t\n`,
    );

    const replaced = await c.act('edit', {
      command: 'str_replace',
      path: p,
      old_str: 'b = 2',
      new_str: 'b = 3',
    });
    expect(replaced.content.startsWith(`The file ${p} has been edited. `)).toBe(true);
    expect(replaced.content).toContain('     2\tb = 3');
    expect(replaced.extras.old_content).toBe('b = 2');
    expect(replaced.extras.new_content).toBe('b = 3');
    expect(replaced.extras.prev_exist).toBe(true);
    expect(replaced.extras.diff).toContain('-b = 2');
    expect(replaced.extras.diff).toContain('+b = 3');

    const inserted = await c.act('edit', { command: 'insert', path: p, insert_line: 1, new_str: 'x = 0' });
    expect(inserted.content).toContain('     2\tx = 0');
    const undone = await c.act('edit', { command: 'undo_edit', path: p });
    expect(undone.content.startsWith(`Last edit to ${p} undone successfully. `)).toBe(true);
    expect((await c.run(`cat ${p}`)).content).toBe('a = 1\nb = 3');
  });

  it('errors are ERROR:\\n<message> with HTTP 200', async () => {
    const p = `${ws}/ed2.txt`;
    await c.act('edit', { command: 'create', path: p, file_text: 'dup\ndup\n' });
    const multi = await c.act('edit', { command: 'str_replace', path: p, old_str: 'dup', new_str: 'x' });
    expect(multi.content).toBe(
      'ERROR:\nNo replacement was performed. Multiple occurrences of old_str `dup` in lines [1, 2]. Please ensure it is unique.',
    );
    const none = await c.act('edit', { command: 'str_replace', path: p, old_str: 'zzz', new_str: 'x' });
    expect(none.content).toBe(
      `ERROR:\nNo replacement was performed, old_str \`zzz\` did not appear verbatim in ${p}.`,
    );
    const exists = await c.act('edit', { command: 'create', path: p, file_text: '' });
    expect(exists.content).toBe(
      `ERROR:\nInvalid \`path\` parameter: ${p}. File already exists at: ${p}. Cannot overwrite files using command \`create\`.`,
    );
    const rel = await c.act('edit', { command: 'view', path: 'ed2.txt' });
    expect(rel.content).toBe(
      `ERROR:\nInvalid \`path\` parameter: ed2.txt. The path should be an absolute path, starting with \`/\`. Maybe you meant ${ws}/ed2.txt?`,
    );
    const badCmd = await c.act('edit', { command: 'explode', path: p });
    expect(badCmd.content).toBe(
      'ERROR:\nUnrecognized command explode. The allowed commands for the oh_editor tool are: view, create, str_replace, insert, undo_edit',
    );
  });

  it('views a directory two levels deep without hidden entries', async () => {
    await c.run('mkdir -p tree/a/b/c tree/.hidden && touch tree/a/f.txt tree/.dot');
    const v = await c.act('edit', { command: 'view', path: `${ws}/tree` });
    expect(v.content).toBe(
      `Here's the files and directories up to 2 levels deep in ${ws}/tree, excluding hidden items:\n${ws}/tree/\n${ws}/tree/a/\n${ws}/tree/a/b/\n${ws}/tree/a/f.txt\n\n2 hidden files/directories in this directory are excluded. You can use 'ls -la ${ws}/tree' to see them.`,
    );
  });
});

describe('run_ipython', () => {
  it('keeps state, prints results, appends the cwd and interpreter lines', async () => {
    await c.act('run_ipython', { code: 'x = 20' });
    const o = await c.act('run_ipython', { code: 'print("hello")\nx + 22' });
    expect(o.observation).toBe('run_ipython');
    expect(o.success).toBe(true);
    expect(o.message).toBe('Code executed in IPython cell.');
    const lines = o.content.split('\n');
    expect(lines).toContain('hello');
    expect(o.content).toContain('42');
    expect(lines.at(-2)).toBe(`[Jupyter current working directory: ${ws}]`);
    expect(lines.at(-1)).toMatch(/^\[Jupyter Python interpreter: \/.+python[0-9.]*\]$/);
    expect(o.extras.code).toBe('print("hello")\nx + 22');
  });

  it('no output, tracebacks, include_extra=false, cwd follows the shell', async () => {
    const quiet = await c.act('run_ipython', { code: 'y = 1', include_extra: false });
    expect(quiet.content).toBe('[Code executed successfully with no output]');
    const err = await c.act('run_ipython', { code: '1/0', include_extra: false });
    expect(err.observation).toBe('run_ipython');
    expect(err.content).toContain('ZeroDivisionError');
    await c.run('mkdir -p pyd && cd pyd');
    const cwd = await c.act('run_ipython', { code: 'import os; print(os.getcwd())', include_extra: false });
    expect(cwd.content).toBe(`${ws}/pyd`);
    await c.run(`cd ${ws}`);
  });

  it('prints, stderr and displays come back in the order the reference gets them from ipykernel', async () => {
    // Checked against openhands-ai 0.62 with test/oracle: stdout before stderr within a quick cell,
    // a display after the prints before it, its text joined to what follows with nothing between.
    const cell = async (code: string) => (await c.act('run_ipython', { code, include_extra: false })).content;
    expect(await cell('import sys\nprint("out")\nprint("err", file=sys.stderr)\nprint("out2")')).toBe(
      'out\nout2\nerr',
    );
    expect(await cell('print("a")\ndisplay(1)\nprint("b")\n7')).toBe('a\n1b\n7');
    expect(await cell('display(1); display(2)')).toBe('12');
    expect(await cell('print("")')).toBe('');
  });

  it("a cell's os.chdir persists until the shell's cwd changes, as in the reference", async () => {
    await c.run(`cd ${ws} && mkdir -p pa pb`);
    const cwd = async () =>
      (await c.act('run_ipython', { code: 'import os; print(os.getcwd())', include_extra: false })).content;
    expect(await cwd()).toBe(ws);
    await c.act('run_ipython', { code: 'os.chdir("pa")' });
    // The shell's cwd is unchanged: the kernel stays in pa, and the extra line names the shell's cwd.
    const o = await c.act('run_ipython', { code: 'print(os.getcwd())' });
    expect(o.content.split('\n').slice(0, 2)).toEqual([
      `${ws}/pa`,
      `[Jupyter current working directory: ${ws}]`,
    ]);
    await c.run(`cd ${ws}`); // a cd to the same directory changes nothing
    expect(await cwd()).toBe(`${ws}/pa`);
    await c.run('cd pb');
    expect(await cwd()).toBe(`${ws}/pb`);
    await c.run(`cd ${ws}`);
    expect(await cwd()).toBe(ws);
    // The shell's cwd removed: the kernel's chdir fails silently and it stays where it was.
    await c.run(`mkdir -p ${ws}/gone && cd ${ws}/gone && rmdir ${ws}/gone`);
    expect(await cwd()).toBe(ws);
    await c.run(`cd ${ws}`);
    expect(await cwd()).toBe(ws);
  });

  it('a timeout interrupts the cell and keeps the kernel', async () => {
    await c.act('run_ipython', { code: 'kept = "still here"' });
    const slow = await c.act('run_ipython', { code: 'import time\ntime.sleep(60)', include_extra: false }, 2);
    // As the reference: the timeout text alone (what the cell printed is dropped), the seconds as a
    // Python float.
    expect(slow.content).toBe('[Execution timed out (2.0 seconds).]');
    const printed = await c.act(
      'run_ipython',
      { code: 'import sys; print("before"); print("e", file=sys.stderr); time.sleep(60)' },
      1.5,
    );
    expect(printed.content.split('\n')[0]).toBe('[Execution timed out (1.5 seconds).]');
    expect(printed.extras.image_urls ?? null).toBeNull();
    const after = await c.act('run_ipython', { code: 'print(kept)', include_extra: false });
    expect(after.content).toBe('still here');
  });
});

describe('ownership', () => {
  it('every file an action creates belongs to the user the server runs as', async () => {
    await c.act('write', { path: 'own/w.txt', content: 'w' });
    await c.act('edit', { command: 'create', path: `${ws}/own/e.txt`, file_text: 'e' });
    await c.run('touch own/s.txt');
    await c.act('run_ipython', { code: `open("${ws}/own/p.txt", "w").write("p")` });
    const o = await c.run('id -u; stat -c %u own/w.txt own/e.txt own/s.txt own/p.txt');
    const [uid, ...owners] = o.content.split('\n');
    expect(owners).toEqual([uid, uid, uid, uid]);
  });
});

import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileEditor } from '../../src/runtime-server/core/editor/editor.js';
import { EditorError, type EditorRequest } from '../../src/runtime-server/core/editor/types.js';

const FILE_NOTICE =
  '<response clipped><NOTE>Due to the max output limit, only part of this file has been shown to you. You should retry this tool after you have searched inside the file with `grep -n` in order to find the line numbers of what you are looking for.</NOTE>';
const DIR_NOTICE =
  '<response clipped><NOTE>Due to the max output limit, only part of this directory has been shown to you. You should use `ls -la` instead to view large directories incrementally.</NOTE>';
const REVIEW = 'Review the changes and make sure they are as expected. Edit the file again if necessary.';
const REVIEW_INSERT =
  'Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary.';

let root: string;
let historyParent: string;
let editor: FileEditor;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'berth-editor-test-'));
  historyParent = mkdtempSync(join(tmpdir(), 'berth-editor-history-parent-'));
  editor = new FileEditor({ workspaceRoot: root, historyParentDir: historyParent });
});

afterEach(async () => {
  await editor.dispose();
  rmSync(root, { recursive: true, force: true });
  rmSync(historyParent, { recursive: true, force: true });
});

const p = (name: string) => join(root, name);
const run = (req: EditorRequest) => editor.execute(req);

/** Runs the request and returns the EditorError's message; fails if it succeeds or throws anything else. */
async function errorOf(req: EditorRequest): Promise<string> {
  try {
    await editor.execute(req);
  } catch (err) {
    expect(err).toBeInstanceOf(EditorError);
    return (err as EditorError).message;
  }
  throw new Error(`expected an EditorError for ${JSON.stringify(req)}`);
}

/** The reference's `cat -n` rendering of explicit (number, text) rows. */
function catN(description: string, rows: Array<[number, string]>): string {
  const body = rows.map(([n, text]) => `${String(n).padStart(6, ' ')}\t${text}`).join('\n');
  return `Here's the result of running \`cat -n\` on ${description}:\n${body}\n`;
}

describe('create', () => {
  it('writes the file as the server user, reports it, and gives after-content for the diff', async () => {
    const result = await run({ command: 'create', path: p('new.py'), file_text: 'print(1)\n' });
    expect(result).toEqual({
      output: `File created successfully at: ${p('new.py')}`,
      prevExist: false,
      before: null,
      after: 'print(1)\n',
    });
    expect(readFileSync(p('new.py'), 'utf8')).toBe('print(1)\n');
    expect(statSync(p('new.py')).uid).toBe(process.getuid!());
  });

  it('accepts an empty file_text and writes text byte for byte (no newline translation)', async () => {
    await run({ command: 'create', path: p('empty.txt'), file_text: '' });
    expect(readFileSync(p('empty.txt'), 'utf8')).toBe('');
    await run({ command: 'create', path: p('crlf.txt'), file_text: 'a\r\nb' });
    expect(readFileSync(p('crlf.txt'), 'utf8')).toBe('a\r\nb');
  });

  it('refuses to overwrite, needs file_text, and reports write failures as Python did', async () => {
    writeFileSync(p('a.txt'), 'x');
    expect(await errorOf({ command: 'create', path: p('a.txt'), file_text: 'y' })).toBe(
      `Invalid \`path\` parameter: ${p('a.txt')}. File already exists at: ${p('a.txt')}. Cannot overwrite files using command \`create\`.`,
    );
    expect(readFileSync(p('a.txt'), 'utf8')).toBe('x');
    expect(await errorOf({ command: 'create', path: p('b.txt') })).toBe(
      'Parameter `file_text` is required for command: create.',
    );
    expect(await errorOf({ command: 'create', path: p('b.txt'), file_text: null })).toBe(
      'Parameter `file_text` is required for command: create.',
    );
    const nested = p('no/such/dir.txt');
    expect(await errorOf({ command: 'create', path: nested, file_text: 'y' })).toBe(
      `Ran into [Errno 2] No such file or directory: '${nested}' while trying to write to ${nested}`,
    );
  });

  it('refuses a directory and the view-only binary types', async () => {
    mkdirSync(p('d'));
    expect(await errorOf({ command: 'create', path: p('d'), file_text: 'y' })).toBe(
      `Invalid \`path\` parameter: ${p('d')}. File already exists at: ${p('d')}. Cannot overwrite files using command \`create\`.`,
    );
    expect(await errorOf({ command: 'create', path: p('report.PDF'), file_text: 'y' })).toBe(
      `Invalid \`path\` parameter: ${p('report.PDF')}. The path ${p('report.PDF')} points to a binary file (.PDF) and only the \`view\` command can be used on supported binary files.`,
    );
  });
});

describe('view (file)', () => {
  it('numbers every line and shows a last empty line when the file ends with a newline', async () => {
    writeFileSync(p('a.txt'), 'one\ntwo\nthree\n');
    const result = await run({ command: 'view', path: p('a.txt') });
    expect(result.output).toBe(
      `Here's the result of running \`cat -n\` on ${p('a.txt')}:\n     1\tone\n     2\ttwo\n     3\tthree\n     4\t\n`,
    );
    expect(result).toMatchObject({ prevExist: true, before: null, after: null });
  });

  it('shows no extra line without a final newline, and one empty line for an empty file', async () => {
    writeFileSync(p('a.txt'), 'one\ntwo');
    expect((await run({ command: 'view', path: p('a.txt') })).output).toBe(
      catN(p('a.txt'), [
        [1, 'one'],
        [2, 'two'],
      ]),
    );
    writeFileSync(p('e.txt'), '');
    expect((await run({ command: 'view', path: p('e.txt') })).output).toBe(catN(p('e.txt'), [[1, '']]));
  });

  it('pads numbers to six columns and lets wider ones grow', async () => {
    writeFileSync(p('long.txt'), `${Array.from({ length: 1_000_001 }, () => '').join('\n')}x`);
    const result = await run({ command: 'view', path: p('long.txt'), view_range: [999_999, 1_000_001] });
    expect(result.output).toBe(
      catN(p('long.txt'), [
        [999_999, ''],
        [1_000_000, ''],
        [1_000_001, 'x'],
      ]),
    );
  });

  it('shows a view_range without the trailing empty line, with -1 meaning the end', async () => {
    writeFileSync(p('a.txt'), 'one\ntwo\nthree\nfour\n');
    expect((await run({ command: 'view', path: p('a.txt'), view_range: [2, 3] })).output).toBe(
      catN(p('a.txt'), [
        [2, 'two'],
        [3, 'three'],
      ]),
    );
    expect((await run({ command: 'view', path: p('a.txt'), view_range: [3, -1] })).output).toBe(
      catN(p('a.txt'), [
        [3, 'three'],
        [4, 'four'],
      ]),
    );
    expect((await run({ command: 'view', path: p('a.txt'), view_range: [4, 4] })).output).toBe(
      catN(p('a.txt'), [[4, 'four']]),
    );
    // An empty range list is Python-falsy: the whole file.
    expect((await run({ command: 'view', path: p('a.txt'), view_range: [] })).output).toContain('     5\t\n');
  });

  it('clamps an end past the file with a NOTE line before the output', async () => {
    writeFileSync(p('a.txt'), 'one\ntwo\nthree\n');
    expect((await run({ command: 'view', path: p('a.txt'), view_range: [2, 10] })).output).toBe(
      "NOTE: We only show up to 3 since there're only 3 lines in this file.\n" +
        catN(p('a.txt'), [
          [2, 'two'],
          [3, 'three'],
        ]),
    );
  });

  it('splits a ranged view with Python splitlines (form feeds too), but a whole view only on \\n', async () => {
    writeFileSync(p('ff.txt'), 'a\fb\nc\n');
    expect((await run({ command: 'view', path: p('ff.txt'), view_range: [1, 2] })).output).toBe(
      catN(p('ff.txt'), [
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ]),
    );
    expect((await run({ command: 'view', path: p('ff.txt') })).output).toBe(
      catN(p('ff.txt'), [
        [1, 'a\fb'],
        [2, 'c'],
        [3, ''],
      ]),
    );
  });

  it('validates view_range with the reference messages', async () => {
    writeFileSync(p('a.txt'), 'one\ntwo\nthree\n');
    const path = p('a.txt');
    const prefix = 'Invalid `view_range` parameter:';
    expect(await errorOf({ command: 'view', path, view_range: [0, 2] })).toBe(
      `${prefix} [0, 2]. Its first element \`0\` should be within the range of lines of the file: [1, 3].`,
    );
    expect(await errorOf({ command: 'view', path, view_range: [4, 5] })).toBe(
      `${prefix} [4, 5]. Its first element \`4\` should be within the range of lines of the file: [1, 3].`,
    );
    expect(await errorOf({ command: 'view', path, view_range: [3, 1] })).toBe(
      `${prefix} [3, 1]. Its second element \`1\` should be greater than or equal to the first element \`3\`.`,
    );
    expect(await errorOf({ command: 'view', path, view_range: [2, -5] })).toBe(
      `${prefix} [2, -5]. Its second element \`-5\` should be greater than or equal to the first element \`2\`.`,
    );
    expect(await errorOf({ command: 'view', path, view_range: [1] })).toBe(
      `${prefix} [1]. It should be a list of two integers.`,
    );
    expect(await errorOf({ command: 'view', path, view_range: [1, 2, 3] })).toBe(
      `${prefix} [1, 2, 3]. It should be a list of two integers.`,
    );
    expect(await errorOf({ command: 'view', path, view_range: ['1', 2] as unknown as number[] })).toBe(
      `${prefix} ['1', 2]. It should be a list of two integers.`,
    );
    expect(await errorOf({ command: 'view', path, view_range: [1.5, 2] })).toBe(
      `${prefix} [1.5, 2]. It should be a list of two integers.`,
    );
    writeFileSync(p('e.txt'), '');
    expect(await errorOf({ command: 'view', path: p('e.txt'), view_range: [1, 1] })).toBe(
      `${prefix} [1, 1]. Its first element \`1\` should be within the range of lines of the file: [1, 0].`,
    );
  });

  it('clips the raw text at 16,000 characters, appends the notice, then numbers the lines', async () => {
    writeFileSync(p('one-line.txt'), 'x'.repeat(20_000));
    expect((await run({ command: 'view', path: p('one-line.txt') })).output).toBe(
      catN(p('one-line.txt'), [[1, 'x'.repeat(16_000) + FILE_NOTICE]]),
    );

    // 1,000 lines of 19 characters plus a newline: the clip falls 0 characters into line 801.
    const lines = Array.from({ length: 1000 }, (_, i) => `line ${String(i + 1).padStart(14, '0')}`);
    writeFileSync(p('many.txt'), `${lines.join('\n')}\n`);
    const output = (await run({ command: 'view', path: p('many.txt') })).output;
    const rows = output.split('\n');
    expect(rows[800]).toBe(`   800\t${lines[799]}`);
    expect(rows[801]).toBe(`   801\t${FILE_NOTICE}`);
    expect(rows).toHaveLength(803);
  });

  it('counts the clip in characters, not UTF-16 units', async () => {
    writeFileSync(p('emoji.txt'), '😀'.repeat(16_001));
    expect((await run({ command: 'view', path: p('emoji.txt') })).output).toBe(
      catN(p('emoji.txt'), [[1, '😀'.repeat(16_000) + FILE_NOTICE]]),
    );
    writeFileSync(p('exact.txt'), '😀'.repeat(16_000));
    expect((await run({ command: 'view', path: p('exact.txt') })).output).toBe(
      catN(p('exact.txt'), [[1, '😀'.repeat(16_000)]]),
    );
  });

  it('refuses files over 10 MB with the size rounded as Python formats it', async () => {
    // Sparse files: the size check comes before any read.
    writeFileSync(p('big.txt'), '');
    truncateSync(p('big.txt'), 10 * 1024 * 1024 + 1);
    expect(await errorOf({ command: 'view', path: p('big.txt') })).toBe(
      `File validation failed for ${p('big.txt')}: File is too large (10.0MB). Maximum allowed size is 10MB.`,
    );
    // 10.25 MB exactly: Python rounds the tie to even.
    truncateSync(p('big.txt'), 10.25 * 1024 * 1024);
    expect(await errorOf({ command: 'str_replace', path: p('big.txt'), old_str: 'a', new_str: 'b' })).toBe(
      `File validation failed for ${p('big.txt')}: File is too large (10.2MB). Maximum allowed size is 10MB.`,
    );
    truncateSync(p('big.txt'), 10 * 1024 * 1024);
    expect(await errorOf({ command: 'view', path: p('big.txt') })).toBe(
      `File validation failed for ${p('big.txt')}: File appears to be binary and this file type cannot be read or edited by this tool.`,
    );
  });

  it('detects binary content as binaryornot does', async () => {
    const binary = `File appears to be binary and this file type cannot be read or edited by this tool.`;
    writeFileSync(p('nul.dat'), Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08, 0x00, 0x41, 0x0a]));
    expect(await errorOf({ command: 'view', path: p('nul.dat') })).toBe(
      `File validation failed for ${p('nul.dat')}: ${binary}`,
    );
    expect(await errorOf({ command: 'insert', path: p('nul.dat'), insert_line: 0, new_str: 'x' })).toBe(
      `File validation failed for ${p('nul.dat')}: ${binary}`,
    );
    writeFileSync(p('ff.txt'), Buffer.from([0x61, 0xff, 0x0a]));
    expect(await errorOf({ command: 'view', path: p('ff.txt') })).toContain(binary);
    // A lone two-byte character is mostly high bytes that chardet is not sure of: binary to the reference.
    writeFileSync(p('e-acute.txt'), 'é');
    expect(await errorOf({ command: 'view', path: p('e-acute.txt') })).toContain(binary);

    // Text: ANSI escapes, UTF-8 in plenty, a newline after one accented character.
    writeFileSync(p('ansi.txt'), '\x1b[31mred\x1b[0m\n');
    expect((await run({ command: 'view', path: p('ansi.txt') })).output).toContain('\x1b[31mred');
    writeFileSync(p('cjk.txt'), '日本語テキスト');
    expect((await run({ command: 'view', path: p('cjk.txt') })).output).toBe(
      catN(p('cjk.txt'), [[1, '日本語テキスト']]),
    );
    writeFileSync(p('e2.txt'), 'é\n');
    expect((await run({ command: 'view', path: p('e2.txt') })).output).toBe(
      catN(p('e2.txt'), [
        [1, 'é'],
        [2, ''],
      ]),
    );
  });

  it('does not convert view-only binary types, and says so', async () => {
    writeFileSync(p('doc.pdf'), '%PDF-1.4');
    expect(await errorOf({ command: 'view', path: p('doc.pdf') })).toBe(
      `Error in converting file to Markdown: converting .pdf files is not supported by this runtime. Please use Python code to read ${p('doc.pdf')}`,
    );
  });
});

describe('view (directory)', () => {
  it('lists two levels like find -L, sorted bytewise, without hidden entries, with the hidden count', async () => {
    mkdirSync(p('src/deep/deeper'), { recursive: true });
    writeFileSync(p('src/a.ts'), '');
    writeFileSync(p('src/.env'), '');
    writeFileSync(p('src/deep/deeper/not-listed'), '');
    mkdirSync(p('.git'));
    writeFileSync(p('.git/config'), '');
    writeFileSync(p('.bashrc'), '');
    mkdirSync(p('a'));
    writeFileSync(p('a/z'), '');
    writeFileSync(p('a-b'), '');
    writeFileSync(p('a.txt'), '');
    writeFileSync(p('Z'), '');
    symlinkSync(p('src'), p('link'));
    symlinkSync('/nonexistent/target', p('dangling'));

    const result = await run({ command: 'view', path: root });
    expect(result.output).toBe(
      [
        `Here's the files and directories up to 2 levels deep in ${root}, excluding hidden items:`,
        `${root}/`,
        `${root}/Z`,
        `${root}/a/`,
        `${root}/a-b`,
        `${root}/a.txt`,
        `${root}/a/z`,
        `${root}/dangling`,
        `${root}/link/`,
        `${root}/link/a.ts`,
        `${root}/link/deep/`,
        `${root}/src/`,
        `${root}/src/a.ts`,
        `${root}/src/deep/`,
        '',
        `2 hidden files/directories in this directory are excluded. You can use 'ls -la ${root}' to see them.`,
      ].join('\n'),
    );
    expect(result).toMatchObject({ prevExist: true, before: null, after: null });
  });

  it('agrees with GNU find and sort on the same tree', async () => {
    for (const dir of ['x/y/z', 'x/.h', 'B', 'b c', 'é']) mkdirSync(p(dir), { recursive: true });
    for (const file of ['x/y/f', 'x/.h/f', 'x/g', 'b c/d', 'é/f', '_', '~', '.dot'])
      writeFileSync(p(file), '');
    symlinkSync(p('x'), p('lx'));
    const found = execFileSync(
      'sh',
      [
        '-c',
        `find -L "$1" -maxdepth 2 -not \\( -path "$1/.*" -o -path "$1/*/.*" \\) | LC_ALL=C sort`,
        'sh',
        root,
      ],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .map((line) => (statSync(line).isDirectory() ? `${line}/` : line));
    const output = (await run({ command: 'view', path: root })).output;
    expect(output.split('\n').slice(1, 1 + found.length)).toEqual(found);
  });

  it('omits the hidden line when nothing is hidden, and normalises the path', async () => {
    writeFileSync(p('only.txt'), '');
    expect((await run({ command: 'view', path: `${root}//./` })).output).toBe(
      `Here's the files and directories up to 2 levels deep in ${root}, excluding hidden items:\n${root}/\n${root}/only.txt`,
    );
  });

  it("reports find's errors (a symlink loop) instead of a listing", async () => {
    mkdirSync(p('d'));
    symlinkSync(root, p('d/up'));
    expect(await errorOf({ command: 'view', path: root })).toBe(
      `find: File system loop detected; ‘${p('d/up')}’ is part of the same file system loop as ‘${root}’.\n`,
    );
    rmSync(p('d/up'));
    symlinkSync('self', p('self'));
    expect(await errorOf({ command: 'view', path: root })).toBe(
      `find: ‘${p('self')}’: Too many levels of symbolic links\n`,
    );
  });

  it('clips the raw listing at 16,000 characters before marking directories', async () => {
    for (let i = 0; i < 40; i++) {
      mkdirSync(p(`dir${String(i).padStart(2, '0')}`));
      for (let j = 0; j < 20; j++) writeFileSync(p(`dir${String(i).padStart(2, '0')}/file-${j}.txt`), '');
    }
    const output = (await run({ command: 'view', path: root })).output;
    expect(output.endsWith(DIR_NOTICE)).toBe(true);
    const raw = execFileSync('sh', ['-c', 'find -L "$1" -maxdepth 2 | LC_ALL=C sort', 'sh', root], {
      encoding: 'utf8',
    });
    const kept = raw.slice(0, 16_000).split('\n');
    const lastKept = kept[kept.length - 1]!;
    expect(output.endsWith(`\n${lastKept}${DIR_NOTICE}`)).toBe(true);
    expect(output).toContain(`\n${root}/dir00/\n${root}/dir00/file-0.txt\n`);
  });

  it('refuses a view_range and every command but view', async () => {
    mkdirSync(p('d'));
    expect(await errorOf({ command: 'view', path: p('d'), view_range: [1, 2] })).toBe(
      'Invalid `view_range` parameter: [1, 2]. The `view_range` parameter is not allowed when `path` points to a directory.',
    );
    for (const command of ['str_replace', 'insert', 'undo_edit']) {
      expect(await errorOf({ command, path: p('d'), old_str: 'a', new_str: 'b', insert_line: 0 })).toBe(
        `Invalid \`path\` parameter: ${p('d')}. The path ${p('d')} is a directory and only the \`view\` command can be used on directories.`,
      );
    }
  });
});

describe('str_replace', () => {
  const tenLines = `${Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n')}\n`;

  it("replaces the one occurrence and shows the reference's window: 3 lines above, 4 below", async () => {
    writeFileSync(p('f.txt'), tenLines);
    const result = await run({
      command: 'str_replace',
      path: p('f.txt'),
      old_str: 'line 6',
      new_str: 'six\nSIX',
    });
    expect(result.output).toBe(
      `The file ${p('f.txt')} has been edited. ` +
        catN(`a snippet of ${p('f.txt')}`, [
          [3, 'line 3'],
          [4, 'line 4'],
          [5, 'line 5'],
          [6, 'six'],
          [7, 'SIX'],
          [8, 'line 7'],
          [9, 'line 8'],
          [10, 'line 9'],
          [11, 'line 10'],
          [12, ''],
        ]) +
        REVIEW,
    );
    const after = tenLines.replace('line 6', 'six\nSIX');
    expect(readFileSync(p('f.txt'), 'utf8')).toBe(after);
    expect(result).toEqual({ output: result.output, prevExist: true, before: tenLines, after });
  });

  it('shows the snippet from line 1 near the top, and stops early when the window ends inside the file', async () => {
    writeFileSync(p('f.txt'), tenLines);
    const result = await run({
      command: 'str_replace',
      path: p('f.txt'),
      old_str: 'line 2\n',
      new_str: 'two\n',
    });
    expect(result.output).toBe(
      `The file ${p('f.txt')} has been edited. ` +
        catN(`a snippet of ${p('f.txt')}`, [
          [1, 'line 1'],
          [2, 'two'],
          [3, 'line 3'],
          [4, 'line 4'],
          [5, 'line 5'],
          [6, 'line 6'],
          [7, 'line 7'],
          [8, ''],
        ]) +
        REVIEW,
    );
  });

  it('matches literally and reports the absent and the repeated', async () => {
    writeFileSync(p('f.txt'), 'a.*b\nx\nab\nab\n');
    await run({ command: 'str_replace', path: p('f.txt'), old_str: 'a.*b', new_str: 'lit' });
    expect(readFileSync(p('f.txt'), 'utf8')).toBe('lit\nx\nab\nab\n');
    expect(await errorOf({ command: 'str_replace', path: p('f.txt'), old_str: 'zz', new_str: 'y' })).toBe(
      `No replacement was performed, old_str \`zz\` did not appear verbatim in ${p('f.txt')}.`,
    );
    expect(await errorOf({ command: 'str_replace', path: p('f.txt'), old_str: 'ab', new_str: 'y' })).toBe(
      'No replacement was performed. Multiple occurrences of old_str `ab` in lines [3, 4]. Please ensure it is unique.',
    );
    // Overlapping candidates count once, as non-overlapping regex matches do; a line is listed once.
    writeFileSync(p('g.txt'), 'aaa aa\n');
    expect(await errorOf({ command: 'str_replace', path: p('g.txt'), old_str: 'aa', new_str: 'b' })).toBe(
      'No replacement was performed. Multiple occurrences of old_str `aa` in lines [1]. Please ensure it is unique.',
    );
    writeFileSync(p('h.txt'), 'aaa\n');
    await run({ command: 'str_replace', path: p('h.txt'), old_str: 'aa', new_str: 'b' });
    expect(readFileSync(p('h.txt'), 'utf8')).toBe('ba\n');
  });

  it('retries without surrounding whitespace on both strings', async () => {
    writeFileSync(p('f.txt'), 'def f():\n    return 1\n');
    await run({
      command: 'str_replace',
      path: p('f.txt'),
      old_str: '\n  return 1  \n\n',
      new_str: '  return 2\n',
    });
    expect(readFileSync(p('f.txt'), 'utf8')).toBe('def f():\n    return 2\n');
    expect(
      await errorOf({ command: 'str_replace', path: p('f.txt'), old_str: '  nothing \n', new_str: 'x' }),
    ).toBe(`No replacement was performed, old_str \`nothing\` did not appear verbatim in ${p('f.txt')}.`);
  });

  it('treats an empty old_str as matching everywhere, and an omitted new_str as deletion', async () => {
    writeFileSync(p('f.txt'), 'a\nb\n');
    expect(await errorOf({ command: 'str_replace', path: p('f.txt'), old_str: '', new_str: 'x' })).toBe(
      'No replacement was performed. Multiple occurrences of old_str `` in lines [1, 2, 3]. Please ensure it is unique.',
    );
    await run({ command: 'str_replace', path: p('f.txt'), old_str: 'a\n' });
    expect(readFileSync(p('f.txt'), 'utf8')).toBe('b\n');
  });

  it('requires old_str and a different new_str', async () => {
    writeFileSync(p('f.txt'), 'a\n');
    expect(await errorOf({ command: 'str_replace', path: p('f.txt'), new_str: 'x' })).toBe(
      'Parameter `old_str` is required for command: str_replace.',
    );
    expect(await errorOf({ command: 'str_replace', path: p('f.txt'), old_str: 'a', new_str: 'a' })).toBe(
      'Invalid `new_str` parameter: a. No replacement was performed. `new_str` and `old_str` must be different.',
    );
  });

  it('keeps the mode of the file it edits, and hard links keep sharing it', async () => {
    writeFileSync(p('run.sh'), 'echo hi\n');
    chmodSync(p('run.sh'), 0o751);
    await run({ command: 'str_replace', path: p('run.sh'), old_str: 'hi', new_str: 'there' });
    await run({ command: 'insert', path: p('run.sh'), insert_line: 0, new_str: '#!/bin/sh' });
    await run({ command: 'undo_edit', path: p('run.sh') });
    const after = statSync(p('run.sh'));
    expect(after.mode & 0o777).toBe(0o751);
    expect(readFileSync(p('run.sh'), 'utf8')).toBe('echo there\n');
    linkSync(p('run.sh'), p('run-link.sh'));
    const { ino } = statSync(p('run.sh'));
    await run({ command: 'str_replace', path: p('run.sh'), old_str: 'there', new_str: 'linked' });
    expect(statSync(p('run.sh')).ino).toBe(ino);
    expect(readFileSync(p('run-link.sh'), 'utf8')).toBe('echo linked\n');
    expect(readdirSync(dirname(p('run.sh'))).filter((n) => n.includes('.berth-'))).toEqual([]);
  });

  it('reads \\r\\n as \\n (so the file is written back with \\n), as Python text mode does', async () => {
    writeFileSync(p('dos.txt'), 'one\r\ntwo\r\n');
    expect((await run({ command: 'view', path: p('dos.txt') })).output).toBe(
      catN(p('dos.txt'), [
        [1, 'one'],
        [2, 'two'],
        [3, ''],
      ]),
    );
    const result = await run({ command: 'str_replace', path: p('dos.txt'), old_str: 'two', new_str: '2' });
    expect(result.before).toBe('one\ntwo\n');
    expect(readFileSync(p('dos.txt'), 'utf8')).toBe('one\n2\n');
  });

  it('writes a non-UTF-8 file back in its own encoding, and keeps a UTF-8 BOM', async () => {
    writeFileSync(p('latin.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a, 0x78, 0x0a]));
    await run({ command: 'str_replace', path: p('latin.txt'), old_str: 'x', new_str: 'y' });
    expect(readFileSync(p('latin.txt'))).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a, 0x79, 0x0a]));
    expect(await errorOf({ command: 'str_replace', path: p('latin.txt'), old_str: 'y', new_str: '€' })).toBe(
      `Ran into 'latin-1' codec can't encode character '\\u20ac' in position 5: ordinal not in range(256) while trying to write to ${p('latin.txt')}`,
    );

    writeFileSync(p('bom.txt'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('hello\n')]));
    expect((await run({ command: 'view', path: p('bom.txt') })).output).toContain('     1\thello\n');
    await run({ command: 'str_replace', path: p('bom.txt'), old_str: 'hello', new_str: 'héllo' });
    expect(readFileSync(p('bom.txt'))).toEqual(
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('héllo\n')]),
    );
  });

  it('runs one command at a time, so concurrent edits of one file both land', async () => {
    writeFileSync(p('f.txt'), 'a\nb\n');
    await Promise.all([
      run({ command: 'str_replace', path: p('f.txt'), old_str: 'a', new_str: 'A' }),
      run({ command: 'str_replace', path: p('f.txt'), old_str: 'b', new_str: 'B' }),
    ]);
    expect(readFileSync(p('f.txt'), 'utf8')).toBe('A\nB\n');
  });
});

describe('insert', () => {
  it('inserts after the given line and shows the window around it', async () => {
    writeFileSync(p('f.txt'), 'l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\n');
    const result = await run({
      command: 'insert',
      path: p('f.txt'),
      insert_line: 5,
      new_str: 'new A\nnew B',
    });
    expect(result.output).toBe(
      `The file ${p('f.txt')} has been edited. ` +
        catN('a snippet of the edited file', [
          [2, 'l2'],
          [3, 'l3'],
          [4, 'l4'],
          [5, 'l5'],
          [6, 'new A'],
          [7, 'new B'],
          [8, 'l6'],
          [9, 'l7'],
          [10, 'l8'],
          [11, 'l9'],
          [12, ''],
        ]) +
        REVIEW_INSERT,
    );
    const after = 'l1\nl2\nl3\nl4\nl5\nnew A\nnew B\nl6\nl7\nl8\nl9\n';
    expect(readFileSync(p('f.txt'), 'utf8')).toBe(after);
    expect(result).toMatchObject({ prevExist: true, before: 'l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\n', after });
  });

  it('inserts at the top with line 0 and converts a string insert_line as int() does', async () => {
    writeFileSync(p('f.txt'), 'a\nb\n');
    const result = await run({ command: 'insert', path: p('f.txt'), insert_line: '0', new_str: 'top' });
    expect(result.output).toBe(
      `The file ${p('f.txt')} has been edited. ` +
        catN('a snippet of the edited file', [
          [1, 'top'],
          [2, 'a'],
          [3, 'b'],
          [4, ''],
        ]) +
        REVIEW_INSERT,
    );
    await run({ command: 'insert', path: p('f.txt'), insert_line: ' +3 ', new_str: '' });
    expect(readFileSync(p('f.txt'), 'utf8')).toBe('top\na\nb\n\n');
  });

  it('joins the last line when the file has no final newline, as the reference does', async () => {
    writeFileSync(p('f.txt'), 'a\nb');
    const result = await run({ command: 'insert', path: p('f.txt'), insert_line: 2, new_str: 'c' });
    expect(readFileSync(p('f.txt'), 'utf8')).toBe('a\nbc\n');
    expect(result.output).toBe(
      `The file ${p('f.txt')} has been edited. ` +
        catN('a snippet of the edited file', [
          [1, 'a'],
          [2, 'bc'],
          [3, ''],
        ]) +
        REVIEW_INSERT,
    );
  });

  it('validates insert_line and new_str', async () => {
    writeFileSync(p('f.txt'), 'a\nb\n');
    const path = p('f.txt');
    expect(await errorOf({ command: 'insert', path, insert_line: 3, new_str: 'x' })).toBe(
      'Invalid `insert_line` parameter: 3. It should be within the range of allowed values: [0, 2]',
    );
    expect(await errorOf({ command: 'insert', path, insert_line: -1, new_str: 'x' })).toBe(
      'Invalid `insert_line` parameter: -1. It should be within the range of allowed values: [0, 2]',
    );
    expect(await errorOf({ command: 'insert', path, insert_line: 'two', new_str: 'x' })).toBe(
      "Invalid insert_line value: 'two'. Expected an integer.",
    );
    expect(await errorOf({ command: 'insert', path, insert_line: '1.0', new_str: 'x' })).toBe(
      "Invalid insert_line value: '1.0'. Expected an integer.",
    );
    expect(await errorOf({ command: 'insert', path, new_str: 'x' })).toBe(
      'Parameter `insert_line` is required for command: insert.',
    );
    expect(await errorOf({ command: 'insert', path, insert_line: 1 })).toBe(
      'Parameter `new_str` is required for command: insert.',
    );
    expect(readFileSync(path, 'utf8')).toBe('a\nb\n');
  });
});

describe('undo_edit and history', () => {
  it('restores the previous version and shows the whole restored file', async () => {
    writeFileSync(p('f.txt'), 'a\nb\n');
    await run({ command: 'str_replace', path: p('f.txt'), old_str: 'b', new_str: 'B' });
    const result = await run({ command: 'undo_edit', path: p('f.txt') });
    expect(result).toEqual({
      output: `Last edit to ${p('f.txt')} undone successfully. ${catN(p('f.txt'), [
        [1, 'a'],
        [2, 'b'],
        [3, ''],
      ])}`,
      prevExist: true,
      before: 'a\nB\n',
      after: 'a\nb\n',
    });
    expect(readFileSync(p('f.txt'), 'utf8')).toBe('a\nb\n');
    expect(await errorOf({ command: 'undo_edit', path: p('f.txt') })).toBe(
      `No edit history found for ${p('f.txt')}.`,
    );
  });

  it('saves the new text on create, so undo right after create rewrites the same text', async () => {
    await run({ command: 'create', path: p('c.txt'), file_text: 'v1\n' });
    writeFileSync(p('c.txt'), 'changed outside\n');
    const result = await run({ command: 'undo_edit', path: p('c.txt') });
    expect(result.after).toBe('v1\n');
    expect(readFileSync(p('c.txt'), 'utf8')).toBe('v1\n');
    expect(await errorOf({ command: 'undo_edit', path: p('c.txt') })).toBe(
      `No edit history found for ${p('c.txt')}.`,
    );
  });

  it('keeps the last 10 versions per file', async () => {
    writeFileSync(p('f.txt'), 'v0\n');
    for (let i = 1; i <= 12; i++) {
      await run({ command: 'str_replace', path: p('f.txt'), old_str: `v${i - 1}`, new_str: `v${i}` });
    }
    for (let i = 11; i >= 2; i--) {
      await run({ command: 'undo_edit', path: p('f.txt') });
      expect(readFileSync(p('f.txt'), 'utf8')).toBe(`v${i}\n`);
    }
    expect(await errorOf({ command: 'undo_edit', path: p('f.txt') })).toBe(
      `No edit history found for ${p('f.txt')}.`,
    );
    expect(readFileSync(p('f.txt'), 'utf8')).toBe('v2\n');
  });

  it('keeps history per file and honours maxHistoryPerFile', async () => {
    await editor.dispose();
    editor = new FileEditor({ workspaceRoot: root, maxHistoryPerFile: 2, historyParentDir: historyParent });
    writeFileSync(p('a.txt'), 'a0');
    writeFileSync(p('b.txt'), 'b0');
    for (let i = 1; i <= 3; i++) {
      await run({ command: 'str_replace', path: p('a.txt'), old_str: `a${i - 1}`, new_str: `a${i}` });
    }
    await run({ command: 'str_replace', path: p('b.txt'), old_str: 'b0', new_str: 'b1' });
    await run({ command: 'undo_edit', path: p('b.txt') });
    expect(readFileSync(p('b.txt'), 'utf8')).toBe('b0');
    await run({ command: 'undo_edit', path: p('a.txt') });
    await run({ command: 'undo_edit', path: p('a.txt') });
    expect(readFileSync(p('a.txt'), 'utf8')).toBe('a1');
    expect(await errorOf({ command: 'undo_edit', path: p('a.txt') })).toContain('No edit history found');
  });

  it('keeps versions on disk in its own temp directory and removes it on dispose', async () => {
    expect(await editor.historyDir()).toBeNull();
    writeFileSync(p('f.txt'), 'v0');
    for (let i = 1; i <= 12; i++) {
      await run({ command: 'str_replace', path: p('f.txt'), old_str: `v${i - 1}`, new_str: `v${i}` });
    }
    const dir = await editor.historyDir();
    expect(dir).not.toBeNull();
    expect(dir!.startsWith(join(historyParent, 'berth-editor-history-'))).toBe(true);
    const stored = readdirSync(dir!).map((name) => readFileSync(join(dir!, name), 'utf8'));
    expect(stored.sort()).toEqual(['v10', 'v11', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9']);

    await editor.dispose();
    expect(existsSync(dir!)).toBe(false);
    await expect(editor.execute({ command: 'view', path: p('f.txt') })).rejects.toThrow('disposed');
  });
});

describe('paths and commands', () => {
  it('requires an absolute path and hints at the workspace file when it exists', async () => {
    writeFileSync(p('here.txt'), '');
    expect(await errorOf({ command: 'view', path: 'here.txt' })).toBe(
      `Invalid \`path\` parameter: here.txt. The path should be an absolute path, starting with \`/\`. Maybe you meant ${p('here.txt')}?`,
    );
    expect(await errorOf({ command: 'view', path: './here.txt' })).toBe(
      `Invalid \`path\` parameter: here.txt. The path should be an absolute path, starting with \`/\`. Maybe you meant ${p('here.txt')}?`,
    );
    expect(await errorOf({ command: 'create', path: 'missing.txt', file_text: 'x' })).toBe(
      'Invalid `path` parameter: missing.txt. The path should be an absolute path, starting with `/`.',
    );
  });

  it('reports a missing path for every command but create', async () => {
    const missing = p('missing.txt');
    for (const command of ['view', 'str_replace', 'insert', 'undo_edit']) {
      expect(await errorOf({ command, path: missing })).toBe(
        `Invalid \`path\` parameter: ${missing}. The path ${missing} does not exist. Please provide a valid path.`,
      );
    }
  });

  it('names the allowed commands for an unknown one (after checking the path)', async () => {
    writeFileSync(p('f.txt'), '');
    expect(await errorOf({ command: 'delete', path: p('f.txt') })).toBe(
      'Unrecognized command delete. The allowed commands for the oh_editor tool are: view, create, str_replace, insert, undo_edit',
    );
    expect(await errorOf({ command: 'delete', path: p('nope') })).toContain('does not exist');
  });

  it('refuses edits of view-only binary types by extension', async () => {
    writeFileSync(p('song.mp3'), 'ID3');
    expect(await errorOf({ command: 'str_replace', path: p('song.mp3'), old_str: 'I', new_str: 'J' })).toBe(
      `Invalid \`path\` parameter: ${p('song.mp3')}. The path ${p('song.mp3')} points to a binary file (.mp3) and only the \`view\` command can be used on supported binary files.`,
    );
  });

  it('checks insert_line before anything else, as the reference server does', async () => {
    expect(await errorOf({ command: 'view', path: 'relative', insert_line: 'x' })).toBe(
      "Invalid insert_line value: 'x'. Expected an integer.",
    );
  });

  it('refuses a relative workspace root', () => {
    expect(() => new FileEditor({ workspaceRoot: 'relative' })).toThrow(TypeError);
  });
});

/**
 * Differential check against the reference itself: openhands-aci 0.3.2 (the version OpenHands 0.62 pins)
 * run under python3. Skipped unless BERTH_OH_ACI_PATH names a directory holding the unpacked wheels of
 * openhands-aci==0.3.2, binaryornot==0.4.4, chardet==5.2.0, cachetools and charset-normalizer.
 */
const ACI_PATH = process.env.BERTH_OH_ACI_PATH;
const ORACLE = `
import sys, json, types, logging
logging.disable(logging.CRITICAL)
sys.path.insert(0, sys.argv[1])
for name, attr in (('openhands_aci.linter', 'DefaultLinter'), ('openhands_aci.editor.md_converter', 'MarkdownConverter')):
    stub = types.ModuleType(name); setattr(stub, attr, type(attr, (), {})); sys.modules[name] = stub
from openhands_aci.editor.editor import OHEditor
from openhands_aci.editor.exceptions import ToolError
spec = json.load(sys.stdin)
editor = OHEditor(workspace_root=spec['root'])
out = []
for req in spec['steps']:
    line = req.get('insert_line')
    if isinstance(line, str):
        try: line = int(line)
        except ValueError:
            out.append({'output': "ERROR:\\nInvalid insert_line value: '%s'. Expected an integer." % line}); continue
    try:
        r = editor(command=req['command'], path=req['path'], file_text=req.get('file_text'), view_range=req.get('view_range'),
                   old_str=req.get('old_str'), new_str=req.get('new_str'), insert_line=line, enable_linting=False)
        out.append({'output': 'ERROR:\\n' + r.error} if r.error else {'output': r.output, 'before': r.old_content, 'after': r.new_content})
    except ToolError as e:
        out.append({'output': 'ERROR:\\n' + e.message})
print(json.dumps(out))
`;

describe.skipIf(!ACI_PATH)('agreement with openhands-aci (BERTH_OH_ACI_PATH)', () => {
  it('gives the same output, before and after for random command sequences', async () => {
    const rand = (() => {
      let state = 7;
      return () => {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        return state / 2 ** 32;
      };
    })();
    const pick = <T>(items: T[]): T => items[Math.floor(rand() * items.length)]!;
    // ASCII only: the reference guesses encodings with charset_normalizer, which misreads short UTF-8.
    const pieces = ['a', 'b', ' ', '\n', '\n', 'foo', '  ', '\t', 'x\n', '', '\r\n', '\f', '.*'];
    const text = (n: number) => Array.from({ length: n }, () => pick(pieces)).join('');
    for (let round = 0; round < 20; round++) {
      const initial = text(Math.floor(rand() * 40));
      const steps: EditorRequest[] = [];
      for (let k = 0; k < 25; k++) {
        const path = p(pick(['f1.txt', 'f2.txt']));
        const command = pick([
          'view',
          'view',
          'create',
          'str_replace',
          'str_replace',
          'insert',
          'insert',
          'undo_edit',
        ]);
        const range = [Math.floor(rand() * 8) - 1, Math.floor(rand() * 10) - 2];
        if (command === 'view')
          steps.push(rand() < 0.5 ? { command, path } : { command, path, view_range: range });
        if (command === 'create') steps.push({ command, path, file_text: text(Math.floor(rand() * 20)) });
        if (command === 'str_replace') {
          steps.push({
            command,
            path,
            old_str: text(1 + Math.floor(rand() * 3)),
            new_str: text(Math.floor(rand() * 4)),
          });
        }
        if (command === 'insert') {
          steps.push({
            command,
            path,
            insert_line: Math.floor(rand() * 12) - 1,
            new_str: text(Math.floor(rand() * 4)),
          });
        }
        if (command === 'undo_edit') steps.push({ command, path });
      }
      steps.push({ command: 'view', path: root });

      const reset = () => {
        rmSync(root, { recursive: true, force: true });
        mkdirSync(root);
        writeFileSync(p('f1.txt'), initial);
      };
      reset();
      const expected = JSON.parse(
        execFileSync('python3', ['-c', ORACLE, ACI_PATH!], {
          input: JSON.stringify({ root, steps }),
          stdio: ['pipe', 'pipe', 'ignore'],
        }).toString('utf8'),
      ) as Array<{ output: string; before?: string | null; after?: string | null }>;
      reset();
      await editor.dispose();
      editor = new FileEditor({ workspaceRoot: root, historyParentDir: historyParent });
      for (const [i, step] of steps.entries()) {
        let got: { output: string; before?: string | null; after?: string | null };
        try {
          const r = await editor.execute(step);
          got = { output: r.output, before: r.before, after: r.after };
        } catch (err) {
          if (!(err instanceof EditorError)) throw err;
          got = { output: `ERROR:\n${err.message}` };
        }
        expect(got, `round ${round} step ${i}: ${JSON.stringify(step)}`).toEqual(expected[i]);
      }
    }
  });
});

/**
 * The agent_skills plugin through the runtime server's services (the shell, the kernel and the editor
 * of a real runtime server, on this machine): the helpers' output formats and messages, file_editor
 * against the `edit` action, the parsers without their libraries, and the plugin switch.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRuntimeServerConfig } from '../../src/config/runtime-server.js';
import { createRuntimeServices } from '../../src/runtime-server/runtime-services.js';
import type { RuntimeServices } from '../../src/runtime-server/services.js';

const hasPython = spawnSync('python3', ['-c', 'pass'], { stdio: 'ignore' }).status === 0;
/** Whether this machine's python3 has a module (the parser tests need it absent). */
const pyHas = (m: string) => spawnSync('python3', ['-c', `import ${m}`], { stdio: 'ignore' }).status === 0;

let ws: string;
let services: RuntimeServices;

async function act(action: string, args: Record<string, unknown>) {
  const parsed = services.executor.parse({ action: { action, args } });
  return services.executor.execute(parsed);
}
async function cell(code: string): Promise<string> {
  return (await act('run_ipython', { code, include_extra: false })).content;
}
/** The JSON object between the <oh_aci_output_ID> lines of a file_editor result. */
function aciFields(printed: string): Record<string, unknown> {
  const m = /^<oh_aci_output_([0-9a-f]{32})>\n(\{.*\})\n<\/oh_aci_output_\1>$/s.exec(printed);
  if (!m) throw new Error(`not a file_editor result: ${printed}`);
  return JSON.parse(m[2]!) as Record<string, unknown>;
}

beforeAll(async () => {
  ws = realpathSync(mkdtempSync(path.join(tmpdir(), 'berth-skills-')));
  services = await createRuntimeServices({
    workingDir: ws,
    noChangeTimeoutSeconds: 10,
    logger: pino({ level: 'silent' }),
  });
});

afterAll(async () => {
  await services?.dispose();
  rmSync(ws, { recursive: true, force: true });
});

describe.skipIf(!hasPython)('agent_skills in the kernel', () => {
  it('defines every helper by default, with the reference signatures', async () => {
    const out = await cell(
      [
        'import inspect',
        "for n in ['file_editor','open_file','goto_line','scroll_down','scroll_up','search_dir','search_file','find_file','parse_pdf','parse_docx','parse_latex','parse_pptx']:",
        '    print(n, list(inspect.signature(globals()[n]).parameters))',
      ].join('\n'),
    );
    expect(out).toBe(
      [
        "file_editor ['command', 'path', 'file_text', 'view_range', 'old_str', 'new_str', 'insert_line', 'enable_linting']",
        "open_file ['path', 'line_number', 'context_lines']",
        "goto_line ['line_number']",
        'scroll_down []',
        'scroll_up []',
        "search_dir ['search_term', 'dir_path']",
        "search_file ['search_term', 'file_path']",
        "find_file ['file_name', 'dir_path']",
        "parse_pdf ['file_path']",
        "parse_docx ['file_path']",
        "parse_latex ['file_path']",
        "parse_pptx ['file_path']",
      ].join('\n'),
    );
    const doc = await cell('import berth_agentskills\nprint(berth_agentskills.DOCUMENTATION)');
    expect(doc).toContain(
      'open_file(path: str, line_number: Optional[int] = 1, context_lines: Optional[int] = 100) -> None:\n    Opens a file',
    );
    expect(doc).not.toContain('file_editor(');
  });

  it('open_file, goto_line, scroll_down and scroll_up show 100-line windows with the reference notes', async () => {
    const f = path.join(ws, 'long.txt');
    writeFileSync(f, Array.from({ length: 250 }, (_, i) => `line ${i + 1}`).join('\n'));
    const opened = await cell(`open_file(${JSON.stringify(f)})`);
    const lines = opened.split('\n');
    expect(lines[0]).toBe(`[File: ${f} (250 lines total)]`);
    expect(lines[1]).toBe('(this is the beginning of the file)');
    expect(lines[2]).toBe('1|line 1');
    expect(lines[101]).toBe('100|line 100');
    expect(lines[102]).toBe('(150 more lines below)');
    expect(lines[103]).toBe('[Use `scroll_down` to view the next 100 lines of the file!]');
    expect(lines.length).toBe(104);

    // The reference's scroll shows from the new line on, 101 lines.
    const down = (await cell('scroll_down()')).split('\n');
    expect(down.slice(0, 3)).toEqual([
      `[File: ${f} (250 lines total)]`,
      '(100 more lines above)',
      '101|line 101',
    ]);
    expect(down.at(-2)).toBe('201|line 201');
    expect(down.at(-1)).toBe('(49 more lines below)');

    const end = (await cell('scroll_down()')).split('\n');
    expect(end[1]).toBe('(150 more lines above)');
    expect(end.at(-1)).toBe('(this is the end of the file)');
    expect(end.at(-2)).toBe('250|line 250');

    const up = (await cell('scroll_up()')).split('\n');
    expect(up[1]).toBe('(100 more lines above)');
    expect(up[2]).toBe('101|line 101');

    const centred = (await cell('goto_line(120)')).split('\n');
    expect(centred[1]).toBe('(69 more lines above)');
    expect(centred[2]).toBe('70|line 70');
    expect(centred.at(-2)).toBe('170|line 170');
    expect(centred.at(-1)).toBe('(80 more lines below)');

    const small = (await cell(`open_file(${JSON.stringify(f)}, 50, context_lines=10)`)).split('\n');
    expect(small.slice(1, 3)).toEqual(['(44 more lines above)', '45|line 45']);
    expect(small.at(-2)).toBe('(195 more lines below)');

    expect(await cell('goto_line(251)')).toBe('ERROR: Line number must be between 1 and 250.');
    expect(await cell(`open_file(${JSON.stringify(f)}, 0)`)).toBe(
      'ERROR: Line number must be between 1 and 250',
    );
    expect(await cell("open_file('/nonexistent/x.py')")).toBe('ERROR: File /nonexistent/x.py not found.');

    const short = path.join(ws, 'short.txt');
    writeFileSync(short, 'a\nb\n');
    expect(await cell(`open_file(${JSON.stringify(short)})`)).toBe(
      `[File: ${short} (2 lines total)]\n(this is the beginning of the file)\n1|a\n2|b\n(this is the end of the file)`,
    );
  });

  it('says no file is open before open_file', async () => {
    await services.reset();
    for (const fn of ['goto_line(1)', 'scroll_down()', 'scroll_up()']) {
      expect(await cell(fn)).toBe('ERROR: No file open. Use the open_file function first.');
    }
    expect(await cell("search_file('x')")).toBe(
      'ERROR: No file specified or open. Use the open_file function first.',
    );
  });

  it('search_dir, search_file and find_file print the reference formats', async () => {
    const d = path.join(ws, 'tree');
    mkdirSync(path.join(d, 'sub'), { recursive: true });
    writeFileSync(path.join(d, 'a.py'), 'import os\n  needle = 1\n');
    writeFileSync(path.join(d, 'sub', 'b.py'), 'no\nneedle()\n');
    writeFileSync(path.join(d, '.hidden'), 'needle\n');
    const dir = await cell(`search_dir('needle', ${JSON.stringify(d)})`);
    const lines = dir.split('\n');
    expect(lines[0]).toBe(`[Found 2 matches for "needle" in ${d}]`);
    expect(lines.slice(1, 3).sort()).toEqual([
      `${d}/a.py (Line 2): needle = 1`,
      `${d}/sub/b.py (Line 2): needle()`,
    ]);
    expect(lines[3]).toBe(`[End of matches for "needle" in ${d}]`);
    expect(await cell(`search_dir('zzz', ${JSON.stringify(d)})`)).toBe(`No matches found for "zzz" in ${d}`);
    expect(await cell("search_dir('x', '/nonexistent')")).toBe('ERROR: Directory /nonexistent not found');

    const a = path.join(d, 'a.py');
    expect(await cell(`search_file('needle', ${JSON.stringify(a)})`)).toBe(
      `[Found 1 matches for "needle" in ${a}]\nLine 2: needle = 1\n[End of matches for "needle" in ${a}]`,
    );
    expect(await cell(`search_file('zzz', ${JSON.stringify(a)})`)).toBe(
      `[No matches found for "zzz" in ${a}]`,
    );
    expect(await cell("search_file('x', '/nonexistent')")).toBe('ERROR: File /nonexistent not found.');
    // The current file is the default.
    await cell(`open_file(${JSON.stringify(a)})`);
    expect(await cell("search_file('import')")).toContain(`[Found 1 matches for "import" in ${a}]`);

    const found = (await cell(`find_file('.py', ${JSON.stringify(d)})`)).split('\n');
    expect(found[0]).toBe(`[Found 2 matches for ".py" in ${d}]`);
    expect(found.slice(1, 3).sort()).toEqual([`${d}/a.py`, `${d}/sub/b.py`]);
    expect(found[3]).toBe(`[End of matches for ".py" in ${d}]`);
    expect(await cell(`find_file('nope', ${JSON.stringify(d)})`)).toBe(
      `[No matches found for "nope" in ${d}]`,
    );
    // Relative to the kernel's cwd (the shell's), like the reference's './'.
    await act('run', { command: `cd ${d}` });
    expect((await cell("find_file('b.py')")).split('\n')[1]).toBe('./sub/b.py');
    await act('run', { command: `cd ${ws}` });
  });

  it('file_editor returns the oh_aci_output object whose text is what the edit action answers', async () => {
    const f = path.join(ws, 'ed.txt');
    const g = path.join(ws, 'ed2.txt');
    const ops = (p: string) => [
      { command: 'create', path: p, file_text: 'Line 1\nLine 2\nLine 3\n' },
      { command: 'view', path: p },
      { command: 'view', path: p, view_range: [2, 3] },
      { command: 'str_replace', path: p, old_str: 'Line 2', new_str: 'New Line 2' },
      { command: 'str_replace', path: p, old_str: 'absent', new_str: 'x' },
      { command: 'insert', path: p, insert_line: 1, new_str: 'inserted' },
      { command: 'undo_edit', path: p },
      { command: 'create', path: p, file_text: 'again' },
      { command: 'delete', path: p },
      { command: 'view', path: 'relative.txt' },
    ];
    const viaKernel: Record<string, unknown>[] = [];
    for (const op of ops(f)) {
      const args = Object.entries(op)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(', ');
      viaKernel.push(aciFields(await cell(`print(file_editor(${args}))`)));
    }
    const viaAction: string[] = [];
    for (const op of ops(g)) viaAction.push((await act('edit', { ...op, impl_source: 'oh_aci' })).content);
    expect(viaKernel.map((r) => (r.formatted_output_and_error as string).replaceAll(f, g))).toEqual(
      viaAction,
    );

    // The reference's field order and values: a CLIResult, or a ToolResult for an error.
    expect(Object.keys(viaKernel[0]!)).toEqual([
      'output',
      'error',
      'path',
      'prev_exist',
      'old_content',
      'new_content',
      'formatted_output_and_error',
    ]);
    expect(viaKernel[0]).toMatchObject({
      path: f,
      prev_exist: false,
      old_content: null,
      new_content: 'Line 1\nLine 2\nLine 3\n',
    });
    expect(viaKernel[1]).toMatchObject({
      error: null,
      prev_exist: true,
      old_content: null,
      new_content: null,
    });
    expect(viaKernel[3]).toMatchObject({
      old_content: 'Line 1\nLine 2\nLine 3\n',
      new_content: 'Line 1\nNew Line 2\nLine 3\n',
    });
    expect(viaKernel[4]).toEqual({
      output: null,
      error: `No replacement was performed, old_str \`absent\` did not appear verbatim in ${f}.`,
      formatted_output_and_error: `ERROR:\nNo replacement was performed, old_str \`absent\` did not appear verbatim in ${f}.`,
    });
    // The raw text: comma-joined keys, ", " before the last one, ASCII-only JSON, like the reference.
    const raw = await cell(`print(file_editor('view', ${JSON.stringify(f)}, view_range=[1, 1]))`);
    expect(raw).toMatch(
      /^<oh_aci_output_[0-9a-f]{32}>\n\{"output": ".*","error": null,"path": ".*","prev_exist": true,"old_content": null,"new_content": null, "formatted_output_and_error": ".*"\}\n<\/oh_aci_output_[0-9a-f]{32}>$/s,
    );
    const uni = aciFields(
      await cell(
        `print(file_editor('create', ${JSON.stringify(path.join(ws, 'u.txt'))}, file_text='café au lait\\n'))`,
      ),
    );
    expect(uni.new_content).toBe('café au lait\n');
    expect(
      await cell(`print('\\\\u00e9' in file_editor('view', ${JSON.stringify(path.join(ws, 'u.txt'))}))`),
    ).toBe('True');

    // One undo history for both: the kernel can undo an edit the action made.
    await act('edit', {
      command: 'str_replace',
      path: g,
      old_str: 'Line 1',
      new_str: 'First line',
      impl_source: 'oh_aci',
    });
    const undone = aciFields(await cell(`print(file_editor('undo_edit', ${JSON.stringify(g)}))`));
    expect(undone.formatted_output_and_error).toContain(`Last edit to ${g} undone successfully.`);
    expect(undone).toMatchObject({
      old_content: 'First line\nNew Line 2\nLine 3\n',
      new_content: 'Line 1\nNew Line 2\nLine 3\n',
    });
  });

  // As root nothing is off limits; test/integration/agent-skills.test.ts runs this as the sandbox user.
  it.skipIf(process.getuid?.() === 0)(
    'file_editor raises the OSError the reference lets escape for a path it may not look at (skipped as root)',
    async () => {
      const out = await cell("print(file_editor('view', '/root/test.txt'))");
      expect(out).toContain("PermissionError: [Errno 13] Permission denied: '/root/test.txt'");
    },
  );

  it.skipIf(pyHas('PyPDF2') || pyHas('pypdf'))('parse_pdf says which library is missing', async () => {
    expect(await cell("parse_pdf('/x.pdf')")).toBe(
      'ERROR: parse_pdf needs the Python package PyPDF2 (or pypdf), which is not installed in this sandbox. Install it (for example with %pip install pypdf in this kernel) and call parse_pdf again.',
    );
  });

  it.skipIf(pyHas('docx') || pyHas('pptx') || pyHas('pylatexenc'))(
    'parse_docx, parse_pptx and parse_latex say which library is missing',
    async () => {
      expect(await cell("parse_docx('/x.docx')")).toContain(
        'ERROR: parse_docx needs the Python package python-docx,',
      );
      expect(await cell("parse_pptx('/x.pptx')")).toContain(
        'ERROR: parse_pptx needs the Python package python-pptx,',
      );
      expect(await cell("parse_latex('/x.tex')")).toContain(
        'ERROR: parse_latex needs the Python package pylatexenc,',
      );
    },
  );

  it('the helpers survive a kernel restart', async () => {
    const died = await cell('import os; os._exit(3)');
    expect(died).toContain('The Python kernel died');
    expect(await cell('print(callable(open_file) and callable(file_editor))')).toBe('True');
  });
});

describe('the plugins setting', () => {
  it('defaults to agent_skills and jupyter, and takes --plugins over BERTH_PLUGINS', () => {
    expect(loadRuntimeServerConfig({}, {}).plugins).toEqual(['agent_skills', 'jupyter']);
    expect(loadRuntimeServerConfig({}, { BERTH_PLUGINS: 'jupyter' }).plugins).toEqual(['jupyter']);
    expect(loadRuntimeServerConfig({}, { BERTH_PLUGINS: 'none' }).plugins).toEqual([]);
    expect(loadRuntimeServerConfig({}, { BERTH_PLUGINS: '' }).plugins).toEqual([]);
    expect(
      loadRuntimeServerConfig({ plugins: ['agent_skills jupyter', 'vscode'] }, { BERTH_PLUGINS: 'none' })
        .plugins,
    ).toEqual(['agent_skills', 'jupyter', 'vscode']);
    expect(() => loadRuntimeServerConfig({ plugins: 'agent_skills,browser' }, {})).toThrow(
      'Invalid runtime server setting --plugins: unknown plugin "browser" (known: agent_skills, jupyter, vscode)',
    );
    expect(() => loadRuntimeServerConfig({}, { BERTH_PLUGINS: 'x' })).toThrow(
      'Invalid runtime server setting BERTH_PLUGINS',
    );
  });

  it.skipIf(!hasPython)(
    'without agent_skills the kernel has no helpers; without jupyter there is no kernel',
    async () => {
      const only = await createRuntimeServices({
        workingDir: ws,
        noChangeTimeoutSeconds: 10,
        logger: pino({ level: 'silent' }),
        plugins: ['jupyter'],
      });
      const none = await createRuntimeServices({
        workingDir: ws,
        noChangeTimeoutSeconds: 10,
        logger: pino({ level: 'silent' }),
        plugins: [],
      });
      try {
        const run = (s: RuntimeServices, code: string) =>
          s.executor.execute(
            s.executor.parse({ action: { action: 'run_ipython', args: { code, include_extra: false } } }),
          );
        expect((await run(only, "print('open_file' in globals())")).content).toBe('False');
        const obs = await run(none, 'print(1)');
        expect(obs.observation).toBe('error');
        expect(obs.content).toContain('JupyterRequirement not found. Unable to run IPython action.');
      } finally {
        await only.dispose();
        await none.dispose();
      }
    },
  );
});

/**
 * Differential check of AgentSkills: Berth's helpers (agent-skills-source.ts, file_editor served by
 * Berth's FileEditor) against the reference's own modules (openhands.runtime.plugins.agent_skills and
 * openhands_aci's file_editor), called with the same arguments in one kernel on the reference's Python,
 * each call's printed output (or return value, or exception) compared as text.
 *
 * Opt-in like the rest of test/oracle: BERTH_ORACLE=1 with the reference installed
 * (scripts/oracle/setup.sh); otherwise one skipped test says why.
 *
 *   BERTH_ORACLE=1 npx vitest run test/oracle/agentskills.test.ts
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileEditor } from '../../src/runtime-server/core/editor/editor.js';
import { ProcessTable } from '../../src/runtime-server/core/process/table.js';
import { PythonKernel } from '../../src/runtime-server/core/python/kernel.js';
import {
  agentSkillsHostCalls,
  agentSkillsStartupCode,
} from '../../src/runtime-server/openhands/agent-skills.js';
import { oracleUnavailableReason } from './oracle.js';

const UNAVAILABLE = oracleUnavailableReason();
if (UNAVAILABLE) console.log(`test/oracle skipped (oracle agentskills): ${UNAVAILABLE}`);
const PYTHON = join(process.env.BERTH_ORACLE_VENV ?? '/opt/berth-oracle', 'bin', 'python');

/** Stateful call sequences: each runs against the reference's module and against Berth's, in order. */
const SEQUENCES: string[][] = [
  [
    'goto_line(1)',
    'scroll_down()',
    "open_file(D + '/long.txt')",
    'scroll_down()',
    'scroll_down()',
    'scroll_down()',
    'scroll_up()',
    'scroll_up()',
    'scroll_up()',
    'scroll_up()',
    'goto_line(1)',
    'goto_line(120)',
    'goto_line(250)',
    'goto_line(0)',
    'goto_line(251)',
    "goto_line('7')",
    "open_file(D + '/long.txt', 250, 10)",
    "open_file(D + '/long.txt', 125, 0)",
    "open_file(D + '/long.txt', 60, 1000)",
    "open_file(D + '/long.txt', 2, 3)",
    "open_file(D + '/long.txt', 300)",
    "open_file(D + '/long.txt', None)",
    "search_file('line 1')",
    "search_file('nothing here')",
    "open_file(D + '/nonl.txt')",
    "open_file(D + '/empty.txt')",
    'scroll_down()',
    "open_file(D + '/crlf.txt')",
    "open_file(D + '/ff.txt')",
    "open_file(D + '/missing.txt')",
    "open_file(D + '/tree')",
    "open_file('long.txt')",
  ],
  [
    "search_file('x')",
    "search_file('line', D + '/long.txt')",
    "search_file('a', D + '/tree')",
    "search_dir('needle', D + '/tree')",
    "search_dir('needle', D + '/tree/')",
    "search_dir('absent', D + '/tree')",
    "search_dir('x', D + '/missing')",
    "search_dir('needle')",
    "search_dir('many', D + '/many')",
    "find_file('.py', D + '/tree')",
    "find_file('b.py', D + '/tree')",
    "find_file('zzz', D + '/tree')",
    "find_file('x', D + '/missing')",
    "find_file('hidden')",
  ],
  [
    "parse_pdf(D + '/doc.pdf')",
    "parse_docx(D + '/doc.docx')",
    "parse_pptx(D + '/doc.pptx')",
    "parse_latex(D + '/doc.tex')",
    "parse_pptx(D + '/long.txt')",
  ],
];

/** file_editor calls: the reference edits files under A, Berth the same files under B. */
const EDITS: string[] = [
  "file_editor('create', P + '/f.txt', file_text='Line 1\\nLine 2\\nLine 3\\n')",
  "file_editor('create', P + '/f.txt', file_text='again')",
  "file_editor('view', P + '/f.txt')",
  "file_editor('view', P + '/f.txt', view_range=[2, 3])",
  "file_editor('view', P + '/f.txt', view_range=[2, 9])",
  "file_editor('view', P + '/f.txt', view_range=[0, 1])",
  "file_editor('str_replace', P + '/f.txt', old_str='Line 2', new_str='New Line 2')",
  "file_editor('str_replace', P + '/f.txt', old_str='Line', new_str='x')",
  "file_editor('str_replace', P + '/f.txt', old_str='absent', new_str='x')",
  "file_editor('str_replace', P + '/f.txt', old_str='same', new_str='same')",
  "file_editor('insert', P + '/f.txt', insert_line=1, new_str='inserted')",
  "file_editor('insert', P + '/f.txt', insert_line=99, new_str='x')",
  "file_editor('insert', P + '/f.txt', new_str='x')",
  "file_editor('undo_edit', P + '/f.txt')",
  "file_editor('undo_edit', P + '/f.txt')",
  "file_editor('undo_edit', P + '/f.txt')",
  "file_editor('undo_edit', P + '/f.txt')",
  "file_editor('view', P + '/missing.txt')",
  "file_editor('delete', P + '/f.txt')",
  "file_editor('view', P)",
  "file_editor('str_replace', P, old_str='a', new_str='b')",
  "file_editor('create', P + '/u.txt', file_text='caf\\u00e9 \\u2603 au lait\\n')",
  "file_editor('view', P + '/u.txt')",
];

let dir: string;
let kernel: PythonKernel;
let editor: FileEditor;

/** One cell that runs every call on both sides and prints the results as one JSON line. */
function cellSource(): string {
  return `
import contextlib, io, json, os, re, sys, traceback
import openhands.runtime.plugins.agent_skills.file_ops.file_ops as ref_ops
import openhands.runtime.plugins.agent_skills.file_reader.file_readers as ref_readers
from openhands_aci.editor import file_editor as ref_file_editor
import berth_agentskills as berth

D = ${JSON.stringify(dir)}
os.chdir(D)
ref = dict((n, getattr(ref_ops, n)) for n in ref_ops.__all__)
ref.update((n, getattr(ref_readers, n)) for n in ref_readers.__all__)
ref['file_editor'] = ref_file_editor

def capture(namespace, call):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            value = eval(call, namespace)
            if value is not None:
                print(repr(value) if not isinstance(value, str) else value)
        except Exception as e:
            print('%s: %s' % (type(e).__name__, e))
    return out.getvalue()

def unmark(text):
    return re.sub(r'oh_aci_output_[0-9a-f]{32}', 'oh_aci_output_ID', text)

results = []
for sequence in json.loads(${JSON.stringify(JSON.stringify(SEQUENCES))}):
    for call in sequence:
        a = capture(dict(ref, D=D), call)
        results.append({'call': call, 'ref': a, 'berth': None})
    # Berth's module has one state: run its sequence after the reference's, in a fresh state.
    berth.CURRENT_FILE, berth.CURRENT_LINE = None, 1
    for entry in results[len(results) - len(sequence):]:
        ns = dict((n, getattr(berth, n)) for n in berth.__all__)
        ns['D'] = D
        entry['berth'] = capture(ns, entry['call'])
    ref_ops.CURRENT_FILE, ref_ops.CURRENT_LINE = None, 1

A, B = D + '/edit-ref', D + '/edit-berth'
os.makedirs(A); os.makedirs(B)
for call in json.loads(${JSON.stringify(JSON.stringify(EDITS))}):
    a = unmark(capture({'file_editor': ref_file_editor, 'P': A}, call)).replace(A, '<P>')
    b = unmark(capture({'file_editor': berth.file_editor, 'P': B}, call)).replace(B, '<P>')
    results.append({'call': call, 'ref': a, 'berth': b})

print(json.dumps(results))
`;
}

beforeAll(() => {
  if (UNAVAILABLE) return;
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'berth-skills-oracle-')));
  writeFileSync(join(dir, 'long.txt'), Array.from({ length: 250 }, (_, i) => `line ${i + 1}`).join('\n'));
  writeFileSync(join(dir, 'nonl.txt'), 'a\nb\nc');
  writeFileSync(join(dir, 'empty.txt'), '');
  writeFileSync(join(dir, 'crlf.txt'), 'one\r\ntwo\r\nthree\r\n');
  writeFileSync(join(dir, 'ff.txt'), 'page 1\fpage 2\nend\n');
  mkdirSync(join(dir, 'tree', 'sub', '.git'), { recursive: true });
  writeFileSync(join(dir, 'tree', 'a.py'), 'import os\n   needle = 1  \nneedle needle\n');
  writeFileSync(join(dir, 'tree', 'sub', 'b.py'), 'no\nneedle()\n');
  writeFileSync(join(dir, 'tree', 'sub', '.git', 'config'), 'needle\n');
  writeFileSync(join(dir, 'tree', '.hidden'), 'needle\n');
  writeFileSync(
    join(dir, 'tree', 'bin.dat'),
    Buffer.from([0xff, 0xfe, 0x6e, 0x65, 0x65, 0x64, 0x6c, 0x65, 0x0a]),
  );
  mkdirSync(join(dir, 'many'));
  for (let i = 0; i < 102; i++) writeFileSync(join(dir, 'many', `f${i}.txt`), 'many\n');
  writeFileSync(join(dir, 'doc.tex'), '\\section{Intro}\nSome \\textbf{bold} text and $x^2$.\n');
});

afterAll(async () => {
  await kernel?.dispose();
  await editor?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('AgentSkills vs the reference modules', () => {
  if (UNAVAILABLE) {
    it.skip(`SKIPPED: ${UNAVAILABLE}`, () => {});
    return;
  }
  it('prints the same text for every call', async () => {
    editor = new FileEditor({ workspaceRoot: dir });
    kernel = new PythonKernel({
      processes: new ProcessTable(),
      pythonPath: PYTHON,
      hostCalls: agentSkillsHostCalls(() => Promise.resolve(editor)),
      startup: { code: agentSkillsStartupCode(), cwd: dir },
    });
    // Documents made with the reference's own libraries.
    const made = await kernel.run({
      cwd: dir,
      timeoutMs: 60_000,
      code: [
        'import docx, pptx',
        'd = docx.Document(); d.add_paragraph("First paragraph"); d.add_paragraph(""); d.add_paragraph("Third"); d.save("doc.docx")',
        'p = pptx.Presentation(); s = p.slides.add_slide(p.slide_layouts[1]); s.shapes.title.text = "Title"; s.placeholders[1].text = "Body"',
        'p.slides.add_slide(p.slide_layouts[6]); p.save("doc.pptx")',
        // A one-page PDF with a line of text, written by hand (no PDF writer library needed).
        'stream = b"BT /F1 24 Tf 72 700 Td (Hello from a PDF) Tj ET"',
        'objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",',
        '  b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",',
        '  b"<< /Length %d >>\\nstream\\n" % len(stream) + stream + b"\\nendstream",',
        '  b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]',
        'out = b"%PDF-1.4\\n"; offsets = []',
        'for i, o in enumerate(objs):',
        '    offsets.append(len(out)); out += b"%d 0 obj\\n" % (i + 1) + o + b"\\nendobj\\n"',
        'xref = len(out); out += b"xref\\n0 %d\\n0000000000 65535 f \\n" % (len(objs) + 1)',
        'out += b"".join(b"%010d 00000 n \\n" % x for x in offsets)',
        'out += b"trailer\\n<< /Size %d /Root 1 0 R >>\\nstartxref\\n%d\\n%%%%EOF\\n" % (len(objs) + 1, xref)',
        '_ = open("doc.pdf", "wb").write(out)',
      ].join('\n'),
    });
    expect(made.text).toBe('');

    const result = await kernel.run({ code: cellSource(), cwd: dir, timeoutMs: 120_000 });
    const rows = JSON.parse(result.text.split('\n').at(-1)!) as {
      call: string;
      ref: string;
      berth: string;
    }[];
    mkdirSync('.test-results', { recursive: true });
    writeFileSync(join('.test-results', 'oracle-agentskills.json'), JSON.stringify(rows, null, 2));
    expect(rows.length).toBe(SEQUENCES.flat().length + EDITS.length);
    // Every call the reference answers without a crash must be answered alike.
    const differing = rows.filter((r) => r.ref !== r.berth);
    expect(differing).toEqual([]);
  });
});

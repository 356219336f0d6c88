/**
 * AgentSkills in a real sandbox: the helpers are in the kernel of a fresh container, file_editor runs as
 * the sandbox user (Permission denied where that user may not go, as the reference's
 * test_ipython_file_editor_permissions_as_openhands expects), the parsers explain a missing library,
 * and BERTH_PLUGINS turns the plugin off.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadDockerConfig } from '../../src/config/docker.js';
import { buildRuntimeImage } from '../../src/docker/image-builder.js';
import type { SandboxSpec } from '../../src/sandboxes/types.js';
import { RuntimeServerClient } from '../../src/sdk/runtime-client.js';
import { engine, engineAvailable, runtime, specFor } from './docker-target.js';

const unavailable = await engineAvailable();
const started: string[] = [];

async function start(overrides: Partial<SandboxSpec> = {}) {
  const spec = await specFor(overrides);
  started.push(spec.id);
  const ep = await runtime.start(spec);
  return new RuntimeServerClient(ep.url, spec.sessionApiKey);
}

async function run(client: RuntimeServerClient, command: string) {
  const obs = await client.executeAction({
    action: { action: 'run', args: { command, blocking: true }, timeout: 60 },
  });
  return { out: obs.content, code: (obs.extras as { metadata: { exit_code: number } }).metadata.exit_code };
}

async function cell(client: RuntimeServerClient, code: string): Promise<string> {
  const obs = await client.executeAction({
    action: { action: 'run_ipython', args: { code, include_extra: false }, timeout: 60 },
  });
  return obs.content;
}

afterAll(async () => {
  await Promise.all(started.map((id) => runtime.remove(id).catch(() => undefined)));
});

describe.skipIf(unavailable !== undefined)('AgentSkills in a sandbox', () => {
  it('file_editor runs as the sandbox user: Permission denied on root files, edits in the workspace work', async () => {
    const client = await start();
    const setup = await run(
      client,
      'sudo touch /root/test.txt && sudo chmod 600 /root/test.txt && ' +
        'echo secret | sudo tee /workspace/locked.txt >/dev/null && sudo chmod 600 /workspace/locked.txt && id -un',
    );
    expect(setup).toEqual({ out: 'openhands', code: 0 });

    // Under /root the user may not even look: the reference's OSError escapes file_editor.
    for (const code of [
      "print(file_editor(command='view', path='/root/test.txt'))",
      "print(file_editor(command='str_replace', path='/root/test.txt', old_str='', new_str='test'))",
      "print(file_editor(command='create', path='/root/new.txt', file_text='test'))",
    ]) {
      const out = await cell(client, code);
      expect(out).toContain('PermissionError: [Errno 13] Permission denied:');
    }
    // A root-owned 0600 file in a directory the user can read: the editor's own error text.
    const viaKernel = await cell(
      client,
      "import json, re\nr = file_editor(command='view', path='/workspace/locked.txt')\nprint(json.loads(re.search(r'\\{.*\\}', r, re.S).group(0))['formatted_output_and_error'])",
    );
    expect(viaKernel).toBe(
      "ERROR:\nRan into [Errno 13] Permission denied: '/workspace/locked.txt' while trying to read /workspace/locked.txt",
    );
    const viaAction = await client.executeAction({
      action: {
        action: 'edit',
        args: { command: 'view', path: '/workspace/locked.txt', impl_source: 'oh_aci' },
      },
    });
    expect(viaAction.content).toBe(viaKernel);
    // The edit action under /root says the same as the kernel's exception.
    const actionRoot = await client.executeAction({
      action: { action: 'edit', args: { command: 'view', path: '/root/test.txt', impl_source: 'oh_aci' } },
    });
    expect(actionRoot.content).toBe("ERROR:\n[Errno 13] Permission denied: '/root/test.txt'");

    const ok = await cell(
      client,
      [
        "print(file_editor(command='create', path='/workspace/test.txt', file_text='Line 1\\nLine 2\\nLine 3'))",
        "print(file_editor(command='view', path='/workspace/test.txt'))",
        "print(file_editor(command='str_replace', path='/workspace/test.txt', old_str='Line 2', new_str='New Line 2'))",
        "print(file_editor(command='undo_edit', path='/workspace/test.txt'))",
      ].join('\n'),
    );
    for (const s of [
      'File created successfully',
      'Line 1',
      'Line 3',
      'New Line 2',
      'Last edit to',
      'undone successfully',
    ]) {
      expect(ok).toContain(s);
    }
    // Written by the sandbox user, not by root.
    expect((await run(client, 'stat -c %U /workspace/test.txt')).out).toBe('openhands');
  });

  it('the helpers print the reference formats, and the parsers name the library the image lacks', async () => {
    const client = await start();
    await run(client, 'mkdir -p /workspace/src && seq 1 150 | sed "s/^/row /" > /workspace/src/rows.txt');
    const opened = (await cell(client, "open_file('/workspace/src/rows.txt', 120)")).split('\n');
    expect(opened.slice(0, 3)).toEqual([
      '[File: /workspace/src/rows.txt (150 lines total)]',
      '(50 more lines above)',
      '51|row 51',
    ]);
    expect(opened.at(-1)).toBe('(this is the end of the file)');
    expect(await cell(client, "search_dir('row 149', '/workspace')")).toBe(
      '[Found 1 matches for "row 149" in /workspace]\n/workspace/src/rows.txt (Line 149): row 149\n[End of matches for "row 149" in /workspace]',
    );
    expect(await cell(client, "find_file('rows')")).toBe(
      '[Found 1 matches for "rows" in ./]\n./src/rows.txt\n[End of matches for "rows" in ./]',
    );

    const libs = await cell(
      client,
      "import importlib.util as u\nprint([m for m in ['PyPDF2', 'pypdf', 'docx', 'pptx', 'pylatexenc'] if u.find_spec(m)])",
    );
    // Berth's default image carries no parser library (the test with them builds its own image below).
    expect(libs, 'parser libraries in the default image').toBe('[]');
    expect(await cell(client, "parse_pdf('/workspace/a.pdf')")).toBe(
      'ERROR: parse_pdf needs the Python package PyPDF2 (or pypdf), which is not installed in this sandbox. Install it (for example with %pip install pypdf in this kernel) and call parse_pdf again.',
    );
    expect(await cell(client, "parse_docx('/workspace/a.docx')")).toContain(
      'needs the Python package python-docx',
    );
    expect(await cell(client, "parse_pptx('/workspace/a.pptx')")).toContain(
      'needs the Python package python-pptx',
    );
    expect(await cell(client, "parse_latex('/workspace/a.tex')")).toContain(
      'needs the Python package pylatexenc',
    );
  });

  it('BERTH_PLUGINS=jupyter leaves the helpers out of the kernel', async () => {
    const client = await start({ env: { BERTH_PLUGINS: 'jupyter' } });
    expect(await cell(client, "print('file_editor' in globals(), 'open_file' in globals())")).toBe(
      'False False',
    );
  });

  it('with the libraries in the image, the parsers print the reference formats', async (ctx) => {
    // Debian's packages (bookworm has no python-pptx, so parse_pptx still names its missing library).
    const extraDeps =
      'apt-get update && apt-get install -y --no-install-recommends python3-pypdf python3-docx python3-pylatexenc';
    let image: string;
    try {
      image = (await buildRuntimeImage({ engine, cacheDir: loadDockerConfig().cacheDir, extraDeps })).tag;
    } catch (err) {
      // Needs the Debian mirror at build time; say so instead of passing.
      ctx.skip(`could not build an image with the parser libraries: ${(err as Error).message.slice(0, 300)}`);
      return;
    }
    const client = await start({ image });
    const made = await cell(
      client,
      [
        'import os, docx',
        "os.chdir('/workspace')",
        'd = docx.Document(); d.add_paragraph("First paragraph"); d.add_paragraph("Second"); d.save("a.docx")',
        "_ = open('a.tex', 'w').write(chr(92) + 'section{Intro}' + chr(10) + 'Some ' + chr(92) + 'textbf{bold} text.' + chr(10))",
        // A one-page PDF with one line of text, written by hand.
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
        "_ = open('a.pdf', 'wb').write(out)",
      ].join('\n'),
    );
    expect(made).toBe('[Code executed successfully with no output]');
    expect(await cell(client, "parse_pdf('/workspace/a.pdf')")).toBe(
      '[Reading PDF file from /workspace/a.pdf]\n@@ Page 1 @@\nHello from a PDF',
    );
    expect(await cell(client, "parse_docx('/workspace/a.docx')")).toBe(
      '[Reading DOCX file from /workspace/a.docx]\n@@ Page 1 @@\nFirst paragraph\n\n@@ Page 2 @@\nSecond',
    );
    expect(await cell(client, "parse_latex('/workspace/a.tex')")).toBe(
      '[Reading LaTex file from /workspace/a.tex]\n§ INTRO\n\nSome bold text.',
    );
    expect(await cell(client, "parse_pptx('/workspace/a.pptx')")).toContain(
      'ERROR: parse_pptx needs the Python package python-pptx',
    );
  });
});

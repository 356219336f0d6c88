import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { editObservationDiff, unifiedDiff } from '../../src/runtime-server/core/editor/diff.js';

/**
 * Python's difflib, run for real: `plain` is unified_diff with lineterm='' and n=3; `edit` is OpenHands'
 * get_diff (openhands_aci.utils.diff): n=0, default lineterm, every line right-stripped.
 */
function pythonDiff(
  cases: Array<[string, string]>,
  path: string,
  mode: 'plain' | 'edit' = 'plain',
): string[] {
  const script = [
    'import difflib, json, sys',
    'cases, path, mode = json.load(sys.stdin)',
    'def plain(a, b): return "\\n".join(difflib.unified_diff(a.split("\\n"), b.split("\\n"), fromfile=path, tofile=path, lineterm=""))',
    'def edit(a, b): return "\\n".join(l.rstrip() for l in difflib.unified_diff(a.split("\\n"), b.split("\\n"), fromfile=path, tofile=path, n=0))',
    'print(json.dumps([(plain if mode == "plain" else edit)(a, b) for a, b in cases]))',
  ].join('\n');
  const out = execFileSync('python3', ['-c', script], {
    input: JSON.stringify([cases, path, mode]),
    maxBuffer: 1 << 28,
  });
  return JSON.parse(out.toString('utf8')) as string[];
}

/** A small deterministic PRNG, so a failing case can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('unifiedDiff', () => {
  it('is empty for identical texts', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb\n', '/w/f.txt')).toBe('');
    expect(unifiedDiff('', '', '/w/f.txt')).toBe('');
  });

  it('writes headers, a hunk with three lines of context, and no line terminators', () => {
    const before = ['1', '2', '3', '4', '5', '6', '7', '8', '9'].join('\n');
    const after = ['1', '2', '3', '4', 'five', '6', '7', '8', '9'].join('\n');
    expect(unifiedDiff(before, after, '/w/f.txt')).toBe(
      [
        '--- /w/f.txt',
        '+++ /w/f.txt',
        '@@ -2,7 +2,7 @@',
        ' 2',
        ' 3',
        ' 4',
        '-5',
        '+five',
        ' 6',
        ' 7',
        ' 8',
      ].join('\n'),
    );
  });

  it('writes a one-line range as a bare line number', () => {
    // A one-line file replaced: both ranges are a bare line number.
    expect(unifiedDiff('old', 'new', 'p')).toBe(['--- p', '+++ p', '@@ -1 +1 @@', '-old', '+new'].join('\n'));
    // From nothing ([''] vs ['x', '']): the old side keeps its empty line as context.
    expect(unifiedDiff('', 'x\n', 'p')).toBe(['--- p', '+++ p', '@@ -1 +1,2 @@', '+x', ' '].join('\n'));
    // An appended line: one line of context on the old side, two lines on the new.
    expect(unifiedDiff('a', 'a\nb', 'p')).toBe(['--- p', '+++ p', '@@ -1 +1,2 @@', ' a', '+b'].join('\n'));
  });

  it('splits distant changes into separate hunks and merges near ones', () => {
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    const far = [...lines];
    far[1] = 'changed 2';
    far[25] = 'changed 26';
    const farDiff = unifiedDiff(lines.join('\n'), far.join('\n'), 'f');
    expect(farDiff.split('\n').filter((l) => l.startsWith('@@'))).toEqual([
      '@@ -1,5 +1,5 @@',
      '@@ -23,7 +23,7 @@',
    ]);

    const near = [...lines];
    near[9] = 'changed 10';
    near[15] = 'changed 16';
    const nearDiff = unifiedDiff(lines.join('\n'), near.join('\n'), 'f');
    expect(nearDiff.split('\n').filter((l) => l.startsWith('@@'))).toEqual(['@@ -7,13 +7,13 @@']);
  });

  it('matches difflib on hand-picked edge cases', () => {
    const cases: Array<[string, string]> = [
      ['', 'a'],
      ['a', ''],
      ['a\n', 'a'],
      ['x\ny\nz', 'z\ny\nx'],
      ['a\nb\nc\nd', 'b\nc\nd\na'],
      ['a\na\na\nb', 'a\nb\nb\na'],
      ['first\n\n\nlast', '\n\n'],
      ['tab\tand spaces  \nunicode é 😀', 'tab\tand spaces \nunicode é 😀\n'],
    ];
    const expected = pythonDiff(cases, '/workspace/x.py');
    for (const [i, [a, b]] of cases.entries()) {
      expect(unifiedDiff(a, b, '/workspace/x.py'), `case ${i}`).toBe(expected[i]);
    }
  });

  it('matches difflib on random edits, including long files where popular lines are ignored', () => {
    const cases = randomCases(20240611, 300);
    const expected = pythonDiff(cases, 'f.txt');
    const mismatches = cases.filter(([a, b], i) => unifiedDiff(a, b, 'f.txt') !== expected[i]);
    expect(mismatches).toEqual([]);
  });
});

describe('editObservationDiff', () => {
  it("is OpenHands' get_diff: no context, empty ranges as start,0, trailing whitespace stripped", () => {
    const before = 'keep\nold line   \nkeep\nkeep\n';
    const after = 'keep\nnew line\t\nkeep\nkeep\nadded\n';
    expect(editObservationDiff(before, after, '/w/f.txt')).toBe(
      [
        '--- /w/f.txt',
        '+++ /w/f.txt',
        '@@ -2 +2 @@',
        '-old line',
        '+new line',
        '@@ -4,0 +5 @@',
        '+added',
      ].join('\n'),
    );
    expect(editObservationDiff('same', 'same', 'p')).toBe('');
  });

  it('matches get_diff on random edits', () => {
    const cases = randomCases(77, 200);
    const expected = pythonDiff(cases, '/workspace/f.py', 'edit');
    const mismatches = cases.filter(
      ([a, b], i) => editObservationDiff(a, b, '/workspace/f.py') !== expected[i],
    );
    expect(mismatches).toEqual([]);
  });
});

/** Texts with few distinct lines: many equal candidates, which is where alignments differ between algorithms. */
function randomCases(seed: number, count: number): Array<[string, string]> {
  const rand = prng(seed);
  const cases: Array<[string, string]> = [];
  for (let t = 0; t < count; t++) {
    const alphabet = ['a', 'b', 'c', '', '}', '    return x', 'd  '].slice(0, 2 + Math.floor(rand() * 6));
    const length = t % 10 === 0 ? 200 + Math.floor(rand() * 300) : Math.floor(rand() * 40);
    const before = Array.from({ length }, () => alphabet[Math.floor(rand() * alphabet.length)]!);
    const after = [...before];
    const edits = Math.floor(rand() * 8);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * (after.length + 1));
      const kind = rand();
      if (kind < 0.33) after.splice(at, 1 + Math.floor(rand() * 3));
      else if (kind < 0.66) after.splice(at, 0, alphabet[Math.floor(rand() * alphabet.length)]!);
      else after[at] = `new ${at} `;
    }
    cases.push([before.join('\n'), after.join('\n')]);
  }
  return cases;
}

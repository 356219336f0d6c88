/**
 * Unified diffs exactly as Python's difflib writes them, for the `diff` of FileEditObservation.
 *
 * Matching difflib's output (not just "a correct diff") needs difflib's own alignment, which is not a
 * minimal LCS: it takes the longest common run of lines, recurses on both sides of it, and ignores
 * "popular" lines when looking for runs in long files. That alignment is implemented here from its
 * description; the hunk grouping and the `@@` range format follow difflib's documented output.
 */
import { pyRstrip } from './text-file.js';

/** Lines of context around each change, difflib's default `n`. */
const CONTEXT_LINES = 3;
/** Below this many lines in the new text, no line counts as popular (difflib's autojunk threshold). */
const AUTOJUNK_MIN_LINES = 200;
/** A line is popular when it makes up more than this fraction of the new text (plus one line). */
const AUTOJUNK_POPULAR_PERCENT = 1;

type OpTag = 'equal' | 'replace' | 'delete' | 'insert';
/** [tag, aStart, aEnd, bStart, bEnd], half-open ranges. */
type Opcode = [OpTag, number, number, number, number];
/** [aStart, bStart, length] of a run of equal lines. */
type Block = [number, number, number];

/**
 * Python's `'\n'.join(difflib.unified_diff(before.split('\n'), after.split('\n'), fromfile=path,
 * tofile=path, n=contextLines, lineterm=''))`.
 */
export function unifiedDiff(
  before: string,
  after: string,
  path: string,
  contextLines = CONTEXT_LINES,
): string {
  return diffLines(before, after, path, contextLines).join('\n');
}

/**
 * What OpenHands 0.62 itself puts in FileEditObservation.diff (openhands_aci.utils.diff.get_diff): no
 * context lines, and every line right-stripped of whitespace.
 */
export function editObservationDiff(before: string, after: string, path: string): string {
  return diffLines(before, after, path, 0).map(pyRstrip).join('\n');
}

function diffLines(before: string, after: string, path: string, context: number): string[] {
  const a = before.split('\n');
  const b = after.split('\n');
  const out: string[] = [];
  for (const group of groupedOpcodes(opcodes(a, b), context)) {
    if (out.length === 0) out.push(`--- ${path}`, `+++ ${path}`);
    const first = group[0]!;
    const last = group[group.length - 1]!;
    out.push(`@@ -${formatRange(first[1], last[2])} +${formatRange(first[3], last[4])} @@`);
    for (const [tag, i1, i2, j1, j2] of group) {
      if (tag === 'equal') {
        for (let i = i1; i < i2; i++) out.push(` ${a[i]}`);
        continue;
      }
      if (tag === 'replace' || tag === 'delete') for (let i = i1; i < i2; i++) out.push(`-${a[i]}`);
      if (tag === 'replace' || tag === 'insert') for (let j = j1; j < j2; j++) out.push(`+${b[j]}`);
    }
  }
  return out;
}

/** difflib's range format: `start,length`, with a bare `start` for one line and `start-1,0` for none. */
function formatRange(start: number, stop: number): string {
  const length = stop - start;
  if (length === 1) return String(start + 1);
  return `${length === 0 ? start : start + 1},${length}`;
}

/** The equal runs between `a` and `b`, in order, ending with the sentinel [a.length, b.length, 0]. */
function matchingBlocks(a: string[], b: string[]): Block[] {
  const b2j = indexLines(b);
  const blocks: Block[] = [];
  const pending: Array<[number, number, number, number]> = [[0, a.length, 0, b.length]];
  while (pending.length > 0) {
    const [alo, ahi, blo, bhi] = pending.pop()!;
    const [i, j, k] = longestMatch(a, b, b2j, alo, ahi, blo, bhi);
    if (k === 0) continue;
    blocks.push([i, j, k]);
    if (alo < i && blo < j) pending.push([alo, i, blo, j]);
    if (i + k < ahi && j + k < bhi) pending.push([i + k, ahi, j + k, bhi]);
  }
  blocks.sort((x, y) => x[0] - y[0] || x[1] - y[1]);

  // Merge runs that touch, so each equal stretch is one block.
  const merged: Block[] = [];
  let [i1, j1, k1] = [0, 0, 0];
  for (const [i2, j2, k2] of blocks) {
    if (i1 + k1 === i2 && j1 + k1 === j2) {
      k1 += k2;
    } else {
      if (k1 > 0) merged.push([i1, j1, k1]);
      [i1, j1, k1] = [i2, j2, k2];
    }
  }
  if (k1 > 0) merged.push([i1, j1, k1]);
  merged.push([a.length, b.length, 0]);
  return merged;
}

/** Positions of each line of `b`, leaving out popular lines in long texts (difflib's autojunk). */
function indexLines(b: string[]): Map<string, number[]> {
  const b2j = new Map<string, number[]>();
  b.forEach((line, j) => {
    const list = b2j.get(line);
    if (list) list.push(j);
    else b2j.set(line, [j]);
  });
  if (b.length >= AUTOJUNK_MIN_LINES) {
    const limit = Math.floor((b.length * AUTOJUNK_POPULAR_PERCENT) / 100) + 1;
    for (const [line, list] of b2j) if (list.length > limit) b2j.delete(line);
  }
  return b2j;
}

/**
 * The longest run of equal lines in a[alo:ahi] and b[blo:bhi], earliest in `a` (then in `b`) on ties;
 * found among non-popular lines, then widened over equal neighbours of any kind.
 */
function longestMatch(
  a: string[],
  b: string[],
  b2j: Map<string, number[]>,
  alo: number,
  ahi: number,
  blo: number,
  bhi: number,
): Block {
  let [bestI, bestJ, bestSize] = [alo, blo, 0];
  // runEnding.get(j) = length of the equal run ending at a[i-1], b[j].
  let runEnding = new Map<number, number>();
  for (let i = alo; i < ahi; i++) {
    const next = new Map<number, number>();
    for (const j of b2j.get(a[i]!) ?? []) {
      if (j < blo) continue;
      if (j >= bhi) break;
      const k = (runEnding.get(j - 1) ?? 0) + 1;
      next.set(j, k);
      if (k > bestSize) [bestI, bestJ, bestSize] = [i - k + 1, j - k + 1, k];
    }
    runEnding = next;
  }
  while (bestI > alo && bestJ > blo && a[bestI - 1] === b[bestJ - 1]) {
    bestI--;
    bestJ--;
    bestSize++;
  }
  while (bestI + bestSize < ahi && bestJ + bestSize < bhi && a[bestI + bestSize] === b[bestJ + bestSize]) {
    bestSize++;
  }
  return [bestI, bestJ, bestSize];
}

function opcodes(a: string[], b: string[]): Opcode[] {
  const codes: Opcode[] = [];
  let [i, j] = [0, 0];
  for (const [ai, bj, size] of matchingBlocks(a, b)) {
    const tag: OpTag | null = i < ai && j < bj ? 'replace' : i < ai ? 'delete' : j < bj ? 'insert' : null;
    if (tag) codes.push([tag, i, ai, j, bj]);
    [i, j] = [ai + size, bj + size];
    if (size > 0) codes.push(['equal', ai, i, bj, j]);
  }
  return codes;
}

/** Splits the opcodes into hunks, keeping `n` lines of context and splitting on longer equal stretches. */
function groupedOpcodes(input: Opcode[], n: number): Opcode[][] {
  const codes: Opcode[] = input.length > 0 ? input.map((c) => [...c] as Opcode) : [['equal', 0, 1, 0, 1]];
  const head = codes[0]!;
  if (head[0] === 'equal')
    codes[0] = ['equal', Math.max(head[1], head[2] - n), head[2], Math.max(head[3], head[4] - n), head[4]];
  const tail = codes[codes.length - 1]!;
  if (tail[0] === 'equal')
    codes[codes.length - 1] = [
      'equal',
      tail[1],
      Math.min(tail[2], tail[1] + n),
      tail[3],
      Math.min(tail[4], tail[3] + n),
    ];

  const groups: Opcode[][] = [];
  let group: Opcode[] = [];
  for (const [tag, i1Start, i2, j1Start, j2] of codes) {
    let [i1, j1] = [i1Start, j1Start];
    if (tag === 'equal' && i2 - i1 > 2 * n) {
      group.push([tag, i1, Math.min(i2, i1 + n), j1, Math.min(j2, j1 + n)]);
      groups.push(group);
      group = [];
      [i1, j1] = [Math.max(i1, i2 - n), Math.max(j1, j2 - n)];
    }
    group.push([tag, i1, i2, j1, j2]);
  }
  if (group.length > 0 && !(group.length === 1 && group[0]![0] === 'equal')) groups.push(group);
  return groups;
}

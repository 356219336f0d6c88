/**
 * The per-event cap of the event log. A payload whose JSON text is larger than the cap is stored cut:
 * still valid JSON of the same shape, with its longest strings shortened (each ending in a marker
 * that says how much is missing), and a note of what the whole was: its size, its sha256 and which
 * strings were cut. Short fields (the action's name, a path, an exit code) are kept as long as the
 * cap allows, so the web UI and the API still show what the event was.
 */
import { createHash } from 'node:crypto';

export interface Truncation {
  /** UTF-8 bytes of the whole payload's JSON text. */
  bytes: number;
  /** sha256 (hex) of that text. */
  sha256: string;
  /** The cut strings, as dotted paths ("action.args.content"); "" for the payload itself. */
  fields: string[];
}

export interface Capped {
  /** The JSON text to store. */
  json: string;
  /** Its UTF-8 bytes. */
  bytes: number;
  /** Set when `json` is a cut version of the payload. */
  truncated: Truncation | null;
}

/** The smallest cap: room for a marker and the note of a payload that cannot be cut to shape. */
export const MIN_PAYLOAD_CAP = 1024;

const marker = (cut: number) => `\n[... ${cut} more characters not kept in the event log]`;

/** Copies `value` with every string longer than `keep` characters cut to `keep` plus a marker. */
function cut(input: unknown, keep: number, path: string, fields: string[]): unknown {
  // As JSON.stringify sees it (a Date is its ISO string).
  const value =
    input !== null &&
    typeof input === 'object' &&
    typeof (input as { toJSON?: unknown }).toJSON === 'function'
      ? (input as { toJSON(key: string): unknown }).toJSON(path.split('.').at(-1) ?? '')
      : input;
  if (typeof value === 'string') {
    if (value.length <= keep) return value;
    // Not between the halves of a surrogate pair: that would not encode.
    let end = keep;
    const code = value.charCodeAt(end - 1);
    if (end > 0 && code >= 0xd800 && code <= 0xdbff) end -= 1;
    fields.push(path);
    return value.slice(0, end) + marker(value.length - end);
  }
  if (Array.isArray(value))
    return value.map((v, i) => cut(v, keep, path ? `${path}.${i}` : String(i), fields));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = cut(v, keep, path ? `${path}.${k}` : k, fields);
    return out;
  }
  return value;
}

/** The lengths of every string in `value`. */
function stringLengths(value: unknown, out: number[]): number[] {
  if (typeof value === 'string') out.push(value.length);
  else if (Array.isArray(value)) for (const v of value) stringLengths(v, out);
  else if (value !== null && typeof value === 'object')
    for (const v of Object.values(value)) stringLengths(v, out);
  return out;
}

/**
 * The payload as the event log stores it: `json` (JSON.stringify of `value`) when it is at most
 * `cap` bytes (0: no cap), else a cut copy of at most `cap` bytes. The cut keeps the same number of
 * characters of every long string, as many as fit; a payload that does not fit even so (thousands of
 * small fields) becomes {"truncated_json": "<the first bytes of its JSON text>"}.
 */
export function capPayload(value: unknown, json: string, cap: number): Capped {
  const bytes = Buffer.byteLength(json);
  if (cap <= 0 || bytes <= cap) return { json, bytes, truncated: null };
  const sha256 = createHash('sha256').update(json).digest('hex');
  const attempt = (keep: number) => {
    const fields: string[] = [];
    const text = JSON.stringify(cut(value, keep, '', fields));
    return { json: text, bytes: Buffer.byteLength(text), fields };
  };
  const fitsIn = (keep: number) => {
    const a = attempt(keep);
    return a.bytes <= cap ? a : null;
  };
  // The same `keep` for every long string, as large as fits. A first guess from the room left with
  // the long strings emptied and the bytes per character of the whole, then corrected from the size
  // a guess makes (escapes and multi-byte text are larger per character): usually one or two tries.
  const lengths = stringLengths(value, []);
  const long = Math.max(1, Math.floor(cap / 16));
  const longCount = lengths.filter((n) => n > long).length;
  const emptied = longCount > 0 ? fitsIn(long) : null;
  if (emptied && longCount > 0) {
    const room = cap - emptied.bytes;
    const perChar = Math.max(
      1,
      bytes /
        Math.max(
          1,
          lengths.reduce((a, b) => a + b, 0),
        ),
    );
    let keep = long + Math.floor(room / perChar / longCount);
    for (let tries = 0; keep > long && tries < 8; tries++) {
      const tried = attempt(keep);
      if (tried.bytes <= cap) {
        return { json: tried.json, bytes: tried.bytes, truncated: { bytes, sha256, fields: tried.fields } };
      }
      keep = long + Math.floor(((keep - long) * room * 0.97) / Math.max(1, tried.bytes - emptied.bytes));
    }
    return { json: emptied.json, bytes: emptied.bytes, truncated: { bytes, sha256, fields: emptied.fields } };
  }
  // Short strings only: as short as it takes (a binary search; such payloads are rare).
  if (fitsIn(0)) {
    let lo = 0;
    let hi = Math.min(
      long,
      lengths.reduce((a, b) => Math.max(a, b), 0),
    );
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fitsIn(mid)) lo = mid;
      else hi = mid - 1;
    }
    const best = attempt(lo);
    return { json: best.json, bytes: best.bytes, truncated: { bytes, sha256, fields: best.fields } };
  }
  // Nothing to cut that would do: keep the start of the text itself.
  // Escaping at most doubles it (the text has no raw control characters).
  let head = Buffer.from(json)
    .subarray(0, Math.floor(cap / 2) - 64)
    .toString('utf8');
  if (head.endsWith('\uFFFD')) head = head.slice(0, -1);
  const text = JSON.stringify({ truncated_json: head });
  return { json: text, bytes: Buffer.byteLength(text), truncated: { bytes, sha256, fields: [''] } };
}

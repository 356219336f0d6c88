/**
 * How the editor turns file bytes into text and back, the way the reference's Python editor does:
 * binary sniffing on the first KiB, universal-newline reading, and Python's line-splitting rules.
 */

/** Bytes sniffed for the binary check (binaryornot reads this much). */
export const BINARY_SNIFF_BYTES = 1024;
/** A chunk is binary outright when more than this share is control bytes and low bytes alike. */
const CERTAINLY_BINARY_RATIO = 0.9;
/** chardet's UTF-8 confidence passes binaryornot's 0.9 bar from this many multi-byte characters on. */
const UTF8_CONFIDENT_MULTIBYTE_CHARS = 4;

/**
 * The encodings the editor reads and writes back unchanged. UTF-8 is the norm; a BOM is kept; text that
 * is not UTF-8 is read as Latin-1, which maps every byte to one character and so round-trips exactly.
 */
export type TextEncoding = 'utf-8' | 'utf-8-bom' | 'utf-16le' | 'utf-16be' | 'latin-1';

export interface DecodedText {
  /** The text with `\r\n` and lone `\r` read as `\n`, as Python's text mode does. */
  text: string;
  encoding: TextEncoding;
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const UTF16LE_BOM = Buffer.from([0xff, 0xfe]);
const UTF16BE_BOM = Buffer.from([0xfe, 0xff]);

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.length >= prefix.length && bytes.subarray(0, prefix.length).equals(prefix);
}

function isUtf32Bom(bytes: Buffer): boolean {
  return (
    bytes.length >= 4 &&
    ((bytes[0] === 0xff && bytes[1] === 0xfe && bytes[2] === 0 && bytes[3] === 0) ||
      (bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 0xfe && bytes[3] === 0xff))
  );
}

/** Strict UTF-8 decoding; null when the bytes are not valid UTF-8 (a cut last character included). */
function strictUtf8(bytes: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

export function normalizeNewlines(text: string): string {
  return text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
}

export function decodeText(bytes: Buffer): DecodedText {
  if (startsWith(bytes, UTF8_BOM)) {
    const text = strictUtf8(bytes.subarray(UTF8_BOM.length));
    if (text !== null) return { text: normalizeNewlines(text), encoding: 'utf-8-bom' };
  } else if (!isUtf32Bom(bytes) && startsWith(bytes, UTF16LE_BOM)) {
    const text = new TextDecoder('utf-16le').decode(bytes.subarray(2));
    return { text: normalizeNewlines(text), encoding: 'utf-16le' };
  } else if (startsWith(bytes, UTF16BE_BOM)) {
    const text = new TextDecoder('utf-16be').decode(bytes.subarray(2));
    return { text: normalizeNewlines(text), encoding: 'utf-16be' };
  } else {
    const text = strictUtf8(bytes);
    if (text !== null) return { text: normalizeNewlines(text), encoding: 'utf-8' };
  }
  return { text: normalizeNewlines(bytes.toString('latin1')), encoding: 'latin-1' };
}

/** Thrown when text cannot be written in the file's encoding; the message is Python's codec error. */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
}

export function encodeText(text: string, encoding: TextEncoding): Buffer {
  switch (encoding) {
    case 'utf-8':
      return Buffer.from(text, 'utf8');
    case 'utf-8-bom':
      return Buffer.concat([UTF8_BOM, Buffer.from(text, 'utf8')]);
    case 'utf-16le':
      return Buffer.concat([UTF16LE_BOM, Buffer.from(text, 'utf16le')]);
    case 'utf-16be':
      return Buffer.concat([UTF16BE_BOM, Buffer.from(text, 'utf16le').swap16()]);
    case 'latin-1':
      assertLatin1(text);
      return Buffer.from(text, 'latin1');
  }
}

/** Python refuses characters above U+00FF in Latin-1 rather than writing '?'; so do we. */
function assertLatin1(text: string): void {
  const cps = Array.from(text);
  const first = cps.findIndex((c) => c.codePointAt(0)! > 0xff);
  if (first < 0) return;
  let last = first;
  while (last + 1 < cps.length && cps[last + 1]!.codePointAt(0)! > 0xff) last++;
  const what =
    first === last
      ? `character '${pyEscapeCodePoint(cps[first]!.codePointAt(0)!)}' in position ${first}`
      : `characters in position ${first}-${last}`;
  throw new EncodeError(`'latin-1' codec can't encode ${what}: ordinal not in range(256)`);
}

function pyEscapeCodePoint(cp: number): string {
  return cp > 0xffff ? `\\U${cp.toString(16).padStart(8, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
}

/**
 * binaryornot's verdict on the first KiB of a file: mostly control bytes, or mostly high bytes that do
 * not decode, or any NUL / 0xFF byte in text that no confident encoding explains.
 */
export function looksBinary(chunk: Buffer): boolean {
  if (chunk.length === 0) return false;
  let control = 0;
  let low = 0;
  for (const byte of chunk) {
    const printable =
      (byte >= 32 && byte < 127) || byte === 8 || byte === 9 || byte === 10 || byte === 12 || byte === 13;
    if (!printable) control++;
    if (byte < 127) low++;
  }
  const controlRatio = control / chunk.length;
  const lowRatio = low / chunk.length;
  if (controlRatio > CERTAINLY_BINARY_RATIO && lowRatio > CERTAINLY_BINARY_RATIO) return true;
  const likelyBinary = (controlRatio > 0.3 && lowRatio < 0.05) || (controlRatio > 0.8 && lowRatio > 0.8);
  const decodable = decodableAsUnicode(chunk);
  if (likelyBinary) return !decodable;
  if (decodable) return false;
  return chunk.includes(0) || chunk.includes(0xff);
}

/** Whether chardet would name a non-ASCII encoding with confidence above 0.9 that decodes the chunk. */
function decodableAsUnicode(chunk: Buffer): boolean {
  if (startsWith(chunk, UTF8_BOM)) return strictUtf8(chunk.subarray(UTF8_BOM.length)) !== null;
  if (isUtf32Bom(chunk)) return false;
  if (startsWith(chunk, UTF16LE_BOM) || startsWith(chunk, UTF16BE_BOM)) return chunk.length % 2 === 0;
  if (!chunk.some((byte) => byte >= 0x80)) return false;
  if (strictUtf8(chunk) === null) return false;
  let multibyte = 0;
  for (const byte of chunk) if (byte >= 0xc0) multibyte++;
  return multibyte >= UTF8_CONFIDENT_MULTIBYTE_CHARS;
}

/** The file's lines as Python iterates them: split after each `\n`, the last one possibly unterminated. */
export function linesWithEnds(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
    lines.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

/** Whether Python's str.isspace() holds for this UTF-16 unit (all such characters are in the BMP). */
function isPySpace(unit: number): boolean {
  return (
    (unit >= 0x09 && unit <= 0x0d) ||
    (unit >= 0x1c && unit <= 0x20) ||
    unit === 0x85 ||
    unit === 0xa0 ||
    unit === 0x1680 ||
    (unit >= 0x2000 && unit <= 0x200a) ||
    unit === 0x2028 ||
    unit === 0x2029 ||
    unit === 0x202f ||
    unit === 0x205f ||
    unit === 0x3000
  );
}

/** Python's str.strip() with no argument. */
export function pyStrip(s: string): string {
  return pyRstrip(pyLstrip(s));
}

/** Python's str.lstrip() with no argument. */
export function pyLstrip(s: string): string {
  let start = 0;
  while (start < s.length && isPySpace(s.charCodeAt(start))) start++;
  return s.slice(start);
}

/** Python's str.rstrip() with no argument. */
export function pyRstrip(s: string): string {
  let end = s.length;
  while (end > 0 && isPySpace(s.charCodeAt(end - 1))) end--;
  return s.slice(0, end);
}

/** Python's str.splitlines(): more separators than `\n`, and no empty item after a final one. */
const PY_LINE_BOUNDARY = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;
export function pySplitlines(text: string): string[] {
  const parts = text.split(PY_LINE_BOUNDARY);
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Cuts `text` to `limit` characters (code points, as Python counts) and appends `notice` if it cut. */
export function clip(text: string, limit: number, notice: string): string {
  if (text.length <= limit) return text;
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    if (count === limit) return text.slice(0, i) + notice;
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit < 0xdc00 && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next < 0xe000) i++;
    }
    count++;
  }
  return text;
}

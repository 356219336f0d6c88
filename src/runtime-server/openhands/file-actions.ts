/**
 * FileReadAction and FileWriteAction as the reference executes them (line ranges, relative paths
 * against the shell's cwd, its error texts), except that real images, PDFs and videos come back as
 * data URLs instead of ERROR_BINARY_FILE.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import {
  errorObservation,
  type FileReadArgs,
  type FileWriteArgs,
  fileReadObservation,
  fileWriteObservation,
  type Observation,
} from '../../protocol/openhands.js';
import { BINARY_SNIFF_BYTES, looksBinary } from '../core/editor/text-file.js';
import {
  fileKind,
  NotRegularFileError,
  openRegularFile,
  readRegularFile,
  writeFileAtomically,
} from '../core/fs/regular-file.js';

/** Largest file read into an observation; beyond it the agent is told to use the shell instead. */
export const MAX_READ_BYTES = 64 * 1024 * 1024;

const MEDIA_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.bmp': 'image/bmp',
  '.gif': 'image/gif',
  '.pdf': 'application/pdf',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.ogg': 'video/ogg',
};

export function resolveAgainst(cwd: string, path: string): string {
  return isAbsolute(path) ? resolve(path) : resolve(cwd, path);
}

/**
 * The reference's `is_binary(path)` (binaryornot), which it asks before anything else on a read: a
 * name ending in ".pyc" is binary whether or not it exists; otherwise the verdict on the first KiB
 * (the editor's port of binaryornot); a path that cannot be opened is not binary. FIFOs and devices
 * are never opened for this (the reference would block on a FIFO); they are refused later.
 */
export async function isBinaryPath(path: string): Promise<boolean> {
  if (path.endsWith('.pyc')) return true;
  // The reference opens a relative path against its own process cwd, so in effect never finds it.
  if (!isAbsolute(path)) return false;
  let opened: Awaited<ReturnType<typeof openRegularFile>>;
  try {
    opened = await openRegularFile(path);
  } catch {
    return false;
  }
  try {
    const chunk = Buffer.alloc(BINARY_SNIFF_BYTES);
    const { bytesRead } = await opened.handle.read(chunk, 0, BINARY_SNIFF_BYTES, 0);
    return looksBinary(chunk.subarray(0, bytesRead));
  } catch {
    return false;
  } finally {
    await opened.handle.close();
  }
}

/** The reference has no text for these; this one follows its "Path is a directory" wording. */
function notRegularFile(path: string, kind: string, verb: 'read' | 'write to'): Observation {
  return errorObservation(
    `Path is a ${kind}, not a regular file: ${path}. You can only ${verb} regular files`,
  );
}

function decodeUtf8(data: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return undefined;
  }
}

/** Splits like Python's readlines(): every piece keeps its newline. */
export function splitLinesKeepEnds(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  return lines.length === 1 && lines[0] === '' ? [] : lines;
}

export async function readFileAction(args: FileReadArgs, cwd: string): Promise<Observation> {
  const path = resolveAgainst(cwd, args.path);
  const mediaType = MEDIA_TYPES[extname(path).toLowerCase()];
  // The reference asks is_binary first, on the path as given, so a ".pyc" name is refused even when
  // missing. A relative path it checks against its own process cwd (so in effect never); Berth
  // checks the file it reads. Images, PDFs and videos come back as data URLs instead (below).
  if (args.path.endsWith('.pyc')) return errorObservation('ERROR_BINARY_FILE');
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    return errorObservation(`File not found: ${path}. Your current working directory is ${cwd}.`);
  }
  if (info.isDirectory()) return errorObservation(`Path is a directory: ${path}. You can only read files`);
  if (!info.isFile()) return notRegularFile(path, fileKind(info), 'read');
  if (info.size > MAX_READ_BYTES) {
    // Binary is the first verdict, even on a file too large to read (sniffed without reading it).
    if (!mediaType && (await isBinaryPath(path))) return errorObservation('ERROR_BINARY_FILE');
    return errorObservation(
      `File is too large to read into an observation (${info.size} bytes, limit ${MAX_READ_BYTES}): ${path}. Use the shell (head, sed -n, grep) to read parts of it.`,
    );
  }
  let data: Buffer;
  try {
    data = await readRegularFile(path);
  } catch (err) {
    // Swapped for a FIFO or device since the stat: still refused, never waited on.
    if (err instanceof NotRegularFileError) return notRegularFile(path, err.kind, 'read');
    throw err;
  }
  // The same verdict as isBinaryPath, on the bytes already read: one open of the file, not two.
  if (!mediaType && looksBinary(data.subarray(0, BINARY_SNIFF_BYTES)))
    return errorObservation('ERROR_BINARY_FILE');
  if (mediaType) return fileReadObservation(path, `data:${mediaType};base64,${data.toString('base64')}`);
  const text = decodeUtf8(data);
  if (text === undefined) return errorObservation(`File could not be decoded as utf-8: ${path}.`);
  return fileReadObservation(path, selectLines(splitLinesKeepEnds(text), args.start, args.end).join(''));
}

/**
 * The lines a read of [start, end) returns, as the reference's read_lines picks them. With end -1 it
 * is lines[start:] (empty past the end). With an explicit end it always returns at least one line of a
 * non-empty file and never starts after the second-to-last line: a start past the end (or at it)
 * gives the last two lines, start == end gives the one line at start, an end before start gives the
 * line at start.
 */
export function selectLines(lines: string[], start: number, end: number): string[] {
  const n = lines.length;
  const from = Math.min(Math.max(start, 0), n);
  if (end === -1) return lines.slice(from);
  const to = Math.min(Math.max(end, 0), n);
  const begin = Math.max(0, Math.min(from, n - 2));
  return lines.slice(begin, Math.max(begin + 1, to));
}

export async function writeFileAction(args: FileWriteArgs, cwd: string): Promise<Observation> {
  const path = resolveAgainst(cwd, args.path);
  let existing: string[] = [];
  let exists = false;
  try {
    const info = await stat(path);
    if (info.isDirectory())
      return errorObservation(`Path is a directory: ${path}. You can only write to files`);
    if (!info.isFile()) return notRegularFile(path, fileKind(info), 'write to');
    exists = true;
  } catch {
    // a new file
  }
  if (exists) {
    let bytes: Buffer;
    try {
      bytes = await readRegularFile(path);
    } catch (err) {
      if (err instanceof NotRegularFileError) return notRegularFile(path, err.kind, 'write to');
      throw err;
    }
    const text = decodeUtf8(bytes);
    if (text === undefined) return errorObservation(`File could not be decoded as utf-8: ${path}.`);
    existing = splitLinesKeepEnds(text);
  } else {
    await mkdir(dirname(path), { recursive: true });
  }
  // The reference's insert_lines: every new line gets a newline, lines [start:end) are replaced.
  const inserted = args.content.split('\n').map((l) => `${l}\n`);
  const before = args.start === 0 ? [] : existing.slice(0, args.start);
  const after = args.end === -1 ? [] : existing.slice(args.end);
  const content = [...before, ...inserted, ...after].join('');
  // All or nothing: an existing file keeps its mode (and, if another user owns it, its owner); a
  // new file belongs to the sandbox user, mode 664 as in the reference.
  try {
    await writeFileAtomically(path, Buffer.from(content, 'utf8'), { mode: 0o664 });
  } catch (err) {
    if (err instanceof NotRegularFileError) return notRegularFile(path, err.kind, 'write to');
    throw err;
  }
  return fileWriteObservation(path);
}

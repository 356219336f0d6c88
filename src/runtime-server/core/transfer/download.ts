/**
 * Downloads: a zip of a directory's files (names relative to it, files only, no directory entries,
 * as the reference makes them) or of one file under its basename. The tree is walked first, so a
 * missing or unreadable path is an error before any byte is sent; the zip itself is produced as it is
 * read, one file at a time, each opened only when the zip writer reaches it. Files are deflated, as
 * in the reference, except large ones whose first bytes show they are already compressed.
 */
import { createReadStream, constants as fsConstants, type Stats } from 'node:fs';
import { access, open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import yazl from 'yazl';
import { BerthError, ErrorCode } from '../../../protocol/errors.js';
import { mapFsError, requireAbsolutePath } from './paths.js';

const deflateRaw = promisify(zlib.deflateRaw);

export interface Download {
  /** Suggested attachment name: `<basename>.zip`. */
  filename: string;
  /** The zip, produced as it is read. Destroying it closes every file it had open. */
  stream: Readable;
  /** How many files the zip holds. */
  files: number;
}

interface FileToZip {
  absolute: string;
  name: string;
  stats: Stats;
  /** Deflate it, or store it as is (already-compressed data gains nothing and costs CPU). */
  compress: boolean;
}

/** Files below this size are always deflated; probing them would cost more than it saves. */
const PROBE_MIN_FILE_BYTES = 1024 * 1024;
/** How much of a large file is test-compressed to decide whether deflating it pays. */
const PROBE_BYTES = 64 * 1024;
/**
 * A probe that deflates to more than this fraction of its size marks the file as incompressible
 * (media, archives, model weights): stored, such a file streams at disk speed instead of deflate's.
 */
const INCOMPRESSIBLE_RATIO = 0.9;

/**
 * Prepares a download of `requestedPath` (absolute). Throws VALIDATION_FAILED for a relative path,
 * NOT_FOUND when it does not exist, PERMISSION_DENIED when it or anything beneath it cannot be read.
 */
export async function createDownload(requestedPath: string): Promise<Download> {
  const root = requireAbsolutePath(requestedPath, 'path');
  let rootStats: Stats;
  try {
    rootStats = await stat(root);
  } catch (err) {
    throw mapFsError(err, root);
  }
  const files: FileToZip[] = [];
  if (rootStats.isDirectory()) {
    await collect(root, '', files);
  } else if (rootStats.isFile()) {
    await requireReadable(root);
    const compress = await worthDeflating(root, rootStats);
    files.push({ absolute: root, name: path.basename(root), stats: rootStats, compress });
  } else {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `${root} is neither a regular file nor a directory`);
  }
  return { filename: `${path.basename(root) || 'root'}.zip`, stream: zipStream(files), files: files.length };
}

/**
 * Walks `dir` depth-first in name order. Like the reference's os.walk, symlinks to files are zipped
 * with their target's content and symlinks to directories are not descended into; unlike it, dangling
 * links and special files (FIFOs, sockets, devices) are skipped instead of failing or hanging.
 */
async function collect(dir: string, prefix: string, out: FileToZip[]): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw mapFsError(err, dir);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const absolute = path.join(dir, entry.name);
    const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) {
      await collect(absolute, name, out);
      continue;
    }
    if (!entry.isFile() && !entry.isSymbolicLink()) continue;
    let stats: Stats;
    try {
      stats = await stat(absolute);
    } catch (err) {
      if (entry.isSymbolicLink() && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw mapFsError(err, absolute);
    }
    if (!stats.isFile()) continue;
    await requireReadable(absolute);
    out.push({ absolute, name, stats, compress: await worthDeflating(absolute, stats) });
  }
}

async function requireReadable(file: string): Promise<void> {
  try {
    await access(file, fsConstants.R_OK);
  } catch (err) {
    throw mapFsError(err, file);
  }
}

async function worthDeflating(file: string, stats: Stats): Promise<boolean> {
  if (stats.size < PROBE_MIN_FILE_BYTES) return true;
  let sample: Buffer;
  try {
    const handle = await open(file, 'r');
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(PROBE_BYTES), 0, PROBE_BYTES, 0);
      sample = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw mapFsError(err, file);
  }
  const deflated = await deflateRaw(sample, { level: 1 });
  return deflated.length < sample.length * INCOMPRESSIBLE_RATIO;
}

function zipStream(files: FileToZip[]): Readable {
  const zip = new yazl.ZipFile();
  const output = zip.outputStream as Readable;
  const open = new Set<Readable>();
  zip.on('error', (err: unknown) => output.destroy(err as Error));
  // If the reader goes away early, close the files yazl was still reading.
  output.once('close', () => {
    for (const stream of open) stream.destroy();
  });

  for (const file of files) {
    zip.addReadStreamLazy(
      zipEntryName(file.name),
      { mtime: file.stats.mtime, mode: file.stats.mode, compress: file.compress },
      (callback) => {
        const stream = createReadStream(file.absolute);
        open.add(stream);
        stream.once('close', () => open.delete(stream));
        stream.once('error', (err) => output.destroy(mapFsError(err, file.absolute)));
        callback(null, stream);
      },
    );
  }
  zip.end();
  return output;
}

/** yazl refuses names that look like Windows drive paths (`C:x`); `./C:x` means the same file. */
function zipEntryName(name: string): string {
  return /^[A-Za-z]:/.test(name) ? `./${name}` : name;
}

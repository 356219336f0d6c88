/**
 * Uploads: a stream saved as destination/<filename>, or (recursive, or a `.zip` name, as in the
 * reference) a zip spooled to a temporary file and unpacked into destination. Files are written by
 * this process, so they belong to the user the runtime server runs as.
 */
import { createWriteStream, constants as fsConstants } from 'node:fs';
import { type FileHandle, lstat, mkdir, mkdtemp, open, rm, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError, ErrorCode } from '../../../protocol/errors.js';
import { fileKind } from '../fs/regular-file.js';
import { type ArchiveLimits, type ExtractResult, extractZip } from './archive.js';
import { mapFsError, requireAbsolutePath } from './paths.js';

/** Longest file name Linux file systems accept (NAME_MAX, in bytes). */
const MAX_NAME_BYTES = 255;

/**
 * createWriteStream's 'w', without blocking: opening a FIFO that has no reader would otherwise wait
 * forever (and hold one of libuv's four pool threads while it waits); this way it fails with ENXIO.
 */
const WRITE_NO_WAIT =
  fsConstants.O_WRONLY |
  fsConstants.O_CREAT |
  fsConstants.O_TRUNC |
  fsConstants.O_NONBLOCK |
  fsConstants.O_NOCTTY;

export interface UploadRequest {
  /** Absolute path of the directory the upload goes into; created if missing. */
  destination: string;
  /** The client's file name: a plain name for a file upload; only its `.zip` suffix matters for archives. */
  filename: string;
  /** Treat the upload as a zip and unpack it. A name ending in `.zip` implies this (the reference's rule). */
  recursive: boolean;
}

export type UploadResult =
  | { kind: 'file'; path: string; bytes: number }
  | ({ kind: 'archive'; destination: string } & ExtractResult);

export interface UploadOptions {
  /** Where archives are spooled before validation. @default os.tmpdir() */
  tmpDir?: string;
  /** Bounds on what one archive may expand to. @default DEFAULT_MAX_EXPANDED_BYTES, DEFAULT_MAX_ENTRIES */
  archiveLimits?: ArchiveLimits;
}

/** Whether an upload is unpacked rather than saved: `recursive`, or a name ending in `.zip`. */
export function isArchiveUpload(request: Pick<UploadRequest, 'filename' | 'recursive'>): boolean {
  return request.recursive || request.filename.endsWith('.zip');
}

/**
 * Saves `source` as the request says. Request errors are thrown before `source` is read; on any
 * failure `source` may be left partly read, and the caller decides what to do with the rest of it.
 */
export async function uploadFile(
  source: Readable,
  request: UploadRequest,
  options: UploadOptions = {},
): Promise<UploadResult> {
  const destination = requireAbsolutePath(request.destination, 'destination');
  const archive = isArchiveUpload(request);
  if (archive) {
    if (request.filename.includes('\0')) {
      throw new BerthError(ErrorCode.PATH_NOT_ALLOWED, 'File name must not contain a NUL byte');
    }
  } else {
    checkPlainFileName(request.filename);
  }
  await requireDirectoryOrMissing(destination);

  if (!archive) return saveFile(source, destination, request.filename);

  const spoolDir = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'berth-upload-')).catch((err) => {
    throw mapFsError(err, 'Creating a temporary directory for the upload');
  });
  try {
    const zipPath = path.join(spoolDir, 'upload.zip');
    try {
      await pipeline(source, createWriteStream(zipPath, { flags: 'wx' }));
    } catch (err) {
      throw mapFsError(err, 'Receiving the archive');
    }
    const result = await extractZip(zipPath, destination, options.archiveLimits);
    return { kind: 'archive', destination, ...result };
  } finally {
    await rm(spoolDir, { recursive: true, force: true });
  }
}

function checkPlainFileName(filename: string): void {
  const shown = JSON.stringify(filename);
  if (filename === '')
    throw new BerthError(ErrorCode.VALIDATION_FAILED, 'The uploaded file has no file name');
  if (filename.includes('\0')) {
    throw new BerthError(ErrorCode.PATH_NOT_ALLOWED, 'File name must not contain a NUL byte');
  }
  if (filename.includes('/') || filename === '.' || filename === '..') {
    throw new BerthError(
      ErrorCode.PATH_NOT_ALLOWED,
      `File name must be a plain name, without '/' or '..': ${shown}`,
    );
  }
  if (Buffer.byteLength(filename) > MAX_NAME_BYTES) {
    throw new BerthError(ErrorCode.PATH_NOT_ALLOWED, `File name is longer than 255 bytes: ${shown}`);
  }
}

async function requireDirectoryOrMissing(destination: string): Promise<void> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(destination);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw mapFsError(err, `destination ${destination}`);
  }
  if (!st.isDirectory()) {
    throw new BerthError(ErrorCode.CONFLICT, `destination ${destination} exists and is not a directory`);
  }
}

async function saveFile(source: Readable, destination: string, filename: string): Promise<UploadResult> {
  await mkdir(destination, { recursive: true }).catch((err) => {
    throw mapFsError(err, `Creating ${destination}`);
  });
  const target = path.join(destination, filename);
  const existing = await lstat(target).catch(() => undefined);
  if (existing?.isDirectory()) throw new BerthError(ErrorCode.CONFLICT, `${target} is a directory`);

  // Like the reference, an existing file is overwritten in place (and a symlink followed); a FIFO
  // or socket at that name is refused, not waited on.
  const sink = (await openForUpload(target)).createWriteStream();
  try {
    await pipeline(source, sink);
  } catch (err) {
    await removePartial(target);
    throw mapFsError(err, `Writing ${target}`);
  }
  return { kind: 'file', path: target, bytes: sink.bytesWritten };
}

async function openForUpload(target: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(target, WRITE_NO_WAIT, 0o666);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw mapFsError(err, `Writing ${target}`);
    const st = await stat(target).catch(() => undefined);
    throw notSavable(target, st ? fileKind(st) : 'special file');
  }
  const st = await handle.stat().catch(() => undefined);
  if (st?.isFIFO() || st?.isSocket()) {
    await handle.close();
    throw notSavable(target, fileKind(st));
  }
  return handle;
}

function notSavable(target: string, kind: string): BerthError {
  return new BerthError(ErrorCode.CONFLICT, `${target} is a ${kind}, not a regular file`);
}

/** Removes a half-written file; never what a symlink at that name points to. */
async function removePartial(target: string): Promise<void> {
  const st = await lstat(target).catch(() => undefined);
  if (st?.isFile()) await unlink(target).catch(() => undefined);
}

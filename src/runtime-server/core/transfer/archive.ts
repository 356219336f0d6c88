/**
 * Zip extraction for uploads, in two phases. Validation reads the whole archive and checks every
 * entry (names, kinds, symlink targets, where each entry lands on disk today, free space, and every
 * entry's data against its CRC) without writing anything. Only then does extraction stream each entry
 * to disk; if extraction still fails (the disk filled up, say), what it created is removed again.
 */
import { constants as fsConstants } from 'node:fs';
import { chmod, lstat, mkdir, open, realpath, rm, stat, statfs, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import yauzl from 'yauzl';
import { BerthError, ErrorCode } from '../../../protocol/errors.js';
import { isSystemError, isWithin, mapFsError, resolveExisting } from './paths.js';

/** Longest symlink target accepted from an archive: Linux's PATH_MAX. */
const MAX_SYMLINK_TARGET_BYTES = 4096;
/** Longest path component Linux file systems accept (NAME_MAX, in bytes). */
const MAX_NAME_BYTES = 255;

/**
 * How much one archive may expand to, in total, and how many entries it may hold. A zip of a few
 * hundred kilobytes can declare gigabytes; without a bound only the disk stops it, and the disk is
 * the sandbox's (and its host's). Checked on the declared sizes before anything is written; yauzl
 * refuses entries whose data does not match what they declare.
 */
export interface ArchiveLimits {
  /** @default DEFAULT_MAX_EXPANDED_BYTES (BERTH_UPLOAD_MAX_EXPANDED_BYTES in a sandbox) */
  maxExpandedBytes: number;
  /** @default DEFAULT_MAX_ENTRIES (BERTH_UPLOAD_MAX_ENTRIES in a sandbox) */
  maxEntries: number;
}
export const DEFAULT_MAX_EXPANDED_BYTES = 4 * 1024 ** 3;
export const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_LIMITS: ArchiveLimits = {
  maxExpandedBytes: DEFAULT_MAX_EXPANDED_BYTES,
  maxEntries: DEFAULT_MAX_ENTRIES,
};

/** `versionMadeBy >> 8` of archives written on Unix; only these carry a mode in the high 16 bits. */
const HOST_UNIX = 3;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** MS-DOS "directory" attribute, in the low byte of the external attributes. */
const DOS_DIRECTORY = 0x10;

/** File flags for extracted files: a fresh inode, never following a symlink someone left there. */
const CREATE_EXCLUSIVE =
  fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

export interface ExtractResult {
  files: number;
  directories: number;
  symlinks: number;
  /** Bytes of file data written. */
  bytes: number;
}

type EntryKind = 'file' | 'directory' | 'symlink';

interface PlannedEntry {
  entry: yauzl.Entry;
  /** The entry's name as stored, for messages. */
  name: string;
  /** Normalised relative path ('' never occurs: the root entry is dropped). */
  rel: string;
  /** Absolute path the entry is written to. */
  target: string;
  kind: EntryKind;
  /** Permission bits recorded by a Unix archiver, if any. */
  mode: number | undefined;
  linkTarget?: string;
}

/**
 * Extracts the zip at `zipPath` into the directory `destination` (absolute, normalised; created if
 * missing). Throws BerthError PATH_NOT_ALLOWED or BAD_ARCHIVE (nothing written) for a hostile or
 * corrupt archive, CONFLICT when an entry collides with what is on disk, NO_SPACE when it cannot fit.
 */
export async function extractZip(
  zipPath: string,
  destination: string,
  limits: ArchiveLimits = DEFAULT_LIMITS,
): Promise<ExtractResult> {
  const zip = await openZip(zipPath);
  try {
    const plan = await readEntries(zip, destination, limits);
    await checkAgainstDisk(plan, destination, limits);
    await verifyData(zip, plan);
    return await writeEntries(zip, plan, destination);
  } finally {
    zip.close();
  }
}

function openZip(zipPath: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(
      zipPath,
      // Names are decoded and checked by us so hostile names are told apart from corrupt archives.
      { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true },
      (err, zip) => (err ? reject(archiveError(err, 'Not a valid zip archive')) : resolve(zip)),
    );
  });
}

function tooManyEntries(count: number, limits: ArchiveLimits): BerthError {
  return new BerthError(
    ErrorCode.PAYLOAD_TOO_LARGE,
    `The archive holds ${count} entries or more, more than the limit of ${limits.maxEntries} (BERTH_UPLOAD_MAX_ENTRIES)`,
    { limit: 'max_entries', max: limits.maxEntries },
  );
}

function archiveError(err: unknown, what: string): BerthError {
  if (err instanceof BerthError) return err;
  if (isSystemError(err)) return mapFsError(err, what);
  return new BerthError(ErrorCode.BAD_ARCHIVE, `${what}: ${(err as Error)?.message ?? String(err)}`);
}

/** Phase 1: every entry's name, kind and symlink target, and how entries relate to each other. */
async function readEntries(
  zip: yauzl.ZipFile,
  destination: string,
  limits: ArchiveLimits,
): Promise<PlannedEntry[]> {
  const plan: PlannedEntry[] = [];
  const kinds = new Map<string, EntryKind>();
  if (zip.entryCount > limits.maxEntries) throw tooManyEntries(zip.entryCount, limits);
  try {
    for await (const entry of zip.eachEntry()) {
      if (plan.length >= limits.maxEntries) throw tooManyEntries(plan.length + 1, limits);
      const planned = classify(entry, destination);
      if (planned === undefined) continue;
      const earlier = kinds.get(planned.rel);
      if (earlier !== undefined && earlier !== planned.kind) {
        throw new BerthError(
          ErrorCode.BAD_ARCHIVE,
          `Archive entry ${planned.name} appears both as a ${earlier} and as a ${planned.kind}`,
        );
      }
      kinds.set(planned.rel, planned.kind);
      if (planned.kind === 'symlink') planned.linkTarget = await readLinkTarget(zip, planned, destination);
      plan.push(planned);
    }
  } catch (err) {
    throw archiveError(err, 'Corrupt zip archive');
  }
  // An entry beneath a symlink entry would be written wherever that link points; one beneath a file
  // entry cannot be written at all.
  for (const planned of plan) {
    const parts = planned.rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      const kind = kinds.get(ancestor);
      if (kind === 'symlink') {
        throw new BerthError(
          ErrorCode.PATH_NOT_ALLOWED,
          `Archive entry ${planned.name} lies beneath the symlink entry ${ancestor}`,
        );
      }
      if (kind === 'file') {
        throw new BerthError(
          ErrorCode.BAD_ARCHIVE,
          `Archive entry ${planned.name} lies beneath the file entry ${ancestor}`,
        );
      }
    }
  }
  return plan;
}

/** Decodes and checks one entry's name; undefined for an entry naming the destination itself. */
function classify(entry: yauzl.Entry, destination: string): PlannedEntry | undefined {
  // Backslashes become '/', as Windows archivers mean them (and so `..\..\x` is caught below).
  const name = yauzl.getFileNameLowLevel(
    entry.generalPurposeBitFlag,
    entry.fileNameRaw,
    entry.extraFields,
    false,
  );
  const shown = JSON.stringify(name);
  if (name.includes('\0')) {
    throw new BerthError(ErrorCode.PATH_NOT_ALLOWED, `Archive entry name contains a NUL byte: ${shown}`);
  }
  if (name === '') throw new BerthError(ErrorCode.BAD_ARCHIVE, 'Archive entry with an empty name');
  if (name.startsWith('/') || /^[A-Za-z]:\//.test(name)) {
    throw new BerthError(ErrorCode.PATH_NOT_ALLOWED, `Archive entry has an absolute path: ${shown}`);
  }
  const parts = name.split('/');
  if (parts.includes('..')) {
    throw new BerthError(ErrorCode.PATH_NOT_ALLOWED, `Archive entry escapes the destination: ${shown}`);
  }
  const segments = parts.filter((p) => p !== '' && p !== '.');
  if (segments.some((s) => Buffer.byteLength(s) > MAX_NAME_BYTES)) {
    throw new BerthError(
      ErrorCode.PATH_NOT_ALLOWED,
      `Archive entry name has a component over 255 bytes: ${shown}`,
    );
  }
  const rel = segments.join('/');
  const target = path.join(destination, rel);
  if (!isWithin(destination, target)) {
    throw new BerthError(ErrorCode.PATH_NOT_ALLOWED, `Archive entry escapes the destination: ${shown}`);
  }

  const attributes = entry.externalFileAttributes >>> 0;
  const unixMode = entry.versionMadeBy >> 8 === HOST_UNIX ? attributes >>> 16 : 0;
  const type = unixMode & S_IFMT;
  let kind: EntryKind;
  if (type === S_IFLNK) {
    if (name.endsWith('/'))
      throw new BerthError(ErrorCode.BAD_ARCHIVE, `Symlink entry named like a directory: ${shown}`);
    kind = 'symlink';
  } else if (name.endsWith('/') || type === S_IFDIR || (type === 0 && (attributes & DOS_DIRECTORY) !== 0)) {
    kind = 'directory';
  } else {
    // Regular files, and (as the reference does) any other Unix type, whose data becomes a plain file.
    kind = 'file';
  }
  if (rel === '') {
    if (kind === 'directory') return undefined;
    throw new BerthError(ErrorCode.PATH_NOT_ALLOWED, `Archive entry would replace the destination: ${shown}`);
  }
  if (kind !== 'directory' && !entry.canDecodeFileData()) {
    throw new BerthError(
      ErrorCode.BAD_ARCHIVE,
      `Archive entry ${shown} is encrypted or uses an unsupported compression method (${entry.compressionMethod})`,
    );
  }
  const permissions = unixMode & 0o777;
  return { entry, name, rel, target, kind, mode: permissions === 0 ? undefined : permissions };
}

async function readLinkTarget(
  zip: yauzl.ZipFile,
  planned: PlannedEntry,
  destination: string,
): Promise<string> {
  const shown = JSON.stringify(planned.name);
  if (planned.entry.uncompressedSize > MAX_SYMLINK_TARGET_BYTES || planned.entry.uncompressedSize === 0) {
    throw new BerthError(ErrorCode.BAD_ARCHIVE, `Symlink entry ${shown} has an invalid target length`);
  }
  const data = await readEntryFully(zip, planned);
  const linkTarget = data.toString('utf8');
  if (linkTarget.includes('\0')) {
    throw new BerthError(
      ErrorCode.PATH_NOT_ALLOWED,
      `Symlink entry ${shown} has a target containing a NUL byte`,
    );
  }
  const resolved = path.resolve(path.dirname(planned.target), linkTarget);
  if (!isWithin(destination, resolved)) {
    throw new BerthError(
      ErrorCode.PATH_NOT_ALLOWED,
      `Symlink entry ${shown} points outside the destination: ${JSON.stringify(linkTarget)}`,
    );
  }
  return linkTarget;
}

async function readEntryFully(zip: yauzl.ZipFile, planned: PlannedEntry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let crc = 0;
  for await (const chunk of await openEntry(zip, planned)) {
    chunks.push(chunk as Buffer);
    crc = zlib.crc32(chunk as Buffer, crc);
  }
  checkCrc(planned, crc);
  return Buffer.concat(chunks);
}

async function openEntry(zip: yauzl.ZipFile, planned: PlannedEntry): Promise<Readable> {
  try {
    return await zip.openReadStreamPromise(planned.entry);
  } catch (err) {
    throw archiveError(err, `Archive entry ${JSON.stringify(planned.name)} is corrupt`);
  }
}

function checkCrc(planned: PlannedEntry, crc: number): void {
  if (crc >>> 0 !== planned.entry.crc32 >>> 0) {
    throw new BerthError(
      ErrorCode.BAD_ARCHIVE,
      `Archive entry ${JSON.stringify(planned.name)} fails its CRC check`,
    );
  }
}

/**
 * Phase 2: where each entry would land today, following symlinks already on disk, must still be
 * inside the destination; nothing may collide with an existing entry of another kind; the data must fit.
 */
async function checkAgainstDisk(
  plan: PlannedEntry[],
  destination: string,
  limits: ArchiveLimits,
): Promise<void> {
  const realDestination = await resolveExisting(destination);
  await requireDirectoryIfPresent(realDestination, destination);
  const checked = new Map<string, string>();
  const realDirectory = async (dir: string): Promise<string> => {
    let real = checked.get(dir);
    if (real === undefined) {
      real = await resolveExisting(dir);
      await requireDirectoryIfPresent(real, dir);
      checked.set(dir, real);
    }
    return real;
  };

  let needed = 0;
  for (const planned of plan) {
    const shown = JSON.stringify(planned.name);
    const dir = planned.kind === 'directory' ? planned.target : path.dirname(planned.target);
    const real = await realDirectory(dir);
    if (!isWithin(realDestination, real)) {
      throw new BerthError(
        ErrorCode.PATH_NOT_ALLOWED,
        `Archive entry ${shown} would be written outside the destination through an existing symlink`,
      );
    }
    if (planned.kind === 'symlink' && planned.linkTarget !== undefined) {
      // Relative targets are resolved from where the link really lands; an absolute target may also
      // name the destination by the (possibly symlinked) path the client gave.
      const landing = path.resolve(real, planned.linkTarget);
      const absoluteInside = path.isAbsolute(planned.linkTarget) && isWithin(destination, landing);
      if (!isWithin(realDestination, landing) && !absoluteInside) {
        throw new BerthError(
          ErrorCode.PATH_NOT_ALLOWED,
          `Symlink entry ${shown} points outside the destination`,
        );
      }
    }
    if (planned.kind !== 'directory') {
      const existing = await lstat(planned.target).catch(() => undefined);
      if (existing?.isDirectory()) {
        throw new BerthError(
          ErrorCode.CONFLICT,
          `Archive entry ${shown} would replace the directory ${planned.target}`,
        );
      }
      needed += planned.entry.uncompressedSize;
    }
  }

  const space = await statfs(realDestination).catch(() =>
    statfs(path.dirname(realDestination)).catch(() => undefined),
  );
  if (space !== undefined) {
    const available = space.bavail * space.bsize;
    if (needed > available) {
      throw new BerthError(
        ErrorCode.NO_SPACE,
        `The archive holds ${needed} bytes but only ${available} bytes are free under ${destination}`,
      );
    }
  }
  if (needed > limits.maxExpandedBytes) {
    throw new BerthError(
      ErrorCode.PAYLOAD_TOO_LARGE,
      `The archive expands to ${needed} bytes, more than the limit of ${limits.maxExpandedBytes} (BERTH_UPLOAD_MAX_EXPANDED_BYTES)`,
      { limit: 'max_expanded_bytes', max: limits.maxExpandedBytes, declared: needed },
    );
  }
}

async function requireDirectoryIfPresent(real: string, shown: string): Promise<void> {
  const st = await stat(real).catch(() => undefined);
  if (st !== undefined && !st.isDirectory()) {
    throw new BerthError(ErrorCode.CONFLICT, `${shown} exists and is not a directory`);
  }
}

/** Phase 3: decompress every file entry once and check it against its CRC, writing nothing. */
async function verifyData(zip: yauzl.ZipFile, plan: PlannedEntry[]): Promise<void> {
  for (const planned of plan) {
    if (planned.kind !== 'file') continue;
    let crc = 0;
    try {
      for await (const chunk of await openEntry(zip, planned)) crc = zlib.crc32(chunk as Buffer, crc);
    } catch (err) {
      throw archiveError(err, `Archive entry ${JSON.stringify(planned.name)} is corrupt`);
    }
    checkCrc(planned, crc);
  }
}

/** Phase 4: write the entries. On failure, what this extraction created is removed again. */
async function writeEntries(
  zip: yauzl.ZipFile,
  plan: PlannedEntry[],
  destination: string,
): Promise<ExtractResult> {
  const created: string[] = [];
  const result: ExtractResult = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const guarded = new Set<string>();
  let realDestination = '';

  const makeDirectory = async (dir: string): Promise<void> => {
    if (guarded.has(dir)) return;
    const first = await mkdir(dir, { recursive: true }).catch((err) => {
      throw mapFsError(err, `Creating ${dir}`);
    });
    if (first !== undefined) created.push(first);
    // Re-checked at write time: the tree may have changed since validation.
    const real = await realpath(dir);
    if (!isWithin(realDestination, real)) {
      throw new BerthError(ErrorCode.PATH_NOT_ALLOWED, `${dir} resolves outside the destination`);
    }
    guarded.add(dir);
  };
  /** Removes a non-directory already at `target`; reports whether the path is new. */
  const clearTarget = async (target: string): Promise<boolean> => {
    const existing = await lstat(target).catch(() => undefined);
    if (existing === undefined) return true;
    if (existing.isDirectory()) throw new BerthError(ErrorCode.CONFLICT, `${target} is a directory`);
    await unlink(target);
    return false;
  };

  try {
    const first = await mkdir(destination, { recursive: true });
    if (first !== undefined) created.push(first);
    realDestination = await realpath(destination);
    guarded.add(destination);

    for (const planned of plan) {
      const { target } = planned;
      if (planned.kind === 'directory') {
        await makeDirectory(target);
        result.directories++;
        continue;
      }
      await makeDirectory(path.dirname(target));
      const isNew = await clearTarget(target);
      if (planned.kind === 'symlink') {
        await symlink(planned.linkTarget ?? '', target);
        if (isNew) created.push(target);
        result.symlinks++;
        continue;
      }
      const source = await openEntry(zip, planned);
      try {
        const handle = await open(target, CREATE_EXCLUSIVE, 0o666);
        await pipeline(source, handle.createWriteStream());
      } catch (err) {
        source.destroy();
        await rm(target, { force: true }).catch(() => undefined);
        throw archiveError(err, `Extracting ${planned.name}`);
      }
      if (isNew) created.push(target);
      // Keep the owner's read/write bits so a later upload can replace the file.
      if (planned.mode !== undefined) await chmod(target, planned.mode | 0o600);
      result.files++;
      result.bytes += planned.entry.uncompressedSize;
    }
    return result;
  } catch (err) {
    for (const p of created.reverse()) await rm(p, { recursive: true, force: true }).catch(() => undefined);
    throw archiveError(err, `Extracting into ${destination}`);
  }
}

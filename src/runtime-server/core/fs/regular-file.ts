/**
 * Reading and writing files for actions without ever blocking the server and without leaving half a
 * file behind.
 *
 * - Opening is non-blocking and the kind is checked on the open descriptor, so a FIFO, socket or
 *   device (or a regular file swapped for one after a stat) is refused instead of hanging the action
 *   queue forever.
 * - A write goes to a temporary file in the same directory, is flushed, and is then renamed over the
 *   target (or linked into place for an exclusive create), so a failure (disk full, a killed server)
 *   leaves the old content or no file, never a truncated one. Symbolic links are followed first, so
 *   the link stays a link. A file this process does not own, one with several hard links, and one
 *   bind-mounted on its own are written in place instead (a rename would change its owner, split
 *   the links, or fail).
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { type FileHandle, link, open, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Thrown for a path that exists but is not a regular file (FIFO, socket, device, directory). */
export class NotRegularFileError extends Error {
  override readonly name = 'NotRegularFileError';
  constructor(
    readonly path: string,
    readonly kind: string,
  ) {
    super(`${path} is a ${kind}, not a regular file`);
  }
}

export function fileKind(st: Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSymbolicLink()) return 'symbolic link';
  return 'special file';
}

/** Opens an existing regular file for reading; never blocks on a FIFO or device. */
export async function openRegularFile(path: string): Promise<{ handle: FileHandle; stats: Stats }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new NotRegularFileError(path, fileKind(stats));
    return { handle, stats };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Reads a whole regular file; refuses anything else without blocking. */
export async function readRegularFile(path: string): Promise<Buffer> {
  const { handle } = await openRegularFile(path);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

export interface WriteOptions {
  /** Fail with EEXIST if the file exists (the editor's create). */
  exclusive?: boolean;
  /** Exact mode of a new file (the umask not applied). @default 0o666 less the umask */
  mode?: number;
}

/**
 * Replaces (or creates) the file at `path` with `data`, all or nothing. An existing file keeps its
 * mode; one owned by another user is written in place (its owner kept) after the same checks.
 */
export async function writeFileAtomically(
  path: string,
  data: Buffer,
  options: WriteOptions = {},
): Promise<void> {
  const target = await realpath(path).catch(() => path);
  let existing: Stats | undefined;
  try {
    const probe = await openRegularFile(target);
    existing = probe.stats;
    await probe.handle.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existing && options.exclusive) {
    throw Object.assign(new Error(`EEXIST: file already exists, open '${path}'`), { code: 'EEXIST', path });
  }
  // In place where a rename would change what others see: another user's file (its owner), a file
  // with several hard links (they would stop sharing the content).
  if (existing && ((process.getuid && existing.uid !== process.getuid()) || existing.nlink > 1)) {
    await writeInPlace(target, data);
    return;
  }
  const temp = join(dirname(target), `.${basename(target)}.berth-${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o666);
  try {
    try {
      await handle.writeFile(data);
      const mode = existing ? existing.mode & 0o777 : options.mode;
      if (mode !== undefined) await handle.chmod(mode);
      // No fsync: the page cache outlives a killed process, which is the failure this guards against;
      // power-loss durability would cost every write a disk flush.
    } finally {
      await handle.close();
    }
    if (existing || !options.exclusive) {
      try {
        await rename(temp, target);
      } catch (err) {
        // A file bind-mounted on its own cannot be replaced, only rewritten.
        if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
        await unlink(temp).catch(() => undefined);
        await writeInPlace(target, data);
      }
    } else {
      // link() fails if the name appeared meanwhile, which rename() would silently replace.
      await link(temp, target);
      await unlink(temp);
    }
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

async function writeInPlace(path: string, data: Buffer): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new NotRegularFileError(path, fileKind(stats));
    await handle.write(data, 0, data.length, 0);
    await handle.truncate(data.length);
  } finally {
    await handle.close();
  }
}

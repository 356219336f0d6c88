/**
 * Path rules shared by uploads and downloads: absolute paths only, no NUL bytes, and containment
 * checks that hold both lexically and after symlinks on disk are followed.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, ErrorCode, fromSystemError } from '../../../protocol/errors.js';

/** Validates a client-supplied absolute path and returns it normalised (no `..`, no trailing '/'). */
export function requireAbsolutePath(value: string, what: string): string {
  if (value.includes('\0')) {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `${what} must not contain a NUL byte`);
  }
  if (!path.isAbsolute(value)) {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `${what} must be an absolute path: ${value}`);
  }
  return path.resolve(value);
}

/** True when `candidate` is `root` itself or lies beneath it. Both must be absolute and normalised. */
export function isWithin(root: string, candidate: string): boolean {
  if (candidate === root) return true;
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  return candidate.startsWith(prefix);
}

/**
 * The real path of `target` with symlinks resolved as far as the path exists; the part that does not
 * exist yet is appended unchanged. So the answer says where a write to `target` would land today.
 */
export async function resolveExisting(target: string): Promise<string> {
  const missing: string[] = [];
  let current = target;
  for (;;) {
    try {
      const real = await realpath(current);
      return missing.length === 0 ? real : path.join(real, ...missing.reverse());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw mapFsError(err, `Resolving ${current}`);
      const parent = path.dirname(current);
      if (parent === current) throw mapFsError(err, `Resolving ${target}`);
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

/** fromSystemError plus the errno values file transfers meet that it leaves as INTERNAL. */
export function mapFsError(err: unknown, what: string): BerthError {
  if (err instanceof BerthError) return err;
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENAMETOOLONG':
      return new BerthError(ErrorCode.PATH_NOT_ALLOWED, `${what}: file name too long`);
    case 'EEXIST':
    case 'ENOTEMPTY':
      return new BerthError(ErrorCode.CONFLICT, `${what}: a different kind of file is already there`);
    case 'ELOOP':
      return new BerthError(ErrorCode.PATH_NOT_ALLOWED, `${what}: too many levels of symbolic links`);
    case 'EROFS':
      return new BerthError(ErrorCode.PERMISSION_DENIED, `${what}: read-only file system`);
    default:
      return fromSystemError(err, what);
  }
}

/** Whether an error came from a system call (ENOSPC, EACCES, ...) rather than from data we parsed. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return (
    typeof err === 'object' && err !== null && typeof (err as NodeJS.ErrnoException).syscall === 'string'
  );
}

/**
 * System errors worded as the reference's tools word them: Python's `[Errno N] text: 'path'` and GNU
 * find's `find: ‘path’: text`. Agents see these strings, so they follow glibc's strerror texts.
 */
import { constants } from 'node:os';

const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EIO: 'Input/output error',
  EBADF: 'Bad file descriptor',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ETXTBSY: 'Text file busy',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  ENAMETOOLONG: 'File name too long',
  ELOOP: 'Too many levels of symbolic links',
  EDQUOT: 'Disk quota exceeded',
};

function errorCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** glibc's text for the error's code, or the error's own message. */
export function strerror(err: unknown): string {
  const code = errorCode(err);
  return (code && STRERROR[code]) ?? (err instanceof Error ? err.message : String(err));
}

/** str() of the OSError Python raises for `path`, e.g. `[Errno 2] No such file or directory: '/a'`. */
export function pyOSError(err: unknown, path: string): string {
  const code = errorCode(err);
  const errno = code ? (constants.errno as Record<string, number>)[code] : undefined;
  const text = code ? STRERROR[code] : undefined;
  if (errno === undefined || text === undefined) return err instanceof Error ? err.message : String(err);
  return `[Errno ${errno}] ${text}: ${pyStrRepr(path)}`;
}

/** Python's repr() of a string. */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\' || ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** GNU find's quoting of a file name in a UTF-8 locale. */
export function findQuote(path: string): string {
  return `‘${path}’`;
}

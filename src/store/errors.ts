/**
 * Maps SQLite failures to Berth's error vocabulary, so a full disk or a locked database reaches the
 * client as a coded error (507, 503, ...) instead of crashing the control plane.
 */
import Database from 'better-sqlite3';
import { BerthError, ErrorCode, fromSystemError } from '../protocol/errors.js';

/** Turns anything a store operation threw into a BerthError; `what` names the operation. */
export function toStoreError(err: unknown, what: string): BerthError {
  if (err instanceof BerthError) return err;
  if (err instanceof Database.SqliteError) {
    const code = err.code;
    if (code === 'SQLITE_FULL') {
      return new BerthError(ErrorCode.NO_SPACE, `${what}: the database is full (no space left on device)`);
    }
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      return new BerthError(ErrorCode.UNAVAILABLE, `${what}: the database is busy; try again`);
    }
    if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') {
      return new BerthError(ErrorCode.PERMISSION_DENIED, `${what}: the database is not writable`);
    }
    if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
      return new BerthError(ErrorCode.CONFLICT, `${what}: already exists`);
    }
    if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      return new BerthError(ErrorCode.NOT_FOUND, `${what}: no such sandbox`);
    }
    if (code.startsWith('SQLITE_CONSTRAINT')) {
      return new BerthError(ErrorCode.VALIDATION_FAILED, `${what}: ${err.message}`);
    }
    if (code.startsWith('SQLITE_CANTOPEN')) {
      return new BerthError(ErrorCode.UNAVAILABLE, `${what}: cannot open the database file`);
    }
    if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
      return new BerthError(ErrorCode.INTERNAL, `${what}: the database file is damaged (${code})`);
    }
    return new BerthError(ErrorCode.INTERNAL, `${what}: ${err.message} (${code})`);
  }
  if (err instanceof TypeError && /database connection is not open/.test(err.message)) {
    return new BerthError(ErrorCode.UNAVAILABLE, `${what}: the store is closed`);
  }
  if ((err as NodeJS.ErrnoException | undefined)?.code) return fromSystemError(err, what);
  return new BerthError(ErrorCode.INTERNAL, `${what}: ${(err as Error)?.message ?? String(err)}`);
}

/** Runs `fn`, rethrowing any failure as a BerthError. */
export function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toStoreError(err, what);
  }
}

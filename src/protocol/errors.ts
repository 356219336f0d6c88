/**
 * One error vocabulary for every Berth surface: a code, its HTTP status, and one JSON body shape.
 */
export const ErrorCode = {
  INVALID_JSON: 'INVALID_JSON',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  UNKNOWN_ACTION: 'UNKNOWN_ACTION',
  UNAUTHORIZED: 'UNAUTHORIZED',
  NOT_FOUND: 'NOT_FOUND',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  PATH_NOT_ALLOWED: 'PATH_NOT_ALLOWED',
  BAD_ARCHIVE: 'BAD_ARCHIVE',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  /** The operator's policy does not let callers choose this network (policy.networks). */
  NETWORK_NOT_ALLOWED: 'NETWORK_NOT_ALLOWED',
  /** The operator's policy does not let callers choose this OCI runtime (policy.oci_runtimes). */
  RUNTIME_NOT_ALLOWED: 'RUNTIME_NOT_ALLOWED',
  /** The operator's policy does not let callers mount this host directory or volume (policy.mount_roots, policy.named_volumes). */
  MOUNT_NOT_ALLOWED: 'MOUNT_NOT_ALLOWED',
  /** A limit above the operator's maximum (policy.max_*). */
  LIMIT_NOT_ALLOWED: 'LIMIT_NOT_ALLOWED',
  NO_SPACE: 'NO_SPACE',
  CONFLICT: 'CONFLICT',
  UNAVAILABLE: 'UNAVAILABLE',
  TIMEOUT: 'TIMEOUT',
  /** An action's outcome is unknown: the control plane stopped while it was in flight. */
  INTERRUPTED: 'INTERRUPTED',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const errorStatus: Record<ErrorCode, number> = {
  INVALID_JSON: 400,
  VALIDATION_FAILED: 400,
  UNKNOWN_ACTION: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PATH_NOT_ALLOWED: 400,
  BAD_ARCHIVE: 400,
  PERMISSION_DENIED: 403,
  NETWORK_NOT_ALLOWED: 403,
  RUNTIME_NOT_ALLOWED: 403,
  MOUNT_NOT_ALLOWED: 403,
  LIMIT_NOT_ALLOWED: 403,
  NO_SPACE: 507,
  CONFLICT: 409,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  INTERRUPTED: 503,
  INTERNAL: 500,
};

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

/** An error that knows its code; anything else thrown is INTERNAL. */
export class BerthError extends Error {
  override readonly name = 'BerthError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  get status(): number {
    return errorStatus[this.code];
  }

  toBody(): ErrorBody {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** Maps a Node.js system error (ENOENT, EACCES, ENOSPC, ...) to a BerthError with a clear message. */
export function fromSystemError(err: unknown, what: string): BerthError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new BerthError(ErrorCode.NOT_FOUND, `${what}: no such file or directory`);
    case 'EACCES':
    case 'EPERM':
      return new BerthError(ErrorCode.PERMISSION_DENIED, `${what}: permission denied`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new BerthError(ErrorCode.NO_SPACE, `${what}: no space left on device`);
    case 'ENOTDIR':
      return new BerthError(ErrorCode.VALIDATION_FAILED, `${what}: a path component is not a directory`);
    case 'EISDIR':
      return new BerthError(ErrorCode.VALIDATION_FAILED, `${what}: is a directory`);
    default:
      return err instanceof BerthError
        ? err
        : new BerthError(ErrorCode.INTERNAL, `${what}: ${(err as Error)?.message ?? String(err)}`);
  }
}

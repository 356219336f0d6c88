/**
 * The SDK's one error hierarchy, for every client of Berth (the CLI, the web UI, the benches, the
 * control plane's proxy): a base class with the HTTP status, the code, the message and the server's
 * `details`, and one subclass per kind of failure, mapped from the `{code, message, details}` body.
 * Browser-safe: no Node.js module is imported here.
 */
import { ErrorCode } from '../protocol/errors.js';

/** The code of a NetworkError: the server was not reached at all (no HTTP status). */
export const NETWORK = 'NETWORK';

export class BerthApiError extends Error {
  override name = 'BerthApiError';
  constructor(
    /** The HTTP status; 0 when the server was not reached (a NetworkError). */
    readonly status: number,
    /** One of the API's ErrorCodes; another string when a server sends a code this SDK does not know. */
    readonly code: ErrorCode | typeof NETWORK | (string & {}),
    message: string,
    /** The error body's `details`, as the server sent them. */
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
export class AuthenticationError extends BerthApiError {
  override name = 'AuthenticationError';
}
export class NotFoundError extends BerthApiError {
  override name = 'NotFoundError';
}
export class InvalidRequestError extends BerthApiError {
  override name = 'InvalidRequestError';
}
export class PayloadTooLargeError extends BerthApiError {
  override name = 'PayloadTooLargeError';
}
export class ConflictError extends BerthApiError {
  override name = 'ConflictError';
}
export class SandboxUnavailableError extends BerthApiError {
  override name = 'SandboxUnavailableError';
}
export class TimeoutError extends BerthApiError {
  override name = 'TimeoutError';
}
export class ServerError extends BerthApiError {
  override name = 'ServerError';
}
/** Refused: by the sandbox's file permissions, or by the operator's policy (the code names the rule). */
export class PermissionDeniedError extends BerthApiError {
  override name = 'PermissionDeniedError';
}
export class NoSpaceError extends BerthApiError {
  override name = 'NoSpaceError';
}
/** The server was not reached (refused, reset, DNS): status 0, code NETWORK; `cause` is the original. */
export class NetworkError extends BerthApiError {
  override name = 'NetworkError';
  constructor(message: string, cause?: unknown) {
    super(0, NETWORK, message, undefined, { cause });
  }
}

export type BerthApiErrorClass = new (
  status: number,
  code: string,
  message: string,
  details?: unknown,
) => BerthApiError;

/** Every code of the vocabulary has its class: adding a code without one fails the type check. */
export const errorClassByCode: Readonly<Record<ErrorCode, BerthApiErrorClass>> = {
  UNAUTHORIZED: AuthenticationError,
  NOT_FOUND: NotFoundError,
  INVALID_JSON: InvalidRequestError,
  VALIDATION_FAILED: InvalidRequestError,
  UNKNOWN_ACTION: InvalidRequestError,
  PATH_NOT_ALLOWED: InvalidRequestError,
  BAD_ARCHIVE: InvalidRequestError,
  UNSUPPORTED_MEDIA_TYPE: InvalidRequestError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  CONFLICT: ConflictError,
  UNAVAILABLE: SandboxUnavailableError,
  TIMEOUT: TimeoutError,
  INTERRUPTED: SandboxUnavailableError,
  PERMISSION_DENIED: PermissionDeniedError,
  NETWORK_NOT_ALLOWED: PermissionDeniedError,
  RUNTIME_NOT_ALLOWED: PermissionDeniedError,
  MOUNT_NOT_ALLOWED: PermissionDeniedError,
  LIMIT_NOT_ALLOWED: PermissionDeniedError,
  NO_SPACE: NoSpaceError,
  INTERNAL: ServerError,
};

/** Builds the right error class from an HTTP status and a (possibly non-JSON) body. */
export function errorFromResponse(status: number, bodyText: string): BerthApiError {
  let code: string =
    status === 401 ? ErrorCode.UNAUTHORIZED : status === 404 ? ErrorCode.NOT_FOUND : ErrorCode.INTERNAL;
  let message = bodyText.slice(0, 500) || `HTTP ${status}`;
  let details: unknown;
  try {
    const body = JSON.parse(bodyText) as {
      code?: string;
      message?: string;
      details?: unknown;
      detail?: string;
    };
    if (body.code) code = body.code;
    if (body.message) message = body.message;
    else if (body.detail) message = body.detail;
    details = body.details;
  } catch {
    // not JSON: keep the text
  }
  // Own keys only: a code such as "toString" or "__proto__" from a tampered server is just unknown.
  const Cls =
    (Object.hasOwn(errorClassByCode, code) ? errorClassByCode[code as ErrorCode] : undefined) ??
    (status >= 500 ? ServerError : BerthApiError);
  return new Cls(status, code, message, details);
}

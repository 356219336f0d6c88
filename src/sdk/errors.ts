/** Typed errors for SDK users, one class per API error code, mapped from the JSON error body. */
import type { ErrorCode } from '../protocol/errors.js';

export class BerthApiError extends Error {
  override name = 'BerthApiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode | string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
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

/** Every code of the vocabulary has its class: adding a code without one fails the type check. */
const byCode: Record<ErrorCode, typeof BerthApiError> = {
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
  let code = status === 401 ? 'UNAUTHORIZED' : status === 404 ? 'NOT_FOUND' : 'INTERNAL';
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
  const Cls =
    (Object.hasOwn(byCode, code) ? byCode[code as ErrorCode] : undefined) ??
    (status >= 500 ? ServerError : BerthApiError);
  return new Cls(status, code, message, details);
}

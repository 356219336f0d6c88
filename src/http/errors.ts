/** Maps errors from the HTTP layer (Fastify's own, or a proxied service's) into the Berth vocabulary. */
import type { FastifyError } from 'fastify';
import { BerthError, ErrorCode, errorStatus } from '../protocol/errors.js';

/** Longest quotation of a refused value in a validation message. */
const QUOTED_VALUE_CHARS = 80;

/**
 * Maps Fastify's own errors (body too large, bad content type, ...) into the Berth vocabulary.
 * `request`, when given, lets a validation message quote the value it refused.
 */
export function toBerthError(
  error: unknown,
  request?: { body?: unknown; query?: unknown; params?: unknown },
): BerthError {
  if (error instanceof BerthError) return error;
  // An error relayed from another Berth service (SDK error classes carry status and code).
  const relayed = error as { status?: number; code?: string; message?: string };
  if (
    typeof relayed?.status === 'number' &&
    typeof relayed.code === 'string' &&
    Object.hasOwn(errorStatus, relayed.code)
  ) {
    return new BerthError(relayed.code as ErrorCode, relayed.message ?? relayed.code);
  }
  const validation = (
    error as {
      validation?: Array<{
        instancePath?: string;
        message?: string;
        params?: { issue?: { path?: unknown[] } };
      }>;
    }
  ).validation;
  if (Array.isArray(validation) && validation.length > 0) {
    const v = validation[0]!;
    const ctx = (error as { validationContext?: string }).validationContext ?? 'body';
    const path = v.instancePath ? v.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
    const input =
      ctx === 'querystring' ? request?.query : (request as Record<string, unknown> | undefined)?.[ctx];
    const got = quoted(
      path
        ? path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | null)?.[k], input)
        : undefined,
    );
    return new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid field ${ctx}${path ? `.${path}` : ''}: ${v.message}${got ? ` (got ${got})` : ''}`,
    );
  }
  const fe = error as FastifyError;
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
      return new BerthError(ErrorCode.PAYLOAD_TOO_LARGE, `Request body is larger than the limit`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BerthError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, fe.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BerthError(ErrorCode.VALIDATION_FAILED, 'Request body is empty');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BerthError(ErrorCode.VALIDATION_FAILED, fe.message);
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new BerthError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'Expected a multipart/form-data body');
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new BerthError(ErrorCode.VALIDATION_FAILED, fe.message);
  }
  return new BerthError(ErrorCode.INTERNAL, (error as Error)?.message ?? String(error));
}

function quoted(value: unknown): string {
  if (value === undefined || (typeof value === 'object' && value !== null)) return '';
  const text = JSON.stringify(value) ?? '';
  return text.length > QUOTED_VALUE_CHARS ? `${text.slice(0, QUOTED_VALUE_CHARS)}…` : text;
}

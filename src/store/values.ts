/** Conversions between the store's columns and the API's shapes (ISO timestamps, JSON, booleans). */
import { BerthError, ErrorCode } from '../protocol/errors.js';

/** A point in time as callers hold it: a Date or an ISO 8601 string. */
export type Timestamp = Date | string;

export function toMs(value: Timestamp, field: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : value.getTime();
  if (!Number.isFinite(ms)) {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `${field} is not a valid time: ${String(value)}`);
  }
  return ms;
}

export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}

export function toJson(value: unknown, field: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value ?? null);
  } catch (err) {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `${field} is not JSON-serialisable: ${(err as Error).message}`,
    );
  }
  if (text === undefined)
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `${field} is not JSON-serialisable`);
  return text;
}

export function checkLabels(labels: Record<string, string>, field = 'labels'): Record<string, string> {
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `${field} must be an object of strings`);
  }
  for (const [key, value] of Object.entries(labels)) {
    if (typeof value !== 'string') {
      throw new BerthError(ErrorCode.VALIDATION_FAILED, `${field}.${key} must be a string`);
    }
  }
  return labels;
}

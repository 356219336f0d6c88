/**
 * Checks for the names and references Berth puts into Docker Engine API paths. dockerode joins them
 * into the URL unescaped, so a name such as `../containers/json` would address another endpoint; the
 * rules are Docker's own, checked here once more whatever the caller validated.
 */
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { ENGINE_NAME, IMAGE_REFERENCE } from '../protocol/limits.js';

export function engineName(kind: string, value: string): string {
  if (!ENGINE_NAME.test(value)) {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid ${kind} name ${JSON.stringify(value)}: Docker names start with a letter or digit and contain only letters, digits, "_", "." and "-"`,
    );
  }
  return value;
}

export function imageReference(value: string): string {
  if (!IMAGE_REFERENCE.test(value)) {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid image reference ${JSON.stringify(value)}: expected [registry/]name[:tag][@digest]`,
    );
  }
  return value;
}

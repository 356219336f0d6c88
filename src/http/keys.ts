/**
 * Secret comparison shared by both servers (the control plane's API keys, a runtime server's session
 * key). Both sides are hashed first, so the comparison takes the same time whatever the lengths, and
 * every configured key is compared, so the time does not tell which key came close.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function keyMatches(given: string, keys: readonly string[]): boolean {
  const g = digest(given);
  let ok = false;
  for (const k of keys) {
    if (timingSafeEqual(digest(k), g)) ok = true;
  }
  return ok;
}

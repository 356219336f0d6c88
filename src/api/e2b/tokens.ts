/**
 * E2B's per-sandbox secrets. The envd access token (sent as X-Access-Token) is derived from the
 * sandbox's session key, so nothing more is stored and it dies with the sandbox; signed file URLs
 * (`?signature=v1_...`) are checked as E2B's envd checks them, and carry no sandbox id, so the
 * sandbox is the one whose token makes the signature match.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The access token E2B clients send to a sandbox's envd. */
export function envdAccessToken(sessionApiKey: string): string {
  return createHmac('sha256', sessionApiKey).update('berth e2b envd access token').digest('hex').slice(0, 32);
}

/**
 * The traffic token (E2B-Traffic-Access-Token), returned on create and connect so the SDKs send it on
 * every request to a sandbox port: the code interpreter's context calls carry no X-Access-Token.
 */
export function trafficAccessToken(sessionApiKey: string): string {
  return createHmac('sha256', sessionApiKey)
    .update('berth e2b traffic access token')
    .digest('hex')
    .slice(0, 32);
}

export type FileOperation = 'read' | 'write';

/** E2B's signature of a file URL: v1_ + unpadded base64 of sha256("path:op:user:token[:expiry]"). */
export function fileSignature(
  path: string,
  op: FileOperation,
  user: string,
  token: string,
  expiresAt?: number,
): string {
  const text = `${path}:${op}:${user}:${token}${expiresAt === undefined ? '' : `:${expiresAt}`}`;
  return `v1_${createHash('sha256').update(text).digest('base64').replace(/=+$/, '')}`;
}

export interface SignedQuery {
  path: string;
  username: string;
  signature: string;
  /** Unix seconds, as the SDK sends it; absent: no expiry. */
  expiration: number | undefined;
}

/** The signed parts of a /files query, or undefined when it is not signed. */
export function signedQuery(query: Record<string, unknown>): SignedQuery | undefined {
  const { signature, path, username, signature_expiration: exp } = query;
  if (typeof signature !== 'string' || signature === '') return undefined;
  const expiration = typeof exp === 'string' && /^\d+$/.test(exp) ? Number(exp) : undefined;
  return {
    signature,
    path: typeof path === 'string' ? path : '',
    username: typeof username === 'string' ? username : '',
    expiration,
  };
}

/** Whether `signed` was made with `token` for `op`. */
export function signatureMatches(signed: SignedQuery, op: FileOperation, token: string): boolean {
  const expected = Buffer.from(fileSignature(signed.path, op, signed.username, token, signed.expiration));
  const given = Buffer.from(signed.signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Constant-time comparison of a presented token with the sandbox's. */
export function tokenMatches(presented: string | undefined, token: string): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

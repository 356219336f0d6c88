/**
 * E2B's wire details that are pure logic: Connect envelopes, file URL signatures (E2B's own test
 * vector), and how envd requests are told apart from the control plane's own.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { e2bRewriteUrl } from '../../src/api/e2b/envd-proxy.js';
import { envdAccessToken, fileSignature, signatureMatches, signedQuery } from '../../src/api/e2b/tokens.js';
import {
  ConnectError,
  END_STREAM_FLAG,
  endOfStream,
  envelope,
  readEnvelopes,
  readRequestEnvelope,
} from '../../src/protocol/connect.js';

describe('Connect envelopes', () => {
  it('frames messages and the end of the stream, and reads them back', () => {
    const body = Buffer.concat([envelope({ a: 1 }), endOfStream(new ConnectError('not_found', 'gone'))]);
    expect(readEnvelopes(body)).toEqual([
      { flags: 0, message: { a: 1 } },
      { flags: END_STREAM_FLAG, message: { error: { code: 'not_found', message: 'gone' } } },
    ]);
    expect(body.readUInt32BE(1)).toBe(JSON.stringify({ a: 1 }).length);
  });

  it('takes exactly one uncompressed envelope as a stream request', () => {
    expect(readRequestEnvelope(envelope({ process: { pid: 3 } }))).toEqual({ process: { pid: 3 } });
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as ConnectError).code;
      }
      return 'none';
    };
    expect(code(() => readRequestEnvelope(Buffer.from('{}')))).toBe('invalid_argument');
    expect(code(() => readRequestEnvelope(Buffer.concat([envelope({}), envelope({})])))).toBe(
      'invalid_argument',
    );
    expect(code(() => readRequestEnvelope(envelope({}, 1)))).toBe('unimplemented');
    const broken = envelope({});
    broken.write('x', 5);
    expect(code(() => readRequestEnvelope(broken))).toBe('invalid_argument');
  });
});

describe('file URL signatures', () => {
  it("match E2B's own test vector", () => {
    expect(fileSignature('hello.txt', 'read', 'user', '0tQG31xiMp0IOQfaz9dcwi72L1CPo8e0')).toBe(
      'v1_gUtH/s9YCJWgCizjfUxuWfhFE4QSydOWEIIvfLwDr6E',
    );
  });

  it('are checked for the operation, the user, the path, the expiry and the token', () => {
    const token = envdAccessToken('session-key');
    const sig = fileSignature('/tmp/a', 'write', '', token, 1_900_000_000);
    const q = signedQuery({ path: '/tmp/a', signature: sig, signature_expiration: '1900000000' });
    expect(q && signatureMatches(q, 'write', token)).toBe(true);
    expect(q && signatureMatches(q, 'read', token)).toBe(false);
    expect(q && signatureMatches(q, 'write', envdAccessToken('another-key'))).toBe(false);
    const other = signedQuery({ path: '/tmp/b', signature: sig, signature_expiration: '1900000000' });
    expect(other && signatureMatches(other, 'write', token)).toBe(false);
    expect(signedQuery({ path: '/tmp/a' })).toBeUndefined();
  });

  it('tokens differ per sandbox and are header-safe', () => {
    expect(envdAccessToken('a')).not.toBe(envdAccessToken('b'));
    expect(envdAccessToken('a')).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('envd routing', () => {
  const req = (url: string, headers: Record<string, string> = {}) =>
    ({ url, headers }) as unknown as IncomingMessage;
  it('routes by the E2b-Sandbox-Id header, with the port, and leaves everything else alone', () => {
    expect(
      e2bRewriteUrl(req('/process.Process/Start', { 'e2b-sandbox-id': 'ab12', 'e2b-sandbox-port': '49983' })),
    ).toBe('/e2b/envd/ab12/49983/process.Process/Start');
    expect(e2bRewriteUrl(req('/health', { 'e2b-sandbox-id': 'ab12' }))).toBe('/e2b/envd/ab12/49983/health');
    expect(e2bRewriteUrl(req('/health'))).toBe('/health');
    expect(e2bRewriteUrl(req('/api/sandboxes'))).toBe('/api/sandboxes');
    // An id that is not E2B's shape is not routed (it reaches Berth's own routes, and their keys).
    expect(e2bRewriteUrl(req('/api/sandboxes', { 'e2b-sandbox-id': '../x' }))).toBe('/api/sandboxes');
    expect(e2bRewriteUrl(req('/files?path=a&signature=v1_x'))).toBe(
      '/e2b/envd/-/49983/files?path=a&signature=v1_x',
    );
    expect(e2bRewriteUrl(req('/files?path=a'))).toBe('/files?path=a');
  });
});

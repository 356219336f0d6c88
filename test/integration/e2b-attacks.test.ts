/**
 * The E2B surfaces attacked on a real control plane with real sandboxes: every way in is tried without
 * the right secret, with another sandbox's, with a token meant for another port, with expired and
 * forged signatures, and with paths that would climb out of envd's routes into the runtime server's
 * other APIs. Each attempt that must fail is paired with the same request done right, which succeeds,
 * so a refusal cannot come from a broken route.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSignature } from '../../src/api/e2b/tokens.js';
import { rawRequest } from '../support/raw-http.js';
import { type E2bTarget, startForE2b } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: E2B attack suite (${unavailable})`);

interface Created {
  sandboxID: string;
  envdAccessToken: string;
  trafficAccessToken: string;
}

describe.skipIf(unavailable !== undefined)('attacks on the E2B API and envd routes', () => {
  let target: E2bTarget;
  let cp: E2bTarget['cp'];
  let a: Created;
  let b: Created;

  const create = async (): Promise<Created> => {
    const res = await fetch(`${cp.url}/e2b/sandboxes`, {
      method: 'POST',
      headers: { 'x-api-key': cp.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ templateID: 'base', secure: true }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as Created;
  };
  const envd = (sbx: string, headers: Record<string, string>, port = '49983') => ({
    'e2b-sandbox-id': sbx,
    'e2b-sandbox-port': port,
    ...headers,
  });
  /** Runs a command in `sbx` the right way, through envd's process.Process/Start. */
  const run = async (sbx: Created, cmd: string): Promise<string> => {
    const body = JSON.stringify({ process: { cmd: '/bin/sh', args: ['-c', cmd] } });
    const frame = Buffer.alloc(5 + Buffer.byteLength(body));
    frame.writeUInt32BE(Buffer.byteLength(body), 1);
    frame.write(body, 5);
    const res = await fetch(`${cp.url}/process.Process/Start`, {
      method: 'POST',
      headers: envd(sbx.sandboxID, {
        'x-access-token': sbx.envdAccessToken,
        'content-type': 'application/connect+json',
      }),
      body: frame,
    });
    expect(res.status).toBe(200);
    const buf = Buffer.from(await res.arrayBuffer());
    let out = '';
    for (let at = 0; at + 5 <= buf.length; at += 5 + buf.readUInt32BE(at + 1)) {
      const msg = JSON.parse(buf.subarray(at + 5, at + 5 + buf.readUInt32BE(at + 1)).toString());
      const stdout = msg?.event?.data?.stdout;
      if (stdout) out += Buffer.from(stdout, 'base64').toString();
    }
    return out;
  };

  beforeAll(async () => {
    target = await startForE2b();
    cp = target.cp;
    [a, b] = await Promise.all([create(), create()]);
  }, 180_000);

  afterAll(async () => {
    await target?.close();
  });

  it('the REST API needs the API key', async () => {
    for (const headers of [{}, { 'x-api-key': 'e2b_00' }, { 'x-api-key': `${cp.apiKey}0` }] as Record<
      string,
      string
    >[]) {
      const res = await fetch(`${cp.url}/e2b/v2/sandboxes`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: 401 });
    }
    expect((await fetch(`${cp.url}/e2b/v2/sandboxes`, { headers: { 'x-api-key': cp.apiKey } })).status).toBe(
      200,
    );
  });

  it('envd needs this sandbox access token: none, a wrong one, the other sandbox one, or the traffic token are refused', async () => {
    const health = (headers: Record<string, string>) =>
      fetch(`${cp.url}/health`, { headers: envd(a.sandboxID, headers) }).then((r) => r.status);
    expect(await health({})).toBe(401);
    expect(await health({ 'x-access-token': 'x'.repeat(32) })).toBe(401);
    expect(await health({ 'x-access-token': b.envdAccessToken })).toBe(401);
    // The traffic token opens other ports (the code interpreter), never envd.
    expect(await health({ 'e2b-traffic-access-token': a.trafficAccessToken })).toBe(401);
    // Nor does Berth's own API key or the session key reach envd.
    expect(await health({ 'x-api-key': cp.apiKey, authorization: `Bearer ${cp.apiKey}` })).toBe(401);
    expect(await health({ 'x-access-token': a.envdAccessToken })).toBe(204);
  });

  it('the code interpreter port takes this sandbox tokens only', async () => {
    const contexts = (headers: Record<string, string>) =>
      fetch(`${cp.url}/contexts`, { headers: envd(a.sandboxID, headers, '49999') }).then((r) => r.status);
    expect(await contexts({})).toBe(401);
    expect(await contexts({ 'e2b-traffic-access-token': b.trafficAccessToken })).toBe(401);
    expect(await contexts({ 'e2b-traffic-access-token': a.trafficAccessToken })).toBe(200);
    // Running code needs the access token: the traffic token is the weaker one.
    const execute = (headers: Record<string, string>) =>
      fetch(`${cp.url}/execute`, {
        method: 'POST',
        headers: { ...envd(a.sandboxID, headers, '49999'), 'content-type': 'application/json' },
        body: JSON.stringify({ code: '6 * 7' }),
      });
    expect((await execute({ 'e2b-traffic-access-token': a.trafficAccessToken })).status).toBe(401);
    const ran = await execute({ 'x-access-token': a.envdAccessToken });
    expect(ran.status).toBe(200);
    expect(await ran.text()).toContain('"text":"42"');
    // Any other port is not open, whatever the token.
    expect(
      await fetch(`${cp.url}/health`, {
        headers: envd(a.sandboxID, { 'x-access-token': a.envdAccessToken }, '22'),
      }).then((r) => r.status),
    ).toBe(502);
  });

  it('paths that climb out of envd routes are refused before they reach the runtime server', async () => {
    const marker = `pwned-${Date.now()}`;
    const action = JSON.stringify({ action: { action: 'run', args: { command: `touch /tmp/${marker}` } } });
    const headers = {
      ...envd(a.sandboxID, { 'x-access-token': a.envdAccessToken }),
      'content-type': 'application/json',
    };
    for (const target of [
      '/../execute_action',
      '/..%2Fexecute_action',
      '/%2e%2e/execute_action',
      '/files/..%2F..%2Fexecute_action',
      '/x/%2E%2E/%2E%2E/execute_action',
      '/.%2e/execute_action',
      '/..%5Cexecute_action',
    ]) {
      const res = await rawRequest(cp.url, 'POST', target, headers, action);
      expect(res.status, `${target}: ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.status, target).toBeLessThan(500);
    }
    expect(await run(a, `ls /tmp | grep -c ${marker} || true`)).toBe('0\n');
    // The same token runs commands the right way: the refusals were not a broken route.
    expect(await run(a, 'echo through-envd')).toBe('through-envd\n');
  });

  it('signed file URLs: forged, expired and write-for-read signatures are refused; one sandbox signature never opens another sandbox file', async () => {
    await run(a, 'echo secret-of-a > /tmp/secret.txt');
    const user = 'user';
    const url = (sig: string, extra = '') =>
      `${cp.url}/files?path=%2Ftmp%2Fsecret.txt&username=${user}&signature=${sig}${extra}`;
    const sign = (token: string, op: 'read' | 'write', exp?: number) =>
      encodeURIComponent(fileSignature('/tmp/secret.txt', op, user, token, exp));
    expect((await fetch(url('v1_forged'))).status).toBe(401);
    // A URL signed with the other sandbox's token opens that sandbox's file of the name, never this one's.
    await run(b, 'echo secret-of-b > /tmp/secret.txt');
    expect(await (await fetch(url(sign(b.envdAccessToken, 'read')))).text()).toBe('secret-of-b\n');
    expect((await fetch(url(sign(a.envdAccessToken, 'write')))).status).toBe(401);
    const past = Math.floor(Date.now() / 1000) - 10;
    expect(
      (await fetch(url(sign(a.envdAccessToken, 'read', past), `&signature_expiration=${past}`))).status,
    ).toBe(401);
    const ok = await fetch(url(sign(a.envdAccessToken, 'read')));
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('secret-of-a\n');
  });

  it('a hostile sandbox id is not routed: it reaches the ordinary API, which wants the key', async () => {
    for (const id of ['../api', 'A'.repeat(65), 'x y', '%2e%2e']) {
      const res = await rawRequest(cp.url, 'GET', '/api/sandboxes', { 'e2b-sandbox-id': id });
      expect(res.status, id).toBe(401);
    }
  });
});

/**
 * Attacks on the control plane's key check, against a real control plane: every route family (REST,
 * the events stream, a sandbox's event stream, the terminal) spelled dozens of ways, with no key, a
 * wrong key and an empty key. Each must be refused with 401; none may reach a handler.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { spellings } from '../support/path-spellings.js';
import { rawRequest, UPGRADE_HEADERS } from '../support/raw-http.js';
import { startInProcess } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const unavailable = await engineAvailable();

const FAMILIES: Array<{ name: string; method: string; path: string; upgrade: boolean }> = [
  { name: 'REST list', method: 'GET', path: '/api/sandboxes', upgrade: false },
  { name: 'REST create', method: 'POST', path: '/api/sandboxes', upgrade: false },
  { name: 'REST one sandbox', method: 'GET', path: '/api/sandboxes/abc123', upgrade: false },
  { name: 'REST delete', method: 'DELETE', path: '/api/sandboxes/abc123', upgrade: false },
  { name: 'REST action', method: 'POST', path: '/api/sandboxes/abc123/execute_action', upgrade: false },
  { name: 'REST events', method: 'GET', path: '/api/sandboxes/abc123/events', upgrade: false },
  { name: 'metrics', method: 'GET', path: '/metrics', upgrade: false },
  { name: 'events stream', method: 'GET', path: '/api/events/stream', upgrade: true },
  { name: 'sandbox stream', method: 'GET', path: '/api/sandboxes/abc123/events/stream', upgrade: true },
  { name: 'terminal', method: 'GET', path: '/api/sandboxes/abc123/terminal', upgrade: true },
  { name: 'OpenHands sessions', method: 'GET', path: '/openhands/sessions/abc123', upgrade: false },
  { name: 'OpenHands start', method: 'POST', path: '/openhands/start', upgrade: false },
  { name: 'OpenHands build', method: 'POST', path: '/openhands/build', upgrade: false },
  {
    name: 'runtime pass-through',
    method: 'GET',
    path: '/api/sandboxes/abc123/runtime/alive',
    upgrade: false,
  },
  {
    name: 'runtime pass-through action',
    method: 'POST',
    path: '/api/sandboxes/abc123/runtime/execute_action',
    upgrade: false,
  },
];

const KEYS: Array<{ name: string; headers: (valid: string) => Record<string, string> }> = [
  { name: 'no key', headers: () => ({}) },
  { name: 'wrong key', headers: () => ({ Authorization: 'Bearer wrong-key' }) },
  { name: 'empty key', headers: () => ({ Authorization: 'Bearer ' }) },
  { name: 'bare scheme', headers: () => ({ Authorization: 'Bearer' }) },
  { name: 'key prefix', headers: (k) => ({ Authorization: `Bearer ${k.slice(0, -1)}` }) },
  { name: 'other scheme', headers: (k) => ({ Authorization: `Basic ${k}` }) },
  { name: 'wrong X-API-Key', headers: () => ({ 'X-API-Key': 'wrong-key' }) },
  { name: 'empty X-API-Key', headers: () => ({ 'X-API-Key': '' }) },
  { name: 'X-API-Key prefix', headers: (k) => ({ 'X-API-Key': k.slice(0, -1) }) },
  {
    name: 'wrong bearer beside a right X-API-Key',
    headers: (k) => ({ Authorization: 'Bearer x', 'X-API-Key': k }),
  },
  { name: 'wrong session key', headers: () => ({ 'X-Session-API-Key': 'wrong-key' }) },
  { name: 'API key as the session key', headers: (k) => ({ 'X-Session-API-Key': k.slice(1) }) },
];

describe.skipIf(unavailable !== undefined)('the key check cannot be walked around', () => {
  let cp: RunningControlPlane & { apiKey: string };
  beforeAll(async () => {
    cp = await startInProcess({ poolSize: 0 });
  });
  afterAll(async () => {
    if (!cp) return;
    await cp.close();
    // Should a spelling ever get through, a create may have started containers: remove them all.
    await cp.manager['runtime'].reap(new Set());
  });

  it('has a corpus of at least 30 spellings per route family', () => {
    for (const f of FAMILIES) expect(spellings(f.path).length).toBeGreaterThanOrEqual(30);
  });

  for (const family of FAMILIES) {
    it(`${family.name}: every spelling, with no, a wrong or an empty key, is 401`, async () => {
      const leaks: string[] = [];
      for (const target of spellings(family.path)) {
        for (const key of KEYS) {
          const headers = {
            ...(family.upgrade ? UPGRADE_HEADERS : {}),
            ...(family.method === 'POST' ? { 'Content-Type': 'application/json' } : {}),
            ...key.headers(cp.apiKey),
          };
          const res = await rawRequest(
            cp.url,
            family.method,
            target,
            headers,
            family.method === 'POST' ? '{}' : '',
          );
          if (res.status !== 401) leaks.push(`${family.method} ${target} (${key.name}) -> ${res.status}`);
          else if (!family.upgrade) expect(JSON.parse(res.body).code).toBe('UNAUTHORIZED');
        }
      }
      expect(leaks).toEqual([]);
    });
  }

  it('the real key opens the plain spelling (so the corpus probes a live route)', async () => {
    const auth = { Authorization: `Bearer ${cp.apiKey}` };
    expect((await rawRequest(cp.url, 'GET', '/api/sandboxes', auth)).status).toBe(200);
    expect((await rawRequest(cp.url, 'GET', '/metrics', auth)).status).toBe(200);
    // The router decodes percent-encoding, so the spelling reaches the same route, with the key.
    expect((await rawRequest(cp.url, 'GET', '/%61pi/sandboxes', auth)).status).toBe(200);
    const ws = await rawRequest(cp.url, 'GET', `/api/events/stream?token=${cp.apiKey}`, UPGRADE_HEADERS);
    expect(ws.status).toBe(101);
  });

  it("a sandbox's runtime pass-through takes only its own session key, in any spelling", async () => {
    const create = async () =>
      JSON.parse(
        (
          await rawRequest(
            cp.url,
            'POST',
            '/api/sandboxes',
            { Authorization: `Bearer ${cp.apiKey}`, 'Content-Type': 'application/json' },
            '{}',
          )
        ).body,
      ) as { id: string; session_api_key: string };
    const a = await create();
    const b = await create();
    const own = { 'X-Session-API-Key': a.session_api_key };
    expect((await rawRequest(cp.url, 'GET', `/api/sandboxes/${a.id}/runtime/alive`, own)).status).toBe(200);
    const leaks: string[] = [];
    for (const target of spellings(`/api/sandboxes/${a.id}/runtime/alive`)) {
      const wrong: Array<Record<string, string>> = [
        { 'X-Session-API-Key': b.session_api_key },
        { 'X-Session-API-Key': a.session_api_key.toUpperCase() },
        { 'X-Session-API-Key': `${a.session_api_key} x` },
        { Authorization: `Bearer ${a.session_api_key}` },
        { 'X-API-Key': a.session_api_key },
      ];
      for (const headers of wrong) {
        const res = await rawRequest(cp.url, 'GET', target, headers);
        if (res.status !== 401 && res.status !== 404 && res.status !== 400) {
          leaks.push(`${target} ${JSON.stringify(headers).slice(0, 40)} -> ${res.status}`);
        }
      }
    }
    expect(leaks).toEqual([]);
  }, 120_000);

  it('malformed percent-encoding is refused without reaching a handler', async () => {
    for (const target of ['/%zzpi/sandboxes', '/api/sandboxes%', '/%E0%A4%A/sandboxes']) {
      const res = await rawRequest(cp.url, 'GET', target);
      expect([400, 401]).toContain(res.status);
      expect(res.body).not.toContain('"sandboxes"');
    }
  });

  it('/health stays open and says nothing about sandboxes; /openapi.json stays open', async () => {
    const health = await rawRequest(cp.url, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(Object.keys(JSON.parse(health.body)).sort()).toEqual(['docker', 'status', 'version']);
    expect((await rawRequest(cp.url, 'GET', '/openapi.json')).status).toBe(200);
  });
});

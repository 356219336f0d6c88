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
];

const KEYS: Array<{ name: string; headers: (valid: string) => Record<string, string> }> = [
  { name: 'no key', headers: () => ({}) },
  { name: 'wrong key', headers: () => ({ Authorization: 'Bearer wrong-key' }) },
  { name: 'empty key', headers: () => ({ Authorization: 'Bearer ' }) },
  { name: 'bare scheme', headers: () => ({ Authorization: 'Bearer' }) },
  { name: 'key prefix', headers: (k) => ({ Authorization: `Bearer ${k.slice(0, -1)}` }) },
  { name: 'other scheme', headers: (k) => ({ Authorization: `Basic ${k}` }) },
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

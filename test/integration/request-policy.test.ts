/**
 * Hostile create requests against a real control plane process (`berth up`, so a crash would show as
 * a dead child): names that would address other Docker endpoints, networks and host directories
 * outside the operator's policy, limits beyond it, reserved labels, timers that overflow. Each gets a
 * clear 4xx with a code; nothing is created; the process keeps serving.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type ChildControlPlane, startChild } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const unavailable = await engineAvailable();

describe.skipIf(unavailable !== undefined)('create requests outside the rules or the policy', () => {
  let cp: ChildControlPlane;
  let root: string;
  const created: string[] = [];
  const create = async (body: unknown) => {
    const res = await api(cp.url, cp.apiKey, 'POST', '/api/sandboxes', body);
    if (res.status === 201) created.push(res.json.id);
    return res;
  };
  const containersNow = () =>
    execFileSync('docker', ['ps', '-aq', '--filter', `label=berth.owner=${ownerOf(cp.dataDir)}`], {
      encoding: 'utf8',
    }).trim();

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'berth-policy-'));
    mkdirSync(join(root, 'project'));
    symlinkSync('/etc', join(root, 'escape'));
    cp = await startChild({ env: { BERTH_ALLOWED_MOUNT_ROOTS: root } });
  });
  afterAll(async () => {
    for (const id of created) await api(cp.url, cp.apiKey, 'DELETE', `/api/sandboxes/${id}`);
    await cp?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('names that would address other Docker API endpoints are 400, and the process lives on', async () => {
    for (const network of [
      '../containers/json',
      '../../v1.41/containers/json',
      'a/b',
      '..',
      '%2e%2e',
      'x?y',
    ]) {
      const res = await create({ network });
      expect(res.status, network).toBe(400);
      expect(res.json.code).toBe('VALIDATION_FAILED');
      expect(res.json.message).toContain('network');
    }
    for (const image of ['../containers/json', 'busybox/../../containers/json', 'UPPER', 'a b', 'x:y:z']) {
      const res = await create({ image });
      expect(res.status, image).toBe(400);
      expect(res.json.code).toBe('VALIDATION_FAILED');
    }
    expect(cp.child.exitCode).toBeNull();
    expect((await api(cp.url, undefined, 'GET', '/health')).status).toBe(200);
  });

  it('an image without the runtime server is 400, one that is not there 404; nothing starts', async () => {
    // The bootstrapped base image exists on every machine Berth set up, and has no runtime server.
    const base = await create({ image: 'berth-base:bookworm' });
    expect(base.status).toBe(400);
    expect(base.json.message).toContain('not a Berth runtime image');
    const missing = await create({ image: 'no-such-image-anywhere:1' });
    expect(missing.status).toBe(404);
    expect(containersNow()).toBe('');
  });

  it('a multipart body is only taken by the upload route; elsewhere it is 415, not a 500', async () => {
    const res = await fetch(`${cp.url}/api/sandboxes/abc123/list_files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cp.apiKey}`, 'content-type': 'multipart/form-data; boundary=x' },
      body: '--x--\r\n',
    });
    expect(res.status).toBe(415);
  });

  it('networks outside the policy are 403 NETWORK_NOT_ALLOWED', async () => {
    for (const network of ['host', 'bridge', 'none', 'berth-isolated-but-not']) {
      const res = await create({ network });
      expect(res.status, network).toBe(403);
      expect(res.json.code).toBe('NETWORK_NOT_ALLOWED');
      expect(res.json.details.rule).toBe('policy.networks');
    }
  });

  it('host directories outside the allowed roots are 403 MOUNT_NOT_ALLOWED, symlinks included', async () => {
    for (const workspace of ['/', '/etc', '/root', '/var/run', tmpdir(), join(root, 'escape')]) {
      const res = await create({ workspace });
      expect(res.status, workspace).toBe(403);
      expect(res.json.code).toBe('MOUNT_NOT_ALLOWED');
    }
    for (const volume of ['/etc:/host-etc', '/var/run/docker.sock:/docker.sock', `${root}/escape:/x:ro`]) {
      const res = await create({ volumes: [volume] });
      expect(res.status, volume).toBe(403);
      expect(res.json.code).toBe('MOUNT_NOT_ALLOWED');
    }
    const named = await create({ volumes: ['somevolume:/data'] });
    expect(named.status).toBe(403);
    expect(named.json.details.rule).toBe('policy.named_volumes');
  });

  it('paths that are not plain absolute directories are refused, and nothing is made on the host', async () => {
    const dotted = await create({ workspace: `${root}/project/../project` });
    expect(dotted.status).toBe(400);
    const relative = await create({ volumes: ['./here:/x'] });
    expect([400, 403]).toContain(relative.status);
    const colon = await create({ workspace: `${root}/a:/etc:rw` });
    expect(colon.status).toBe(400);
    const missing = join(root, 'does-not-exist');
    const res = await create({ workspace: missing });
    expect(res.status).toBe(404);
    expect(existsSync(missing)).toBe(false);
  });

  it('limits beyond the maximum are 403 LIMIT_NOT_ALLOWED; out-of-range values are 400', async () => {
    for (const limits of [
      { cpus: 64 },
      { memory_mb: 1024 * 1024 },
      { pids: 1_000_000 },
      { disk_mb: 1024 * 1024 },
    ]) {
      const res = await create({ limits });
      expect(res.status, JSON.stringify(limits)).toBe(403);
      expect(res.json.code).toBe('LIMIT_NOT_ALLOWED');
    }
    for (const limits of [
      { cpus: 0 },
      { memory_mb: 1 },
      { pids: 1 },
      { disk_mb: 10 },
      { disk_mb: 64.5 },
      { memory_mb: 2 ** 53 },
      { cpus: 'x' },
    ]) {
      const res = await create({ limits });
      expect(res.status, JSON.stringify(limits)).toBe(400);
    }
  });

  it('reserved labels, bad env and overflowing timers are 400', async () => {
    const bodies: unknown[] = [
      { labels: { 'berth.owner': 'someone-else' } },
      { labels: { 'berth.managed': 'false' } },
      { labels: { '': 'x' } },
      { env: { 'BAD-NAME': 'x' } },
      { env: { OK: 'nul\u0000inside' } },
      { idle_timeout_seconds: 2 ** 40 },
      { timeout_seconds: 2 ** 40 },
      { timeout_seconds: -1 },
    ];
    for (const body of bodies) {
      const res = await create(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.code).toBe('VALIDATION_FAILED');
    }
  });

  it('nothing above was created; an allowed request still works', async () => {
    expect(created).toEqual([]);
    expect(containersNow()).toBe('');
    const ok = await create({ workspace: join(root, 'project'), network: 'internal' });
    expect(ok.status).toBe(201);
    // An action timeout beyond what a timer can hold is refused, not turned into an instant timeout.
    const action = await api(cp.url, cp.apiKey, 'POST', `/api/sandboxes/${ok.json.id}/execute_action`, {
      action: { action: 'run', args: { command: 'echo hi' }, timeout: 2 ** 40 / 1000 },
    });
    expect(action.status).toBe(400);
    expect(action.json.code).toBe('VALIDATION_FAILED');
    expect(cp.child.exitCode).toBeNull();
  });
});

function ownerOf(dataDir: string): string {
  return readFileSync(join(dataDir, 'instance-id'), 'utf8').trim();
}

/**
 * OpenHands' runtime_class on /start, with the operator allowing runsc (policy.oci_runtimes): the
 * gvisor class runs the sandbox on gVisor. Without the operator's leave it is refused (403, in
 * openhands-remote-api.test.ts). Needs runsc registered with dockerd (BERTH_GVISOR=1 in CI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { startInProcess } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';
import { gvisorUnavailable, OCI_RUNTIME } from './gvisor-support.js';

const unavailable = (await engineAvailable()) ?? (await gvisorUnavailable());
const asked = process.env.BERTH_GVISOR === '1';
if (unavailable) console.warn(`SKIPPED: OpenHands runtime_class on gVisor (${unavailable})`);

describe.skipIf(unavailable !== undefined && !asked)('OpenHands runtime_class "gvisor"', () => {
  let cp: RunningControlPlane & { apiKey: string };
  let id: string | undefined;
  beforeAll(async () => {
    if (unavailable)
      throw new Error(`runsc was asked for (BERTH_GVISOR=1) but cannot run a sandbox: ${unavailable}`);
    cp = await startInProcess({ env: { BERTH_ALLOWED_OCI_RUNTIMES: OCI_RUNTIME } });
  }, 120_000);
  afterAll(async () => {
    if (id) await cp?.manager.delete(id).catch(() => undefined);
    await cp?.close();
  });

  it('runs the sandbox on runsc when the operator allows it', async () => {
    const image = await cp.manager['settings'].defaultImage();
    const res = await fetch(`${cp.url}/openhands/start`, {
      method: 'POST',
      headers: { 'X-API-Key': cp.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ image, session_id: 'conv-gvisor', runtime_class: 'gvisor', command: [] }),
    });
    const rt = (await res.json()) as { runtime_id: string; url: string; session_api_key: string };
    expect(res.status, JSON.stringify(rt)).toBe(201);
    id = rt.runtime_id;
    const obs = await fetch(`${rt.url}/execute_action`, {
      method: 'POST',
      headers: { 'X-Session-API-Key': rt.session_api_key, 'content-type': 'application/json' },
      body: JSON.stringify({
        action: { action: 'run', args: { command: 'dmesg | head -n 1' }, timeout: 60 },
      }),
    });
    expect(((await obs.json()) as { content: string }).content).toContain('Starting gVisor');
  }, 120_000);
});

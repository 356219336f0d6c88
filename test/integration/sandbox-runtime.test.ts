/** The Docker runtime on the real engine: ownership, ports, isolation, egress, pause, failures. */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxEndpoint, SandboxSpec } from '../../src/sandboxes/types.js';
import { RuntimeServerClient } from '../../src/sdk/runtime-client.js';
import { engine, engineAvailable, hostWorkspace, runtime, specFor } from './docker-target.js';
import { startTestHost, type TestHost } from './netns-host.js';

const unavailable = await engineAvailable();
const started: string[] = [];

async function start(overrides: Partial<SandboxSpec> = {}) {
  const spec = await specFor(overrides);
  started.push(spec.id);
  const ep = await runtime.start(spec);
  return { spec, ep, client: new RuntimeServerClient(ep.url, spec.sessionApiKey) };
}

async function run(client: RuntimeServerClient, command: string, timeout = 30) {
  const obs = await client.executeAction({
    action: { action: 'run', args: { command, blocking: true }, timeout },
  });
  return { out: obs.content, code: (obs.extras as any).metadata.exit_code as number };
}

afterAll(async () => {
  await Promise.all(started.map((id) => runtime.remove(id).catch(() => undefined)));
});

describe.skipIf(unavailable !== undefined)('Docker runtime', () => {
  it('files made by every kind of action in the bind-mounted workspace belong to SANDBOX_USER_ID', async () => {
    const ws = hostWorkspace();
    const { client } = await start({ workspaceHostPath: ws, userId: 1234 });
    await run(client, 'echo shell > /workspace/shell.txt && mkdir /workspace/dir');
    await client.executeAction({
      action: { action: 'write', args: { path: '/workspace/write.txt', content: 'w' } },
    });
    await client.executeAction({
      action: { action: 'edit', args: { command: 'create', path: '/workspace/editor.txt', file_text: 'e' } },
    });
    await client.executeAction({
      action: { action: 'run_ipython', args: { code: "open('/workspace/python.txt','w').write('p')" } },
    });
    const form = new FormData();
    form.append('file', new Blob(['u']), 'upload.txt');
    const up = await fetch(`${client['base'].origin}/upload_file?destination=/workspace`, {
      method: 'POST',
      headers: { 'X-Session-API-Key': (client as any).sessionApiKey },
      body: form,
    });
    expect(up.status).toBe(200);
    for (const f of ['shell.txt', 'dir', 'write.txt', 'editor.txt', 'python.txt', 'upload.txt']) {
      const st = statSync(`${ws}/${f}`);
      expect({ f, uid: st.uid, gid: st.gid }).toEqual({ f, uid: 1234, gid: 1234 });
    }
    expect((await run(client, 'id -u && id -g && whoami')).out.split('\n').slice(0, 2)).toEqual([
      '1234',
      '1234',
    ]);
    expect((await run(client, 'sudo -n true && echo sudo-ok')).out).toBe('sudo-ok');
  });

  it('publishes the runtime and app ports on 127.0.0.1 only, and exports APP_PORT_1/2', async () => {
    const { spec, ep, client } = await start();
    const info = await engine.containers.inspect(ep.containerId);
    const bindings = Object.values(info.ports).flat();
    expect(bindings.length).toBe(3);
    for (const b of bindings) expect(b.hostIp).toBe('127.0.0.1');
    const env = await run(client, 'echo $APP_PORT_1 $APP_PORT_2');
    expect(env.out).toBe(ep.ports.app.join(' '));
    expect(ep.url).toBe(`http://127.0.0.1:${ep.ports.runtime}`);
    expect(spec.bindingAddress).toBe('127.0.0.1');
    // Hardening: an init as pid 1, no raw sockets, limits applied.
    expect((await run(client, 'cat /proc/1/comm')).out).toMatch(/docker-init|tini/);
    expect(
      (await run(client, 'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max')).out,
    ).toBe('1024');
  });

  it('one sandbox cannot reach another on the isolated network, though each is reachable from the host', async () => {
    const a = await start();
    const b = await start();
    const bInfo = await engine.containers.inspect(b.ep.containerId);
    const bIp = Object.values(bInfo.networks)[0];
    expect(bIp).toBeTruthy();
    // Reachable without the restriction: from this host, through its published port.
    expect((await b.client.alive()).status).toBe('ok');
    const probe = await run(
      a.client,
      `python3 -c "import urllib.request as u; u.urlopen('http://${bIp}:${b.ep.ports.runtime}/alive', timeout=3); print('reached')" 2>&1 | tail -1`,
    );
    expect(probe.out).not.toContain('reached');
  });

  describe('egress', () => {
    let host: TestHost;
    beforeAll(async () => {
      host = await startTestHost();
    });
    afterAll(() => host?.close());

    it('an internal network has no egress; the isolated network does', async () => {
      const fetchHost = `python3 -c "import urllib.request as u; u.urlopen('http://${host.ip}:${host.port}/', timeout=3); print('reached')" 2>&1 | tail -1`;
      // The server is reachable from a sandbox that has egress...
      const open = await start();
      expect((await run(open.client, fetchHost)).out).toBe('reached');
      // ...and not from one on the internal network.
      const closed = await start({ network: { mode: 'internal' } });
      expect((await run(closed.client, fetchHost)).out).not.toBe('reached');
      expect((await closed.client.alive()).status).toBe('ok');
    });
  });

  it('pause and resume keep a running process and the shell cwd', async () => {
    const { spec, client } = await start();
    await run(
      client,
      'mkdir -p /tmp/here; cd /tmp/here; (while true; do date +%s%N >> /tmp/ticks; sleep 0.2; done) &',
    );
    // The loop may not have written its first tick yet.
    const before = Number(
      (await run(client, 'until [ -s /tmp/ticks ]; do sleep 0.05; done; wc -l < /tmp/ticks')).out,
    );
    await runtime.pause(spec.id);
    expect(await runtime.state(spec.id)).toBe('paused');
    await new Promise((r) => setTimeout(r, 1000));
    await runtime.resume(spec.id);
    expect(await runtime.state(spec.id)).toBe('running');
    expect((await run(client, 'pwd')).out).toBe('/tmp/here');
    await new Promise((r) => setTimeout(r, 600));
    const after = Number((await run(client, 'wc -l < /tmp/ticks')).out);
    expect(after).toBeGreaterThan(before);
  });

  it('a runtime server killed inside the container gives a clear error, not a hang', async () => {
    const { spec, ep, client } = await start();
    await engine.containers.exec(ep.containerId, ['sh', '-c', 'pkill -KILL -f runtime-server.mjs'], 'root');
    await expect(
      client.executeAction({ action: { action: 'run', args: { command: 'true' } } }, 10_000),
    ).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    // The container's restart policy starts the server again in the same container.
    let back = false;
    for (let i = 0; i < 100 && !back; i++) {
      await new Promise((r) => setTimeout(r, 100));
      back = (await client.alive(1000).catch(() => undefined))?.status === 'ok';
    }
    expect(back).toBe(true);
    expect(await runtime.state(spec.id)).toBe('running');
  });

  it('a container that exits at start fails the start at once with its last log lines', async () => {
    const t0 = Date.now();
    await expect(
      start({ env: { SANDBOX_USER_ID: 'not-a-number' } as Record<string, string>, userId: -1 }),
    ).rejects.toThrow(/failed to start[\s\S]*SANDBOX_USER_ID/);
    // Far sooner than the 60 s start timeout: the exit was noticed, not waited out.
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('attach finds a running sandbox again by id', async () => {
    const { spec, ep } = await start();
    const again: SandboxEndpoint = await runtime.attach(spec.id);
    expect(again.url).toBe(ep.url);
    expect(again.sessionApiKey).toBe(spec.sessionApiKey);
    expect((await new RuntimeServerClient(again.url, again.sessionApiKey).alive()).status).toBe('ok');
  });

  it('the reaper removes labelled containers no record owns', async () => {
    const { spec } = await start();
    const keep = new Set(started.filter((id) => id !== spec.id));
    const removed = await runtime.reap(keep);
    expect(removed).toContain(spec.id);
    expect(await runtime.state(spec.id)).toBe('missing');
  });

  it('networks made twice by a create race (or left so by one) converge on one', async () => {
    // The engine's duplicate check is not atomic; without it, the race is made on purpose here.
    const name = `berth-test-dup-${process.pid}`;
    const raw = new Dockerode();
    // A name nobody made yet is made, once.
    const fresh = `berth-test-new-${process.pid}`;
    const made1 = await engine.networks.ensure({
      name: fresh,
      internal: true,
      interContainer: false,
      labels: {},
    });
    try {
      expect(await raw.getNetwork(fresh).inspect()).toMatchObject({ Id: made1, Internal: true });
    } finally {
      await raw.getNetwork(fresh).remove();
    }
    const made = [];
    for (let i = 0; i < 3; i++)
      made.push((await raw.createNetwork({ Name: name, CheckDuplicate: false })).id);
    try {
      const ids = () =>
        execFileSync('docker', ['network', 'ls', '-q', '--no-trunc', '--filter', `name=^${name}$`], {
          encoding: 'utf8',
        })
          .trim()
          .split('\n')
          .filter(Boolean);
      expect(ids()).toHaveLength(3);
      const kept = await Promise.all(
        [1, 2].map(() =>
          engine.networks.ensure({ name, internal: false, interContainer: false, labels: {} }),
        ),
      );
      expect(kept[0]).toBe(kept[1]);
      expect(made).toContain(kept[0]);
      expect(ids()).toEqual([kept[0]]);
      expect(await engine.networks.exists(name)).toBe(true);
    } finally {
      for (const id of made)
        await raw
          .getNetwork(id)
          .remove()
          .catch(() => undefined);
    }
  });
});

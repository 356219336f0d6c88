/**
 * Berth's control plane in a container, run the way an operator of the reference runs its app
 * (docs/running-in-a-container.md): the image from `berth image build-control-plane`, started with
 * `docker run` given the Docker socket, SANDBOX_USER_ID, WORKSPACE_MOUNT_PATH (the host path) with the
 * same directory mounted at /opt/workspace_base, a loopback-only published port and its own network.
 * Then: the workspace is bind-mounted into sandboxes from the host path, files the agent makes there
 * belong to the host user, the control plane reaches each sandbox over that sandbox's own link network
 * (never through host ports), sandboxes cannot reach each other, and a recreated control plane
 * container finds its sandboxes again.
 *
 * The image runs dist/ and web/dist/, so `npm run build` must be current; the test says so if not.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDockerConfig } from '../../src/config/docker.js';
import { buildControlPlaneImage } from '../../src/docker/control-plane-image.js';
import { linkNetwork } from '../../src/docker/sandbox-runtime.js';
import { engine, engineAvailable } from './docker-target.js';

const execFileAsync = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
/** First start may build the runtime image inside the container (a cache hit when the host built it). */
const CONTROL_PLANE_READY_MS = 240_000;
/** One /health try; it answers in milliseconds once up. */
const HEALTH_TRY_MS = 2_000;

/** The engine's unix socket, to hand to the container; undefined for a TCP engine. */
function socketPath(): string | undefined {
  const host = loadDockerConfig().dockerHost ?? 'unix:///var/run/docker.sock';
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  return host.startsWith('/') ? host : undefined;
}

async function whyNot(): Promise<string | undefined> {
  const engineProblem = await engineAvailable();
  if (engineProblem) return engineProblem;
  if (!socketPath())
    return `the engine is not on a unix socket (DOCKER_HOST=${loadDockerConfig().dockerHost})`;
  try {
    await execFileAsync('docker', ['version', '--format', '{{.Server.Version}}']);
  } catch (err) {
    return `the docker CLI does not work here: ${(err as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

const skipReason = await whyNot();
if (skipReason) {
  process.stderr.write(`\nSKIPPING the control-plane-in-a-container test: ${skipReason}\n\n`);
}

async function docker(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('docker', args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`docker ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise((ok) => server.close(ok));
  return port;
}

/**
 * Control plane sources newer than their dist/ output: the image would run stale code. (The runtime
 * server reaches sandboxes as the bundle in dist/runtime-server-bundle, as in every other Docker test.)
 */
function staleBuildOutputs(): string[] {
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (full !== join(ROOT, 'src', 'runtime-server')) walk(full);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const out = join(ROOT, 'dist', relative(join(ROOT, 'src'), full).replace(/\.ts$/, '.js'));
        const built = statSync(out, { throwIfNoEntry: false });
        if (!built || built.mtimeMs < statSync(full).mtimeMs) stale.push(relative(ROOT, full));
      }
    }
  };
  walk(join(ROOT, 'src'));
  return stale;
}

describe.skipIf(skipReason !== undefined)('the control plane in a container', () => {
  const instance = `it${randomBytes(4).toString('hex')}`;
  const apiKey = randomBytes(16).toString('hex');
  const network = `berth-it-net-${instance}`;
  const volume = `berth-it-data-${instance}`;
  // Its own data directory inside the volume. The owner label of its sandboxes is the instance id
  // kept in that directory, read once the control plane has started.
  const dataDir = `/var/lib/berth/${instance}`;
  let owner = 'unknown';
  // The host user: the one running this test, or a stand-in uid when that is root.
  const hostUid = process.getuid?.() === 0 ? 1234 : (process.getuid?.() ?? 1234);
  const workspace = mkdtempSync(join(tmpdir(), 'berth-it-ws-'));
  let image: string;
  let port: number;
  let cpName: string;
  let base: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${apiKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const act = async (id: string, action: unknown) => {
    const r = await api('POST', `/api/sandboxes/${id}/execute_action`, { action });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.observation, JSON.stringify(r.json)).not.toBe('error');
    return r.json as { content: string; extras: { metadata?: { exit_code?: number } } };
  };
  const run = (id: string, command: string) => act(id, { action: 'run', args: { command, blocking: true } });

  /** `docker run`, as the issue and the docs have it; returns when /health answers. */
  const startControlPlane = async () => {
    cpName = `berth-it-cp-${instance}-${randomBytes(2).toString('hex')}`;
    await docker(
      'run',
      '-d',
      '--name',
      cpName,
      '--label',
      `berth.test=${instance}`,
      '-v',
      `${socketPath()}:/var/run/docker.sock`,
      '-e',
      `SANDBOX_USER_ID=${hostUid}`,
      '-e',
      `WORKSPACE_MOUNT_PATH=${workspace}`,
      '-v',
      `${workspace}:/opt/workspace_base`,
      '-p',
      `127.0.0.1:${port}:3000`,
      '--network',
      network,
      '-e',
      `BERTH_API_KEY=${apiKey}`,
      // Beyond the issue's command: the data volume (to recreate the container later), this instance's
      // data directory in it, and no warm pool (with a workspace configured every create starts a new
      // container anyway).
      '-v',
      `${volume}:/var/lib/berth`,
      '-e',
      `BERTH_DATA_DIR=${dataDir}`,
      '-e',
      'BERTH_POOL_SIZE=0',
      image,
    );
    const deadline = Date.now() + CONTROL_PLANE_READY_MS;
    for (;;) {
      // Each try bounded: a connection docker-proxy accepts before the server listens can stall.
      const ok = await fetch(`${base}/health`, { signal: AbortSignal.timeout(HEALTH_TRY_MS) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) {
        owner = (await docker('exec', cpName, 'cat', `${dataDir}/instance-id`)).trim();
        return;
      }
      const state = await docker('inspect', '--format', '{{.State.Status}}', cpName).catch(() => 'missing');
      if (state !== 'running' || Date.now() > deadline) {
        const logs = await docker('logs', '--tail', '40', cpName).catch(() => '');
        throw new Error(`the control plane container did not become healthy (${state}):\n${logs}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  const inspect = async (container: string) =>
    JSON.parse(await docker('inspect', container))[0] as {
      Id: string;
      HostConfig: { NetworkMode: string };
      Mounts: Array<{ Type: string; Source: string; Destination: string }>;
      NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
    };

  beforeAll(async () => {
    const stale = staleBuildOutputs();
    if (stale.length) {
      throw new Error(`dist/ is older than ${stale.slice(0, 5).join(', ')}: run \`npm run build\` first`);
    }
    image = (await buildControlPlaneImage({ engine })).tag;
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    if (process.getuid?.() === 0) chownSync(workspace, hostUid, hostUid);
    await docker('network', 'create', '--label', `berth.test=${instance}`, network);
    await startControlPlane();
  }, CONTROL_PLANE_READY_MS + 300_000);

  afterAll(async () => {
    const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
    const cps = await quiet(docker('ps', '-aq', '--filter', `label=berth.test=${instance}`));
    for (const id of String(cps ?? '')
      .split('\n')
      .filter(Boolean))
      await quiet(docker('rm', '-f', id));
    const sandboxes = await quiet(docker('ps', '-aq', '--filter', `label=berth.owner=${owner}`));
    for (const id of String(sandboxes ?? '')
      .split('\n')
      .filter(Boolean))
      await quiet(docker('rm', '-f', id));
    const links = await quiet(docker('network', 'ls', '-q', '--filter', `label=berth.owner=${owner}`));
    for (const id of String(links ?? '')
      .split('\n')
      .filter(Boolean))
      await quiet(docker('network', 'rm', id));
    await quiet(docker('network', 'rm', network));
    await quiet(docker('volume', 'rm', '-f', volume));
    rmSync(workspace, { recursive: true, force: true });
  });

  let first: { id: string; url: string };

  it('mounts the host path into the sandbox; files the agent makes there belong to the host user', async () => {
    const created = await api('POST', '/api/sandboxes', {});
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    first = created.json;
    expect(created.json.workspace).toBe(workspace);

    const sandbox = await inspect(`berth-sandbox-${first.id}`);
    const mount = sandbox.Mounts.find((m) => m.Destination === '/workspace');
    expect(mount).toMatchObject({ Type: 'bind', Source: workspace });

    expect((await run(first.id, 'echo hi > /workspace/made-by-agent.txt')).extras.metadata?.exit_code).toBe(
      0,
    );
    await act(first.id, { action: 'write', args: { path: '/workspace/written.txt', content: 'written' } });
    await act(first.id, {
      action: 'edit',
      args: { command: 'create', path: '/workspace/edited.txt', file_text: 'edited\n' },
    });
    const expected: Record<string, string> = {
      'made-by-agent.txt': 'hi\n',
      'written.txt': 'written\n',
      'edited.txt': 'edited\n',
    };
    for (const [file, content] of Object.entries(expected)) {
      const path = join(workspace, file);
      // trimEnd: the write action, like the reference's, ends the file with a newline of its own.
      expect(readFileSync(path, 'utf8').trimEnd()).toBe(content.trimEnd());
      const st = statSync(path);
      expect({ file, uid: st.uid, gid: st.gid }).toEqual({ file, uid: hostUid, gid: hostUid });
    }
    // The control plane sees the same files where the reference's app does.
    expect(await docker('exec', cpName, 'cat', '/opt/workspace_base/made-by-agent.txt')).toBe('hi');
  });

  it("reaches the sandbox at its address on the sandbox's own link network, not through a host port", async () => {
    const url = new URL(first.url);
    expect(url.hostname).not.toMatch(/^(127\.|localhost$|0\.0\.0\.0$)/);
    const sandbox = await inspect(`berth-sandbox-${first.id}`);
    const link = linkNetwork(first.id);
    expect(url.hostname).toBe(sandbox.NetworkSettings.Networks[link]?.IPAddress);

    // The link network is internal and holds exactly the sandbox and the control plane.
    const net = JSON.parse(await docker('network', 'inspect', link))[0] as {
      Internal: boolean;
      Containers: Record<string, { Name: string }>;
    };
    expect(net.Internal).toBe(true);
    expect(
      Object.values(net.Containers)
        .map((c) => c.Name)
        .sort(),
    ).toEqual([cpName, `berth-sandbox-${first.id}`].sort());
    // The control plane stays on the network the operator put it on (plus the link networks).
    const cp = await inspect(cpName);
    expect(cp.HostConfig.NetworkMode).toBe(network);
    expect(Object.keys(cp.NetworkSettings.Networks)).toContain(network);
    // And it gets there directly: from inside its container, the runtime server answers at that URL.
    const alive = await docker(
      'exec',
      cpName,
      'node',
      '-e',
      `fetch(${JSON.stringify(`${first.url}/alive`)}).then(async (r) => console.log(r.status, await r.text()))`,
    );
    expect(alive).toMatch(/^200 .*"ok"/);
  });

  it('a second sandbox cannot reach the first, while the control plane reaches both', async () => {
    const created = await api('POST', '/api/sandboxes', {});
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const second = created.json as { id: string; url: string };
    const probe = (url: string) =>
      run(second.id, `curl -sS -m 3 -o /dev/null -w '%{http_code}' ${url}/alive 2>&1 || echo ' unreachable'`);
    // The probe works: the second sandbox reaches its own runtime server at its own link address.
    expect((await probe(second.url)).content).toBe('200');
    const blocked = await probe(first.url);
    expect(blocked.content).toContain('unreachable');
    expect(blocked.content).not.toContain('200');
    expect((await run(first.id, 'echo one')).content).toBe('one');
    expect((await run(second.id, 'echo two')).content).toBe('two');
    expect((await api('DELETE', `/api/sandboxes/${second.id}`)).status).toBeLessThan(300);
    // Deleting a sandbox takes its link network with it.
    await expect(docker('network', 'inspect', linkNetwork(second.id))).rejects.toThrow(
      /no such network|not found/i,
    );
  });

  it('a recreated control plane container joins the link networks of the sandboxes it finds', async () => {
    const old = cpName;
    await docker('rm', '-f', old);
    await startControlPlane();
    expect(cpName).not.toBe(old);
    expect((await run(first.id, 'cat /workspace/made-by-agent.txt')).content).toBe('hi');
    const net = JSON.parse(await docker('network', 'inspect', linkNetwork(first.id)))[0] as {
      Containers: Record<string, { Name: string }>;
    };
    expect(Object.values(net.Containers).map((c) => c.Name)).toContain(cpName);
  });
});

/**
 * Runtime images against the real Docker engine: bootstrap the Debian base (or reuse it), build the Berth
 * layer on it and on unusual bases, and run each image to see the runtime server answer as the sandbox user.
 * Skipped as a whole, loudly, only when no engine is reachable.
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { pack } from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDockerConfig } from '../../src/config/docker.js';
import { bootstrapBaseImage } from '../../src/docker/base-image.js';
import type { ImageProgressEvent } from '../../src/docker/build-stream.js';
import { connectEngine } from '../../src/docker/engine.js';
import { RuntimeImageBuilder, type RuntimeImageBuildResult } from '../../src/docker/image-builder.js';
import { BerthError } from '../../src/protocol/errors.js';

const execFileAsync = promisify(execFile);

const config = loadDockerConfig();
const engine = connectEngine({ dockerHost: config.dockerHost });
const BASE = config.baseImage;
const BARE_BASE = 'berth-test-base:no-python-no-node';
const UID1000_BASE = 'berth-test-base:has-uid-1000';
const MUSL_BASE = 'berth-test-base:musl';
const SESSION_KEY = 'image-test-session-key';
/** The uid sandboxes run as: ours, or 1000 when the tests run as root (as CI does). */
const SANDBOX_UID = process.getuid?.() ? process.getuid() : 1000;

async function skipReason(): Promise<string | undefined> {
  try {
    await engine.ping();
  } catch (err) {
    return (err as Error).message;
  }
  try {
    await execFileAsync('docker', ['version', '--format', '{{.Server.Version}}']);
  } catch (err) {
    return `the docker CLI (used to run test containers and by image/bootstrap-base.sh) does not work: ${(err as Error).message}`;
  }
  return undefined;
}
const skip = await skipReason();
if (skip) {
  console.warn(
    `\n${'!'.repeat(100)}\nSKIPPING test/integration/image.test.ts: ${skip}\n${'!'.repeat(100)}\n`,
  );
}

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** A build context holding only a Dockerfile. */
function dockerfileContext(text: string): Readable {
  const p = pack();
  p.entry({ name: 'Dockerfile' }, text);
  p.finalize();
  return p as unknown as Readable;
}

const containers: string[] = [];
const imagesToRemove = new Set<string>();

interface Sandbox {
  id: string;
  url: string;
}

/**
 * One HTTP exchange with node:http. Not fetch: Node 20's fetch never settles when the server closes the
 * connection without answering, which is what docker-proxy does until the container's port listens.
 */
function http(
  url: string,
  options: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        headers: { ...options.headers, ...(body ? { 'content-type': 'application/json' } : {}) },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function startSandbox(image: string, uid: number, workspace?: string): Promise<Sandbox> {
  const args = ['run', '-d', '--init', '--label', 'berth.test=image'];
  args.push('-e', `SANDBOX_USER_ID=${uid}`, '-e', `SESSION_API_KEY=${SESSION_KEY}`, '-p', '127.0.0.1::8000');
  if (workspace) args.push('-v', `${workspace}:/workspace`);
  const id = await docker(...args, image);
  containers.push(id);
  const port = (await docker('port', id, '8000/tcp')).split('\n')[0]!.split(':').pop();
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const alive = await http(`${url}/alive`).catch(() => undefined);
    if (alive?.status === 200) break;
    if (Date.now() > deadline) {
      const logs = await docker('logs', id).catch(() => '');
      throw new Error(`runtime server in ${image} did not come up within 30 s; logs:\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { id, url };
}

async function runCommand(sandbox: Sandbox, command: string): Promise<{ content: string; exitCode: number }> {
  const res = await http(`${sandbox.url}/execute_action`, {
    method: 'POST',
    headers: { 'X-Session-API-Key': SESSION_KEY },
    body: { action: { action: 'run', args: { command } } },
  });
  expect(res.status).toBe(200);
  const body = res.json as { content: string; extras: { metadata: { exit_code: number } } };
  return { content: body.content.trim(), exitCode: body.extras.metadata.exit_code };
}

async function expectAliveAndUid(sandbox: Sandbox, uid: number): Promise<void> {
  expect(await http(`${sandbox.url}/alive`)).toEqual({ status: 200, json: { status: 'ok' } });
  expect(await runCommand(sandbox, 'id -u')).toEqual({ content: String(uid), exitCode: 0 });
}

describe.skipIf(skip !== undefined)('runtime images on the real Docker engine', () => {
  const builder = new RuntimeImageBuilder({ engine, cacheDir: config.cacheDir });
  let runtime: RuntimeImageBuildResult | undefined;

  afterAll(async () => {
    for (const id of containers) await docker('rm', '-f', '-v', id).catch(() => '');
    for (const ref of imagesToRemove) await engine.images.remove(ref, { force: true }).catch(() => false);
  });

  it('bootstraps the Debian base image, or reuses the one already there', {
    timeout: 20 * 60_000,
  }, async () => {
    const lines: string[] = [];
    const result = await bootstrapBaseImage({
      engine,
      tag: BASE,
      onProgress: (e) => {
        if (e.type === 'log') lines.push(e.line);
      },
    });
    expect(result.tag).toBe(BASE);
    expect(result.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    if (!result.cached) expect(lines.some((l) => /^\[berth-base \d+ /.test(l))).toBe(true);
    const info = await engine.images.inspect(BASE);
    expect(info.id).toBe(result.imageId);
    // What an agent expects to find (Node for the agent's own use comes from Debian too).
    const tools = 'bash python3 pip3 git curl sudo rg jq less vi ps ip node npm setpriv';
    const out = await docker(
      'run',
      '--rm',
      BASE,
      'bash',
      '-c',
      `for t in ${tools}; do command -v $t >/dev/null || echo "missing $t"; done; python3 -c 'import IPython'`,
    );
    expect(out).toBe('');
    // Idempotent: a second call reuses it.
    expect((await bootstrapBaseImage({ engine, tag: BASE })).cached).toBe(true);
  });

  it('builds the runtime image; an unchanged build is a cache hit; force rebuilds', {
    timeout: 10 * 60_000,
  }, async () => {
    const steps: ImageProgressEvent[] = [];
    const first = await builder.build({ base: BASE, onProgress: (e) => steps.push(e) });
    expect(first.tag).toMatch(/^berth-runtime:[0-9a-f]{16}$/);
    console.info(
      `runtime image ${first.tag}: ${first.cached ? 'cache hit' : 'built'} in ${first.durationMs.toFixed(0)} ms`,
    );

    const again = await builder.build({ base: BASE });
    expect(again).toMatchObject({ tag: first.tag, cached: true, imageId: first.imageId });
    console.info(`unchanged rebuild: cache hit in ${again.durationMs.toFixed(0)} ms`);

    const forced = await builder.build({ base: BASE, force: true, onProgress: (e) => steps.push(e) });
    expect(forced).toMatchObject({ tag: first.tag, cached: false });
    expect(forced.imageId).not.toBe(first.imageId);
    expect(steps.some((e) => e.type === 'step' && e.instruction.startsWith('COPY berth/bundle/'))).toBe(true);
    console.info(`forced rebuild in ${forced.durationMs.toFixed(0)} ms`);
    expect((await builder.build({ base: BASE })).imageId).toBe(forced.imageId);

    const info = await engine.images.inspect(forced.tag);
    expect(info.labels).toMatchObject({
      'berth.managed': 'true',
      'berth.kind': 'runtime-image',
      'berth.base': BASE,
      'berth.base.id': forced.baseId,
      'berth.node.version': '20.20.2',
    });
    expect(info.entrypoint).toEqual(['/berth/entrypoint.sh']);
    expect(info.env.find((e) => e.startsWith('PATH='))).toMatch(/:\/berth\/bin$/);
    runtime = forced;
  });

  it('runs the server as SANDBOX_USER_ID; agent files in the workspace belong to that user', async () => {
    expect(runtime, 'needs the runtime image from the previous test').toBeDefined();
    const workspace = mkdtempSync(join(tmpdir(), 'berth-image-test-'));
    try {
      writeFileSync(join(workspace, 'existing.txt'), 'from the host\n');
      const before = statSync(join(workspace, 'existing.txt'));
      // The workspace belongs to the host user Berth runs for; as root, play that user.
      if (process.getuid?.() === 0) chownSync(workspace, SANDBOX_UID, SANDBOX_UID);
      const sandbox = await startSandbox(runtime!.tag, SANDBOX_UID, workspace);
      await expectAliveAndUid(sandbox, SANDBOX_UID);

      const made = await runCommand(
        sandbox,
        'echo agent > /workspace/made.txt && sudo -n true && echo sudo-ok',
      );
      expect(made).toEqual({ content: 'sudo-ok', exitCode: 0 });
      expect(statSync(join(workspace, 'made.txt')).uid).toBe(SANDBOX_UID);
      // No recursive chown: what was there keeps its owner.
      expect(statSync(join(workspace, 'existing.txt')).uid).toBe(before.uid);

      // The agent's shell sees the base image's own tools first; the pinned Node is last on PATH.
      const which = await runCommand(sandbox, 'command -v node python3; echo $HOME');
      // The account is named openhands, as the reference names it.
      expect(which.content.split('\n')).toEqual(['/usr/bin/node', '/usr/bin/python3', '/home/openhands']);
    } finally {
      rmSync(workspace, { recursive: true, force: true });
    }
  });

  it('builds on a base without python, node or setpriv, with --extra-deps, and runs there', {
    timeout: 10 * 60_000,
  }, async () => {
    await engine.images.build(
      dockerfileContext(
        [
          `FROM ${BASE}`,
          'RUN apt-get purge -y --auto-remove python3-minimal libpython3.11-minimal nodejs npm >/dev/null' +
            ' && rm -f /usr/bin/setpriv && ! command -v python3 && ! command -v node',
        ].join('\n'),
      ),
      { tag: BARE_BASE, labels: { 'berth.test': 'image' } },
    );
    imagesToRemove.add(BARE_BASE);
    const built = await builder.build({
      base: BARE_BASE,
      extraDeps: 'echo "installed by extra deps" > /opt/extra-deps',
    });
    imagesToRemove.add(built.tag);
    expect(built.tag).not.toBe(runtime?.tag);

    const uid = 4321;
    const sandbox = await startSandbox(built.tag, uid);
    await expectAliveAndUid(sandbox, uid);
    expect(await runCommand(sandbox, 'cat /opt/extra-deps')).toEqual({
      content: 'installed by extra deps',
      exitCode: 0,
    });
    // Without a node of its own, the agent's shell finds the pinned one at the end of PATH.
    expect((await runCommand(sandbox, 'command -v python3 || echo none; command -v node')).content).toBe(
      'none\n/berth/bin/node',
    );
  });

  it('reuses the account a base already has for the uid', { timeout: 10 * 60_000 }, async () => {
    await engine.images.build(
      dockerfileContext(
        [`FROM ${BASE}`, 'RUN groupadd -g 1000 dev && useradd -m -u 1000 -g 1000 -s /bin/bash dev'].join(
          '\n',
        ),
      ),
      { tag: UID1000_BASE, labels: { 'berth.test': 'image' } },
    );
    imagesToRemove.add(UID1000_BASE);
    const built = await builder.build({ base: UID1000_BASE });
    imagesToRemove.add(built.tag);
    const sandbox = await startSandbox(built.tag, 1000);
    await expectAliveAndUid(sandbox, 1000);
    expect((await runCommand(sandbox, 'whoami; echo $HOME; sudo -n whoami')).content).toBe(
      'dev\n/home/dev\nroot',
    );
    // ... with the sandbox user's name added for the same uid and gid, so `chown openhands` works.
    expect((await runCommand(sandbox, 'id -u openhands; getent group openhands | cut -d: -f3')).content).toBe(
      '1000\n1000',
    );
  });

  it('rejects a musl-based (Alpine-like) base with a clear error', async () => {
    // An Alpine-shaped root filesystem: musl's loader and no glibc. Nothing in it ever runs.
    const muslArch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
    const p = pack();
    p.entry({ name: 'bin/', type: 'directory', mode: 0o755 });
    p.entry({ name: 'bin/sh', mode: 0o755 }, '#!/nonexistent\n');
    p.entry({ name: 'lib/', type: 'directory', mode: 0o755 });
    p.entry({ name: `lib/ld-musl-${muslArch}.so.1`, mode: 0o755 }, 'not really musl\n');
    p.entry({ name: 'etc/', type: 'directory', mode: 0o755 });
    p.entry({ name: 'etc/alpine-release' }, '3.20.0\n');
    p.finalize();
    await engine.images.importTarball(p as unknown as Readable, {
      tag: MUSL_BASE,
      changes: ['CMD ["/bin/sh"]'],
    });
    imagesToRemove.add(MUSL_BASE);

    const err = await builder.build({ base: MUSL_BASE }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).code).toBe('VALIDATION_FAILED');
    expect((err as BerthError).message).toContain('musl-based images are not supported: Berth needs glibc');
  });

  it('reports a missing base image without pulling it', async () => {
    const err = await builder.build({ base: 'berth-test-base:does-not-exist' }).catch((e: unknown) => e);
    expect((err as BerthError).code).toBe('NOT_FOUND');
    expect((err as BerthError).message).toContain('never pulls');
  });

  it('fails a broken --extra-deps step with that step and its output', { timeout: 5 * 60_000 }, async () => {
    const err = await builder
      .build({ base: BASE, extraDeps: 'echo "extra-deps says: something is off"; exit 3' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    const message = (err as BerthError).message;
    expect(message).toMatch(/image build failed at step 3\/\d+ \(RUN \["\/bin\/sh", "-c"/);
    expect(message).toContain('extra-deps says: something is off');
    expect(message).toContain('non-zero code: 3');
  });
});

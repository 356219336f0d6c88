/**
 * A restart of dockerd under a running control plane, on the real engine. With live-restore (what
 * scripts/setup.sh configures) the sandbox keeps running, its shell state included, and the control
 * plane's event stream comes back by itself; without it, dockerd stops the container, the control
 * plane notices, and the next action starts it again with its files. Runs alone, after every other
 * suite (vitest.disruptive.config.ts), because it takes the engine away from everyone for seconds.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { api, startInProcess } from '../integration/control-plane-helpers.js';
import { engineAvailable } from '../integration/docker-target.js';

const DAEMON_JSON = '/etc/docker/daemon.json';

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'restarting dockerd needs root';
  if (!existsSync('/var/run/docker.pid') && !systemdDocker())
    return 'no dockerd pid file and no systemd unit';
  return undefined;
}

function systemdDocker(): boolean {
  return spawnSync('systemctl', ['is-active', 'docker'], { encoding: 'utf8' }).stdout?.trim() === 'active';
}

const engineDown = await engineAvailable();
const reason = engineDown ?? whyNot();
if (reason) console.warn(`SKIPPED: dockerd restart suite (${reason})`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function engineAnswers(): boolean {
  return spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 5_000 }).status === 0;
}

function liveRestore(): boolean {
  return (
    spawnSync('docker', ['info', '--format', '{{.LiveRestoreEnabled}}'], {
      encoding: 'utf8',
    }).stdout.trim() === 'true'
  );
}

function setLiveRestore(on: boolean): void {
  const conf = existsSync(DAEMON_JSON) ? JSON.parse(readFileSync(DAEMON_JSON, 'utf8') || '{}') : {};
  conf['live-restore'] = on;
  writeFileSync(DAEMON_JSON, `${JSON.stringify(conf, null, 2)}\n`);
}

/** Stops dockerd and starts it again the way it was started (systemd, or as scripts/setup.sh does). */
async function restartDockerd(): Promise<void> {
  if (systemdDocker()) execFileSync('systemctl', ['restart', 'docker']);
  else {
    const pid = Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 600 && existsSync(`/proc/${pid}`); i++) await sleep(50);
    const log = openSync('/tmp/berth-dockerd.log', 'a');
    spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] }).unref();
  }
  for (let i = 0; i < 120 && !engineAnswers(); i++) await sleep(500);
  expect(engineAnswers()).toBe(true);
}

describe.skipIf(reason !== undefined)('dockerd restarts', () => {
  let cp: RunningControlPlane & { apiKey: string };
  const liveRestoreBefore = reason ? true : liveRestore();
  const call = (method: string, path: string, body?: unknown) => api(cp.url, cp.apiKey, method, path, body);
  const run = (id: string, command: string) =>
    call('POST', `/api/sandboxes/${id}/execute_action`, {
      action: { action: 'run', args: { command }, timeout: 30 },
    });
  const waitFor = async (id: string, state: string) => {
    let last: any;
    for (let i = 0; i < 300; i++) {
      last = (await call('GET', `/api/sandboxes/${id}`)).json;
      if (last.state === state) break;
      await sleep(100);
    }
    expect(last.state).toBe(state);
    return last;
  };

  beforeAll(async () => {
    cp = await startInProcess({ poolSize: 0 });
  });
  afterAll(async () => {
    if (!reason && liveRestore() !== liveRestoreBefore) {
      setLiveRestore(liveRestoreBefore);
      execFileSync('kill', ['-HUP', readFileSync('/var/run/docker.pid', 'utf8').trim()]);
    }
    if (!cp) return;
    for (const s of cp.manager.list({})) await cp.manager.delete(s.id).catch(() => undefined);
    await cp.close();
    await cp.manager['runtime'].reap(new Set());
  });

  it('with live-restore: the sandbox keeps running, shell state and all, and events are followed again', async () => {
    if (!liveRestore()) {
      setLiveRestore(true);
      execFileSync('kill', ['-HUP', readFileSync('/var/run/docker.pid', 'utf8').trim()]);
      for (let i = 0; i < 40 && !liveRestore(); i++) await sleep(250);
    }
    expect(liveRestore()).toBe(true);
    const s = (await call('POST', '/api/sandboxes', {})).json;
    expect((await run(s.id, 'cd /tmp && export KEPT=yes')).status).toBe(200);
    await restartDockerd();
    expect((await call('GET', `/api/sandboxes/${s.id}`)).json.state).toBe('running');
    const after = await run(s.id, 'echo "$PWD $KEPT"');
    expect(after.status).toBe(200);
    expect(after.json.content).toBe('/tmp yes');
    // The control plane follows the new engine's events: an outside pause shows.
    execFileSync('docker', ['pause', `berth-sandbox-${s.id}`]);
    await waitFor(s.id, 'paused');
    execFileSync('docker', ['unpause', `berth-sandbox-${s.id}`]);
    await waitFor(s.id, 'running');
  });

  it('without live-restore: the sandbox is noticed exited and comes back on the next action, files kept', async () => {
    setLiveRestore(false);
    execFileSync('kill', ['-HUP', readFileSync('/var/run/docker.pid', 'utf8').trim()]);
    for (let i = 0; i < 40 && liveRestore(); i++) await sleep(250);
    expect(liveRestore()).toBe(false);
    const s = (await call('POST', '/api/sandboxes', {})).json;
    expect((await run(s.id, 'echo kept > /tmp/file')).status).toBe(200);
    await restartDockerd();
    // Noticed: the exit is in the log (the container's restart policy may already have started it).
    let events: string[] = [];
    for (let i = 0; i < 300 && !events.some((e) => e.startsWith('exited')); i++) {
      events = (await call('GET', `/api/sandboxes/${s.id}/events?limit=1000`)).json.events
        .filter((e: any) => e.kind === 'lifecycle')
        .map((e: any) => e.payload.event as string);
      await sleep(100);
    }
    expect(events).toContain('exited');
    const again = await run(s.id, 'cat /tmp/file');
    expect(again.status).toBe(200);
    expect(again.json.content).toBe('kept');
    expect((await call('GET', `/api/sandboxes/${s.id}`)).json.state).toBe('running');
  });
});

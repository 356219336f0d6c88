/**
 * Who agents run as, through a real control plane running as root (as scripts/up.sh runs it) with
 * SANDBOX_USER_ID unset: the workspace owner's uid and gid, 1000 without a workspace, a clear 409 for
 * a root-owned workspace, root only when the operator sets SANDBOX_USER_ID=0; the account is named
 * openhands, so `sudo chown -R openhands:root .` works; files every action makes belong to that user.
 */
import { chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { api, startInProcess } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const unavailable =
  (await engineAvailable()) ??
  (process.getuid?.() === 0 ? undefined : 'needs a control plane running as root');

type Cp = RunningControlPlane & { apiKey: string };

function workspaceOwnedBy(root: string, name: string, uid: number, gid: number): string {
  const dir = join(root, name);
  mkdirSync(dir);
  chownSync(dir, uid, gid);
  return dir;
}

async function create(cp: Cp, body: unknown) {
  return api(cp.url, cp.apiKey, 'POST', '/api/sandboxes', body);
}

async function run(cp: Cp, id: string, command: string): Promise<{ out: string; code: number }> {
  const res = await api(cp.url, cp.apiKey, 'POST', `/api/sandboxes/${id}/execute_action`, {
    action: { action: 'run', args: { command, blocking: true }, timeout: 60 },
  });
  expect(res.status, res.text).toBe(200);
  return { out: res.json.content, code: res.json.extras.metadata.exit_code };
}

async function closeAll(cp: Cp | undefined): Promise<void> {
  if (!cp) return;
  for (const r of cp.manager.list({})) await cp.manager.delete(r.id).catch(() => undefined);
  await cp.close();
}

describe.skipIf(unavailable !== undefined)(
  'the sandbox user under a root Berth, SANDBOX_USER_ID unset',
  {
    timeout: 120_000,
  },
  () => {
    let cp: Cp;
    let root: string;

    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), 'berth-user-'));
      cp = await startInProcess({ env: { SANDBOX_USER_ID: '', BERTH_ALLOWED_MOUNT_ROOTS: root } });
      expect(cp.manager['settings'].userId).toBeNull();
    });
    afterAll(async () => {
      await closeAll(cp);
      if (root) rmSync(root, { recursive: true, force: true });
    });

    it("takes the workspace owner's uid and gid; files every action makes belong to them on the host", async () => {
      const ws = workspaceOwnedBy(root, 'owned', 1234, 2345);
      const created = await create(cp, { workspace: ws });
      expect(created.status, created.text).toBe(201);
      const id = created.json.id as string;
      expect((await run(cp, id, 'id -u; id -g; whoami')).out).toBe('1234\n2345\nopenhands');

      await run(cp, id, "echo s > shell.txt && mkdir dir && python3 -c \"open('py.txt', 'w')\"");
      const act = (action: string, args: Record<string, unknown>) =>
        api(cp.url, cp.apiKey, 'POST', `/api/sandboxes/${id}/execute_action`, { action: { action, args } });
      expect((await act('write', { path: '/workspace/write.txt', content: 'w' })).status).toBe(200);
      expect(
        (await act('edit', { command: 'create', path: '/workspace/edit.txt', file_text: 'e' })).status,
      ).toBe(200);
      for (const f of ['shell.txt', 'dir', 'py.txt', 'write.txt', 'edit.txt']) {
        const st = lstatSync(join(ws, f));
        expect({ f, uid: st.uid, gid: st.gid }).toEqual({ f, uid: 1234, gid: 2345 });
      }

      // The account is named openhands, as the reference names it: scripts that chown to it work.
      const chown = await run(cp, id, 'sudo chown -R openhands:root . && stat -c "%U:%G" write.txt');
      expect(chown).toEqual({ out: 'openhands:root', code: 0 });
      for (const f of ['.', 'shell.txt', 'dir', 'write.txt']) {
        const st = lstatSync(join(ws, f));
        expect({ f, uid: st.uid, gid: st.gid }).toEqual({ f, uid: 1234, gid: 0 });
      }
    });

    it('refuses a root-owned workspace with a 409 that says how to choose, and makes nothing', async () => {
      const ws = workspaceOwnedBy(root, 'root-owned', 0, 0);
      const before = cp.manager.list({}).length;
      const res = await create(cp, { workspace: ws });
      expect(res.status).toBe(409);
      expect(res.json.code).toBe('CONFLICT');
      expect(res.json.message).toContain('belongs to root');
      expect(res.json.message).toContain(`chown 1000:1000 ${ws}`);
      expect(res.json.message).toContain('SANDBOX_USER_ID');
      expect(res.json.details).toMatchObject({ rule: 'sandbox.user_id', workspace: ws });
      expect(cp.manager.list({}).length).toBe(before);
    });

    it('runs a sandbox without a workspace as 1000', async () => {
      const created = await create(cp, {});
      expect(created.status, created.text).toBe(201);
      expect((await run(cp, created.json.id, 'id -u; id -g; whoami')).out).toBe('1000\n1000\nopenhands');
    });
  },
);

describe.skipIf(unavailable !== undefined)(
  'SANDBOX_USER_ID=0: root, because the operator asked',
  {
    timeout: 120_000,
  },
  () => {
    let cp: Cp;
    let root: string;
    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), 'berth-user-'));
      cp = await startInProcess({ env: { SANDBOX_USER_ID: '0', BERTH_ALLOWED_MOUNT_ROOTS: root } });
    });
    afterAll(async () => {
      await closeAll(cp);
      if (root) rmSync(root, { recursive: true, force: true });
    });

    it('runs agents as root, also with a root-owned workspace', async () => {
      const ws = workspaceOwnedBy(root, 'root-owned', 0, 0);
      const created = await create(cp, { workspace: ws });
      expect(created.status, created.text).toBe(201);
      expect((await run(cp, created.json.id, 'id -u; touch made')).out).toBe('0');
      expect(lstatSync(join(ws, 'made')).uid).toBe(0);
    });
  },
);

describe.skipIf(unavailable !== undefined)(
  'the user a create request chooses (as OpenHands does with --username/--user-id)',
  {
    timeout: 120_000,
  },
  () => {
    let cp: Cp;
    let root: string;
    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), 'berth-user-'));
      cp = await startInProcess({ env: { SANDBOX_USER_ID: '', BERTH_ALLOWED_MOUNT_ROOTS: root } });
    });
    afterAll(async () => {
      await closeAll(cp);
      if (root) rmSync(root, { recursive: true, force: true });
    });

    it('runs as the chosen name and uid; sudo chown to that name and git work; host files belong to that uid', async () => {
      const ws = workspaceOwnedBy(root, 'chosen', 4242, 4242);
      const created = await create(cp, { workspace: ws, user: { name: 'agent', uid: 4242 } });
      expect(created.status, created.text).toBe(201);
      const id = created.json.id as string;
      expect((await run(cp, id, 'id -u; id -g; whoami; echo "$HOME"')).out).toBe(
        '4242\n4242\nagent\n/home/agent',
      );
      const git = await run(
        cp,
        id,
        'git init -q repo && cd repo && echo x > f && git add f && git -c user.name=a -c user.email=a@example.com commit -qm first && git log --format=%s',
      );
      expect(git).toEqual({ out: 'first', code: 0 });
      expect(lstatSync(join(ws, 'repo/f')).uid).toBe(4242);
      const chown = await run(
        cp,
        id,
        'cd /workspace && sudo chown -R agent:root . && stat -c "%U:%G" repo/f',
      );
      expect(chown).toEqual({ out: 'agent:root', code: 0 });
      expect(lstatSync(join(ws, 'repo/f'))).toMatchObject({ uid: 4242, gid: 0 });
    });

    it('takes a uid alone (named openhands), and root when asked for uid 0', async () => {
      const byUid = await create(cp, { user: { uid: 1500 } });
      expect(byUid.status, byUid.text).toBe(201);
      expect((await run(cp, byUid.json.id, 'id -u; whoami')).out).toBe('1500\nopenhands');
      const asRoot = await create(cp, { user: { uid: 0 } });
      expect(asRoot.status, asRoot.text).toBe(201);
      expect((await run(cp, asRoot.json.id, 'id -u; whoami')).out).toBe('0\nroot');
      const byName = await create(cp, { user: { name: 'root' } });
      expect(byName.status, byName.text).toBe(201);
      expect((await run(cp, byName.json.id, 'id -u')).out).toBe('0');
    });

    it('refuses a user that contradicts itself or is not a user name, before anything is made', async () => {
      const before = cp.manager.list({}).length;
      for (const user of [
        { name: 'root', uid: 5 },
        { name: 'openhands', uid: 0 },
        { name: 'Bad Name' },
        { uid: -1 },
      ]) {
        const res = await create(cp, { user });
        expect(res.status, JSON.stringify(user)).toBe(400);
        expect(res.json.code).toBe('VALIDATION_FAILED');
      }
      expect(cp.manager.list({}).length).toBe(before);
    });
  },
);

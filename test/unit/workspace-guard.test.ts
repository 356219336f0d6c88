/** The pieces of the workspace guard that need no engine: the seccomp profile's shape, the capability set, mountinfo parsing. */
import { describe, expect, it } from 'vitest';
import { containerCreateOptions, SANDBOX_CAPABILITIES } from '../../src/docker/container-spec.js';
import { idmappedMountPoints } from '../../src/docker/idmapped-mounts.js';
import { sandboxSeccompProfile } from '../../src/docker/seccomp.js';
import type { SandboxSpec } from '../../src/sandboxes/types.js';

const spec: SandboxSpec = {
  id: 'abc',
  image: 'img',
  workspaceHostPath: '/home/me/project',
  workspaceMountPathInSandbox: '/workspace',
  mounts: [],
  userId: 1234,
  groupId: 2345,
  userName: 'openhands',
  bindingAddress: '127.0.0.1',
  network: { mode: 'isolated' },
  env: {},
  limits: {},
  labels: {},
  startTimeoutMs: 1000,
  sessionApiKey: 'k',
};

describe('the seccomp profile', () => {
  const profile = sandboxSeccompProfile();
  const rulesFor = (name: string) => profile.syscalls.filter((r) => r.names.includes(name));

  it('allows by default and never puts two conditions on one argument (libseccomp 2.5 mis-combines them)', () => {
    expect(profile.defaultAction).toBe('SCMP_ACT_ALLOW');
    for (const r of profile.syscalls) {
      const indexes = (r.args ?? []).map((a) => a.index);
      expect(new Set(indexes).size, r.names.join(',')).toBe(indexes.length);
      expect(r.comment.length, r.names.join(',')).toBeGreaterThan(10);
    }
  });

  it('skips chmods that ask for setuid or setgid, and refuses them in the mode of new files', () => {
    for (const name of ['chmod', 'fchmod', 'fchmodat', 'fchmodat2']) {
      const masks = rulesFor(name).map((r) => [r.errnoRet, r.args?.[0]?.value]);
      expect(masks, name).toEqual(
        expect.arrayContaining([
          [0, 0o4000],
          [0, 0o2000],
        ]),
      );
    }
    for (const [name, index] of [
      ['open', 2],
      ['openat', 3],
      ['creat', 1],
      ['mkdir', 1],
      ['mkdirat', 2],
      ['mknod', 1],
      ['mknodat', 2],
    ] as const) {
      const masks = rulesFor(name)
        .filter((r) => r.args?.[0]?.value === 0o4000 || r.args?.[0]?.value === 0o2000)
        .map((r) => [r.errnoRet, r.args?.[0]?.index]);
      expect(masks, name).toEqual([
        [1, index],
        [1, index],
      ]);
    }
    expect(rulesFor('openat2')[0]?.errnoRet).toBe(38);
    expect(rulesFor('clone3')[0]?.errnoRet).toBe(38);
    expect(rulesFor('io_uring_setup')[0]?.errnoRet).toBe(1);
  });

  it('is in every sandbox container, which keeps neither SETFCAP nor MKNOD', () => {
    const o = containerCreateOptions(spec, { runtime: 1, app: [] });
    expect(o.HostConfig?.SecurityOpt?.[0]).toMatch(/^seccomp=\{/);
    expect(SANDBOX_CAPABILITIES).not.toContain('SETFCAP');
    expect(SANDBOX_CAPABILITIES).not.toContain('MKNOD');
    expect(o.Env).toEqual(
      expect.arrayContaining([
        'SANDBOX_USER_ID=1234',
        'SANDBOX_GROUP_ID=2345',
        'SANDBOX_USER_NAME=openhands',
      ]),
    );
  });
});

describe('the workspace bind', () => {
  it('binds the idmapped view as a Mount (never made up when missing) and labels it', () => {
    const o = containerCreateOptions(spec, { runtime: 1, app: [] }, '/data/idmapped/abc');
    expect(o.HostConfig?.Binds).toEqual([]);
    expect(o.HostConfig?.Mounts).toEqual([
      { Type: 'bind', Source: '/data/idmapped/abc', Target: '/workspace', ReadOnly: false },
    ]);
    expect(o.Labels).toMatchObject({
      'berth.sandbox.workspace': '/home/me/project',
      'berth.sandbox.workspace-idmap': '1234',
    });
    const plain = containerCreateOptions(spec, { runtime: 1, app: [] });
    expect(plain.HostConfig?.Binds).toEqual(['/home/me/project:/workspace:rw']);
    expect(plain.Labels?.['berth.sandbox.workspace-idmap']).toBeUndefined();
  });

  it('reads idmapped mount points from mountinfo, escapes included', () => {
    const info = [
      '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
      '53 27 254:0 /tmp/ws /data/idmapped/a\\040b rw,nosuid,nodev,relatime,idmapped - ext4 /dev/vda rw',
      '54 27 254:0 /tmp/ws2 /data/plain rw,relatime - ext4 /dev/vda rw',
    ].join('\n');
    const points = idmappedMountPoints(info);
    expect(points.get('/data/idmapped/a b')).toBe(true);
    expect(points.get('/data/plain')).toBe(false);
    expect(points.get('/')).toBe(false);
  });
});

/**
 * The disk-limit decision without an engine: which drivers can take a size, which engine messages mean
 * "this driver cannot", the warning said once, `require` refusing, and btrfs counting the image.
 */

import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadControlPlaneConfig } from '../../src/config/control-plane.js';
import { containerCreateOptions } from '../../src/docker/container-spec.js';
import { DiskLimits, refusesStorageOpt, storageSupport } from '../../src/docker/disk-limit.js';
import { BerthError, ErrorCode } from '../../src/protocol/errors.js';
import type { SandboxSpec } from '../../src/sandboxes/types.js';

function spec(diskMb?: number): SandboxSpec {
  return {
    id: 'sbx1',
    image: 'img',
    workspaceMountPathInSandbox: '/workspace',
    mounts: [],
    userId: 1000,
    bindingAddress: '127.0.0.1',
    network: { mode: 'isolated' },
    env: {},
    limits: { cpus: 1, memoryMb: 512, pids: 256, diskMb },
    labels: {},
    startTimeoutMs: 1000,
    sessionApiKey: 'k',
  };
}

function capture() {
  const lines: Array<{ level: number; msg: string; reason?: string }> = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { logger, lines };
}

function engine(driver: string, backingFilesystem?: string, imageBytes = 698 * 2 ** 20) {
  return {
    storage: async () => ({ driver, backingFilesystem }),
    images: { inspect: async () => ({ sizeBytes: imageBytes }) },
  };
}

describe('storageSupport', () => {
  it('rules out overlay2 on ext4 and names the drivers that limit', () => {
    const s = storageSupport({ driver: 'overlay2', backingFilesystem: 'extfs' });
    expect(s.kind).toBe('cannot');
    expect(s.kind === 'cannot' && s.reason).toMatch(/overlay2 on extfs.*xfs mounted with pquota, btrfs, zfs/);
    expect(storageSupport({ driver: 'overlay2', backingFilesystem: 'xfs' })).toEqual({
      kind: 'maybe',
      countsImage: false,
    });
    expect(storageSupport({ driver: 'btrfs' })).toEqual({ kind: 'limits', countsImage: true });
    expect(storageSupport({ driver: 'fuse-overlayfs' }).kind).toBe('cannot');
    expect(storageSupport({ driver: 'something-new' }).kind).toBe('maybe');
  });

  it("recognises the engine's refusals, and not other errors", () => {
    expect(
      refusesStorageOpt(
        "start container x: --storage-opt is supported only for overlay over xfs with 'pquota' mount option",
      ),
    ).toBe(true);
    expect(refusesStorageOpt('Filesystem does not support, or has not enabled quotas')).toBe(true);
    expect(refusesStorageOpt('--storage-opt is not supported for aufs')).toBe(true);
    expect(refusesStorageOpt('Storage option size not supported')).toBe(true);
    expect(refusesStorageOpt('Failed to limit qgroup for &{}: disk quota exceeded')).toBe(false);
    expect(refusesStorageOpt('Bind for 127.0.0.1:31000 failed: port is already allocated')).toBe(false);
  });
});

describe('DiskLimits', () => {
  it('on overlay2/ext4: leaves the option out and warns once', async () => {
    const { logger, lines } = capture();
    const d = new DiskLimits(engine('overlay2', 'extfs'), 'auto', logger);
    for (let i = 0; i < 3; i++) {
      const hc: { StorageOpt?: Record<string, string> } = { StorageOpt: { size: '64M' } };
      await d.apply(spec(64), hc);
      expect(hc.StorageOpt).toBeUndefined();
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]?.msg).toMatch(/sandbox disks are not limited/);
    expect(lines[0]?.reason).toMatch(/overlay2 on extfs/);
  });

  it('require: refuses with UNAVAILABLE and says why', async () => {
    const d = new DiskLimits(engine('overlay2', 'extfs'), 'require', capture().logger);
    const err = await d.apply(spec(64), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).code).toBe(ErrorCode.UNAVAILABLE);
    expect((err as Error).message).toMatch(/sandbox.disk_limit = "require".*overlay2 on extfs/);
  });

  it('no limit asked: no option, no warning', async () => {
    const { logger, lines } = capture();
    const hc: { StorageOpt?: Record<string, string> } = {};
    await new DiskLimits(engine('overlay2', 'extfs'), 'require', logger).apply(spec(undefined), hc);
    expect(hc.StorageOpt).toBeUndefined();
    expect(lines).toHaveLength(0);
  });

  it('overlay2 on xfs: keeps the size; a refusal at create is remembered and warned about once', async () => {
    const { logger, lines } = capture();
    const d = new DiskLimits(engine('overlay2', 'xfs'), 'auto', logger);
    const hc: { StorageOpt?: Record<string, string> } = {};
    await d.apply(spec(64), hc);
    expect(hc.StorageOpt).toEqual({ size: '64M' });
    const refusal = new Error(
      "start container: --storage-opt is supported only for overlay over xfs with 'pquota' mount option",
    );
    expect(d.refused(spec(64), refusal)).toBe(true);
    expect(d.refused(spec(64), new Error('no such image'))).toBe(false);
    const again: { StorageOpt?: Record<string, string> } = { StorageOpt: { size: '64M' } };
    await d.apply(spec(64), again);
    expect(again.StorageOpt).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]?.reason).toMatch(/pquota/);
  });

  it("btrfs: adds the image's size with a margin (its qgroup counts the image)", async () => {
    const d = new DiskLimits(engine('btrfs', undefined, 698 * 2 ** 20), 'auto', capture().logger);
    const hc: { StorageOpt?: Record<string, string> } = {};
    await d.apply(spec(64), hc);
    expect(hc.StorageOpt).toEqual({ size: `${64 + Math.ceil(698 * 1.1)}M` });
  });
});

const loadConfig = (env: NodeJS.ProcessEnv) =>
  loadControlPlaneConfig({ env: { HOME: tmpdir(), ...env }, flags: {}, cwd: tmpdir() });

describe('configuration and create options', () => {
  it('defaults to 10240 MiB, auto; 0 turns it off; bad values are refused clearly', () => {
    const c = loadConfig({});
    expect(c.sandbox.disk_mb).toBe(10240);
    expect(c.sandbox.disk_limit).toBe('auto');
    expect(loadConfig({ BERTH_SANDBOX_DISK_MB: '0' }).sandbox.disk_mb).toBe(0);
    for (const bad of ['10', '-1', 'lots', '1.5']) {
      expect(() => loadConfig({ BERTH_SANDBOX_DISK_MB: bad })).toThrow(
        /BERTH_SANDBOX_DISK_MB.*0 \(no limit\) or an integer of at least 64/s,
      );
    }
    expect(() => loadConfig({ BERTH_SANDBOX_DISK_LIMIT: 'maybe' })).toThrow(/one of auto, require/);
  });

  it('puts StorageOpt size in MiB into HostConfig', () => {
    expect(containerCreateOptions(spec(64), { runtime: 1, app: [] }).HostConfig?.StorageOpt).toEqual({
      size: '64M',
    });
    expect(
      containerCreateOptions(spec(undefined), { runtime: 1, app: [] }).HostConfig?.StorageOpt,
    ).toBeUndefined();
  });
});

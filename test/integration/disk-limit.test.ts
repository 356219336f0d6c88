/**
 * The disk limit on this machine's own engine (overlay2 on ext4, which cannot limit a writable layer):
 * sandboxes with the default limit still start, created without the option, and the log says so once;
 * with sandbox.disk_limit = "require" they are refused, and nothing is left behind. The supported path
 * (a private dockerd on xfs+pquota or btrfs) is in disk-limit-private-engine.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerName } from '../../src/docker/container-spec.js';
import type { DockerodeEngine } from '../../src/docker/engine.js';
import { PortAllocator } from '../../src/docker/ports.js';
import { DockerSandboxRuntime } from '../../src/docker/sandbox-runtime.js';
import { engine, engineAvailable, portLockDir, specFor } from './docker-target.js';

const unavailable = await engineAvailable();
const storage = unavailable ? undefined : await engine.storage();
const limitsNothing =
  storage &&
  (storage.driver === 'overlay2' || storage.driver === 'overlay') &&
  storage.backingFilesystem !== 'xfs';
const skipReason = unavailable
  ? `no Docker engine: ${unavailable}`
  : !limitsNothing
    ? `this engine's storage driver (${storage?.driver} on ${storage?.backingFilesystem}) may limit disks; this file is about one that cannot`
    : undefined;
if (skipReason) console.warn(`SKIPPED: disk limit on an engine that cannot (${skipReason})`);

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
}

function runtimeWith(mode: 'auto' | 'require', withEngine: DockerodeEngine = engine) {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s) as LogLine) });
  const runtime = new DockerSandboxRuntime({
    engine: withEngine,
    ports: new PortAllocator({
      lockDir: portLockDir,
      bindHost: '127.0.0.1',
    }),
    logger,
    owner: `test-disk-${randomBytes(4).toString('hex')}`,
    reach: { kind: 'host-ports' },
    diskLimit: mode,
  });
  return { runtime, lines };
}

describe.skipIf(skipReason !== undefined)(
  `disk limit on ${storage?.driver}/${storage?.backingFilesystem} (cannot limit)`,
  () => {
    const auto = runtimeWith('auto');
    const started: string[] = [];

    beforeAll(async () => {
      // Cached after the first build in this run.
      await specFor();
    });

    afterAll(async () => {
      for (const id of started) await auto.runtime.remove(id).catch(() => undefined);
    });

    it('starts sandboxes with the default 10240 MiB limit, without StorageOpt, and warns once', async () => {
      for (let i = 0; i < 2; i++) {
        const spec = await specFor({ limits: { cpus: 1, memoryMb: 1024, pids: 512, diskMb: 10240 } });
        started.push(spec.id);
        const ep = await auto.runtime.start(spec);
        const alive = await fetch(`${ep.url}/alive`);
        expect(alive.status).toBe(200);
        const inspected = await engine.docker.getContainer(containerName(spec.id)).inspect();
        expect(inspected.HostConfig.StorageOpt ?? undefined).toBeUndefined();
      }
      const warnings = auto.lines.filter((l) => /sandbox disks are not limited/.test(l.msg));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.reason).toMatch(/overlay2 on extfs, not on xfs with pquota/);
      console.log(
        `disk limit on ${storage?.driver}/${storage?.backingFilesystem}: warned once: ${warnings[0]?.reason}`,
      );
    });

    it("the engine's own refusal at create (info claiming xfs): created again without the option, warned once", async () => {
      // docker info says nothing about pquota, so on xfs the first create decides; here the real engine refuses.
      const lying = Object.assign(Object.create(engine) as DockerodeEngine, {
        storage: async () => ({ driver: 'overlay2', backingFilesystem: 'xfs' }),
      });
      const probe = runtimeWith('auto', lying);
      const ids: string[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          const spec = await specFor({ limits: { cpus: 1, memoryMb: 1024, pids: 512, diskMb: 256 } });
          ids.push(spec.id);
          await probe.runtime.start(spec);
          const inspected = await engine.docker.getContainer(containerName(spec.id)).inspect();
          expect(inspected.HostConfig.StorageOpt ?? undefined).toBeUndefined();
        }
      } finally {
        for (const id of ids) await probe.runtime.remove(id).catch(() => undefined);
      }
      const warnings = probe.lines.filter((l) => /sandbox disks are not limited/.test(l.msg));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.reason).toMatch(
        /the engine refused the size option: --storage-opt is supported only for overlay over xfs with 'pquota' mount option/,
      );
    });

    it('require: refuses the sandbox with a clear error and leaves no container', async () => {
      const strict = runtimeWith('require');
      const spec = await specFor({ limits: { cpus: 1, memoryMb: 1024, pids: 512, diskMb: 10240 } });
      await expect(strict.runtime.start(spec)).rejects.toThrow(
        /needs a disk limit \(sandbox.disk_limit = "require"\) and the Docker engine cannot set one: the storage driver is overlay2 on extfs/,
      );
      expect(await engine.containers.find(containerName(spec.id))).toBeUndefined();
    });

    it('no limit (disk_mb 0): no option, no warning', async () => {
      const quiet = runtimeWith('require');
      const spec = await specFor({ limits: { cpus: 1, memoryMb: 1024, pids: 512 } });
      try {
        await quiet.runtime.start(spec);
        expect(quiet.lines).toHaveLength(0);
      } finally {
        await quiet.runtime.remove(spec.id).catch(() => undefined);
      }
    });
  },
);

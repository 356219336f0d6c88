/**
 * The per-sandbox disk limit (limits.disk_mb, sandbox.disk_mb): a size for the container's writable
 * layer, passed to the engine as HostConfig.StorageOpt {size}. Only some storage drivers take it, and
 * the engine refuses the create outright where its driver cannot. So, once per engine: `docker info`
 * names the driver and its backing filesystem, which rules out the drivers that never limit (overlay2
 * on ext4, the common case); where it may work, the first create with the option decides (overlay2 on
 * xfs also needs the `pquota` mount option, which info does not show). Where it cannot, sandboxes are
 * created without the option and the log says so once; with `require`, they are not created at all.
 *
 * What each driver limits:
 * - overlay2 (and vfs) on xfs mounted with pquota, zfs: the writable layer itself (an xfs project quota
 *   on the upper directory; a quota on the container's clone).
 * - btrfs: a qgroup limit on the container's subvolume, which counts the image it was snapshotted from
 *   too (tested: a 64 MiB size on a 698 MiB image is refused at create with "disk quota exceeded"). The
 *   image's size is added, with a margin for the metadata btrfs counts besides (740.7 MiB referenced for
 *   that image), so at least disk_mb can be written.
 * - devicemapper: the size of the container's whole root device, image included; the image's size is
 *   added as on btrfs. (Not tried; Docker 20.10 deprecates the driver.)
 */
import type { Logger } from 'pino';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { SandboxSpec } from '../sandboxes/types.js';
import type { EngineStorage } from './engine.js';

export type DiskLimitMode = 'auto' | 'require';

/** What `docker info` says about the driver: limits, cannot, or only a create can tell. */
export type StorageSupport =
  | { kind: 'limits'; countsImage: boolean }
  | { kind: 'maybe'; countsImage: boolean }
  | { kind: 'cannot'; reason: string };

/** btrfs counts ~6% more than Docker's image size (metadata); this much is added on top of it. */
const IMAGE_MARGIN = 0.1;

const HOW_TO =
  "Docker limits a container's writable layer only with overlay2 on xfs mounted with pquota, btrfs, zfs or devicemapper";

export function storageSupport(s: EngineStorage): StorageSupport {
  const backing = s.backingFilesystem;
  switch (s.driver) {
    case 'overlay2':
    case 'overlay':
    case 'vfs':
      if (backing === 'xfs') return { kind: 'maybe', countsImage: false };
      return {
        kind: 'cannot',
        reason: `the storage driver is ${s.driver} on ${backing ?? 'a filesystem Docker does not name'}, not on xfs with pquota (${HOW_TO})`,
      };
    case 'btrfs':
      return { kind: 'limits', countsImage: true };
    case 'zfs':
      return { kind: 'maybe', countsImage: false };
    case 'devicemapper':
      return { kind: 'maybe', countsImage: true };
    case 'aufs':
    case 'fuse-overlayfs':
      return { kind: 'cannot', reason: `the storage driver ${s.driver} takes no size (${HOW_TO})` };
    default:
      return { kind: 'maybe', countsImage: false };
  }
}

/**
 * Whether a create failed because the storage driver takes no size option. The engine's words, by
 * driver: overlay2 "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
 * vfs "Filesystem does not support, or has not enabled quotas", aufs and fuse-overlayfs
 * "--storage-opt is not supported ...", others "Storage option ... not supported".
 */
export function refusesStorageOpt(message: string): boolean {
  return /storage-opt is (not )?supported|storage[ -]?opt(ion)?s? [^\n]*not supported|does not support, or has not enabled quotas|quota[^\n]*not (supported|enabled)/i.test(
    message,
  );
}

interface EngineLike {
  storage(): Promise<EngineStorage>;
  images: { inspect(ref: string): Promise<{ sizeBytes: number }> };
}

export class DiskLimits {
  private support: Promise<StorageSupport> | undefined;
  /** Set once the engine refused the option, or info ruled it out: sandboxes go without it. */
  private unsupported: string | undefined;
  private warned = false;

  constructor(
    private readonly engine: EngineLike,
    private readonly mode: DiskLimitMode,
    private readonly logger: Logger,
  ) {}

  private supportNow(): Promise<StorageSupport> {
    this.support ??= this.engine.storage().then(
      (s) => {
        const support = storageSupport(s);
        if (support.kind === 'cannot') this.unsupported = support.reason;
        return support;
      },
      // No answer from info: let the create decide.
      () => ({ kind: 'maybe', countsImage: false }) as const,
    );
    return this.support;
  }

  /**
   * Sets (or leaves out) HostConfig.StorageOpt for this sandbox's create: the size asked for, raised by
   * the image's size where the driver counts the image. Where the driver cannot limit: left out, with
   * one warning in the log; in `require` mode, an UNAVAILABLE error instead.
   */
  async apply(spec: SandboxSpec, hostConfig: { StorageOpt?: Record<string, string> }): Promise<void> {
    const mb = spec.limits.diskMb;
    if (!mb) {
      delete hostConfig.StorageOpt;
      return;
    }
    const support = await this.supportNow();
    if (this.unsupported !== undefined) {
      delete hostConfig.StorageOpt;
      this.cannot(spec, this.unsupported);
      return;
    }
    let size = mb;
    if (support.kind !== 'cannot' && support.countsImage) {
      const image = await this.engine.images.inspect(spec.image);
      size += Math.ceil((image.sizeBytes / 2 ** 20) * (1 + IMAGE_MARGIN));
    }
    hostConfig.StorageOpt = { ...hostConfig.StorageOpt, size: `${size}M` };
  }

  /**
   * After a create with the option failed: true when the engine refused the option itself (remembered;
   * the caller creates again without it). In `require` mode that is an UNAVAILABLE error instead.
   */
  refused(spec: SandboxSpec, err: unknown): boolean {
    const message = err instanceof Error ? err.message : String(err);
    if (!refusesStorageOpt(message)) return false;
    this.unsupported = `the engine refused the size option: ${message.replace(/^[^:]*: /, '')}`;
    this.cannot(spec, this.unsupported);
    return true;
  }

  private cannot(spec: SandboxSpec, reason: string): void {
    if (this.mode === 'require') {
      throw new BerthError(
        ErrorCode.UNAVAILABLE,
        `Sandbox ${spec.id} needs a disk limit (sandbox.disk_limit = "require") and the Docker engine cannot set one: ${reason}`,
      );
    }
    if (this.warned) return;
    this.warned = true;
    this.logger.warn(
      { reason, diskMb: spec.limits.diskMb },
      "sandbox disks are not limited: the Docker engine's storage driver cannot limit a container's writable layer, so a sandbox can fill the disk under Docker's data-root (see the README, \"Disk\")",
    );
  }
}

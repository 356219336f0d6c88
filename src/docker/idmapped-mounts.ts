/**
 * Idmapped views of sandbox workspaces, made on the Docker host and bind-mounted into the container in
 * place of the workspace itself. The view's idmapping holds only the sandbox user's uid (and every gid),
 * each mapped to itself, so through it:
 *
 * - the sandbox user reads and writes as before, and what it makes belongs to it on the host;
 * - root in the sandbox (sudo) is unmapped: it can create no file there and chown nothing to root or
 *   any other uid (the kernel answers EOVERFLOW), so no file in the workspace belongs to anyone else;
 * - files another uid owns show as 65534 and nobody can write them through the view (EACCES), root
 *   included; so a view is only made for a workspace directory the sandbox user owns.
 *
 * Every gid is mapped: a file's group gives nobody privilege while setgid bits are refused (seccomp.ts),
 * and with only some groups mapped, files of the user's other groups would turn read-only.
 *
 * Each view is `<dir>/<sandbox id>`, made by scripts/idmapped-mount.py (the new mount API; util-linux
 * 2.38 cannot) and removed when the sandbox is. Making one needs root on the same host and in the same
 * mount namespace as dockerd; `probe` says whether this process can.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BerthError, ErrorCode } from '../protocol/errors.js';

/** The helper script, shipped in the package's scripts/ (beside src/ and dist/). */
export const IDMAP_HELPER = resolve(import.meta.dirname, '../../scripts/idmapped-mount.py');
/** How long the helper may take: a mount is a few syscalls, python's start-up most of it. */
const HELPER_TIMEOUT_MS = 15_000;

export interface IdmappedMountsOptions {
  /** Directory holding the views (made 0700, root only). */
  dir: string;
  /** Python interpreter. @default "python3" */
  python?: string;
  /** Known beforehand: why views made here would not reach dockerd (then probe says so). */
  unavailable?: string | undefined;
}

export class IdmappedMounts {
  private probed: Promise<string | undefined> | undefined;

  constructor(private readonly opts: IdmappedMountsOptions) {}

  /** Where sandbox `id`'s view lives. */
  path(id: string): string {
    return join(this.opts.dir, id);
  }

  /** Undefined when this process can make idmapped mounts here; else why not. Cached. */
  probe(): Promise<string | undefined> {
    this.probed ??= (async () => {
      if (this.opts.unavailable) return this.opts.unavailable;
      if (process.platform !== 'linux') return 'idmapped mounts need Linux';
      if (process.getuid?.() !== 0) return 'Berth is not running as root';
      try {
        mkdirSync(this.opts.dir, { recursive: true, mode: 0o700 });
        await this.helper(['probe', this.opts.dir]);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    })();
    return this.probed;
  }

  /** Makes sandbox `id`'s view of `source` (idempotent: an existing idmapped view is kept). */
  async mount(id: string, source: string, uid: number): Promise<string> {
    const target = this.path(id);
    if (isIdmappedMount(target)) return target;
    mkdirSync(this.opts.dir, { recursive: true, mode: 0o700 });
    await this.helper(['mount', source, target, '--uid', String(uid), '--all-gids']).catch((err: Error) => {
      throw new BerthError(
        ErrorCode.UNAVAILABLE,
        `Could not make the idmapped view of the workspace ${source}: ${err.message}`,
      );
    });
    return target;
  }

  /** Removes sandbox `id`'s view, if there is one. */
  async unmount(id: string): Promise<void> {
    const target = this.path(id);
    if (!existsSync(target)) return;
    await this.helper(['umount', target]);
  }

  /** Removes the views of sandboxes not in `keep`; returns their ids. */
  async sweep(keep: ReadonlySet<string>): Promise<string[]> {
    let names: string[];
    try {
      names = readdirSync(this.opts.dir);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const id of names) {
      if (keep.has(id)) continue;
      await this.unmount(id);
      removed.push(id);
    }
    return removed;
  }

  private helper(args: string[]): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      execFile(
        this.opts.python ?? 'python3',
        [IDMAP_HELPER, ...args],
        { timeout: HELPER_TIMEOUT_MS },
        (err, _stdout, stderr) => {
          if (!err) return resolvePromise();
          const detail = stderr.trim() || err.message;
          reject(
            new Error(
              (err as NodeJS.ErrnoException).code === 'ENOENT'
                ? `${this.opts.python ?? 'python3'} is not installed (the idmapped-mount helper needs it)`
                : detail,
            ),
          );
        },
      );
    });
  }
}

/** Mount points in a mountinfo file, with whether each is idmapped (the last one at a path wins). */
export function idmappedMountPoints(mountinfo: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6 || f[4] === undefined || f[5] === undefined) continue;
    const point = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    out.set(point, f[5].split(',').includes('idmapped'));
  }
  return out;
}

/** Whether `path` is an idmapped mount point in this process's mount namespace. */
export function isIdmappedMount(path: string): boolean {
  try {
    return idmappedMountPoints(readFileSync('/proc/self/mountinfo', 'utf8')).get(path) === true;
  } catch {
    return false;
  }
}

/**
 * Whether `target` inside the container whose init is host pid `pid` is an idmapped mount, as the
 * kernel reports it: proof that Docker's bind kept the idmapping. False when it cannot be read.
 */
export function containerMountIsIdmapped(pid: number, target: string): boolean {
  if (pid <= 0) return false;
  try {
    return idmappedMountPoints(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')).get(target) === true;
  } catch {
    return false;
  }
}

/** The directory of a control plane's idmapped workspace views, inside its data directory. */
export function idmapDir(dataDir: string): string {
  return join(dataDir, 'idmapped');
}

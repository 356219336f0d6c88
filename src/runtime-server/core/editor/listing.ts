/**
 * The directory view's listing. The reference shells out to
 * `find -L DIR -maxdepth 2 -not \( -path 'DIR/\.*' -o -path 'DIR/*\/\.*' \) | sort`; this walks the tree
 * the same way in-process (no shell, so any file name works): symlinks followed, hidden entries left out,
 * loops and dangling links treated as find treats them, and find's own error lines when it would print any.
 */
import type { BigIntStats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { findQuote, strerror } from './os-error.js';

export interface DirectoryListing {
  /** Listed paths (the directory itself first in the walk), sorted bytewise as `sort` does in C.UTF-8. */
  paths: string[];
  /** Which of `paths` are directories (after following symlinks). */
  directories: Set<string>;
  /** Hidden entries directly inside the directory. */
  hiddenCount: number;
  /** What find would print on stderr; the reference reports these instead of the listing. */
  errors: string[];
}

type Entry =
  | { kind: 'dir'; path: string; stats: BigIntStats }
  | { kind: 'other'; path: string }
  | { kind: 'error'; path: string };

function join(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

function isHidden(name: string): boolean {
  return name.startsWith('.');
}

function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

export async function listTwoLevels(root: string): Promise<DirectoryListing> {
  const errors: string[] = [];
  const listed: Array<{ path: string; isDir: boolean }> = [];
  const rootStats = await stat(root, { bigint: true });
  listed.push({ path: root, isDir: true });

  // Classifies one entry as find -L does: a loop back to an ancestor and an unreadable link are errors.
  const classify = async (
    path: string,
    ancestors: Array<{ path: string; stats: BigIntStats }>,
  ): Promise<Entry> => {
    let stats: BigIntStats;
    try {
      stats = await stat(path, { bigint: true });
    } catch (err) {
      const link = await lstat(path).catch(() => null);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && link?.isSymbolicLink())
        return { kind: 'other', path };
      errors.push(`find: ${findQuote(path)}: ${strerror(err)}`);
      return { kind: 'error', path };
    }
    if (!stats.isDirectory()) return { kind: 'other', path };
    const ancestor = ancestors.find((a) => sameFile(a.stats, stats));
    if (ancestor) {
      errors.push(
        `find: File system loop detected; ${findQuote(path)} is part of the same file system loop as ${findQuote(ancestor.path)}.`,
      );
      return { kind: 'error', path };
    }
    return { kind: 'dir', path, stats };
  };

  const readNames = async (dir: string): Promise<string[]> => {
    try {
      return await readdir(dir);
    } catch (err) {
      errors.push(`find: ${findQuote(dir)}: ${strerror(err)}`);
      return [];
    }
  };

  let hiddenCount = 0;
  const rootAncestors = [{ path: root, stats: rootStats }];
  for (const name of await readNames(root)) {
    const hidden = isHidden(name);
    const entry = await classify(join(root, name), rootAncestors);
    if (entry.kind === 'error') continue;
    if (hidden) hiddenCount++;
    else listed.push({ path: entry.path, isDir: entry.kind === 'dir' });
    if (entry.kind !== 'dir') continue;
    // find descends into hidden directories too (it only filters what it prints), so their errors count.
    const ancestors = [...rootAncestors, { path: entry.path, stats: entry.stats }];
    for (const child of await readNames(entry.path)) {
      const childEntry = await classify(join(entry.path, child), ancestors);
      if (childEntry.kind === 'error' || hidden || isHidden(child)) continue;
      listed.push({ path: childEntry.path, isDir: childEntry.kind === 'dir' });
    }
  }

  const keyed = listed.map((item) => ({ ...item, key: Buffer.from(item.path, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return {
    paths: keyed.map((item) => item.path),
    directories: new Set(keyed.filter((item) => item.isDir).map((item) => item.path)),
    hiddenCount,
    errors,
  };
}

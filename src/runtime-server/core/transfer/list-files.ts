/**
 * list_files, as the reference answers it: the entries of one directory, directories first (with a
 * trailing '/'), then files, each group sorted case-insensitively; hidden entries included; entries
 * whose target does not exist (dangling symlinks) left out; and `[]` for anything that goes wrong.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * Lists `requested` (absolute, or relative to `initialCwd`; empty or missing means `initialCwd`).
 * Never throws: a missing path, a file, or an unreadable directory all give `[]`.
 */
export async function listFiles(requested: string | null | undefined, initialCwd: string): Promise<string[]> {
  try {
    const full = !requested ? initialCwd : path.resolve(initialCwd, requested);
    if (!(await stat(full)).isDirectory()) return [];
    const names = await readdir(full);
    const kinds = await Promise.all(
      names.map((name) =>
        stat(path.join(full, name)).then(
          (st) => (st.isDirectory() ? 'directory' : 'file'),
          () => 'missing',
        ),
      ),
    );
    const directories: string[] = [];
    const files: string[] = [];
    names.forEach((name, i) => {
      if (kinds[i] === 'directory') directories.push(`${name}/`);
      else if (kinds[i] === 'file') files.push(name);
    });
    return [...sortCaseInsensitive(directories), ...sortCaseInsensitive(files)];
  } catch {
    return [];
  }
}

/** Python's `sort(key=str.lower)`: a stable sort on lower-cased names, compared by code point. */
function sortCaseInsensitive(names: string[]): string[] {
  const keyed = names.map((name) => ({ name, key: name.toLowerCase() }));
  keyed.sort((a, b) => compareCodePoints(a.key, b.key));
  return keyed.map((k) => k.name);
}

function compareCodePoints(a: string, b: string): number {
  const x = a[Symbol.iterator]();
  const y = b[Symbol.iterator]();
  for (;;) {
    const p = x.next();
    const q = y.next();
    if (p.done || q.done) return p.done && q.done ? 0 : p.done ? -1 : 1;
    const d = (p.value.codePointAt(0) ?? 0) - (q.value.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
}

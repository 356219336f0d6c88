/**
 * The editor's undo history: the last N versions of each file, kept on disk so that many large files
 * do not sit in the server's memory. Like the reference's, it lives as long as the process.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Prefix of the history directory, so a stray one is easy to recognise in /tmp. */
export const HISTORY_DIR_PREFIX = 'berth-editor-history-';

interface FileEntries {
  /** File-name stem for this path's versions: a hash, so any path maps to a safe name. */
  stem: string;
  /** Counters of the stored versions, oldest first. */
  counters: number[];
  next: number;
}

export class EditHistory {
  private dirPromise: Promise<string> | null = null;
  private readonly files = new Map<string, FileEntries>();

  constructor(
    private readonly maxPerFile: number,
    private readonly parentDir: string,
  ) {}

  /** The directory holding the versions, or null before the first one is saved. */
  get directory(): Promise<string | null> {
    return this.dirPromise ?? Promise.resolve(null);
  }

  async push(path: string, content: string): Promise<void> {
    const dir = await this.ensureDir();
    let entries = this.files.get(path);
    if (!entries) {
      entries = { stem: createHash('sha256').update(path).digest('hex').slice(0, 32), counters: [], next: 0 };
      this.files.set(path, entries);
    }
    const counter = entries.next++;
    await writeFile(join(dir, `${entries.stem}.${counter}`), content, 'utf8');
    entries.counters.push(counter);
    while (entries.counters.length > this.maxPerFile) {
      const oldest = entries.counters.shift()!;
      await rm(join(dir, `${entries.stem}.${oldest}`), { force: true });
    }
  }

  /** Removes and returns the newest saved version of `path`, or null when there is none. */
  async pop(path: string): Promise<string | null> {
    const entries = this.files.get(path);
    const counter = entries?.counters.pop();
    if (!entries || counter === undefined || !this.dirPromise) return null;
    const file = join(await this.dirPromise, `${entries.stem}.${counter}`);
    try {
      const content = await readFile(file, 'utf8');
      await unlink(file);
      return content;
    } catch {
      // A version removed from under us (say, a cleaned /tmp) is simply gone.
      return null;
    }
  }

  async dispose(): Promise<void> {
    const dir = this.dirPromise;
    this.dirPromise = null;
    this.files.clear();
    if (dir) await rm(await dir, { recursive: true, force: true });
  }

  private ensureDir(): Promise<string> {
    if (!this.dirPromise) {
      const made = mkdtemp(join(this.parentDir, HISTORY_DIR_PREFIX));
      this.dirPromise = made;
      // A failed mkdtemp (full disk) is retried on the next edit rather than remembered.
      made.catch(() => {
        if (this.dirPromise === made) this.dirPromise = null;
      });
    }
    return this.dirPromise;
  }
}

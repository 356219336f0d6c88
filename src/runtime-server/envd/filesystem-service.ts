/**
 * envd's `filesystem.Filesystem` service: Stat, MakeDir, Move, ListDir, Remove, the WatchDir stream,
 * and the polling watchers (CreateWatcher, GetWatcherEvents, RemoveWatcher) of the Python sync SDK.
 * Messages are proto3 JSON: lowerCamelCase names (snake_case accepted), int64 as strings, enums by
 * name, timestamps in RFC 3339.
 *
 * Everything runs as this server's user. A server running as root hands what it creates for another
 * account to that account, as envd does. A server that is not root does the work as itself even for
 * a user it would run commands for through sudo (`runAs.kind === 'sudo'`): file operations are not
 * proxied through sudo, so such a user's files are made by, and limited to, the sandbox user.
 *
 * Watching uses inotify through one non-recursive fs.watch per directory, which works on overlayfs
 * and bind mounts for changes made in the container and lets a new subdirectory be watched before
 * its creation is reported (Node's own recursive mode on Linux can miss the first files in it).
 */
import { randomUUID } from 'node:crypto';
import { type BigIntStats, type Dirent, type FSWatcher, readFileSync, type Stats, watch } from 'node:fs';
import { cp, lstat, readdir, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConnectError } from '../../protocol/connect.js';
import { makeDirs, ownerFor, resolveUserPath } from './files-routes.js';
import type { EnvdCall, EnvdService } from './routes.js';

/** Entries one ListDir answers at most: the answer is built in memory and sent as one message. */
const MAX_LIST_ENTRIES = 100_000;
/**
 * Polling watchers alive at once. Each holds inotify watches (a per-user kernel limit shared with
 * everything in the sandbox) and a queue, and a client that never calls RemoveWatcher leaks one.
 */
const MAX_WATCHERS = 64;
/** A watcher not polled for this long may be closed to make room for a new one. */
const WATCHER_EVICT_IDLE_MS = 10 * 60_000;
/** Events a polling watcher keeps between polls; past it the oldest go (a busy tree and a slow poller). */
const MAX_QUEUED_EVENTS = 10_000;
/** Directories one watch covers: each is an inotify watch, and the kernel's budget is shared. */
const MAX_WATCHED_DIRS = 20_000;

type FileTypeName = 'FILE_TYPE_UNSPECIFIED' | 'FILE_TYPE_FILE' | 'FILE_TYPE_DIRECTORY' | 'FILE_TYPE_SYMLINK';
type EventTypeName =
  | 'EVENT_TYPE_CREATE'
  | 'EVENT_TYPE_WRITE'
  | 'EVENT_TYPE_REMOVE'
  | 'EVENT_TYPE_RENAME'
  | 'EVENT_TYPE_CHMOD';

export interface EntryInfo {
  name: string;
  type: FileTypeName;
  path: string;
  /** int64, so a string in JSON. */
  size: string;
  /** Permission bits only. */
  mode: number;
  /** Go's FileMode.String(), e.g. "-rw-r--r--". */
  permissions: string;
  owner: string;
  group: string;
  modifiedTime: string;
  symlinkTarget?: string;
}

export interface FilesystemEvent {
  /** Relative to the watched directory. */
  name: string;
  type: EventTypeName;
  entry?: EntryInfo;
}

// ---------------------------------------------------------------------------------------------------
// Entries

/** User and group names by id, read from /etc/passwd and /etc/group once per instance. */
class AccountNames {
  private users: Map<number, string> | undefined;
  private groups: Map<number, string> | undefined;

  user(uid: number): string {
    this.users ??= namesById('/etc/passwd');
    return this.users.get(uid) ?? String(uid);
  }

  group(gid: number): string {
    this.groups ??= namesById('/etc/group');
    return this.groups.get(gid) ?? String(gid);
  }
}

/** name:x:id:… lines (both files have the id third); the first name of an id wins, as getpwuid. */
function namesById(file: string): Map<number, string> {
  const names = new Map<number, string>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return names;
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id && /^\d+$/.test(id) && !names.has(Number(id))) names.set(Number(id), name);
  }
  return names;
}

/** Go's file mode letters in Go's order ("dalTLDpSugct?"), those Linux can have. */
const GO_MODE_LETTERS: [string, (st: Stats) => boolean][] = [
  ['d', (st) => st.isDirectory()],
  ['L', (st) => st.isSymbolicLink()],
  ['D', (st) => st.isBlockDevice() || st.isCharacterDevice()],
  ['p', (st) => st.isFIFO()],
  ['S', (st) => st.isSocket()],
  ['u', (st) => (st.mode & 0o4000) !== 0],
  ['g', (st) => (st.mode & 0o2000) !== 0],
  ['c', (st) => st.isCharacterDevice()],
  ['t', (st) => (st.mode & 0o1000) !== 0],
];

/** What Go's FileMode.String() prints, which is what envd sends as `permissions`. */
export function goModeString(st: Stats): string {
  let letters = '';
  for (const [letter, has] of GO_MODE_LETTERS) if (has(st)) letters += letter;
  let rwx = '';
  for (let bit = 8; bit >= 0; bit--) rwx += st.mode & (1 << bit) ? 'rwx'[(8 - bit) % 3] : '-';
  return (letters || '-') + rwx;
}

function fileType(st: Stats): FileTypeName {
  if (st.isFile()) return 'FILE_TYPE_FILE';
  if (st.isDirectory()) return 'FILE_TYPE_DIRECTORY';
  if (st.isSymbolicLink()) return 'FILE_TYPE_SYMLINK';
  return 'FILE_TYPE_UNSPECIFIED';
}

/**
 * An entry as envd describes it. A symbolic link has its target's type and permission bits, its own
 * name, size, permissions string, owner and time, and `symlinkTarget` set to the resolved absolute
 * target. A dangling link is FILE_TYPE_SYMLINK with its target as written, made absolute.
 */
async function entryInfo(p: string, names: AccountNames): Promise<EntryInfo> {
  const link = await lstat(p);
  let target = link;
  let symlinkTarget: string | undefined;
  if (link.isSymbolicLink()) {
    try {
      symlinkTarget = await realpath(p);
      target = await stat(symlinkTarget);
    } catch {
      const written = await readlink(p).catch(() => undefined);
      symlinkTarget = written === undefined ? p : path.resolve(path.dirname(p), written);
    }
  }
  return {
    name: p === '/' ? '/' : path.basename(p),
    type: fileType(target),
    path: p,
    size: String(link.size),
    mode: target.mode & 0o777,
    permissions: goModeString(link),
    owner: names.user(link.uid),
    group: names.group(link.gid),
    modifiedTime: link.mtime.toISOString(),
    ...(symlinkTarget !== undefined && { symlinkTarget }),
  };
}

function notFound(p: string): ConnectError {
  return new ConnectError('not_found', `path '${p}' does not exist`);
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** `op`, with a missing path (or a parent that is a file) reported as not_found naming `p`. */
async function orNotFound<T>(p: string, op: Promise<T>): Promise<T> {
  try {
    return await op;
  } catch (err) {
    if (isMissing(err)) throw notFound(p);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------
// Message fields

// biome-ignore lint/suspicious/noExplicitAny: a decoded JSON message
type Message = any;

function stringField(msg: Message, camel: string, snake = camel): string | undefined {
  const value = msg?.[camel] ?? msg?.[snake];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ConnectError('invalid_argument', `'${camel}' must be a string`);
  return value;
}

function boolField(msg: Message, camel: string, snake = camel): boolean {
  const value = msg?.[camel] ?? msg?.[snake];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new ConnectError('invalid_argument', `'${camel}' must be a boolean`);
  return value;
}

/** ListDir's depth: uint32, where 0 (or absent) is the default of 1. */
function depthField(msg: Message): number {
  const value = msg?.depth ?? 0;
  const depth = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof depth !== 'number' || !Number.isInteger(depth) || depth < 0) {
    throw new ConnectError(
      'invalid_argument',
      `'depth' must be a non-negative integer, got ${JSON.stringify(value)}`,
    );
  }
  return depth === 0 ? 1 : depth;
}

/** A path field resolved for the call's user; an empty or absent one is refused. */
function pathField(call: EnvdCall, camel = 'path', snake = camel): string {
  const given = stringField(call.message, camel, snake);
  if (!given) throw new ConnectError('invalid_argument', `'${camel}' is required`);
  return resolveUserPath(call.user, given);
}

// ---------------------------------------------------------------------------------------------------
// Watching

/** Watches a directory, and with `recursive` every directory under it, reporting changes in order. */
class DirWatcher {
  private readonly dirs = new Map<string, FSWatcher>();
  private readonly pending = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private readonly names = new AccountNames();
  private closed = false;

  constructor(
    private readonly root: string,
    private readonly recursive: boolean,
    private readonly includeEntry: boolean,
    private readonly emit: (event: FilesystemEvent) => void,
    /** Called once the watched directory itself is removed or moved away. */
    private readonly onGone: () => void,
  ) {}

  /** Watches everything (a failure here, such as the kernel's watch limit, is the caller's). */
  async start(): Promise<void> {
    this.add(this.root);
    if (this.recursive) await this.addTree(this.root, { announce: false, strict: true });
  }

  close(): void {
    this.closed = true;
    for (const w of this.dirs.values()) w.close();
    this.dirs.clear();
  }

  private add(dir: string): void {
    if (this.closed || this.dirs.has(dir)) return;
    if (this.dirs.size >= MAX_WATCHED_DIRS) {
      throw new ConnectError('resource_exhausted', `more than ${MAX_WATCHED_DIRS} directories to watch`);
    }
    const w = watch(dir, { persistent: false }, (kind, filename) => {
      if (filename) this.enqueue(kind as 'rename' | 'change', dir, filename.toString());
    });
    w.on('error', () => this.drop(dir));
    this.dirs.set(dir, w);
  }

  private drop(dir: string): void {
    this.dirs.get(dir)?.close();
    this.dirs.delete(dir);
    if (dir === this.root && !this.closed) {
      this.close();
      this.onGone();
    }
  }

  /**
   * Watches the directories under `dir` (not through symbolic links). With `announce`, reports
   * what is there as created: it appeared in a new directory before that directory was watched.
   */
  private async addTree(dir: string, opts: { announce: boolean; strict: boolean }): Promise<void> {
    let children: Dirent[];
    try {
      children = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (opts.strict && dir === this.root) throw err;
      return;
    }
    for (const child of children) {
      if (this.closed) return;
      const p = path.join(dir, child.name);
      if (child.isDirectory()) {
        try {
          this.add(p);
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (opts.strict && (code === 'ENOSPC' || code === 'resource_exhausted')) throw err;
          continue;
        }
      }
      if (opts.announce) await this.report('EVENT_TYPE_CREATE', p);
      if (child.isDirectory()) await this.addTree(p, opts);
    }
  }

  private enqueue(kind: 'rename' | 'change', dir: string, filename: string): void {
    const key = `${kind}\0${dir}\0${filename}`;
    // A burst of the same change (a large write) is one event: it is looked at once, later.
    if (this.pending.has(key)) return;
    this.pending.add(key);
    this.queue = this.queue
      .then(() => {
        this.pending.delete(key);
        return this.handle(kind, dir, filename);
      })
      .catch(() => undefined);
  }

  private async handle(kind: 'rename' | 'change', dir: string, filename: string): Promise<void> {
    if (this.closed) return;
    // inotify reports a watched directory's own removal under the directory's own name.
    if (kind === 'rename' && filename === path.basename(dir) && !(await isDirectory(dir))) {
      this.drop(dir);
      return;
    }
    const full = path.join(dir, filename);
    const st = await lstat(full, { bigint: true }).catch(() => undefined);
    if (kind === 'change') {
      // Gone already: its removal is its own event.
      if (st) await this.report(attributesOnly(st) ? 'EVENT_TYPE_CHMOD' : 'EVENT_TYPE_WRITE', full);
      return;
    }
    // fs.watch does not tell a removal from a move away (inotify's cookies are not exposed).
    if (!st) return this.report('EVENT_TYPE_REMOVE', full);
    const isDir = st.isDirectory();
    if (this.recursive && isDir) {
      // Watched before it is reported, so a client that waits for the event sees what it does next.
      try {
        this.add(full);
      } catch {
        return this.report('EVENT_TYPE_CREATE', full);
      }
    }
    await this.report('EVENT_TYPE_CREATE', full);
    if (this.recursive && isDir) await this.addTree(full, { announce: true, strict: false });
  }

  private async report(type: EventTypeName, full: string): Promise<void> {
    const event: FilesystemEvent = { name: path.relative(this.root, full), type };
    if (this.includeEntry && type !== 'EVENT_TYPE_REMOVE' && type !== 'EVENT_TYPE_RENAME') {
      const entry = await entryInfo(full, this.names).catch(() => undefined);
      if (entry) event.entry = entry;
    }
    if (!this.closed) this.emit(event);
  }
}

/**
 * A write sets a file's mtime and ctime to the same instant; chmod, chown and utimes move only the
 * ctime. inotify reports both as IN_MODIFY/IN_ATTRIB, which fs.watch merges into 'change'.
 */
function attributesOnly(st: BigIntStats): boolean {
  return st.ctimeNs !== st.mtimeNs;
}

async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

function untilAborted(signal: AbortSignal): Promise<'aborted'> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve('aborted');
    signal.addEventListener('abort', () => resolve('aborted'), { once: true });
  });
}

interface PolledWatcher {
  watcher: DirWatcher;
  events: FilesystemEvent[];
  lastPolled: number;
}

// ---------------------------------------------------------------------------------------------------
// The service

export class FilesystemService {
  private readonly watchers = new Map<string, PolledWatcher>();

  methods(): EnvdService {
    return {
      keepalive: { keepalive: {} },
      unary: {
        Stat: (call) => this.stat(call),
        MakeDir: (call) => this.makeDir(call),
        Move: (call) => this.move(call),
        ListDir: (call) => this.listDir(call),
        Remove: (call) => this.remove(call),
        CreateWatcher: (call) => this.createWatcher(call),
        GetWatcherEvents: (call) => this.getWatcherEvents(call),
        RemoveWatcher: (call) => this.removeWatcher(call),
      },
      streams: {
        WatchDir: (call, send) => this.watchDir(call, send),
      },
    };
  }

  /** Closes every polling watcher (for a server shutting down, and tests). */
  close(): void {
    for (const w of this.watchers.values()) w.watcher.close();
    this.watchers.clear();
  }

  private async stat(call: EnvdCall): Promise<{ entry: EntryInfo }> {
    const target = pathField(call);
    return { entry: await orNotFound(target, entryInfo(target, new AccountNames())) };
  }

  private async makeDir(call: EnvdCall): Promise<{ entry: EntryInfo }> {
    const dir = pathField(call);
    const existing = await lstat(dir).catch((err) => {
      if (isMissing(err)) return undefined;
      throw err;
    });
    if (existing?.isDirectory())
      throw new ConnectError('already_exists', `directory '${dir}' already exists`);
    if (existing) {
      throw new ConnectError('already_exists', `path '${dir}' already exists and is not a directory`);
    }
    if (!(await makeDirs(dir, ownerFor(call.user)))) {
      throw new ConnectError('already_exists', `directory '${dir}' already exists`);
    }
    return { entry: await entryInfo(dir, new AccountNames()) };
  }

  private async move(call: EnvdCall): Promise<{ entry: EntryInfo }> {
    const source = pathField(call, 'source');
    const destination = pathField(call, 'destination');
    await orNotFound(source, lstat(source));
    // As envd: the destination's parents are made, as the user's.
    await makeDirs(path.dirname(destination), ownerFor(call.user));
    try {
      await rename(source, destination);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      // Across file systems (a bind mount and the container's own), as mv does: copy, then remove.
      await cp(source, destination, {
        recursive: true,
        force: true,
        preserveTimestamps: true,
        verbatimSymlinks: true,
      });
      await rm(source, { recursive: true, force: true });
    }
    return { entry: await entryInfo(destination, new AccountNames()) };
  }

  private async listDir(call: EnvdCall): Promise<{ entries: EntryInfo[] }> {
    const dir = pathField(call);
    const depth = depthField(call.message);
    const st = await orNotFound(dir, stat(dir));
    if (!st.isDirectory()) throw new ConnectError('invalid_argument', `path '${dir}' is not a directory`);
    const entries: EntryInfo[] = [];
    await listInto(entries, dir, depth, new AccountNames(), true);
    return { entries };
  }

  private async remove(call: EnvdCall): Promise<Record<string, never>> {
    const target = pathField(call);
    if (target === '/') throw new ConnectError('invalid_argument', "refusing to remove '/'");
    await orNotFound(target, lstat(target));
    await rm(target, { recursive: true, force: true });
    return {};
  }

  /** The directory a watch request names, checked as envd does before anything is sent. */
  private async watchRoot(call: EnvdCall): Promise<string> {
    const dir = pathField(call);
    const st = await orNotFound(dir, stat(dir));
    if (!st.isDirectory()) throw new ConnectError('invalid_argument', `path '${dir}' is not a directory`);
    return dir;
  }

  private async watchDir(call: EnvdCall, send: (message: unknown) => void): Promise<void> {
    const root = await this.watchRoot(call);
    let gone!: () => void;
    const removed = new Promise<'gone'>((resolve) => {
      gone = () => resolve('gone');
    });
    const watcher = new DirWatcher(
      root,
      boolField(call.message, 'recursive'),
      boolField(call.message, 'includeEntry', 'include_entry'),
      // WatchDirResponse's `event` is a oneof: in proto3 JSON its fields stand at the top level.
      (event) => send({ filesystem: event }),
      () => gone(),
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      await watcher.start();
      send({ start: {} });
      const waits: Promise<string>[] = [untilAborted(call.signal), removed];
      if (call.timeoutMs !== undefined) {
        const ms = call.timeoutMs;
        waits.push(new Promise((resolve) => (timer = setTimeout(() => resolve('deadline'), ms))));
      }
      const why = await Promise.race(waits);
      if (why === 'gone') throw new ConnectError('not_found', `the watched directory '${root}' was removed`);
      if (why === 'deadline') throw new ConnectError('deadline_exceeded', 'the watch reached its deadline');
    } finally {
      clearTimeout(timer);
      watcher.close();
    }
  }

  private async createWatcher(call: EnvdCall): Promise<{ watcherId: string }> {
    const root = await this.watchRoot(call);
    this.evictIdleWatcher();
    if (this.watchers.size >= MAX_WATCHERS) {
      throw new ConnectError(
        'resource_exhausted',
        `${MAX_WATCHERS} watchers are open: remove one (RemoveWatcher) before creating another`,
      );
    }
    const id = randomUUID();
    const events: FilesystemEvent[] = [];
    const watcher = new DirWatcher(
      root,
      boolField(call.message, 'recursive'),
      boolField(call.message, 'includeEntry', 'include_entry'),
      (event) => {
        events.push(event);
        if (events.length > MAX_QUEUED_EVENTS) events.shift();
      },
      () => undefined,
    );
    const entry: PolledWatcher = { watcher, events, lastPolled: Date.now() };
    // The slot is taken before the (asynchronous) start, so concurrent creates respect the bound.
    this.watchers.set(id, entry);
    try {
      await entry.watcher.start();
    } catch (err) {
      entry.watcher.close();
      this.watchers.delete(id);
      throw err;
    }
    return { watcherId: id };
  }

  private evictIdleWatcher(): void {
    if (this.watchers.size < MAX_WATCHERS) return;
    let oldest: [string, PolledWatcher] | undefined;
    for (const item of this.watchers) if (!oldest || item[1].lastPolled < oldest[1].lastPolled) oldest = item;
    if (oldest && Date.now() - oldest[1].lastPolled > WATCHER_EVICT_IDLE_MS) {
      oldest[1].watcher.close();
      this.watchers.delete(oldest[0]);
    }
  }

  private polled(call: EnvdCall): [string, PolledWatcher] {
    const id = stringField(call.message, 'watcherId', 'watcher_id');
    if (!id) throw new ConnectError('invalid_argument', "'watcherId' is required");
    const entry = this.watchers.get(id);
    if (!entry) throw new ConnectError('not_found', `watcher '${id}' does not exist`);
    return [id, entry];
  }

  private getWatcherEvents(call: EnvdCall): { events: FilesystemEvent[] } {
    const [, entry] = this.polled(call);
    entry.lastPolled = Date.now();
    return { events: entry.events.splice(0) };
  }

  private removeWatcher(call: EnvdCall): Record<string, never> {
    const [id, entry] = this.polled(call);
    entry.watcher.close();
    this.watchers.delete(id);
    return {};
  }
}

/**
 * Appends the entries of `dir` and, `depth` levels down, of its subdirectories, depth first in name
 * order as Go's WalkDir visits them. Links to directories are listed, not entered. Below the top,
 * a directory that cannot be read (or vanished) is listed without its contents.
 */
async function listInto(
  out: EntryInfo[],
  dir: string,
  depth: number,
  names: AccountNames,
  top: boolean,
): Promise<void> {
  let children: Dirent[];
  try {
    children = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (top) throw err;
    return;
  }
  children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const infos = await Promise.all(
    children.map((c) => entryInfo(path.join(dir, c.name), names).catch(() => undefined)),
  );
  for (const [i, info] of infos.entries()) {
    if (!info) continue;
    out.push(info);
    if (out.length > MAX_LIST_ENTRIES) {
      throw new ConnectError(
        'resource_exhausted',
        `'${dir}' has more than ${MAX_LIST_ENTRIES} entries at this depth: list a smaller depth or a subdirectory`,
      );
    }
    if (depth > 1 && children[i]?.isDirectory()) await listInto(out, info.path, depth - 1, names, false);
  }
}

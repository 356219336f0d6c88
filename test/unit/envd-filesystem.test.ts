/**
 * envd's filesystem.Filesystem service and /files transfers on a real runtime server (built by
 * createRuntimeHttpServer, listening on a port), driven with fetch in the Connect JSON shapes the E2B
 * SDKs send, on a temporary directory.
 */
import { randomBytes } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { END_STREAM_FLAG, envelope, readEnvelopes, STREAM_CONTENT_TYPE } from '../../src/protocol/connect.js';
import { findAccount } from '../../src/runtime-server/core/process/users.js';
import { FilesystemService } from '../../src/runtime-server/envd/filesystem-service.js';
import { ProcessService } from '../../src/runtime-server/envd/process-service.js';
import { createRuntimeHttpServer } from '../../src/runtime-server/http.js';
import { lazy } from '../../src/runtime-server/lazy.js';
import type { RuntimeServices } from '../../src/runtime-server/services.js';

const logger = pino({ level: 'silent' });
const KEY = 'test-session-key';
const isRoot = process.getuid?.() === 0;
const selfAccount = findAccount(String(process.getuid?.()));

let root: string;
let app: FastifyInstance;
let base: string;
let caseNo = 0;

/** What the envd routes use: the Filesystem service needs nothing, the process service only a table. */
function minimalServices(): RuntimeServices {
  return {
    options: { workingDir: os.tmpdir(), noChangeTimeoutSeconds: 10, logger },
    processes: { environment: { variables: {} } },
    // Nothing made: closing the server has no MCP sessions to end.
    mcp: { ifMade: async () => undefined },
    // The real Filesystem service; no process is started here, so the process service needs no table.
    envd: lazy(async () => ({
      process: new ProcessService(undefined as never),
      filesystem: new FilesystemService(),
    })),
    ready: () => true,
    serverInfo: async () => ({}),
  } as unknown as RuntimeServices;
}

beforeAll(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'berth-envd-fs-')));
  app = await createRuntimeHttpServer(minimalServices(), { logger, sessionApiKey: KEY });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app?.close();
  await rm(root, { recursive: true, force: true });
});

/** A fresh directory for one test. */
async function fresh(): Promise<string> {
  const dir = path.join(root, `case-${++caseNo}`);
  await mkdir(dir);
  return dir;
}

function basicAuth(user: string): string {
  return `Basic ${Buffer.from(`${user}:`).toString('base64')}`;
}

async function rpc(method: string, message: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}/envd/filesystem.Filesystem/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-api-key': KEY, ...headers },
    body: JSON.stringify(message),
  });
  return { status: res.status, json: (await res.json()) as any };
}

function filesUrl(query: Record<string, string>): string {
  return `${base}/envd/files?${new URLSearchParams(query)}`;
}

async function upload(
  query: Record<string, string>,
  body: RequestInit['body'],
  headers: Record<string, string> = {},
) {
  const res = await fetch(filesUrl(query), {
    method: 'POST',
    headers: { 'x-session-api-key': KEY, ...headers },
    body,
    duplex: 'half',
  } as RequestInit);
  return { status: res.status, json: (await res.json()) as any };
}

async function download(query: Record<string, string>) {
  return fetch(filesUrl(query), { headers: { 'x-session-api-key': KEY } });
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** Polls `check` until it returns something, for at most `ms`. */
async function eventually<T>(check: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Msg = any;

/** A WatchDir stream read envelope by envelope as it arrives. */
async function openWatch(message: unknown, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await fetch(`${base}/envd/filesystem.Filesystem/WatchDir`, {
    method: 'POST',
    headers: { 'content-type': STREAM_CONTENT_TYPE, 'x-session-api-key': KEY, ...headers },
    body: envelope(message),
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(STREAM_CONTENT_TYPE);
  const reader = res.body!.getReader();
  let buf = Buffer.alloc(0);
  let reading: ReturnType<typeof reader.read> | undefined;

  async function next(ms: number): Promise<{ flags: number; message: Msg }> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const size = 5 + buf.readUInt32BE(1);
        const [env] = readEnvelopes(buf.subarray(0, size));
        buf = buf.subarray(size);
        return env as { flags: number; message: Msg };
      }
      reading ??= reader.read();
      const left = deadline - Date.now();
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        reading,
        new Promise<'timeout'>(
          (resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, left))),
        ),
      ]);
      clearTimeout(timer);
      if (r === 'timeout') throw new Error('no envelope in time');
      reading = undefined;
      if (r.done) throw new Error('the stream ended');
      buf = Buffer.concat([buf, Buffer.from(r.value)]);
    }
  }

  return {
    next,
    /** Reads until a filesystem event matches, within `ms`. */
    async waitFor(match: (e: Msg) => boolean, ms = 5000): Promise<Msg> {
      const deadline = Date.now() + ms;
      for (;;) {
        const env = await next(deadline - Date.now());
        if (env.flags & END_STREAM_FLAG) throw new Error(`the stream ended: ${JSON.stringify(env.message)}`);
        const e = env.message.filesystem;
        if (e && match(e)) return e;
      }
    },
    close: () => controller.abort(),
  };
}

describe('Stat', () => {
  it('describes a file as envd does', async () => {
    const dir = await fresh();
    const file = path.join(dir, 'a.txt');
    await writeFile(file, 'test');
    await chmod(file, 0o644);
    const r = await rpc('Stat', { path: file });
    expect(r.status).toBe(200);
    const e = r.json.entry;
    expect(e).toMatchObject({
      name: 'a.txt',
      type: 'FILE_TYPE_FILE',
      path: file,
      size: '4',
      mode: 0o644,
      permissions: '-rw-r--r--',
      owner: selfAccount?.name ?? String(process.getuid?.()),
    });
    expect(typeof e.group).toBe('string');
    expect(e.symlinkTarget).toBeUndefined();
    expect(Math.abs(Date.parse(e.modifiedTime) - (await stat(file)).mtimeMs)).toBeLessThan(1000);
    expect(e.modifiedTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  });

  it('describes a directory and a symbolic link (the target type, the resolved target)', async () => {
    const dir = await fresh();
    await chmod(dir, 0o755);
    const d = (await rpc('Stat', { path: dir })).json.entry;
    expect(d).toMatchObject({ type: 'FILE_TYPE_DIRECTORY', mode: 0o755, permissions: 'drwxr-xr-x' });
    expect(Number(d.size)).toBeGreaterThan(0);

    await writeFile(path.join(dir, 'target.txt'), 'x');
    await symlink('target.txt', path.join(dir, 'link.txt'));
    const l = (await rpc('Stat', { path: path.join(dir, 'link.txt') })).json.entry;
    expect(l).toMatchObject({
      name: 'link.txt',
      type: 'FILE_TYPE_FILE',
      path: path.join(dir, 'link.txt'),
      symlinkTarget: path.join(dir, 'target.txt'),
    });
    expect(l.permissions).toMatch(/^L/);

    await symlink('nowhere', path.join(dir, 'dangling'));
    const g = (await rpc('Stat', { path: path.join(dir, 'dangling') })).json.entry;
    expect(g).toMatchObject({ type: 'FILE_TYPE_SYMLINK', symlinkTarget: path.join(dir, 'nowhere') });
  });

  it('answers not_found for a missing path (and one under a file)', async () => {
    const dir = await fresh();
    const missing = path.join(dir, 'nope');
    const r = await rpc('Stat', { path: missing });
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ code: 'not_found', message: `path '${missing}' does not exist` });
    await writeFile(path.join(dir, 'f'), '');
    expect((await rpc('Stat', { path: path.join(dir, 'f', 'x') })).json.code).toBe('not_found');
    expect((await rpc('Stat', {})).json.code).toBe('invalid_argument');
  });
});

describe('MakeDir, Move, Remove', () => {
  it('makes a directory with its parents, once', async () => {
    const dir = await fresh();
    const target = path.join(dir, 'a', 'b', 'c');
    const r = await rpc('MakeDir', { path: target });
    expect(r.status).toBe(200);
    expect(r.json.entry).toMatchObject({ name: 'c', type: 'FILE_TYPE_DIRECTORY', path: target });
    expect((await stat(target)).isDirectory()).toBe(true);

    const again = await rpc('MakeDir', { path: target });
    expect(again.status).toBe(409);
    expect(again.json.code).toBe('already_exists');
    await writeFile(path.join(dir, 'file'), '');
    expect((await rpc('MakeDir', { path: path.join(dir, 'file') })).json.code).toBe('already_exists');
  });

  it('moves a file into new parent directories, and answers not_found for a missing source', async () => {
    const dir = await fresh();
    await writeFile(path.join(dir, 'src.txt'), 'moved');
    const destination = path.join(dir, 'new', 'place', 'dst.txt');
    const r = await rpc('Move', { source: path.join(dir, 'src.txt'), destination });
    expect(r.status).toBe(200);
    expect(r.json.entry).toMatchObject({
      name: 'dst.txt',
      path: destination,
      type: 'FILE_TYPE_FILE',
      size: '5',
    });
    expect(await readFile(destination, 'utf8')).toBe('moved');
    expect(await exists(path.join(dir, 'src.txt'))).toBe(false);

    const missing = await rpc('Move', { source: path.join(dir, 'gone'), destination: path.join(dir, 'x') });
    expect(missing.status).toBe(404);
    expect(missing.json.message).toContain(path.join(dir, 'gone'));
  });

  it('removes a tree, and answers not_found for a missing path', async () => {
    const dir = await fresh();
    await mkdir(path.join(dir, 't', 'u'), { recursive: true });
    await writeFile(path.join(dir, 't', 'u', 'f'), 'x');
    expect(await rpc('Remove', { path: path.join(dir, 't') })).toEqual({ status: 200, json: {} });
    expect(await exists(path.join(dir, 't'))).toBe(false);
    const again = await rpc('Remove', { path: path.join(dir, 't') });
    expect(again.status).toBe(404);
    expect(again.json.code).toBe('not_found');
  });
});

describe('ListDir', () => {
  it('lists one level by default and N levels with depth N, depth first in name order', async () => {
    const dir = await fresh();
    for (const d of ['subdir1/subdir1_1', 'subdir1/subdir1_2', 'subdir2/subdir2_1']) {
      await mkdir(path.join(dir, d), { recursive: true });
    }
    await writeFile(path.join(dir, 'file1.txt'), 'Hello, world!');
    await writeFile(path.join(dir, 'subdir1', 'subdir1_1', 'deep.txt'), '');

    const one = await rpc('ListDir', { path: dir });
    expect(one.status).toBe(200);
    expect(one.json.entries.map((e: Msg) => [e.name, e.type])).toEqual([
      ['file1.txt', 'FILE_TYPE_FILE'],
      ['subdir1', 'FILE_TYPE_DIRECTORY'],
      ['subdir2', 'FILE_TYPE_DIRECTORY'],
    ]);
    expect(one.json.entries[0]).toMatchObject({ path: path.join(dir, 'file1.txt'), size: '13' });

    const two = await rpc('ListDir', { path: dir, depth: 2 });
    expect(two.json.entries.map((e: Msg) => path.relative(dir, e.path))).toEqual([
      'file1.txt',
      'subdir1',
      'subdir1/subdir1_1',
      'subdir1/subdir1_2',
      'subdir2',
      'subdir2/subdir2_1',
    ]);
    const three = await rpc('ListDir', { path: dir, depth: 3 });
    expect(three.json.entries).toHaveLength(7);
  });

  it('answers not_found for a missing directory and invalid_argument for a file', async () => {
    const dir = await fresh();
    expect((await rpc('ListDir', { path: path.join(dir, 'none') })).json.code).toBe('not_found');
    await writeFile(path.join(dir, 'f'), '');
    const r = await rpc('ListDir', { path: path.join(dir, 'f') });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({
      code: 'invalid_argument',
      message: `path '${path.join(dir, 'f')}' is not a directory`,
    });
  });
});

describe('WatchDir', () => {
  it('starts, then reports creations, writes and removals by name', async () => {
    const dir = await fresh();
    await writeFile(path.join(dir, 'existing.txt'), 'old');
    const watch = await openWatch({ path: dir, recursive: false, includeEntry: true });
    try {
      expect((await watch.next(5000)).message).toEqual({ start: {} });

      await writeFile(path.join(dir, 'new.txt'), 'hello');
      const created = await watch.waitFor((e) => e.name === 'new.txt' && e.type === 'EVENT_TYPE_CREATE');
      expect(created.entry).toMatchObject({ name: 'new.txt', path: path.join(dir, 'new.txt') });

      await writeFile(path.join(dir, 'existing.txt'), 'modified');
      await watch.waitFor((e) => e.name === 'existing.txt' && e.type === 'EVENT_TYPE_WRITE');

      await chmod(path.join(dir, 'existing.txt'), 0o600);
      await watch.waitFor((e) => e.name === 'existing.txt' && e.type === 'EVENT_TYPE_CHMOD');

      await rm(path.join(dir, 'new.txt'));
      const removed = await watch.waitFor((e) => e.name === 'new.txt' && e.type === 'EVENT_TYPE_REMOVE');
      expect(removed.entry).toBeUndefined();
    } finally {
      watch.close();
    }
  });

  it('recursive: watches a subdirectory made after the start before reporting it', async () => {
    const dir = await fresh();
    await mkdir(path.join(dir, 'old', 'deeper'), { recursive: true });
    const watch = await openWatch({ path: dir, recursive: true });
    try {
      expect((await watch.next(5000)).message).toEqual({ start: {} });
      await writeFile(path.join(dir, 'old', 'deeper', 'f.txt'), 'x');
      await watch.waitFor((e) => e.name === 'old/deeper/f.txt' && e.type === 'EVENT_TYPE_CREATE');

      await mkdir(path.join(dir, 'nested'));
      await watch.waitFor((e) => e.name === 'nested' && e.type === 'EVENT_TYPE_CREATE');
      await writeFile(path.join(dir, 'nested', 'in.txt'), 'content');
      await watch.waitFor((e) => e.name === 'nested/in.txt' && e.type === 'EVENT_TYPE_WRITE');

      // A tree made in one go: what appeared before its directory was watched is reported too.
      await mkdir(path.join(dir, 'a', 'b', 'c'), { recursive: true });
      await watch.waitFor((e) => e.name === 'a/b/c' && e.type === 'EVENT_TYPE_CREATE');
      await writeFile(path.join(dir, 'a', 'b', 'c', 'z'), 'z');
      await watch.waitFor((e) => e.name === 'a/b/c/z' && e.type === 'EVENT_TYPE_WRITE');
    } finally {
      watch.close();
    }
  });

  it('ends at once with not_found for a missing directory and invalid_argument for a file', async () => {
    const dir = await fresh();
    const missing = await openWatch({ path: path.join(dir, 'none') });
    const end = await missing.next(5000);
    expect(end.flags & END_STREAM_FLAG).toBe(END_STREAM_FLAG);
    expect(end.message.error.code).toBe('not_found');

    await writeFile(path.join(dir, 'f'), '');
    const file = await openWatch({ path: path.join(dir, 'f') });
    expect((await file.next(5000)).message.error.code).toBe('invalid_argument');
  });
});

describe('polling watchers', () => {
  it('collect events between polls until removed', async () => {
    const dir = await fresh();
    const created = await rpc('CreateWatcher', { path: dir, recursive: true });
    expect(created.status).toBe(200);
    const id = created.json.watcherId;
    expect(typeof id).toBe('string');
    try {
      expect((await rpc('GetWatcherEvents', { watcherId: id })).json).toEqual({ events: [] });
      await writeFile(path.join(dir, 'polled.txt'), 'x');
      const seen: Msg[] = [];
      await eventually(async () => {
        // snake_case, as some clients send it
        seen.push(...(await rpc('GetWatcherEvents', { watcher_id: id })).json.events);
        return seen.some((e) => e.name === 'polled.txt' && e.type === 'EVENT_TYPE_CREATE') || undefined;
      });
      // Events are handed out once.
      expect((await rpc('GetWatcherEvents', { watcherId: id })).json.events).toEqual([]);
    } finally {
      expect((await rpc('RemoveWatcher', { watcherId: id })).status).toBe(200);
    }
    const gone = await rpc('GetWatcherEvents', { watcherId: id });
    expect(gone.status).toBe(404);
    expect(gone.json.code).toBe('not_found');
    expect((await rpc('RemoveWatcher', { watcherId: id })).json.code).toBe('not_found');
    expect((await rpc('CreateWatcher', { path: path.join(dir, 'none') })).json.code).toBe('not_found');
  });
});

describe('POST /envd/files', () => {
  it('writes a multipart part to its filename as a path, creating parents', async () => {
    const dir = await fresh();
    const target = path.join(dir, 'p', 'q', 'hello.txt');
    const form = new FormData();
    form.append('file', new Blob(['hello multipart']), target);
    const r = await upload({}, form);
    expect(r).toEqual({ status: 200, json: [{ name: 'hello.txt', path: target, type: 'file' }] });
    expect(await readFile(target, 'utf8')).toBe('hello multipart');
  });

  it('writes several files in one body, and the path query over a filename', async () => {
    const dir = await fresh();
    const form = new FormData();
    form.append('other', 'ignored field');
    form.append('file', new Blob(['one']), path.join(dir, 'one.txt'));
    form.append('file', new Blob([Buffer.from([0, 1, 2, 255])]), path.join(dir, 'sub', 'two.bin'));
    const r = await upload({}, form);
    expect(r.status).toBe(200);
    expect(r.json).toEqual([
      { name: 'one.txt', path: path.join(dir, 'one.txt'), type: 'file' },
      { name: 'two.bin', path: path.join(dir, 'sub', 'two.bin'), type: 'file' },
    ]);
    expect(await readFile(path.join(dir, 'one.txt'), 'utf8')).toBe('one');
    expect([...(await readFile(path.join(dir, 'sub', 'two.bin')))]).toEqual([0, 1, 2, 255]);

    const byQuery = new FormData();
    byQuery.append('file', new Blob(['q']), 'ignored-name');
    const q = await upload({ path: path.join(dir, 'by-query.txt') }, byQuery);
    expect(q.json).toEqual([{ name: 'by-query.txt', path: path.join(dir, 'by-query.txt'), type: 'file' }]);
  });

  it('writes a raw octet-stream body (plain or gzip) to the path query, overwriting', async () => {
    const dir = await fresh();
    const target = path.join(dir, 'raw', 'data.txt');
    const headers = { 'content-type': 'application/octet-stream' };
    expect((await upload({ path: target }, 'a long first version', headers)).json).toEqual([
      { name: 'data.txt', path: target, type: 'file' },
    ]);
    expect((await upload({ path: target }, 'short', headers)).status).toBe(200);
    expect(await readFile(target, 'utf8')).toBe('short');

    const zipped = await upload({ path: target }, gzipSync('unzipped content'), {
      ...headers,
      'content-encoding': 'gzip',
    });
    expect(zipped.status).toBe(200);
    expect(await readFile(target, 'utf8')).toBe('unzipped content');

    const noPath = await upload({}, 'x', headers);
    expect(noPath.status).toBe(400);
    expect(noPath.json.code).toBe(400);
  });

  it('streams bodies larger than the envd scope buffer limit (16 MiB), both encodings', async () => {
    const dir = await fresh();
    const data = randomBytes(20 * 1024 * 1024);
    const raw = path.join(dir, 'big.raw');
    const r = await upload({ path: raw }, data, { 'content-type': 'application/octet-stream' });
    expect(r.status).toBe(200);
    expect((await readFile(raw)).equals(data)).toBe(true);

    const form = new FormData();
    form.append('file', new Blob([data]), path.join(dir, 'big.part'));
    expect((await upload({}, form)).status).toBe(200);
    expect((await readFile(path.join(dir, 'big.part'))).equals(data)).toBe(true);
  });

  it('refuses a directory as the target, an unknown user, and a body with no file part', async () => {
    const dir = await fresh();
    const onDir = await upload({ path: dir }, 'x', { 'content-type': 'application/octet-stream' });
    expect(onDir).toEqual({ status: 400, json: { code: 400, message: `path '${dir}' is a directory` } });

    const user = await upload({ path: path.join(dir, 'u'), username: 'no-such-user-here' }, 'x', {
      'content-type': 'application/octet-stream',
    });
    expect(user.status).toBe(401);
    expect(user.json).toEqual({ code: 401, message: "invalid username: 'no-such-user-here'" });

    const form = new FormData();
    form.append('notfile', 'x');
    expect((await upload({}, form)).status).toBe(400);
  });
});

describe('GET /envd/files', () => {
  it('sends the raw bytes with envd headers', async () => {
    const dir = await fresh();
    const file = path.join(dir, 'down.bin');
    const data = randomBytes(100_000);
    await writeFile(file, data);
    const res = await download({ path: file });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe('inline; filename=down.bin');
    expect(res.headers.get('content-length')).toBe('100000');
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);

    await writeFile(path.join(dir, 'empty'), '');
    const empty = await download({ path: path.join(dir, 'empty') });
    expect(empty.status).toBe(200);
    expect(empty.headers.get('content-length')).toBe('0');
    expect(await empty.text()).toBe('');
  });

  it('answers 400 for a directory and 404 for a missing file, in envd error bodies', async () => {
    const dir = await fresh();
    const onDir = await download({ path: dir });
    expect(onDir.status).toBe(400);
    expect(await onDir.json()).toEqual({ code: 400, message: `path '${dir}' is a directory` });
    const missing = path.join(dir, 'missing.txt');
    const gone = await download({ path: missing });
    expect(gone.status).toBe(404);
    expect(await gone.json()).toEqual({ code: 404, message: `path '${missing}' does not exist` });
    expect((await download({ path: missing, username: 'no-such-user-here' })).status).toBe(401);
  });

  it('needs the session key', async () => {
    const res = await fetch(filesUrl({ path: '/etc/hostname' }));
    expect(res.status).toBe(401);
  });
});

describe('users and relative paths', () => {
  it("resolves relative paths and ~ against the user's home", async () => {
    const home = selfAccount?.home ?? os.homedir();
    const name = `berth-envd-test-${randomBytes(4).toString('hex')}`;
    const expected = path.join(home, name, 'rel.txt');
    try {
      const r = await upload({ path: `${name}/rel.txt` }, 'relative', {
        'content-type': 'application/octet-stream',
      });
      expect(r.json).toEqual([{ name: 'rel.txt', path: expected, type: 'file' }]);
      expect(await readFile(expected, 'utf8')).toBe('relative');
      expect((await rpc('Stat', { path: `~/${name}/rel.txt` })).json.entry.path).toBe(expected);
      const listed = await rpc('ListDir', { path: name });
      expect(listed.json.entries.map((e: Msg) => e.path)).toEqual([expected]);
      expect(await (await download({ path: `${name}/rel.txt` })).text()).toBe('relative');
    } finally {
      await rm(path.join(home, name), { recursive: true, force: true });
    }
  });

  it.runIf(isRoot && findAccount('nobody'))(
    "as root, hands another account's new files and directories to it",
    async () => {
      const nobody = findAccount('nobody')!;
      const dir = await fresh();
      const made = await rpc(
        'MakeDir',
        { path: path.join(dir, 'm', 'n') },
        { authorization: basicAuth('nobody') },
      );
      expect(made.json.entry).toMatchObject({ owner: 'nobody' });
      expect((await stat(path.join(dir, 'm'))).uid).toBe(nobody.uid);

      const target = path.join(dir, 'up', 'f.txt');
      const r = await upload({ path: target, username: 'nobody' }, 'x', {
        'content-type': 'application/octet-stream',
      });
      expect(r.status).toBe(200);
      expect((await stat(target)).uid).toBe(nobody.uid);
      expect((await stat(path.join(dir, 'up'))).gid).toBe(nobody.gid);
      expect((await stat(dir)).uid).toBe(process.getuid?.());
    },
  );
});

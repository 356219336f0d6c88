/**
 * /upload_file, /download_files and /list_files through a real listening server (built by
 * createRuntimeHttpServer, so the error vocabulary and body parsing are the production ones), driven
 * with fetch. Includes a 1 GiB upload and download whose memory use is measured in this process.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { toBerthError } from '../../src/http/errors.js';
import { createRuntimeHttpServer } from '../../src/runtime-server/http.js';
import { lazy } from '../../src/runtime-server/lazy.js';
import { registerFileRoutes } from '../../src/runtime-server/openhands/file-routes.js';
import type { RuntimeServices } from '../../src/runtime-server/services.js';
import { buildZip, openFdCount, readZip, S_IFLNK, snapshot } from './transfer-helpers.js';

const logger = pino({ level: 'silent' });

let root: string;
let workingDir: string;
let app: FastifyInstance;
let base: string;

/** Just what the file routes use; the action executor is not needed here. */
function minimalServices(): RuntimeServices {
  return {
    options: { workingDir, noChangeTimeoutSeconds: 10, logger },
    transfer: lazy(() => import('../../src/runtime-server/core/transfer/index.js')),
    // Never made here; the server's shutdown asks it to close its sessions if it was.
    mcp: lazy(async () => {
      throw new Error('no MCP in this test');
    }),
    ready: () => true,
    serverInfo: async () => ({}),
  } as unknown as RuntimeServices;
}

async function listen(server: FastifyInstance): Promise<string> {
  await server.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'berth-transfer-http-'));
  workingDir = path.join(root, 'workspace');
  await mkdir(workingDir);
  app = await createRuntimeHttpServer(minimalServices(), { logger });
  base = await listen(app);
});
afterAll(async () => {
  await app?.close();
  await rm(root, { recursive: true, force: true });
});

let dest: string;
let caseNo = 0;
beforeEach(async () => {
  dest = path.join(root, `dest-${++caseNo}`);
});

function form(parts: Record<string, Blob | string>, filenames: Record<string, string> = {}): FormData {
  const fd = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (typeof value === 'string') fd.append(name, value);
    else fd.append(name, value, filenames[name] ?? 'blob');
  }
  return fd;
}

function uploadUrl(query: Record<string, string>): string {
  return `${base}/upload_file?${new URLSearchParams(query)}`;
}

async function postUpload(
  query: Record<string, string>,
  body: FormData | string,
  headers?: Record<string, string>,
) {
  const res = await fetch(uploadUrl(query), { method: 'POST', body, headers });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

describe('POST /upload_file', () => {
  it('saves a file and answers like the reference', async () => {
    const r = await postUpload(
      { destination: dest },
      form({ file: new Blob(['hello world']) }, { file: 'hello.txt' }),
    );
    expect(r).toEqual({ status: 200, json: { filename: 'hello.txt', destination: dest, recursive: false } });
    expect(await readFile(path.join(dest, 'hello.txt'), 'utf8')).toBe('hello world');
    expect((await stat(path.join(dest, 'hello.txt'))).uid).toBe(process.getuid?.());
  });

  it('recursive=true unpacks a zip; a .zip name is unpacked without it', async () => {
    const zip = buildZip([
      { name: 'proj/', mode: 0o040755 },
      { name: 'proj/main.py', data: 'print(1)\n' },
      { name: 'proj/link', data: 'main.py', mode: S_IFLNK | 0o777, method: 0 },
    ]);
    const r = await postUpload(
      { destination: dest, recursive: 'true' },
      form({ file: new Blob([zip]) }, { file: 'tmp123.zip' }),
    );
    expect(r).toEqual({ status: 200, json: { filename: 'tmp123.zip', destination: dest, recursive: true } });
    expect(await snapshot(dest)).toEqual({
      proj: 'dir',
      'proj/link': '-> main.py',
      'proj/main.py': 'print(1)\n',
    });

    const other = path.join(dest, 'second');
    const r2 = await postUpload({ destination: other }, form({ file: new Blob([zip]) }, { file: 'p.zip' }));
    expect(r2.json.recursive).toBe(false);
    expect(await exists(path.join(other, 'proj', 'main.py'))).toBe(true);
    expect(await exists(path.join(other, 'p.zip'))).toBe(false);
  });

  it('accepts the booleans FastAPI accepts and nothing else', async () => {
    for (const word of ['True', '1', 'yes', 'off']) {
      const r = await postUpload(
        { destination: dest, recursive: word },
        form({ file: new Blob([buildZip([{ name: 'z.txt', data: 'z' }])]) }, { file: 'z.zip' }),
      );
      expect(r.status, word).toBe(200);
    }
    const bad = await postUpload({ destination: dest, recursive: 'maybe' }, form({ file: new Blob(['x']) }));
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(String(bad.json.message)).toContain('recursive');
  });

  it('rejects a relative or repeated destination with 400', async () => {
    const rel = await postUpload(
      { destination: 'workspace' },
      form({ file: new Blob(['x']) }, { file: 'a.txt' }),
    );
    expect(rel.status).toBe(400);
    expect(rel.json.code).toBe('VALIDATION_FAILED');
    const twice = await fetch(`${base}/upload_file?destination=/a&destination=/b`, {
      method: 'POST',
      body: form({ file: new Blob(['x']) }),
    });
    expect(twice.status).toBe(400);
  });

  it('a missing "file" field is 400 naming it; a text field named "file" too', async () => {
    const missing = await postUpload(
      { destination: dest },
      form({ other: new Blob(['x']) }, { other: 'x.txt' }),
    );
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(String(missing.json.message)).toContain('"file"');
    const text = await postUpload({ destination: dest }, form({ file: 'just text' }));
    expect(text.status).toBe(400);
    expect(String(text.json.message)).toContain('"file"');
    expect(await exists(dest)).toBe(false);
  });

  it('a body that is not multipart gets our JSON error', async () => {
    const json = await postUpload({ destination: dest }, JSON.stringify({ file: 'x' }), {
      'content-type': 'application/json',
    });
    expect(json.status).toBe(415);
    expect(json.json.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const text = await postUpload({ destination: dest }, 'plain', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.json.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const broken = await postUpload({ destination: dest }, 'no boundary here', {
      'content-type': 'multipart/form-data',
    });
    expect([400, 415]).toContain(broken.status);
    expect(typeof broken.json.code).toBe('string');
  });

  it.each([
    ['../escape.txt', 'PATH_NOT_ALLOWED'],
    ['sub/dir.txt', 'PATH_NOT_ALLOWED'],
    ['..', 'PATH_NOT_ALLOWED'],
  ])('refuses the file name %j with 400 %s', async (name, code) => {
    const r = await postUpload({ destination: dest }, form({ file: new Blob(['x']) }, { file: name }));
    expect(r.status).toBe(400);
    expect(r.json.code).toBe(code);
    expect(await exists(path.join(root, 'escape.txt'))).toBe(false);
    expect(await exists(dest)).toBe(false);
  });

  it('a zip slip is 400 PATH_NOT_ALLOWED with nothing written, and the connection keeps working', async () => {
    const zip = buildZip([
      { name: 'fine.txt', data: 'ok' },
      { name: '../../outside.txt', data: 'pwned' },
    ]);
    const r = await postUpload(
      { destination: dest, recursive: 'true' },
      form({ file: new Blob([zip]) }, { file: 'a.zip' }),
    );
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('PATH_NOT_ALLOWED');
    expect(await exists(dest)).toBe(false);
    expect(await exists(path.join(root, '..', 'outside.txt'))).toBe(false);
    const after = await fetch(`${base}/list_files`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(after.status).toBe(200);
  });

  it('a corrupt zip is 400 BAD_ARCHIVE', async () => {
    const r = await postUpload(
      { destination: dest, recursive: 'true' },
      form({ file: new Blob(['PK\x03\x04 definitely not a zip']) }, { file: 'x.zip' }),
    );
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('BAD_ARCHIVE');
  });

  it('an error found before the body is read still lets a large body finish and gets its reply', async () => {
    await writeFile(dest, 'a file where the destination directory should be');
    const big = new Blob([Buffer.alloc(16 * 1024 * 1024, 1)]);
    const r = await postUpload({ destination: dest }, form({ file: big }, { file: 'big.bin' }));
    expect(r.status).toBe(409);
    expect(r.json.code).toBe('CONFLICT');
  });

  it('a file over the per-file limit is 413 and leaves no partial file', async () => {
    const small = Fastify({ logger: false });
    small.setErrorHandler((error, _req, reply) => {
      const berth = toBerthError(error);
      reply.code(berth.status).send(berth.toBody());
    });
    await registerFileRoutes(small, minimalServices(), { maxUploadFileBytes: 64 * 1024 });
    const smallBase = await listen(small);
    try {
      const res = await fetch(`${smallBase}/upload_file?destination=${encodeURIComponent(dest)}`, {
        method: 'POST',
        body: form({ file: new Blob([Buffer.alloc(1024 * 1024, 2)]) }, { file: 'too-big.bin' }),
      });
      const body413 = await res.clone().text();
      expect(res.status, body413).toBe(413);
      expect(await res.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      expect(await exists(path.join(dest, 'too-big.bin'))).toBe(false);
      const ok = await fetch(`${smallBase}/upload_file?destination=${encodeURIComponent(dest)}`, {
        method: 'POST',
        body: form({ file: new Blob([Buffer.alloc(1024, 2)]) }, { file: 'fits.bin' }),
      });
      expect(ok.status).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe('GET /download_files', () => {
  it('sends a directory as a zip attachment named <basename>.zip', async () => {
    const tree = path.join(root, 'tree');
    await mkdir(path.join(tree, 'sub'), { recursive: true });
    await writeFile(path.join(tree, 'a.txt'), 'A');
    await writeFile(path.join(tree, 'sub', '.b'), 'B');
    const res = await fetch(`${base}/download_files?path=${encodeURIComponent(tree)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="tree.zip"');
    const zip = await readZip(Buffer.from(await res.arrayBuffer()));
    expect(zip.names.sort()).toEqual(['a.txt', 'sub/.b']);
    expect(zip.files.get('sub/.b')?.toString()).toBe('B');
  });

  it('sends a single file as a zip holding it; non-ASCII names use filename*', async () => {
    const file = path.join(root, 'données é.txt');
    await writeFile(file, 'contenu');
    const res = await fetch(`${base}/download_files?path=${encodeURIComponent(file)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename*=utf-8''${encodeURIComponent('données é.txt.zip')}`,
    );
    const zip = await readZip(Buffer.from(await res.arrayBuffer()));
    expect(zip.names).toEqual(['données é.txt']);
    expect(zip.files.get('données é.txt')?.toString()).toBe('contenu');
  });

  it('missing path is 404, relative 400, no path 400, all as JSON errors', async () => {
    const missing = await fetch(`${base}/download_files?path=${encodeURIComponent(path.join(root, 'nope'))}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'NOT_FOUND' });
    const rel = await fetch(`${base}/download_files?path=relative`);
    expect(rel.status).toBe(400);
    expect(await rel.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    const none = await fetch(`${base}/download_files`);
    expect(none.status).toBe(400);
    expect(await none.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('a client that goes away mid-download leaves no file open on the server', async () => {
    const tree = path.join(root, 'abandon');
    await mkdir(tree);
    for (let i = 0; i < 3; i++)
      await writeFile(path.join(tree, `f${i}.bin`), Buffer.alloc(32 * 1024 * 1024, i + 1));
    const before = await openFdCount();
    const controller = new AbortController();
    const res = await fetch(`${base}/download_files?path=${encodeURIComponent(tree)}`, {
      signal: controller.signal,
    });
    const reader = (res.body as WebReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => undefined);
    let now = await openFdCount();
    for (let i = 0; i < 50 && now > before; i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = await openFdCount();
    }
    expect(now).toBeLessThanOrEqual(before);
  });
});

describe('POST /list_files', () => {
  beforeAll(async () => {
    await mkdir(path.join(workingDir, 'src'), { recursive: true });
    await mkdir(path.join(workingDir, '.git'), { recursive: true });
    await writeFile(path.join(workingDir, 'README.md'), '');
    await writeFile(path.join(workingDir, '.env'), '');
    await writeFile(path.join(workingDir, 'src', 'x.ts'), '');
  });

  async function list(body?: string, contentType = 'application/json') {
    const res = await fetch(`${base}/list_files`, {
      method: 'POST',
      body,
      headers: body === undefined ? {} : { 'content-type': contentType },
    });
    return { status: res.status, json: (await res.json()) as unknown };
  }

  it('lists the initial cwd when no path is given, relative paths against it', async () => {
    const expected = ['.git/', 'src/', '.env', 'README.md'];
    expect(await list('{}')).toEqual({ status: 200, json: expected });
    expect(await list()).toEqual({ status: 200, json: expected });
    expect(await list(JSON.stringify({ path: null }))).toEqual({ status: 200, json: expected });
    expect(await list(JSON.stringify({ path: 'src' }))).toEqual({ status: 200, json: ['x.ts'] });
    expect(await list(JSON.stringify({ path: path.join(workingDir, 'src') }))).toEqual({
      status: 200,
      json: ['x.ts'],
    });
    expect(await list(JSON.stringify({ path: 'missing' }))).toEqual({ status: 200, json: [] });
  });

  it('a wrongly typed path or body is 400', async () => {
    const r = await list(JSON.stringify({ path: 5 }));
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await list('[1]')).status).toBe(400);
    expect((await list('{"path":')).status).toBe(400);
  });
});

/**
 * 1 MiB of random bytes, repeated to make the big file: incompressible within deflate's 32 KiB window,
 * so the download zip stores it and a full gibibyte crosses the wire in both directions.
 */
function randomBlock(): Buffer {
  return randomBytes(1024 * 1024);
}

async function* multipartBody(boundary: string, filename: string, file: string): AsyncGenerator<Buffer> {
  yield Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) yield chunk as Buffer;
  yield Buffer.from(`\r\n--${boundary}--\r\n`);
}

/**
 * Sends a file as multipart/form-data with http.request, streamed from disk. (fetch is not used for
 * this: undici keeps every chunk of a streamed request body in memory, nodejs/undici#4058.)
 */
async function streamingUpload(url: string, filename: string, file: string) {
  const boundary = `----berth${Date.now()}`;
  const req = http.request(url, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  });
  const response = new Promise<{ status: number; json: unknown }>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () =>
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }),
      );
    });
  });
  await pipeline(Readable.from(multipartBody(boundary, filename, file)), req);
  return response;
}

function sampleRss(intervalMs: number): { stop(): { baseline: number; peak: number } } {
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return { baseline, peak };
    },
  };
}

async function sha256OfEntry(zipPath: string): Promise<{ name: string; size: number; sha256: string }> {
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true });
  try {
    for await (const entry of zip.eachEntry()) {
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of await zip.openReadStreamPromise(entry)) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      return { name: entry.fileName, size, sha256: hash.digest('hex') };
    }
    throw new Error('empty zip');
  } finally {
    zip.close();
  }
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('streaming', () => {
  const GiB = 1024 ** 3;
  const MiB = 1024 ** 2;

  it('uploads and downloads 1 GiB with less than 100 MiB of memory growth', {
    timeout: 120_000,
  }, async () => {
    const work = path.join(root, 'big');
    await mkdir(work);
    const source = path.join(work, 'source.bin');
    const block = randomBlock();
    const expected = createHash('sha256');
    const out = createWriteStream(source);
    for (let i = 0; i < GiB / block.length; i++) {
      expected.update(block);
      if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    const expectedSha = expected.digest('hex');

    const target = path.join(work, 'uploaded');
    const started = Date.now();
    const upSampler = sampleRss(20);
    const up = await streamingUpload(uploadUrl({ destination: target }), 'one-gib.bin', source);
    expect(up).toEqual({
      status: 200,
      json: { filename: 'one-gib.bin', destination: target, recursive: false },
    });
    const upMemory = upSampler.stop();
    const uploadedMs = Date.now() - started;

    const downSampler = sampleRss(20);
    const zipPath = path.join(work, 'download.zip');
    const down = await fetch(
      `${base}/download_files?path=${encodeURIComponent(path.join(target, 'one-gib.bin'))}`,
    );
    expect(down.status).toBe(200);
    await pipeline(Readable.fromWeb(down.body as WebReadableStream<Uint8Array>), createWriteStream(zipPath));
    const downMemory = downSampler.stop();
    const downloadedMs = Date.now() - started - uploadedMs;

    const upGrowth = (upMemory.peak - upMemory.baseline) / MiB;
    const downGrowth = (downMemory.peak - downMemory.baseline) / MiB;
    console.log(
      `1 GiB upload: ${uploadedMs} ms, RSS ${(upMemory.baseline / MiB).toFixed(0)} -> peak ${(upMemory.peak / MiB).toFixed(0)} MiB (+${upGrowth.toFixed(1)}); ` +
        `download: ${downloadedMs} ms, RSS ${(downMemory.baseline / MiB).toFixed(0)} -> peak ${(downMemory.peak / MiB).toFixed(0)} MiB (+${downGrowth.toFixed(1)})`,
    );
    expect(upGrowth).toBeLessThan(100);
    expect(downGrowth).toBeLessThan(100);

    // And the bytes are right at both ends.
    expect((await stat(path.join(target, 'one-gib.bin'))).size).toBe(GiB);
    expect(await sha256OfFile(path.join(target, 'one-gib.bin'))).toBe(expectedSha);
    expect(await sha256OfEntry(zipPath)).toEqual({ name: 'one-gib.bin', size: GiB, sha256: expectedSha });
    expect(await readdir(target)).toEqual(['one-gib.bin']);
    await rm(work, { recursive: true, force: true });
  });
});

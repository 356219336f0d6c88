/**
 * envd's plain file transfer: `GET /files` (download) and `POST /files` (upload, as multipart parts
 * named `file` or as a raw `application/octet-stream` body), under the /envd scope. Bodies stream
 * straight to and from disk, so a file's size is bounded by free space, never by memory.
 *
 * Errors are envd's shape, `{"code": <HTTP status>, "message"}`, which the SDKs map by status
 * (404 FileNotFoundError, 401 for an unknown user, 507 NotEnoughSpaceError).
 *
 * Also the path rules the Filesystem service shares: relative paths and `~` resolve against the
 * user's home, and directories made for another account are handed to it.
 */
import { constants, type Stats } from 'node:fs';
import { chown, type FileHandle, mkdir, open } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ConnectError } from '../../protocol/connect.js';
import { type EnvdUser, envdUser } from './users.js';

/** Files (parts named `file`) accepted in one multipart upload: the SDK sends one per written file. */
const MAX_UPLOAD_FILES = 1000;
/** Parts of any name read in one upload; the others are skipped, but each costs a parse. */
const MAX_MULTIPART_PARTS = 2 * MAX_UPLOAD_FILES;
/** Largest header block of one multipart part: a few headers and a file name (paths are ≤ 4 KiB). */
const MAX_PART_HEADER_BYTES = 16 * 1024;
const FILE_FIELD = 'file';

/** A failure answered with this status and envd's error body. */
class FilesError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------
// Paths and ownership (shared with the Filesystem service)

/** The absolute path a client's path names: `~` and relative paths start at the user's home. */
export function resolveUserPath(user: EnvdUser, given: string): string {
  const home = user.account.home || '/';
  if (given === '~') return path.resolve(home);
  if (given.startsWith('~/')) return path.resolve(home, given.slice(2));
  return path.resolve(home, given);
}

export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Who should own what is created for `user`: only set when this server runs as root for another
 * account (otherwise new files are this server's user's, which is the user or the best it can do).
 */
export function ownerFor(user: EnvdUser): Owner | undefined {
  return user.runAs.kind === 'ids' ? { uid: user.runAs.uid, gid: user.runAs.gid } : undefined;
}

/** `mkdir -p dir`, handing each directory it made to `owner`; true if it made any. */
export async function makeDirs(dir: string, owner: Owner | undefined): Promise<boolean> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return false;
  if (owner) {
    for (let d = dir; ; d = path.dirname(d)) {
      await chown(d, owner.uid, owner.gid);
      if (d === first || d === path.dirname(d)) break;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Routes

interface FilesQuery {
  path?: string;
  username?: string;
}

export const filesRoutes: FastifyPluginAsync = async (scope) => {
  // Uploads are read by the handler as they arrive, whatever they claim to be.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  scope.setErrorHandler((err, _req, reply) => sendError(reply, toFilesError(err)));

  scope.get<{ Querystring: FilesQuery }>('/files', async (req, reply) => {
    try {
      const user = envdUser(queryString(req, 'username'));
      return await download(resolveUserPath(user, queryString(req, 'path') ?? ''), reply);
    } catch (err) {
      return sendError(reply, toFilesError(err));
    }
  });

  scope.post<{ Querystring: FilesQuery }>('/files', async (req, reply) => {
    let body: BodySource | undefined;
    try {
      const user = envdUser(queryString(req, 'username'));
      body = bodySource(req.raw, req.headers['content-encoding']);
      const written = await upload(req, user, body);
      return reply.code(200).type('application/json').send(JSON.stringify(written));
    } catch (err) {
      // Read the rest first: answering mid-upload and closing makes clients report a broken pipe.
      await (body ?? bodySource(req.raw, undefined)).discard();
      return sendError(reply, toFilesError(err));
    }
  });
};

function queryString(req: FastifyRequest, name: keyof FilesQuery): string | undefined {
  const value = (req.query as FilesQuery | undefined)?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new FilesError(400, `query parameter '${name}' must be given once`);
  return value;
}

function sendError(reply: FastifyReply, err: FilesError): FastifyReply {
  return reply
    .code(err.status)
    .type('application/json')
    .send(JSON.stringify({ code: err.status, message: err.message }));
}

function toFilesError(err: unknown): FilesError {
  if (err instanceof FilesError) return err;
  if (err instanceof ConnectError) return new FilesError(err.status, err.message);
  const e = err as NodeJS.ErrnoException & { statusCode?: number };
  const where = e?.path ? ` '${e.path}'` : '';
  switch (e?.code) {
    case 'ENOENT':
      return new FilesError(404, `path${where} does not exist`);
    case 'EISDIR':
      return new FilesError(400, `path${where} is a directory`);
    case 'ENOTDIR':
      return new FilesError(400, `a parent of path${where} is not a directory`);
    case 'ENAMETOOLONG':
    case 'ELOOP':
    case 'EINVAL':
      return new FilesError(400, e.message);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new FilesError(403, `permission denied: ${e.message}`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new FilesError(507, 'not enough disk space');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new FilesError(e.statusCode, e.message);
  }
  return new FilesError(500, (err as Error)?.message ?? String(err));
}

// ---------------------------------------------------------------------------------------------------
// Download

async function download(target: string, reply: FastifyReply): Promise<FastifyReply> {
  let handle: FileHandle;
  try {
    // Non-blocking, so a FIFO cannot hang the request; its kind is checked on the open descriptor.
    handle = await open(target, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FilesError(404, `path '${target}' does not exist`);
    }
    throw err;
  }
  let stats: Stats;
  try {
    stats = await handle.stat();
    if (stats.isDirectory()) throw new FilesError(400, `path '${target}' is a directory`);
    if (!stats.isFile()) throw new FilesError(400, `path '${target}' is not a regular file`);
  } catch (err) {
    await handle.close();
    throw err;
  }
  reply
    .code(200)
    .header('content-type', 'application/octet-stream')
    .header('content-disposition', inlineDisposition(path.basename(target)))
    .header('content-length', stats.size)
    .header('last-modified', stats.mtime.toUTCString());
  if (stats.size === 0) {
    await handle.close();
    return reply.send(Buffer.alloc(0));
  }
  // Bounded to the size announced, in case the file grows while it is sent.
  const stream = handle.createReadStream({ start: 0, end: stats.size - 1 });
  reply.raw.once('close', () => stream.destroy());
  return reply.send(stream);
}

/** `inline; filename=…` as Go's mime.FormatMediaType writes it: a token, a quoted string, or RFC 2231. */
function inlineDisposition(name: string): string {
  if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return `inline; filename=${name}`;
  if (/^[\x20-\x7e]*$/.test(name)) return `inline; filename="${name.replace(/["\\]/g, '\\$&')}"`;
  const encoded = encodeURIComponent(name).replace(
    /['()*!]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `inline; filename*=utf-8''${encoded}`;
}

// ---------------------------------------------------------------------------------------------------
// Upload

interface WrittenFile {
  name: string;
  path: string;
  type: 'file';
}

/** The request body as chunks (decompressed when gzip), and a way to throw the rest away. */
interface BodySource {
  next(): Promise<Buffer | undefined>;
  discard(): Promise<void>;
}

function bodySource(raw: IncomingMessage, encoding: string | undefined): BodySource {
  const coding = (encoding ?? 'identity').trim().toLowerCase();
  if (coding !== 'identity' && coding !== '' && coding !== 'gzip' && coding !== 'x-gzip') {
    throw new FilesError(415, `unsupported Content-Encoding '${encoding}': send identity or gzip`);
  }
  let gunzip: zlib.Gunzip | undefined;
  if (coding === 'gzip' || coding === 'x-gzip') {
    const g = zlib.createGunzip();
    raw.once('error', (err) => g.destroy(err));
    raw.once('close', () => {
      if (!raw.readableEnded) g.destroy(new FilesError(400, 'the upload was interrupted'));
    });
    gunzip = raw.pipe(g);
  }
  const stream: Readable = gunzip ?? raw;
  // Not destroyed on return, so the rest of the request can still be read and dropped.
  const it = stream.iterator({ destroyOnReturn: false });
  return {
    async next() {
      try {
        const r = await it.next();
        return r.done ? undefined : (r.value as Buffer);
      } catch (err) {
        if ((err as { code?: string }).code?.startsWith('Z_')) {
          throw new FilesError(400, `the gzip body is invalid: ${(err as Error).message}`);
        }
        throw err;
      }
    },
    async discard() {
      await it.return?.();
      if (gunzip) {
        raw.unpipe(gunzip);
        gunzip.destroy();
      }
      await drain(raw);
    },
  };
}

async function drain(raw: IncomingMessage): Promise<void> {
  if (raw.readableEnded || raw.destroyed) return;
  await new Promise<void>((resolve) => {
    raw.once('end', resolve);
    raw.once('close', resolve);
    raw.once('error', () => resolve());
    raw.resume();
  });
}

async function upload(req: FastifyRequest, user: EnvdUser, body: BodySource): Promise<WrittenFile[]> {
  const given = queryString(req, 'path');
  const type = (req.headers['content-type'] ?? 'application/octet-stream').toLowerCase();
  const owner = ownerFor(user);
  if (type.startsWith('multipart/form-data')) {
    const boundary = boundaryOf(req.headers['content-type'] as string);
    return uploadParts(new MultipartReader(body, boundary), given, user, owner);
  }
  if (!type.startsWith('application/octet-stream')) {
    throw new FilesError(
      400,
      `unsupported Content-Type '${req.headers['content-type']}': send multipart/form-data or application/octet-stream`,
    );
  }
  if (!given)
    throw new FilesError(400, "an application/octet-stream upload needs the 'path' query parameter");
  const target = resolveUserPath(user, given);
  await writeFileFrom(target, chunksOf(body), owner);
  return [written(target)];
}

async function uploadParts(
  reader: MultipartReader,
  given: string | undefined,
  user: EnvdUser,
  owner: Owner | undefined,
): Promise<WrittenFile[]> {
  const out: WrittenFile[] = [];
  for (let parts = 0; ; parts++) {
    const headers = await reader.nextPart();
    if (!headers) break;
    if (parts >= MAX_MULTIPART_PARTS) throw new FilesError(400, `more than ${MAX_MULTIPART_PARTS} parts`);
    const disposition = parseDisposition(headers.get('content-disposition') ?? '');
    if (disposition.name !== FILE_FIELD) continue;
    if (out.length >= MAX_UPLOAD_FILES) throw new FilesError(400, `more than ${MAX_UPLOAD_FILES} files`);
    // envd takes the part's file name as a whole path, not just its last component.
    const name = given || disposition.filename;
    if (!name) throw new FilesError(400, "a 'file' part needs a filename when no 'path' is given");
    const target = resolveUserPath(user, name);
    await writeFileFrom(target, reader.body(), owner);
    out.push(written(target));
  }
  await reader.rest();
  if (out.length === 0) throw new FilesError(400, `the multipart body has no part named '${FILE_FIELD}'`);
  return out;
}

function written(target: string): WrittenFile {
  return { name: path.basename(target), path: target, type: 'file' };
}

async function* chunksOf(body: BodySource): AsyncGenerator<Buffer> {
  for (let chunk = await body.next(); chunk !== undefined; chunk = await body.next()) yield chunk;
}

/** Creates or overwrites `target` in place with `data`, making its parent directories first. */
async function writeFileFrom(
  target: string,
  data: AsyncIterable<Buffer>,
  owner: Owner | undefined,
): Promise<void> {
  await makeDirs(path.dirname(target), owner);
  let handle: FileHandle;
  try {
    // Non-blocking so a FIFO at the path fails at once instead of waiting for a reader.
    handle = await open(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_NONBLOCK | constants.O_NOCTTY,
      0o666,
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') {
      throw new FilesError(400, `path '${target}' is a directory`);
    }
    throw err;
  }
  try {
    if (!(await handle.stat()).isFile()) throw new FilesError(400, `path '${target}' is not a regular file`);
    await handle.truncate(0);
    if (owner) await handle.chown(owner.uid, owner.gid);
    // Written by hand, not through createWriteStream: a stream holds a reference on the handle
    // that makes handle.close() wait forever unless the stream closes it.
    let offset = 0;
    for await (const chunk of data) {
      for (let done = 0; done < chunk.length; ) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, offset);
        done += bytesWritten;
        offset += bytesWritten;
      }
    }
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Multipart (RFC 7578), parsed as it streams

function boundaryOf(contentType: string): string {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary || boundary.length > 200) {
    throw new FilesError(400, 'the multipart/form-data Content-Type has no valid boundary');
  }
  return boundary;
}

/** `name` and `filename` of a part's Content-Disposition (quoted, bare, or RFC 5987 `filename*`). */
function parseDisposition(header: string): { name?: string; filename?: string } {
  const params: Record<string, string> = {};
  const re = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  for (let m = re.exec(header); m; m = re.exec(header)) {
    const key = (m[1] as string).toLowerCase();
    const value = m[2] !== undefined ? m[2].replace(/\\(["\\])/g, '$1') : (m[3] ?? '').trim();
    params[key] = value;
  }
  let filename = params.filename;
  const extended = params['filename*'];
  if (extended !== undefined) {
    const ext = /^utf-8'[^']*'(.*)$/i.exec(extended);
    if (ext) {
      try {
        filename = decodeURIComponent(ext[1] as string);
      } catch {
        // a malformed escape: keep the plain filename
      }
    }
  }
  return { name: params.name, filename };
}

/**
 * Pulls parts out of a multipart body one at a time: `nextPart()` gives a part's headers, `body()`
 * its content as chunks. Holds at most one chunk and a delimiter's worth of bytes.
 */
class MultipartReader {
  private buf: Buffer;
  private readonly delimiter: Buffer;
  private ended = false;

  constructor(
    private readonly source: BodySource,
    boundary: string,
  ) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
    // The first boundary has no CRLF before it; one is supplied so every delimiter looks alike.
    this.buf = Buffer.from('\r\n', 'latin1');
  }

  private async fill(what: string): Promise<void> {
    const chunk = await this.source.next();
    if (chunk === undefined) throw new FilesError(400, `the multipart body ended ${what}`);
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The headers of the next part (names lowercased), or undefined after the closing delimiter. */
  async nextPart(): Promise<Map<string, string> | undefined> {
    if (this.ended) return undefined;
    // Skip the preamble, or what is left of a part nobody read.
    for (;;) {
      const at = this.buf.indexOf(this.delimiter);
      if (at >= 0) {
        this.buf = this.buf.subarray(at + this.delimiter.length);
        break;
      }
      this.buf = this.buf.subarray(Math.max(0, this.buf.length - this.delimiter.length + 1));
      await this.fill('before its closing boundary');
    }
    while (this.buf.length < 2) await this.fill('after a boundary');
    if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
      this.ended = true;
      return undefined;
    }
    let end = this.buf.indexOf('\r\n\r\n');
    while (end < 0) {
      if (this.buf.length > MAX_PART_HEADER_BYTES) throw new FilesError(400, 'a part has too large headers');
      await this.fill('inside a part header');
      end = this.buf.indexOf('\r\n\r\n');
    }
    const lines = this.buf.subarray(0, end).toString('utf8').split('\r\n');
    this.buf = this.buf.subarray(end + 4);
    // The first line is what followed the boundary on its line (transport padding).
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    return headers;
  }

  /** The current part's content, up to the next delimiter. */
  async *body(): AsyncGenerator<Buffer> {
    const keep = this.delimiter.length - 1;
    for (;;) {
      const at = this.buf.indexOf(this.delimiter);
      if (at >= 0) {
        if (at > 0) yield this.buf.subarray(0, at);
        this.buf = this.buf.subarray(at);
        return;
      }
      // Everything but a tail that may be the start of the delimiter is content.
      if (this.buf.length > keep) {
        const out = this.buf.subarray(0, this.buf.length - keep);
        this.buf = this.buf.subarray(this.buf.length - keep);
        yield out;
      }
      await this.fill('inside a part');
    }
  }

  /** Reads past the closing delimiter (the epilogue), so the request is complete. */
  async rest(): Promise<void> {
    while ((await this.source.next()) !== undefined) {
      // discarded
    }
  }
}

/**
 * The OpenHands adapter's file routes: POST /upload_file, GET /download_files, POST /list_files.
 * Handlers parse the request, call the transfer core, and shape the reply; the reply bodies are the
 * reference's, and errors are the Berth error vocabulary (the reference answers most of them with 500).
 * The transfer core (with its zip libraries) is loaded by the first of these requests: services.transfer.
 */

import { PassThrough, type Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { booleanWord } from '../../protocol/booleans.js';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import type { ArchiveLimits } from '../core/transfer/archive.js';
import type { RuntimeServices } from '../services.js';

/**
 * Largest single uploaded file. Uploads stream to disk, never to memory, so free space is the real
 * bound (a full disk answers 507); this only stops a runaway client.
 */
export const MAX_UPLOAD_FILE_BYTES = 1024 ** 4;

/** Multipart parts (fields and files) accepted in one upload; the reference's form has one. */
const MAX_MULTIPART_PARTS = 100;

/** The multipart field that carries the file, as in the reference (`file: UploadFile`). */
const FILE_FIELD = 'file';

export interface FileRouteOptions {
  /** @default MAX_UPLOAD_FILE_BYTES */
  maxUploadFileBytes?: number;
  /** Where uploaded archives are spooled before validation. @default os.tmpdir() */
  tmpDir?: string;
  archiveLimits?: ArchiveLimits;
}

export async function registerFileRoutes(
  app: FastifyInstance,
  services: RuntimeServices,
  options: FileRouteOptions = {},
): Promise<void> {
  const maxFileBytes = options.maxUploadFileBytes ?? MAX_UPLOAD_FILE_BYTES;

  // Multipart parsing is only for /upload_file, so it lives in its own encapsulated scope.
  await app.register(async (scope) => {
    await scope.register(multipart, {
      limits: { fileSize: maxFileBytes, parts: MAX_MULTIPART_PARTS },
      throwFileSizeLimit: true,
      // Keep the client's file name as sent, so `../x` is refused rather than quietly cut to `x`.
      preservePath: true,
    });

    scope.post('/upload_file', async (req, reply) => {
      const { requireAbsolutePath, uploadFile } = await services.transfer.get();
      const destination = queryParam(req.query, 'destination') ?? '/';
      const recursive = parseBoolean(queryParam(req.query, 'recursive'), 'recursive') ?? false;
      requireAbsolutePath(destination, 'destination');
      if (!req.isMultipart()) {
        throw new BerthError(
          ErrorCode.UNSUPPORTED_MEDIA_TYPE,
          `Expected a multipart/form-data body with a "${FILE_FIELD}" field`,
        );
      }

      let filename: string | undefined;
      let failure: unknown;
      let partsError: unknown;
      try {
        for await (const part of req.parts()) {
          if (part.type !== 'file') {
            if (part.fieldname === FILE_FIELD && failure === undefined) {
              failure = new BerthError(
                ErrorCode.VALIDATION_FAILED,
                `Multipart field "${FILE_FIELD}" must be a file (a part with a filename)`,
              );
            }
            continue;
          }
          if (part.fieldname !== FILE_FIELD || filename !== undefined || failure !== undefined) {
            // Only the first "file" part counts; the rest of the body is read and dropped.
            part.file.resume();
            continue;
          }
          filename = part.filename;
          const body = shieldFileStream(part.file, maxFileBytes);
          try {
            await uploadFile(
              body,
              { destination, filename, recursive },
              {
                tmpDir: options.tmpDir,
                archiveLimits: options.archiveLimits,
              },
            );
          } catch (err) {
            failure = err;
          } finally {
            body.destroy();
          }
        }
      } catch (err) {
        partsError = err;
      }
      if (failure !== undefined) throw failure;
      if (partsError !== undefined) throw multipartError(partsError);
      if (filename === undefined) {
        throw new BerthError(ErrorCode.VALIDATION_FAILED, `Missing multipart field "${FILE_FIELD}"`);
      }
      req.log.debug({ filename, destination, recursive }, 'upload stored');
      return reply.send({ filename, destination, recursive });
    });
  });

  app.get('/download_files', async (req, reply) => {
    const { createDownload } = await services.transfer.get();
    const path = queryParam(req.query, 'path');
    if (path === undefined)
      throw new BerthError(ErrorCode.VALIDATION_FAILED, 'Query parameter "path" is required');
    const download = await createDownload(path);
    reply.header('content-type', 'application/zip');
    reply.header('content-disposition', attachment(download.filename));
    return reply.send(download.stream);
  });

  app.post('/list_files', async (req) => {
    const { listFiles } = await services.transfer.get();
    const body: unknown = req.body ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        'Body must be a JSON object like {"path": "/workspace"}',
      );
    }
    const path = (body as Record<string, unknown>).path;
    if (path !== undefined && path !== null && typeof path !== 'string') {
      throw new BerthError(ErrorCode.VALIDATION_FAILED, '"path" must be a string');
    }
    return listFiles(path, services.options.workingDir);
  });
}

/** A query parameter given at most once. */
function queryParam(query: unknown, name: string): string | undefined {
  const value = (query as Record<string, unknown> | undefined)?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `Query parameter "${name}" must be given once`);
  }
  return value;
}

/** Booleans as the reference (FastAPI) reads them from a query string: true/false, 1/0, yes/no, on/off. */
function parseBoolean(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  const known = booleanWord(value);
  if (known !== undefined) return known;
  throw new BerthError(
    ErrorCode.VALIDATION_FAILED,
    `Query parameter "${name}" must be true or false, got ${JSON.stringify(value)}`,
  );
}

/**
 * Hands the core a stream it may consume or destroy without stalling the multipart parser: when the
 * core stops early (an error), the rest of the part is read and dropped so the request completes and
 * the error reply reaches the client. Size-limit hits and broken bodies become errors on the stream.
 */
function shieldFileStream(source: Readable & { truncated?: boolean }, maxBytes: number): Readable {
  const body = new PassThrough();
  // The error may come before the core has started reading (it creates directories first); the
  // consumer still sees it, as the stream's stored error, when it pipes from the stream.
  body.on('error', () => undefined);
  source.pipe(body);
  source.once('limit', () => {
    body.destroy(
      new BerthError(ErrorCode.PAYLOAD_TOO_LARGE, `Uploaded file is larger than ${maxBytes} bytes`),
    );
  });
  source.once('error', (err) => {
    body.destroy(new BerthError(ErrorCode.VALIDATION_FAILED, `Upload interrupted: ${err.message}`));
  });
  source.once('close', () => {
    if (!source.readableEnded) {
      body.destroy(
        new BerthError(ErrorCode.VALIDATION_FAILED, 'Upload interrupted before the file was complete'),
      );
    }
  });
  body.once('close', () => {
    if (!source.readableEnded && !source.destroyed) {
      source.unpipe(body);
      source.resume();
    }
  });
  return body;
}

/** Errors from the multipart parser itself: limits, and bodies that are not valid multipart. */
function multipartError(err: unknown): unknown {
  if (err instanceof BerthError) return err;
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new BerthError(ErrorCode.PAYLOAD_TOO_LARGE, (err as Error).message);
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new BerthError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'Expected a multipart/form-data body');
  }
  if (typeof (err as { statusCode?: unknown }).statusCode === 'number') return err;
  return new BerthError(
    ErrorCode.VALIDATION_FAILED,
    `Malformed multipart body: ${(err as Error)?.message ?? err}`,
  );
}

/** Content-Disposition as Starlette's FileResponse writes it: plain when the name is safe, RFC 5987 otherwise. */
function attachment(filename: string): string {
  if (/^[A-Za-z0-9._~-]+$/.test(filename)) return `attachment; filename="${filename}"`;
  const encoded = encodeURIComponent(filename).replace(
    /['()*!]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename*=utf-8''${encoded}`;
}

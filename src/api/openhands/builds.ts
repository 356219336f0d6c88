/**
 * OpenHands' image routes (registry_prefix, image_exists, build, build_status). OpenHands sends a
 * build context whose Dockerfile installs OpenHands itself (it needs the internet); Berth does not
 * run it. It reads the Dockerfile's base (its first FROM), adds Berth's runtime layer to that base
 * (seconds, cached by content hash), and gives the result the names OpenHands asked for, so its
 * own build flow ends with an image /start can run.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncZod, ZodTypeProvider } from 'fastify-type-provider-zod';
import { extract } from 'tar-stream';
import * as z from 'zod';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import { IMAGE_REFERENCE } from '../../protocol/limits.js';
import type { RuntimeImages } from '../../sandboxes/types.js';
import { detailErrorResponses } from '../schemas.js';

/** Where OpenHands should name its images: `<prefix>/runtime:<tag>`, local to this engine. */
export const REGISTRY_PREFIX = 'berth.local/openhands';
/** Largest build context accepted (base64 text of a gzipped tar: OpenHands' source is a few MB). */
export const MAX_BUILD_CONTEXT_BYTES = 256 * 1024 * 1024;
/** Largest Dockerfile read from a context. */
const MAX_DOCKERFILE_BYTES = 1024 * 1024;
/** Finished builds remembered for build_status. */
const KEPT_BUILDS = 200;

type BuildStatus = 'RUNNING' | 'SUCCESS' | 'FAILURE';

interface BuildJob {
  status: BuildStatus;
  image: string;
  error?: string;
}

/** Build jobs by id, in memory: a build outlives its request, and OpenHands polls for it. */
export class BuildJobs {
  private readonly jobs = new Map<string, BuildJob>();

  start(image: string, work: () => Promise<void>): string {
    const id = `build-${randomBytes(12).toString('hex')}`;
    const job: BuildJob = { status: 'RUNNING', image };
    this.jobs.set(id, job);
    work().then(
      () => {
        job.status = 'SUCCESS';
      },
      (err: unknown) => {
        job.status = 'FAILURE';
        job.error = (err as Error)?.message ?? String(err);
      },
    );
    while (this.jobs.size > KEPT_BUILDS) {
      const oldest = [...this.jobs].find(([, j]) => j.status === 'SUCCESS' || j.status === 'FAILURE');
      if (!oldest) break;
      this.jobs.delete(oldest[0]);
    }
    return id;
  }

  get(id: string): BuildJob | undefined {
    return this.jobs.get(id);
  }
}

/** The image of a Dockerfile's first FROM (its flags and `AS name` left out); ARG defaults applied. */
export function dockerfileBase(dockerfile: string): string {
  const args = new Map<string, string>();
  // Continuation lines joined, comments dropped.
  const lines = dockerfile.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [instruction, ...rest] = line.split(/\s+/);
    const word = instruction?.toUpperCase();
    if (word === 'ARG') {
      const [name, value] = (rest[0] ?? '').split('=', 2);
      if (name && value !== undefined) args.set(name, value.replace(/^["']|["']$/g, ''));
      continue;
    }
    if (word !== 'FROM') continue;
    const image = rest.find((w) => !w.startsWith('--'));
    if (!image) break;
    const resolved = image.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, n: string) => args.get(n) ?? '');
    if (!IMAGE_REFERENCE.test(resolved)) {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        `The Dockerfile's base "${image}" is not an image reference`,
      );
    }
    return resolved;
  }
  throw new BerthError(ErrorCode.VALIDATION_FAILED, 'The build context has a Dockerfile without a FROM line');
}

/** The Dockerfile at the root of a gzipped tar (OpenHands' build context). */
export async function contextDockerfile(tgz: Buffer): Promise<string> {
  const tar = extract();
  let found: string | undefined;
  const done = new Promise<void>((resolve, reject) => {
    tar.on('entry', (header, stream, next) => {
      const name = header.name.replace(/^\.\//, '');
      if (found === undefined && name === 'Dockerfile' && header.type === 'file') {
        const chunks: Buffer[] = [];
        let size = 0;
        stream.on('data', (c: unknown) => {
          if (!Buffer.isBuffer(c)) return;
          size += c.length;
          if (size <= MAX_DOCKERFILE_BYTES) chunks.push(c);
        });
        stream.on('end', () => {
          if (size > MAX_DOCKERFILE_BYTES) {
            reject(new BerthError(ErrorCode.PAYLOAD_TOO_LARGE, 'The Dockerfile is larger than 1 MiB'));
          }
          found = Buffer.concat(chunks).toString('utf8');
          next();
        });
      } else {
        stream.on('end', () => next());
        stream.resume();
      }
    });
    tar.on('finish', () => resolve());
    tar.on('error', reject);
  });
  const gunzip = createGunzip();
  gunzip.on('error', (err) => tar.destroy(err));
  Readable.from([tgz]).pipe(gunzip).pipe(tar);
  try {
    await done;
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw new BerthError(
      ErrorCode.BAD_ARCHIVE,
      `The build context is not a gzipped tar: ${(err as Error).message}`,
    );
  }
  if (found === undefined) {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, 'The build context has no Dockerfile at its root');
  }
  return found;
}

const ImageQuery = z.object({ image: z.string().min(1).max(255) });

export function buildRoutes(jobs: BuildJobs, images: RuntimeImages | undefined): FastifyPluginAsyncZod {
  const need = (): RuntimeImages => {
    if (!images) throw new BerthError(ErrorCode.UNAVAILABLE, 'This control plane has no image service');
    return images;
  };
  const config = { detailErrors: true } as const;
  const tags = ['openhands'];
  return async (app) => {
    app.get(
      '/registry_prefix',
      {
        config,
        schema: {
          tags,
          summary: 'Where OpenHands names the images it asks Berth to build (local to this engine)',
          response: { 200: z.object({ registry_prefix: z.string() }), ...detailErrorResponses() },
        },
      },
      async () => ({ registry_prefix: REGISTRY_PREFIX }),
    );

    app.get(
      '/image_exists',
      {
        config,
        schema: {
          tags,
          summary: 'Whether an image is on this engine (nothing is pulled)',
          querystring: ImageQuery,
          response: {
            200: z.object({
              exists: z.boolean(),
              image: z.object({ upload_time: z.string(), image_size_bytes: z.number() }).nullable(),
            }),
            ...detailErrorResponses(503),
          },
        },
      },
      async (req) => {
        if (!IMAGE_REFERENCE.test(req.query.image)) return { exists: false, image: null };
        const info = await need().describe(req.query.image);
        return info
          ? { exists: true, image: { upload_time: info.created, image_size_bytes: info.sizeBytes } }
          : { exists: false, image: null };
      },
    );

    app.get(
      '/build_status',
      {
        config,
        schema: {
          tags,
          summary: 'How a build goes: RUNNING, then SUCCESS (with the image) or FAILURE (with the error)',
          querystring: z.object({ build_id: z.string().min(1).max(64) }),
          response: {
            200: z.object({
              status: z.enum(['RUNNING', 'SUCCESS', 'FAILURE']),
              image: z.string(),
              error: z.string().optional(),
            }),
            ...detailErrorResponses(404),
          },
        },
      },
      async (req) => {
        const job = jobs.get(req.query.build_id);
        if (!job) throw new BerthError(ErrorCode.NOT_FOUND, `No build ${req.query.build_id}`);
        return job.error === undefined
          ? { status: job.status, image: job.image }
          : { status: job.status, image: job.image, error: job.error };
      },
    );

    await app.register(async (scope) => {
      await scope.register(multipart, {
        limits: { fileSize: MAX_BUILD_CONTEXT_BYTES, parts: 1000, fieldSize: 1024 },
        throwFileSizeLimit: true,
      });
      scope.withTypeProvider<ZodTypeProvider>().post(
        '/build',
        {
          config,
          schema: {
            tags,
            summary:
              "Make a runtime image from an OpenHands build context: Berth's runtime layer on the Dockerfile's base, named target_image and each of tags",
            consumes: ['multipart/form-data'],
            body: z.object({
              context: z
                .string()
                .meta({ format: 'binary' })
                .describe('base64 text of a gzipped tar with a Dockerfile'),
              target_image: z.string().describe('the name to give the image'),
              tags: z
                .union([z.string(), z.array(z.string())])
                .optional()
                .describe('more names'),
            }),
            response: {
              202: z.object({ build_id: z.string() }),
              ...detailErrorResponses(404, 413, 415, 503),
            },
          },
          // The form is read below, part by part; the schema above is its documentation.
          validatorCompiler: () => () => true,
        },
        async (req, reply) => {
          if (!req.isMultipart()) {
            throw new BerthError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'Expected a multipart/form-data body');
          }
          let context: Buffer | undefined;
          const names: string[] = [];
          let target: string | undefined;
          try {
            for await (const part of req.parts()) {
              if (part.type === 'file') {
                if (part.fieldname === 'context' && context === undefined) context = await part.toBuffer();
                else part.file.resume();
              } else if (part.fieldname === 'context' && context === undefined) {
                context = Buffer.from(String(part.value));
              } else if (part.fieldname === 'target_image') target = String(part.value);
              else if (part.fieldname === 'tags') names.push(String(part.value));
            }
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (
              code === 'FST_REQ_FILE_TOO_LARGE' ||
              code === 'FST_FILES_LIMIT' ||
              code === 'FST_PARTS_LIMIT'
            ) {
              throw new BerthError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                `The build context is larger than ${MAX_BUILD_CONTEXT_BYTES / 2 ** 20} MiB`,
              );
            }
            throw new BerthError(
              ErrorCode.VALIDATION_FAILED,
              `Unreadable multipart body: ${(err as Error).message}`,
            );
          }
          if (target === undefined)
            throw new BerthError(ErrorCode.VALIDATION_FAILED, 'Missing field target_image');
          if (context === undefined)
            throw new BerthError(ErrorCode.VALIDATION_FAILED, 'Missing field context');
          for (const name of [target, ...names]) {
            if (!IMAGE_REFERENCE.test(name) || name.length > 255) {
              throw new BerthError(
                ErrorCode.VALIDATION_FAILED,
                `"${name.slice(0, 80)}" is not an image name`,
              );
            }
          }
          // OpenHands sends the archive as base64 text; a raw gzip (magic 1f 8b) is taken as it is.
          const tgz =
            context[0] === 0x1f && context[1] === 0x8b
              ? context
              : Buffer.from(context.toString('latin1'), 'base64');
          const base = dockerfileBase(await contextDockerfile(tgz));
          const service = need();
          const id = jobs.start(target, async () => {
            const built = await service.runtimeImageFor(base);
            for (const name of [target, ...names]) if (name !== built) await service.tag(built, name);
          });
          req.log.info({ build: id, base, target }, 'OpenHands build: runtime layer on the context base');
          return reply.code(202).send({ build_id: id });
        },
      );
    });
  };
}

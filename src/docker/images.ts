/**
 * Image operations on the Docker Engine: inspect, list by label, remove, build from a tar context, import
 * a root filesystem tarball, and look for files in an image without running it.
 */
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { BuildStreamParser, describeBuildFailure, type ImageProgressListener } from './build-stream.js';
import { imageReference } from './names.js';

export interface ImageDetails {
  /** `sha256:...` */
  id: string;
  tags: string[];
  labels: Record<string, string>;
  /** ISO 8601 */
  created: string;
  sizeBytes: number;
  /** Docker's architecture name: `amd64`, `arm64`, ... */
  architecture: string;
  os: string;
  /** The image's environment, `NAME=value` entries. */
  env: string[];
  entrypoint: string[] | null;
  cmd: string[] | null;
  user: string;
  workingDir: string;
}

export interface ImageSummary {
  id: string;
  tags: string[];
  labels: Record<string, string>;
  /** Unix time in ms. */
  createdMs: number;
  sizeBytes: number;
}

export interface ImageFilter {
  /** `{ 'berth.kind': 'runtime-image' }` matches that value; `true` matches any value of the label. */
  labels?: Record<string, string | true>;
}

export interface BuildImageOptions {
  /** `name:tag` to give the result. */
  tag: string;
  labels?: Record<string, string>;
  /** Ignore the engine's layer cache. */
  noCache?: boolean;
  buildArgs?: Record<string, string>;
  onProgress?: ImageProgressListener;
  signal?: AbortSignal;
}

export interface ImportTarballOptions {
  /** `name:tag` to give the result. */
  tag: string;
  /** Dockerfile instructions applied to the image config, like `docker import --change` (`ENV A=b`, `CMD [...]`). */
  changes?: string[];
  message?: string;
  onProgress?: ImageProgressListener;
}

export interface ImageClient {
  /** @throws BerthError NOT_FOUND when there is no such image locally (nothing is pulled). */
  inspect(ref: string): Promise<ImageDetails>;
  exists(ref: string): Promise<boolean>;
  list(filter?: ImageFilter): Promise<ImageSummary[]>;
  /** @returns false when there was no such image. */
  remove(ref: string, options?: { force?: boolean }): Promise<boolean>;
  /** Builds from a tar stream holding a Dockerfile; a failed step becomes an error quoting its output. */
  build(context: Readable, options: BuildImageOptions): Promise<{ id: string }>;
  /** Creates an image from a root filesystem tarball (uncompressed or gzip), like `docker import`. */
  importTarball(tar: Readable, options: ImportTarballOptions): Promise<{ id: string }>;
  /** Gives the image `source` the extra name `target` (`name:tag`), like `docker tag`. */
  tag(source: string, target: string): Promise<void>;
  /** Which of `paths` exist in the image's filesystem; runs nothing (a created, never started container). */
  pathsExist(ref: string, paths: readonly string[]): Promise<Map<string, boolean>>;
}

type ToError = (err: unknown, what: string) => BerthError;

/** The one implementation; only the engine constructs it. */
export class DockerImageClient implements ImageClient {
  constructor(
    private readonly docker: Dockerode,
    private readonly toError: ToError,
  ) {}

  async inspect(ref: string): Promise<ImageDetails> {
    let info: Dockerode.ImageInspectInfo;
    try {
      info = await this.docker.getImage(imageReference(ref)).inspect();
    } catch (err) {
      const e = this.toError(err, `image ${ref}`);
      if (e.code === ErrorCode.NOT_FOUND) {
        throw new BerthError(ErrorCode.NOT_FOUND, `image ${ref} not found locally`, { image: ref });
      }
      throw e;
    }
    const config = info.Config ?? ({} as Partial<Dockerode.ImageInspectInfo['Config']>);
    return {
      id: info.Id,
      tags: info.RepoTags ?? [],
      labels: config.Labels ?? {},
      created: info.Created,
      sizeBytes: info.Size,
      architecture: info.Architecture,
      os: info.Os,
      env: config.Env ?? [],
      entrypoint: normaliseCommand(config.Entrypoint),
      cmd: normaliseCommand(config.Cmd),
      user: config.User ?? '',
      workingDir: config.WorkingDir ?? '',
    };
  }

  async exists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(imageReference(ref)).inspect();
      return true;
    } catch (err) {
      const e = this.toError(err, `image ${ref}`);
      if (e.code === ErrorCode.NOT_FOUND) return false;
      throw e;
    }
  }

  async tag(source: string, target: string): Promise<void> {
    const [repo, tag] = splitTag(target);
    try {
      await this.docker.getImage(imageReference(source)).tag({ repo, tag });
    } catch (err) {
      throw this.toError(err, `image ${source}`);
    }
  }

  async list(filter: ImageFilter = {}): Promise<ImageSummary[]> {
    const label = Object.entries(filter.labels ?? {}).map(([k, v]) => (v === true ? k : `${k}=${v}`));
    try {
      const images = await this.docker.listImages(label.length ? { filters: { label } } : {});
      return images.map((i) => ({
        id: i.Id,
        tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
        labels: i.Labels ?? {},
        createdMs: i.Created * 1000,
        sizeBytes: i.Size,
      }));
    } catch (err) {
      throw this.toError(err, 'list images');
    }
  }

  async remove(ref: string, options: { force?: boolean } = {}): Promise<boolean> {
    try {
      await this.docker.getImage(imageReference(ref)).remove({ force: options.force ?? false });
      return true;
    } catch (err) {
      const e = this.toError(err, `remove image ${ref}`);
      if (e.code === ErrorCode.NOT_FOUND) return false;
      throw e;
    }
  }

  async build(context: Readable, options: BuildImageOptions): Promise<{ id: string }> {
    const parser = new BuildStreamParser(options.onProgress);
    let response: NodeJS.ReadableStream;
    try {
      response = await this.docker.buildImage(context, {
        t: options.tag,
        labels: options.labels ?? {},
        nocache: options.noCache ?? false,
        buildargs: options.buildArgs ?? {},
        rm: true,
        forcerm: true,
        pull: false,
        ...(options.signal ? { abortSignal: options.signal } : {}),
      } as Dockerode.ImageBuildOptions);
    } catch (err) {
      throw this.toError(err, `build ${options.tag}`);
    }
    await consume(response, parser, options.signal);
    if (parser.failure) {
      throw new BerthError(ErrorCode.INTERNAL, describeBuildFailure(parser.failure), {
        tag: options.tag,
        step: parser.failure.step,
        instruction: parser.failure.instruction,
        output: parser.failure.output,
      });
    }
    if (parser.imageId) return { id: parser.imageId };
    // Engines before API 1.31 do not send aux.ID; the tag is there once the stream ends without error.
    return { id: (await this.inspect(options.tag)).id };
  }

  async importTarball(tar: Readable, options: ImportTarballOptions): Promise<{ id: string }> {
    const [repo, tag] = splitTag(options.tag);
    const parser = new BuildStreamParser(options.onProgress);
    let response: NodeJS.ReadableStream;
    try {
      response = await this.docker.importImage(tar, {
        repo,
        tag,
        ...(options.changes?.length ? { changes: options.changes } : {}),
        ...(options.message ? { message: options.message } : {}),
      });
    } catch (err) {
      throw this.toError(err, `import ${options.tag}`);
    }
    await consume(response, parser);
    if (parser.failure) {
      throw new BerthError(ErrorCode.INTERNAL, `import of ${options.tag} failed: ${parser.failure.message}`);
    }
    return { id: parser.imageId ?? (await this.inspect(options.tag)).id };
  }

  async pathsExist(ref: string, paths: readonly string[]): Promise<Map<string, boolean>> {
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer({
        Image: ref,
        // Never started: the command only has to be present for the engine to accept the container.
        Entrypoint: ['/berth-probe'],
        Cmd: [],
        Labels: { 'berth.managed': 'true', 'berth.kind': 'image-probe' },
        HostConfig: { NetworkMode: 'none' },
      });
    } catch (err) {
      throw this.toError(err, `inspect files of ${ref}`);
    }
    const found = new Map<string, boolean>();
    try {
      for (const path of paths) {
        try {
          const res = (await container.infoArchive({ path })) as unknown as Readable | undefined;
          res?.resume?.();
          found.set(path, true);
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode === 404) found.set(path, false);
          else throw this.toError(err, `stat ${path} in ${ref}`);
        }
      }
    } finally {
      await container.remove({ force: true, v: true }).catch(() => {});
    }
    return found;
  }
}

function normaliseCommand(value: unknown): string[] | null {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'string' && value) return [value];
  return null;
}

/** `repo:tag` → [repo, tag]; a colon inside a registry host (`host:5000/repo`) is not a tag separator. */
export function splitTag(ref: string): [string, string] {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
}

function consume(
  stream: NodeJS.ReadableStream,
  parser: BuildStreamParser,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      (stream as Readable).destroy?.();
      const timedOut = (signal?.reason as Error | undefined)?.name === 'TimeoutError';
      reject(
        timedOut
          ? new BerthError(ErrorCode.TIMEOUT, 'image build timed out')
          : new BerthError(ErrorCode.INTERNAL, 'image build cancelled'),
      );
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => parser.push(chunk));
    stream.on('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new BerthError(ErrorCode.INTERNAL, `engine stream failed: ${(err as Error).message}`));
    });
    stream.on('end', () => {
      signal?.removeEventListener('abort', onAbort);
      parser.end();
      resolve();
    });
  });
}

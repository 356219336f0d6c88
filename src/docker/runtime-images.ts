/**
 * RuntimeImages on one Docker engine: images are looked up locally (never pulled), and any glibc
 * image becomes a runtime image by building Berth's layer onto it (image-builder.ts, cached by
 * content hash).
 */
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { ImageInfo, RuntimeImages } from '../sandboxes/types.js';
import type { DockerEngine } from './engine.js';
import { RUNTIME_IMAGE_KIND, RUNTIME_IMAGE_LABELS, RuntimeImageBuilder } from './image-builder.js';

export class DockerRuntimeImages implements RuntimeImages {
  private readonly builder: RuntimeImageBuilder;
  /** Builds under way by base image, so two requests for one base build once. */
  private readonly building = new Map<string, Promise<string>>();

  constructor(
    private readonly engine: DockerEngine,
    cacheDir: string,
  ) {
    this.builder = new RuntimeImageBuilder({ engine, cacheDir });
  }

  async describe(ref: string): Promise<ImageInfo | undefined> {
    try {
      const d = await this.engine.images.inspect(ref);
      return {
        id: d.id,
        created: d.created,
        sizeBytes: d.sizeBytes,
        runtime: d.labels[RUNTIME_IMAGE_LABELS.kind] === RUNTIME_IMAGE_KIND,
      };
    } catch (err) {
      if (err instanceof BerthError && err.code === ErrorCode.NOT_FOUND) return undefined;
      throw err;
    }
  }

  async runtimeImageFor(ref: string, onProgress?: (message: string) => void): Promise<string> {
    const info = await this.describe(ref);
    if (!info) {
      throw new BerthError(
        ErrorCode.NOT_FOUND,
        `Image ${ref} is not on this Docker engine, and Berth never pulls: load or build it first (docker load / docker build)`,
        { image: ref },
      );
    }
    if (info.runtime) return ref;
    let build = this.building.get(info.id);
    if (!build) {
      build = this.builder
        .build({
          base: ref,
          onProgress: (e) => {
            if ('message' in e && typeof e.message === 'string') onProgress?.(e.message);
          },
        })
        .then((r) => r.tag)
        .finally(() => this.building.delete(info.id));
      this.building.set(info.id, build);
    }
    return build;
  }

  tag(source: string, target: string): Promise<void> {
    return this.engine.images.tag(source, target);
  }
}

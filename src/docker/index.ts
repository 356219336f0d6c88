/** The Docker layer's public surface. Nothing outside src/docker imports dockerode. */
export {
  type BootstrapBaseImageOptions,
  type BootstrapBaseImageResult,
  bootstrapBaseImage,
} from './base-image.js';
export type { ImageProgressEvent, ImageProgressListener } from './build-stream.js';
export { connectEngine, type DockerEngine, type EngineOptions, type EngineVersion } from './engine.js';
export {
  type BuildRuntimeImageOptions,
  buildRuntimeImage,
  RUNTIME_IMAGE_LABELS,
  RUNTIME_IMAGE_REPO,
  RuntimeImageBuilder,
  type RuntimeImageBuilderDeps,
  type RuntimeImageBuildResult,
} from './image-builder.js';
export type { BuildImageOptions, ImageClient, ImageDetails, ImageFilter, ImageSummary } from './images.js';
export { PINNED_NODE_VERSION } from './node-binary.js';

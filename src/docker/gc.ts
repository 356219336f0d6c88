/**
 * Garbage collection of what Berth left in the engine: sandbox containers that no live record owns,
 * and runtime images that are neither the newest on their base nor used by any container. What counts
 * as live comes from the caller (the control plane's store); this module only talks to the engine.
 */
import type Dockerode from 'dockerode';
import { SANDBOX_LABELS } from './container-spec.js';
import type { DockerodeEngine } from './engine.js';
import { RUNTIME_IMAGE_LABELS } from './image-builder.js';

export interface GcOwnership {
  /** Sandbox ids with a live record (starting, running, paused, stopped). */
  sandboxIds: ReadonlySet<string>;
  /** Container ids those records name. */
  containerIds: ReadonlySet<string>;
  /**
   * The Berth instance (berth.owner label) whose records these are. Containers another instance made are
   * left alone; containers without the label are judged by the records. Undefined: judge every container.
   */
  instance?: string | undefined;
  /** Image references (tags or ids) never removed, e.g. the configured runtime image. */
  keepImages?: ReadonlySet<string>;
  /** Runtime images younger than this stay. @default GC_IMAGE_MIN_AGE_MS */
  imageMinAgeMs?: number;
  /** For tests. @default Date.now */
  now?: number;
}

/**
 * Runtime images younger than this are never collected: a control plane may have just built one and be
 * about to start sandboxes from it, and a build takes far less than this.
 */
export const GC_IMAGE_MIN_AGE_MS = 10 * 60_000;

export interface GcContainer {
  id: string;
  name: string;
  sandboxId: string | null;
  state: string;
  image: string;
}

export interface GcImage {
  id: string;
  tags: string[];
  base: string;
  sizeBytes: number;
  createdMs: number;
}

export interface GcPlan {
  containers: GcContainer[];
  images: GcImage[];
  /** Sandbox containers left alone because another Berth instance owns them. */
  otherInstances: number;
}

export interface GcResult extends GcPlan {
  /** What could not be removed, and why (e.g. an image a container started using meanwhile). */
  failures: Array<{ kind: 'container' | 'image'; id: string; message: string }>;
}

/** Works out what `collect` would remove, changing nothing. */
export async function planGc(engine: DockerodeEngine, ownership: GcOwnership): Promise<GcPlan> {
  let all: Dockerode.ContainerInfo[];
  try {
    all = await engine.docker.listContainers({ all: true });
  } catch (err) {
    throw engine.toError(err, 'list containers');
  }
  const containers: GcContainer[] = [];
  let otherInstances = 0;
  const doomed = new Set<string>();
  for (const c of all) {
    const labels = c.Labels ?? {};
    if (labels[SANDBOX_LABELS.managed] !== 'true' || labels[SANDBOX_LABELS.kind] !== 'sandbox') continue;
    const owner = labels[SANDBOX_LABELS.owner];
    if (ownership.instance !== undefined && owner !== undefined && owner !== ownership.instance) {
      otherInstances++;
      continue;
    }
    const sandboxId = labels[SANDBOX_LABELS.id] ?? null;
    if (sandboxId !== null && ownership.sandboxIds.has(sandboxId)) continue;
    if (ownership.containerIds.has(c.Id)) continue;
    doomed.add(c.Id);
    containers.push({
      id: c.Id,
      name: (c.Names?.[0] ?? '').replace(/^\//, ''),
      sandboxId,
      state: c.State,
      image: c.Image,
    });
  }

  // Images in use by any container that stays, Berth's or not.
  const used = new Set(all.filter((c) => !doomed.has(c.Id)).map((c) => c.ImageID));
  const keep = ownership.keepImages ?? new Set<string>();
  const runtime = await engine.images.list({
    labels: { [RUNTIME_IMAGE_LABELS.managed]: 'true', [RUNTIME_IMAGE_LABELS.kind]: 'runtime-image' },
  });
  const cutoff = (ownership.now ?? Date.now()) - (ownership.imageMinAgeMs ?? GC_IMAGE_MIN_AGE_MS);
  const newest = new Map<string, number>();
  for (const i of runtime) {
    const base = i.labels[RUNTIME_IMAGE_LABELS.base] ?? '';
    newest.set(base, Math.max(newest.get(base) ?? 0, i.createdMs));
  }
  const images: GcImage[] = [];
  for (const i of runtime) {
    const base = i.labels[RUNTIME_IMAGE_LABELS.base] ?? '';
    if (i.createdMs >= (newest.get(base) ?? 0) || i.createdMs > cutoff) continue;
    if (used.has(i.id) || keep.has(i.id) || i.tags.some((t) => keep.has(t))) continue;
    images.push({ id: i.id, tags: i.tags, base, sizeBytes: i.sizeBytes, createdMs: i.createdMs });
  }
  return { containers, images, otherInstances };
}

/** Removes what `plan` names: containers first (they may hold images), then images. */
export async function collectGc(engine: DockerodeEngine, plan: GcPlan): Promise<GcResult> {
  const failures: GcResult['failures'] = [];
  const containers: GcContainer[] = [];
  for (const c of plan.containers) {
    try {
      await engine.containers.remove(c.id);
      containers.push(c);
    } catch (err) {
      failures.push({ kind: 'container', id: c.id, message: (err as Error).message });
    }
  }
  const images: GcImage[] = [];
  for (const i of plan.images) {
    try {
      // Not forced: an image a container started using since the plan stays.
      if (await engine.images.remove(i.id)) images.push(i);
    } catch (err) {
      failures.push({ kind: 'image', id: i.id, message: (err as Error).message });
    }
  }
  return { containers, images, otherInstances: plan.otherInstances, failures };
}

/**
 * The warm pool: sandboxes started ahead of time for the default image, so that a create that needs
 * nothing fixed at container start (no workspace, volumes or limits of its own) claims one at once.
 * Pool members are records with `pool_image` set; they are never listed, reaped or idle.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import type { SandboxEndpoint, SandboxRuntime, SandboxSpec } from './types.js';

export interface WarmPoolDeps {
  store: Store;
  runtime: Pick<SandboxRuntime, 'start' | 'remove'>;
  logger: Logger;
  /** Members kept per image. */
  size: number;
  defaultImage(): Promise<string>;
  /** Whether any create could use a member (with a workspace configured for all, none can). */
  usable(): boolean;
  newId(): string;
  specFor(id: string, image: string, sessionApiKey: string): SandboxSpec;
  /** A member's container is ready (the manager keeps its client). */
  onStarted(id: string, ep: SandboxEndpoint): void;
}

export class WarmPool {
  private readonly refilling = new Set<string>();
  private disposed = false;

  constructor(private readonly deps: WarmPoolDeps) {}

  /** Starts members until `size` are there for `image` (the default image when not given). */
  async refill(image?: string): Promise<void> {
    const { store, runtime, logger } = this.deps;
    if (this.deps.size <= 0 || this.disposed || !this.deps.usable()) return;
    const img = image ?? (await this.deps.defaultImage());
    if (this.refilling.has(img)) return;
    this.refilling.add(img);
    try {
      while (!this.disposed && store.sandboxes.countPooled(img) < this.deps.size) {
        const id = this.deps.newId();
        const key = randomBytes(24).toString('base64url');
        store.sandboxes.insert({
          id,
          state: 'starting',
          image: img,
          session_api_key: key,
          spec: {},
          pool_image: img,
          from_pool: true,
        });
        try {
          const ep = await runtime.start(this.deps.specFor(id, img, key));
          if (this.disposed) {
            await runtime.remove(id).catch(() => undefined);
            return;
          }
          this.deps.onStarted(id, ep);
          store.sandboxes.update(id, { state: 'running', url: ep.url, container_id: ep.containerId });
        } catch (err) {
          if (this.disposed) return;
          // One failure ends this refill (the next tick tries again), rather than a tight loop of them.
          logger.warn({ err }, 'warm pool start failed');
          store.sandboxes.update(id, { state: 'error', error: (err as Error).message, pool_image: null });
          store.sandboxes.markDeleted(id);
          await runtime.remove(id).catch(() => undefined);
          break;
        }
      }
    } finally {
      this.refilling.delete(img);
    }
  }

  /** A refill on the next turn of the event loop (after a claim), its failure logged. */
  refillSoon(image: string): void {
    setImmediate(() => {
      this.refill(image).catch((err) => this.deps.logger.warn({ err }, 'warm pool refill failed'));
    });
  }

  /** Members ready now. */
  size(): number {
    return this.deps.store.sandboxes.list({ pooled: true, state: ['running'] }).length;
  }

  dispose(): void {
    this.disposed = true;
  }
}

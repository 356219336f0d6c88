/**
 * The reaper: ends sandboxes whose lifetime is over or that sat idle past their limit, and removes
 * containers no live record owns. It runs on its own timer, and each tick also runs the control
 * plane's other periodic upkeep (event-log retention, warm-pool refill) that it is given.
 */
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import type { SandboxRuntime } from './types.js';

export interface ReaperDeps {
  store: Store;
  runtime: Pick<SandboxRuntime, 'reap'>;
  logger: Logger;
  /** A start under way: it finishes first (its create answers 201), a later pass reaps it. */
  isStarting(id: string): boolean;
  /** An action (or exec) in flight is activity, however long it runs. */
  isBusy(id: string): boolean;
  delete(id: string, reason: string): Promise<void>;
}

export class Reaper {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: ReaperDeps) {}

  /** One pass: lifetimes, idle limits, and containers no record owns. */
  async pass(): Promise<void> {
    const { store, runtime, logger } = this.deps;
    // The store's indexed queries decide what is due (one place for the rules; pool members never).
    const now = new Date();
    for (const rec of store.sandboxes.listExpired(now)) {
      if (this.deps.isStarting(rec.id)) continue;
      // Extended while this pass awaited earlier deletes: the query's answer is out of date.
      if (store.sandboxes.get(rec.id).expires_at !== rec.expires_at) continue;
      await this.deps.delete(rec.id, 'lifetime ended').catch(() => undefined);
    }
    for (const rec of store.sandboxes.listIdle(now)) {
      // Also skipped: one whose action ended while this pass awaited earlier deletes (its last
      // activity moved on since the query).
      if (this.deps.isStarting(rec.id) || this.deps.isBusy(rec.id)) continue;
      if (store.sandboxes.get(rec.id).last_activity_at !== rec.last_activity_at) continue;
      await this.deps.delete(rec.id, 'idle').catch(() => undefined);
    }
    const owned = new Set(store.sandboxes.owningContainers().map((r) => r.id));
    for (const removed of await runtime.reap(owned).catch(() => [] as string[])) {
      logger.info({ id: removed }, 'reaped an unowned sandbox container');
    }
  }

  /**
   * Runs a pass, then `alsoEachTick`, every `intervalMs` until stop(). A pass still running when the
   * next tick comes is not overlapped: that tick is skipped.
   */
  start(intervalMs: number, alsoEachTick: () => void = () => undefined): void {
    if (this.timer) return;
    let running = false;
    this.timer = setInterval(() => {
      if (!running) {
        running = true;
        this.pass()
          .catch((err) => this.deps.logger.warn({ err }, 'reap failed'))
          .finally(() => {
            running = false;
          });
      }
      alsoEachTick();
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

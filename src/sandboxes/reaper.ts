/**
 * The reaper: ends sandboxes whose lifetime is over or that sat idle past their limit, and removes
 * containers no live record owns. It runs on its own timer, and each tick also runs the control
 * plane's other periodic upkeep (event-log retention, warm-pool refill) that it is given. Lifetimes
 * are kept to the moment, not to the tick: a second timer is armed for the next one to end (E2B's
 * clients set a 5 s timeout and check that the sandbox is gone at 6 s).
 *
 * A sandbox labelled `berth.on_timeout=pause` is paused at the end of its lifetime instead of
 * deleted (E2B's autoPause / onTimeout: pause); connecting to it again resumes it.
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
  /** Pauses a sandbox whose lifetime ended and that asked to be paused then; clears its lifetime. */
  pause(id: string, reason: string): Promise<void>;
}

/** The label that makes the end of a lifetime pause the sandbox instead of deleting it. */
export const ON_TIMEOUT_LABEL = 'berth.on_timeout';
/** Longest the lifetime timer sleeps before it looks again (expiries move while it sleeps). */
const MAX_EXPIRY_SLEEP_MS = 60_000;
/**
 * After a lifetime pass, the next one waits at least this long: a sandbox whose lifetime ended but
 * that the pass had to leave (still starting, a pause that failed) is still the next expiry, and
 * without a floor the timer would run the pass again at once, in a loop.
 */
const EXPIRY_RETRY_MS = 1_000;

export class Reaper {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: ReaperDeps) {}

  private expiryTimer: NodeJS.Timeout | undefined;
  private expiring: Promise<void> | undefined;

  /** One pass: lifetimes, idle limits, and containers no record owns. */
  async pass(): Promise<void> {
    const { store, runtime, logger } = this.deps;
    // The store's indexed queries decide what is due (one place for the rules; pool members never).
    const now = new Date();
    await this.endLifetimes(now);
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

  private async endLifetimes(now: Date): Promise<void> {
    const { store } = this.deps;
    for (const rec of store.sandboxes.listExpired(now)) {
      if (this.deps.isStarting(rec.id)) continue;
      // Extended while this pass awaited earlier deletes: the query's answer is out of date.
      if (store.sandboxes.get(rec.id).expires_at !== rec.expires_at) continue;
      if (rec.labels[ON_TIMEOUT_LABEL] === 'pause') {
        await this.deps
          .pause(rec.id, 'lifetime ended (on_timeout: pause)')
          .catch((err) =>
            this.deps.logger.warn({ err, id: rec.id }, 'could not pause a sandbox whose lifetime ended'),
          );
      } else await this.deps.delete(rec.id, 'lifetime ended').catch(() => undefined);
    }
  }

  /**
   * Lifetimes changed (a create, an extension): the lifetime timer looks again. A no-op until start().
   */
  lifetimesChanged(minWaitMs = 0): void {
    if (!this.timer) return;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    let next: Date | undefined;
    try {
      next = this.deps.store.sandboxes.nextExpiry();
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not read the next lifetime; the periodic pass still ends them');
      return;
    }
    if (!next) return;
    const wait = Math.min(MAX_EXPIRY_SLEEP_MS, Math.max(minWaitMs, next.getTime() - Date.now()));
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      // One at a time; the one under way re-arms the timer when it is done.
      this.expiring ??= this.endLifetimes(new Date())
        .catch((err) => this.deps.logger.warn({ err }, 'ending lifetimes failed'))
        .finally(() => {
          this.expiring = undefined;
          this.lifetimesChanged(EXPIRY_RETRY_MS);
        });
    }, wait);
    this.expiryTimer.unref();
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
    this.lifetimesChanged();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.timer = undefined;
    this.expiryTimer = undefined;
  }
}

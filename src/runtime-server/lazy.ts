/**
 * A value made on first use. The runtime server holds the parts that neither /alive nor a `run` action
 * needs (the Python kernel, the file editor, file transfer, terminals) this way, and makes them with a
 * dynamic import(): in the sandbox bundle their code sits in chunks of its own, parsed and run when a
 * sandbox first uses them instead of on every sandbox's cold start.
 */
export interface Lazy<T> {
  /** The value, made on the first call and shared by every later one. A failure is not kept: the next call tries again. */
  get(): Promise<T>;
  /**
   * Runs `use` on the value if anyone asked for it (waiting for one still being made), else does
   * nothing: for disposal, which must not load or start anything.
   */
  ifMade(use: (value: T) => unknown): Promise<void>;
  /** Disposes of the value with `dispose` if it was made, and forgets it: the next get() makes a new one. */
  reset(dispose: (value: T) => unknown): Promise<void>;
}

export function lazy<T>(make: () => Promise<T>): Lazy<T> {
  let made: Promise<T> | undefined;
  return {
    get() {
      made ??= make().catch((err: unknown) => {
        made = undefined;
        throw err;
      });
      return made;
    },
    async ifMade(use) {
      if (!made) return;
      const value = await made.catch(() => undefined);
      if (value !== undefined) await use(value);
    },
    async reset(dispose) {
      const was = made;
      made = undefined;
      const value = await was?.catch(() => undefined);
      if (value !== undefined) await dispose(value);
    },
  };
}

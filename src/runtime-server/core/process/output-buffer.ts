/**
 * The one bounded buffer for a process's output, with one policy: the first `headChars` and the last
 * `tailChars` characters of the stream are kept and the middle is dropped (counted). A process
 * printing gigabytes costs at most headChars + 2 * tailChars. The tail is also the replay window: a
 * viewer that attaches late (a reopened terminal, a reconnecting client) is shown the most recent
 * output, contiguous, from it.
 *
 * Two policies are in use: a command's output (observations show the first and last 15,000 characters,
 * so both ends are kept with room for escape-stripping) and a terminal's scrollback (no head; the last
 * few screens).
 */

export interface OutputPolicy {
  /** Characters kept from the start of the stream. */
  headChars: number;
  /** Characters kept from the end of the stream; also what replay() can give. */
  tailChars: number;
}

/** A command's output: generous both ends, so escape-stripping still leaves > 15,000 characters. */
export const COMMAND_OUTPUT: OutputPolicy = { headChars: 64 * 1024, tailChars: 64 * 1024 };
/** A terminal's scrollback: enough for a few screens, replayed to whoever attaches next. */
export const TERMINAL_SCROLLBACK: OutputPolicy = { headChars: 0, tailChars: 256 * 1024 };

export interface OutputSnapshot {
  head: string;
  tail: string;
  /** Characters dropped between head and tail. */
  dropped: number;
}

export class OutputBuffer {
  private head = '';
  private tailParts: string[] = [];
  private tailLength = 0;
  private dropped = 0;

  constructor(readonly policy: OutputPolicy) {}

  get isEmpty(): boolean {
    return this.head.length === 0 && this.tailLength === 0;
  }

  append(chunk: string): void {
    if (chunk.length === 0) return;
    const { headChars, tailChars } = this.policy;
    if (this.tailLength === 0 && this.head.length < headChars) {
      const room = headChars - this.head.length;
      this.head += chunk.slice(0, room);
      chunk = chunk.slice(room);
      if (chunk.length === 0) return;
    }
    this.tailParts.push(chunk);
    this.tailLength += chunk.length;
    // Compacted now and then rather than on every chunk: joins stay amortised O(1) per character.
    if (this.tailLength > 2 * tailChars) this.compactTail();
  }

  private compactTail(): void {
    const joined = this.tailParts.join('');
    const keep = joined.slice(Math.max(0, joined.length - this.policy.tailChars));
    this.dropped += joined.length - keep.length;
    this.tailParts = [keep];
    this.tailLength = keep.length;
  }

  /** Everything kept, without emptying the buffer. */
  peek(): OutputSnapshot {
    if (this.tailLength > this.policy.tailChars) this.compactTail();
    return { head: this.head, tail: this.tailParts.join(''), dropped: this.dropped };
  }

  /** Everything kept, and the buffer emptied (the next command's output starts afresh). */
  take(): OutputSnapshot {
    const snapshot = this.peek();
    this.head = '';
    this.tailParts = [];
    this.tailLength = 0;
    this.dropped = 0;
    return snapshot;
  }

  /** The most recent output, contiguous: all of it if nothing was dropped, else the tail. */
  replay(): string {
    const { head, tail, dropped } = this.peek();
    return dropped === 0 ? head + tail : tail;
  }
}

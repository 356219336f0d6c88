/**
 * Output of one command, kept in bounded memory: the first HEAD_CHARS and the last TAIL_CHARS of the
 * raw stream. Anything between is dropped, since observations only ever show the first and last
 * 15,000 characters anyway. A command printing gigabytes costs at most HEAD_CHARS + 2 * TAIL_CHARS.
 */

/** Raw characters kept from the start; generous so escape-stripping still leaves > 15,000 chars. */
export const HEAD_CHARS = 64 * 1024;
/** Raw characters kept from the end. */
export const TAIL_CHARS = 64 * 1024;

export class BoundedOutput {
  private head = '';
  private tailParts: string[] = [];
  private tailLength = 0;
  private dropped = 0;

  get length(): number {
    return this.head.length + this.tailLength;
  }

  get isEmpty(): boolean {
    return this.head.length === 0 && this.tailLength === 0;
  }

  /** Characters dropped from the middle so far. */
  get droppedChars(): number {
    return this.dropped;
  }

  append(chunk: string): void {
    if (chunk.length === 0) return;
    if (this.tailLength === 0 && this.head.length < HEAD_CHARS) {
      const room = HEAD_CHARS - this.head.length;
      this.head += chunk.slice(0, room);
      chunk = chunk.slice(room);
      if (chunk.length === 0) return;
    }
    this.tailParts.push(chunk);
    this.tailLength += chunk.length;
    if (this.tailLength > 2 * TAIL_CHARS) this.compactTail();
  }

  private compactTail(): void {
    const joined = this.tailParts.join('');
    const keep = joined.slice(joined.length - TAIL_CHARS);
    this.dropped += joined.length - keep.length;
    this.tailParts = [keep];
    this.tailLength = keep.length;
  }

  /** Returns everything kept and empties the buffer. `gap` is set when the middle was dropped. */
  take(): { head: string; tail: string; gap: boolean } {
    if (this.tailLength > TAIL_CHARS) this.compactTail();
    const result = { head: this.head, tail: this.tailParts.join(''), gap: this.dropped > 0 };
    this.head = '';
    this.tailParts = [];
    this.tailLength = 0;
    this.dropped = 0;
    return result;
  }
}

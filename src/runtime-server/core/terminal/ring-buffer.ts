/** Keeps the last `capacity` characters of a stream, for replaying a terminal to a reconnecting viewer. */
export class RingBuffer {
  private parts: string[] = [];
  private size = 0;

  constructor(private readonly capacity: number) {}

  push(chunk: string): void {
    this.parts.push(chunk);
    this.size += chunk.length;
    if (this.size > this.capacity * 2) this.compact();
  }

  private compact(): void {
    const all = this.parts.join('');
    const kept = all.slice(Math.max(0, all.length - this.capacity));
    this.parts = [kept];
    this.size = kept.length;
  }

  contents(): string {
    if (this.size > this.capacity) this.compact();
    return this.parts.join('');
  }
}

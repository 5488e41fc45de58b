/**
 * A FIFO between the classifying and the sending stage: `push` waits while the queue is full
 * (back pressure toward the candidate source), `take` waits while it is empty. `close` lets the
 * consumers drain what is left; `fail` makes every waiting and later call reject.
 */
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private head = 0;
  private closed = false;
  private failure: unknown = undefined;
  private readonly waitingPushers: Array<() => void> = [];
  private readonly waitingTakers: Array<() => void> = [];

  constructor(private readonly capacity: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  async push(item: T): Promise<void> {
    while (this.length >= this.capacity && this.failure === undefined) {
      await new Promise<void>((resolve) => this.waitingPushers.push(resolve));
    }
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new Error('queue is closed');
    this.items.push(item);
    this.wake(this.waitingTakers);
  }

  /**
   * Up to `max` items; an empty array once the queue is closed and drained. Once one item is
   * there, waits up to `lingerMs` more for a full batch, so sends are not split into tiny batches
   * while the producer is still filling the queue.
   */
  async take(max: number, lingerMs = 0): Promise<T[]> {
    while (this.length === 0 && this.open) await this.nextChange();
    if (this.length < max && lingerMs > 0 && this.open) {
      let lingering = true;
      const timer = setTimeout(() => {
        lingering = false;
        this.wakeAll();
      }, lingerMs);
      while (lingering && this.length < max && this.open) await this.nextChange();
      clearTimeout(timer);
    }
    if (this.failure !== undefined) throw this.failure;
    const count = Math.min(max, this.length);
    const taken = this.items.slice(this.head, this.head + count);
    this.head += count;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    for (let i = 0; i < count; i++) this.wake(this.waitingPushers);
    return taken;
  }

  private get open(): boolean {
    return !this.closed && this.failure === undefined;
  }

  private nextChange(): Promise<void> {
    return new Promise<void>((resolve) => this.waitingTakers.push(resolve));
  }

  close(): void {
    this.closed = true;
    this.wakeAll();
  }

  fail(error: unknown): void {
    this.failure ??= error;
    this.wakeAll();
  }

  private wake(waiters: Array<() => void>): void {
    const next = waiters.shift();
    if (next) next();
  }

  private wakeAll(): void {
    for (const waiter of this.waitingPushers.splice(0)) waiter();
    for (const waiter of this.waitingTakers.splice(0)) waiter();
  }
}

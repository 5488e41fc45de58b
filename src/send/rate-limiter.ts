import { SECOND, systemClock, type Clock } from '../time.js';

/**
 * Limits messages per second two ways at once: a token bucket (the average rate, fractional
 * rates included, with a burst of one batch) and a sliding 1-second window that no batch may push
 * over the rate, so no 1-second window ever sees more than the configured number of sends.
 * Callers are served in arrival order.
 */
export class RateLimiter {
  readonly burst: number;
  private readonly windowCap: number;
  private tokens: number;
  private refilledAt: number;
  /** Recent sends as (time, count), oldest first from `head`, for the sliding window. */
  private recent: Array<{ at: number; count: number }> = [];
  private head = 0;
  private inWindow = 0;
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    readonly ratePerSecond: number,
    private readonly clock: Clock = systemClock,
    maxBatch = 10,
  ) {
    if (!(ratePerSecond > 0)) throw new RangeError('rate must be positive');
    this.windowCap = Math.max(1, Math.floor(ratePerSecond));
    this.burst = Math.min(maxBatch, this.windowCap);
    this.tokens = this.burst;
    this.refilledAt = clock.now();
  }

  /**
   * Waits until messages may be sent and resolves to how many (1…count, count ≤ burst). It is
   * `count` unless the 1-second window has room for fewer while tokens are there: then that many
   * go now, so rates that are not a multiple of the batch size are reached too.
   */
  acquire(count: number, signal?: AbortSignal): Promise<number> {
    if (count < 1 || count > this.burst) throw new RangeError(`count must be 1…${this.burst}`);
    const mine = this.turn.then(() => this.waitFor(count, signal));
    this.turn = mine.catch(() => undefined);
    return mine;
  }

  private async waitFor(count: number, signal?: AbortSignal): Promise<number> {
    for (;;) {
      const now = this.clock.now();
      this.refill(now);
      this.expire(now);
      const tokenWait = this.tokenWait(count);
      const room = this.windowCap - this.inWindow;
      let granted = 0;
      if (tokenWait <= 0) granted = Math.min(count, room);
      if (granted > 0) {
        this.tokens -= granted;
        this.recent.push({ at: now, count: granted });
        this.inWindow += granted;
        return granted;
      }
      await this.clock.sleep(Math.ceil(Math.max(tokenWait, this.windowWait(now, 1))), signal);
    }
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.ratePerSecond) / SECOND);
    this.refilledAt = now;
  }

  /** A send at time `at` counts in every window (t − 1 s, t] with t < at + 1 s. */
  private expire(now: number): void {
    while (this.head < this.recent.length && (this.recent[this.head] as { at: number }).at <= now - SECOND) {
      this.inWindow -= (this.recent[this.head] as { count: number }).count;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.recent.length) {
      this.recent = this.recent.slice(this.head); // drop expired entries in bulk, not one shift at a time
      this.head = 0;
    }
  }

  private tokenWait(count: number): number {
    return this.tokens >= count ? 0 : ((count - this.tokens) * SECOND) / this.ratePerSecond;
  }

  private windowWait(now: number, count: number): number {
    let excess = this.inWindow + count - this.windowCap;
    if (excess <= 0) return 0;
    for (let i = this.head; i < this.recent.length; i++) {
      const send = this.recent[i] as { at: number; count: number };
      excess -= send.count;
      if (excess <= 0) return send.at + SECOND - now;
    }
    return SECOND; // unreachable: count ≤ windowCap
  }
}

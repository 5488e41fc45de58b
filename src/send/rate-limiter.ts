import { systemClock, type Clock } from '../time.js';
import { ratePolicy, type RatePolicy } from './rate-policy.js';

/** Permission to send `count` messages now. */
export interface Grant {
  readonly count: number;
  /**
   * Call right after the request was issued, with the time read then (`clock.now()`). The
   * in-process limiter counts the send from that moment, so the window rule holds for request
   * start times even when something (a garbage collection, a busy CPU) delayed the request.
   */
  started(at: number): void;
}

/** Paces the sends to one queue (README, "Safety"). */
export interface RateLimiter {
  /** The limit this sender was configured with, messages per second. */
  readonly ratePerSecond: number;
  /** Most messages a grant allows: one batch, or fewer at rates below 10/s. */
  readonly maxGrant: number;
  readonly description: string;
  /** Waits until 1…min(wanted, maxGrant) messages may go, and says how many. */
  acquire(wanted: number, signal?: AbortSignal): Promise<Grant>;
}

/**
 * Hands out a limiter's grants one caller at a time, in arrival order (both limiters). A caller
 * that gives up (aborted) does not hold up the next.
 */
export class GrantQueue {
  private turn: Promise<unknown> = Promise.resolve();

  constructor(private readonly maxGrant: () => number) {}

  take(wanted: number, wait: (want: number) => Promise<Grant>): Promise<Grant> {
    if (!Number.isInteger(wanted) || wanted < 1) throw new RangeError(`wanted must be a positive integer, got ${wanted}`);
    const mine = this.turn.then(() => wait(Math.min(wanted, this.maxGrant())));
    this.turn = mine.catch(() => undefined);
    return mine;
  }
}

interface SendRecord {
  at: number;
  count: number;
}

/**
 * The rate limit of one process (the file-backed default; the Valkey limiter shares one limit
 * among processes). Callers are served in arrival order.
 */
export class LocalRateLimiter implements RateLimiter {
  readonly policy: RatePolicy;
  readonly description: string;
  private tokens: number;
  private refilledAt: number;
  /** Sends still inside the window, oldest first from `head`. */
  private recent: SendRecord[] = [];
  private head = 0;
  private inWindow = 0;
  private readonly grants = new GrantQueue(() => this.policy.burst);

  constructor(
    readonly ratePerSecond: number,
    private readonly clock: Clock = systemClock,
    maxBatch = 10,
  ) {
    this.policy = ratePolicy(ratePerSecond, maxBatch);
    this.tokens = this.policy.capacity;
    this.refilledAt = clock.now();
    this.description = `${ratePerSecond} msgs/s in this process`;
  }

  get maxGrant(): number {
    return this.policy.burst;
  }

  acquire(wanted: number, signal?: AbortSignal): Promise<Grant> {
    return this.grants.take(wanted, (want) => this.waitFor(want, signal));
  }

  private async waitFor(want: number, signal?: AbortSignal): Promise<Grant> {
    for (;;) {
      signal?.throwIfAborted();
      const now = this.clock.now();
      this.refill(now);
      this.expire(now);
      // Fewer than wanted when the window has room for fewer: rates that are not a multiple of
      // the batch size are still reached.
      const count = Math.min(want, this.policy.windowCap - this.inWindow);
      if (count >= 1 && this.tokens >= count - 1e-9) return this.grant(now, count);
      const wait = count >= 1 ? this.tokenWait(count) : this.windowWait(now);
      await this.clock.sleepUntil(now + wait, signal);
    }
  }

  private grant(now: number, count: number): Grant {
    this.tokens -= count;
    const record: SendRecord = { at: now, count };
    this.recent.push(record);
    this.inWindow += count;
    return {
      count,
      started: (at) => {
        record.at = Math.max(record.at, at);
      },
    };
  }

  private refill(now: number): void {
    const { capacity, rate } = this.policy;
    this.tokens = Math.min(capacity, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
  }

  /** A send at `at` counts in every window [t − windowMs, t) … up to t = at + windowMs. */
  private expire(now: number): void {
    const { windowMs } = this.policy;
    while (this.head < this.recent.length && (this.recent[this.head] as SendRecord).at + windowMs <= now) {
      this.inWindow -= (this.recent[this.head] as SendRecord).count;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.recent.length) {
      this.recent = this.recent.slice(this.head); // drop expired entries in bulk, not one shift at a time
      this.head = 0;
    }
  }

  private tokenWait(count: number): number {
    return ((count - this.tokens) * 1000) / this.policy.rate;
  }

  /** Until the oldest send in the window leaves it (the window is full). */
  private windowWait(now: number): number {
    const oldest = this.recent[this.head];
    return oldest ? oldest.at + this.policy.windowMs - now : 0;
  }
}

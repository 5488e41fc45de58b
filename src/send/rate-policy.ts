import { SECOND } from '../time.js';

/**
 * How a rate limit is enforced, derived from the rate alone so that the in-process limiter and
 * the limiter shared in Valkey apply exactly the same rules (README, "Safety"):
 *
 * - a token bucket holds the average at `rate`; it fills up to one grant (`burst`, at most one
 *   batch) plus a fraction of a token, so a sender that wakes a little late does not lose that
 *   time, yet two grants can never follow each other within less than one token's time;
 * - a sliding window: no `windowMs` span ever holds more than `windowCap` messages. Integer
 *   rates: no 1-second window above the rate. Below 1/s: no 1/rate-second window above one.
 *   Fractional rates above 1: no 1-second window above the rate rounded up.
 */
export interface RatePolicy {
  readonly rate: number;
  /** Most messages one grant allows: a batch, or fewer at rates below 10/s. */
  readonly burst: number;
  /** Token bucket size: the burst plus a fraction of a token (see above). */
  readonly capacity: number;
  readonly windowMs: number;
  readonly windowCap: number;
}

/** What the bucket may hold beyond one burst: less than one token, so bursts stay one batch. */
const LATE_WAKE_ALLOWANCE = 0.99;

export function ratePolicy(rate: number, maxBatch: number): RatePolicy {
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate must be a positive number, got ${rate}`);
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`batch size must be a positive integer, got ${maxBatch}`);
  const burst = Math.min(maxBatch, Math.max(1, Math.floor(rate)));
  const windowMs = Math.max(SECOND, SECOND / rate);
  // rate × window, rounded up; the epsilon keeps 0.3 × 3333.3… from rounding up to 2.
  const windowCap = Math.max(1, Math.ceil((rate * windowMs) / SECOND - 1e-9));
  return { rate, burst, capacity: burst + LATE_WAKE_ALLOWANCE, windowMs, windowCap };
}

// Property-based tests of the in-process rate limiter (src/send/rate-limiter.ts, LocalRateLimiter,
// with the rules of src/send/rate-policy.ts) on a manual clock, against README "Safety", the rate
// limit table. Deterministic: every fc.assert names its seed and runs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LocalRateLimiter } from '../../../src/send/rate-limiter.js';
import { ManualClock } from '../../helpers/fakes.js';

const SEED = 0x2a7e_11;

/**
 * README "Safety", row "windows, where requests start": integer rates — no 1-second window holds
 * more than the limit; below 1/s — no 1/rate-second window holds more than one; fractional rates
 * above 1 — no 1-second window above the limit rounded up.
 */
function readmeWindowRule(rate: number): { windowMs: number; cap: number } {
  if (rate < 1) return { windowMs: 1000 / rate, cap: 1 };
  return { windowMs: 1000, cap: Number.isInteger(rate) ? rate : Math.ceil(rate) };
}

/** README's "a burst is at most one batch": 10 messages, fewer below 10/s: floor(rate), at least 1. */
const readmeMaxGrant = (rate: number, maxBatch: number): number => Math.min(maxBatch, Math.max(1, Math.floor(rate)));

interface Start {
  /** When the request was issued (the time given to Grant.started). */
  at: number;
  count: number;
}

/**
 * The most messages whose requests started within any window [t, t + windowMs), counted the plain
 * way: a fullest window can always be slid to start at some request's start.
 */
function mostInAnyWindow(starts: readonly Start[], windowMs: number): { most: number; from: number } {
  let best = { most: 0, from: 0 };
  for (const first of starts) {
    const inWindow = starts.filter((start) => start.at >= first.at && start.at < first.at + windowMs).reduce((sum, start) => sum + start.count, 0);
    if (inWindow > best.most) best = { most: inWindow, from: first.at };
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Generators

/** Integer rates, fractional rates above 1 (9.5, 2.3), and rates below 1 (0.5, 0.07). */
const rateArb = fc.oneof(
  fc.integer({ min: 1, max: 120 }),
  fc.integer({ min: 11, max: 300 }).filter((tenths) => tenths % 10 !== 0).map((tenths) => tenths / 10),
  fc.integer({ min: 5, max: 99 }).map((hundredths) => hundredths / 100),
  fc.constantFrom(0.5, 9.5, 10, 100),
);

/** Milliseconds: mostly none or short, sometimes long enough to empty a window or two. */
const delayArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 50 }) },
  { weight: 2, arbitrary: fc.integer({ min: 51, max: 3_000 }) },
  { weight: 1, arbitrary: fc.double({ min: 0, max: 20_000, noNaN: true }) },
);

/** One request of one sender: how many messages it wants, and its timing. */
interface Step {
  wanted: number;
  /** Between the grant and the request's issue (Grant.started): a GC pause, a busy CPU. */
  pauseBeforeStart: number;
  /** The request in flight before the sender asks again (latency), or idle time. */
  afterStart: number;
}

const stepArb: fc.Arbitrary<Step> = fc.record({ wanted: fc.integer({ min: 1, max: 25 }), pauseBeforeStart: delayArb, afterStart: delayArb });

/** 1–4 senders sharing the limiter (sqs.concurrency), each with its own requests. */
const sendersArb = fc.array(fc.array(stepArb, { minLength: 1, maxLength: 40, size: 'medium' }), { minLength: 1, maxLength: 4 });

// ---------------------------------------------------------------------------------------------
// Properties

describe('LocalRateLimiter under arbitrary timing (property)', () => {
  // Whatever the rate (integer, fractional, below 1), the batch size, the sizes asked for, the
  // pauses between a grant and its request's start, the latencies and idle times, and the number
  // of senders sharing the limiter: no window of request start times holds more than README's
  // limit, and no grant exceeds one burst. Catches a window counted from the grant instead of the
  // request's start (a pause would then squeeze two batches into one window), a window rounded
  // the wrong way for fractional rates, an expiry off by one at the window's edge, a grant larger
  // than the room left in the window, and senders that overtake one another's accounting.
  it('no window of request start times holds more than the README limit', async () => {
    await fc.assert(
      fc.asyncProperty(rateArb, fc.integer({ min: 1, max: 10 }), fc.nat({ max: 100_000 }), sendersArb, async (rate, maxBatch, startTime, senders) => {
        const clock = new ManualClock(startTime);
        const limiter = new LocalRateLimiter(rate, clock, maxBatch);
        const starts: Start[] = [];
        const grantLimit = readmeMaxGrant(rate, maxBatch);
        await Promise.all(
          senders.map(async (steps) => {
            for (const step of steps) {
              const grant = await limiter.acquire(step.wanted);
              expect(grant.count, `a grant for ${step.wanted} at ${rate}/s`).toBeGreaterThanOrEqual(1);
              expect(grant.count).toBeLessThanOrEqual(Math.min(step.wanted, grantLimit));
              clock.time += step.pauseBeforeStart; // synchronous: the whole process is held up
              grant.started(clock.now());
              starts.push({ at: clock.now(), count: grant.count });
              await clock.sleep(step.afterStart);
            }
          }),
        );
        const { windowMs, cap } = readmeWindowRule(rate);
        const { most, from } = mostInAnyWindow(starts, windowMs);
        expect(most, `at ${rate}/s, ${most} messages in the ${windowMs} ms from ${from}`).toBeLessThanOrEqual(cap);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  // The token bucket behind "the average is the limit" and "after an idle period one batch goes at
  // once, then the rate": over any span of grants, at most one burst (plus less than one token,
  // the late-wake allowance) beyond rate × span. Catches a bucket that refills more than the time
  // elapsed, keeps more than one burst after an idle period, or is not charged for a grant.
  it('never grants more than one burst beyond the rate over any span', async () => {
    await fc.assert(
      fc.asyncProperty(rateArb, fc.integer({ min: 1, max: 10 }), sendersArb, async (rate, maxBatch, senders) => {
        const clock = new ManualClock();
        const limiter = new LocalRateLimiter(rate, clock, maxBatch);
        const grants: Start[] = [];
        await Promise.all(
          senders.map(async (steps) => {
            for (const step of steps) {
              const grant = await limiter.acquire(step.wanted);
              grants.push({ at: clock.now(), count: grant.count });
              grant.started(clock.now());
              await clock.sleep(step.afterStart);
            }
          }),
        );
        const burst = readmeMaxGrant(rate, maxBatch);
        let worst = { excess: Number.NEGATIVE_INFINITY, what: '' };
        for (let i = 0; i < grants.length; i++) {
          let total = 0;
          for (let j = i; j < grants.length; j++) {
            total += (grants[j] as Start).count;
            const span = (grants[j] as Start).at - (grants[i] as Start).at;
            const excess = total - (rate * span) / 1000;
            if (excess > worst.excess) worst = { excess, what: `grants ${i}…${j}: ${total} messages in ${span} ms` };
          }
        }
        expect(worst.excess, `at ${rate}/s, ${worst.what}`).toBeLessThan(burst + 1 + 1e-6);
      }),
      { seed: SEED + 1, numRuns: 1000 },
    );
  });
});

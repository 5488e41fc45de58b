import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/send/rate-limiter.js';
import { ManualClock } from '../helpers/fakes.js';

/** The largest number of sends inside any window (t − 1000, t]. */
function maxInAnyWindow(sends: Array<{ at: number; count: number }>): number {
  let max = 0;
  for (const end of sends) {
    const inWindow = sends.filter((s) => s.at > end.at - 1000 && s.at <= end.at).reduce((sum, s) => sum + s.count, 0);
    max = Math.max(max, inWindow);
  }
  return max;
}

async function simulate(rate: number, batches: number, batchSize: number) {
  const clock = new ManualClock();
  const limiter = new RateLimiter(rate, clock);
  const sends: Array<{ at: number; count: number }> = [];
  for (let i = 0; i < batches; i++) {
    const count = await limiter.acquire(Math.min(batchSize, limiter.burst));
    sends.push({ at: clock.now(), count });
  }
  return { sends, clock, limiter };
}

describe('RateLimiter', () => {
  it.each([
    [10, 10],
    [25, 10],
    [7, 10],
    [2.5, 10],
    [0.5, 1],
    [1000, 10],
  ])('at %d msgs/s never exceeds the rate in any 1-second window (batches of %d)', async (rate, batchSize) => {
    const { sends } = await simulate(rate, 200, batchSize);
    expect(maxInAnyWindow(sends)).toBeLessThanOrEqual(Math.max(1, Math.floor(rate)));
  });

  it.each([10, 25, 7, 2.5, 0.5])('holds the average at %d msgs/s over a long run', async (rate) => {
    const { sends, clock } = await simulate(rate, 400, 10);
    const total = sends.reduce((sum, s) => sum + s.count, 0);
    const seconds = clock.now() / 1000;
    const achieved = (total - (sends[0]?.count ?? 0)) / seconds; // the first batch is the initial burst
    expect(achieved).toBeLessThanOrEqual(rate * 1.0001);
    expect(achieved).toBeGreaterThan(Math.min(rate, Math.max(1, Math.floor(rate))) * 0.99);
  });

  it('lets the first batch go at once (burst of one batch)', async () => {
    const clock = new ManualClock(5000);
    const limiter = new RateLimiter(10, clock);
    expect(await limiter.acquire(10)).toBe(10);
    expect(clock.now()).toBe(5000);
    await limiter.acquire(10);
    expect(clock.now()).toBeGreaterThanOrEqual(6000);
  });

  it('serves concurrent callers in arrival order without exceeding the rate', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(20, clock);
    const order: number[] = [];
    const sends: Array<{ at: number; count: number }> = [];
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        limiter.acquire(10).then((count) => {
          order.push(i);
          sends.push({ at: clock.now(), count });
        }),
      ),
    );
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(maxInAnyWindow(sends)).toBeLessThanOrEqual(20);
  });

  it('refuses a batch larger than the burst and a non-positive rate', () => {
    expect(() => new RateLimiter(0)).toThrow(RangeError);
    expect(() => new RateLimiter(5).acquire(6)).toThrow(RangeError);
  });

  it('stops waiting when the signal aborts', async () => {
    const limiter = new RateLimiter(1);
    await limiter.acquire(1);
    const controller = new AbortController();
    const waiting = limiter.acquire(1, controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
  });
});

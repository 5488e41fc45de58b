import { describe, expect, it } from 'vitest';
import { LocalRateLimiter } from '../../src/send/rate-limiter.js';
import { ratePolicy } from '../../src/send/rate-policy.js';
import { ManualClock } from '../helpers/fakes.js';
import { achievedRate, fullestWindow, windowRule, type TimedSend } from '../../bench/rate-measure.js';

/** A sender that always wants a full batch of 10, under virtual time. */
async function simulate(rate: number, grants: number, options: { lateMs?: number } = {}) {
  const clock = new ManualClock();
  const limiter = new LocalRateLimiter(rate, clock);
  const sends: TimedSend[] = [];
  for (let i = 0; i < grants; i++) {
    const grant = await limiter.acquire(10);
    clock.time += options.lateMs ?? 0; // the request starts this much after its grant
    grant.started(clock.now());
    sends.push({ at: clock.now(), count: grant.count });
  }
  return { sends, clock, limiter };
}

const RATES = [0.5, 1, 2.5, 5, 7, 9.5, 10, 25, 100, 1000];

describe('ratePolicy', () => {
  it.each([
    [0.5, 1, 2000, 1],
    [1, 1, 1000, 1],
    [5, 5, 1000, 5],
    [9.5, 9, 1000, 10],
    [10, 10, 1000, 10],
    [100, 10, 1000, 100],
  ])('at %d/s: grants ≤ %d, windows of %d ms hold ≤ %d', (rate, burst, windowMs, windowCap) => {
    expect(ratePolicy(rate, 10)).toMatchObject({ burst, windowMs, windowCap });
  });

  it('refuses rates and batch sizes that cannot work', () => {
    expect(() => ratePolicy(0, 10)).toThrow(RangeError);
    expect(() => ratePolicy(Number.NaN, 10)).toThrow(RangeError);
    expect(() => ratePolicy(1, 0)).toThrow(RangeError);
  });
});

describe('LocalRateLimiter', () => {
  it.each(RATES)('at %d msgs/s sends something, and no window holds more than the rule allows', async (rate) => {
    const { sends } = await simulate(rate, 300);
    const { windowMs, cap } = windowRule(rate);
    expect(sends.every((send) => send.count >= 1)).toBe(true);
    expect(fullestWindow(sends, windowMs)).toBeLessThanOrEqual(cap);
  });

  it.each(RATES)('holds the average at %d msgs/s within 1 %, never above the token bucket', async (rate) => {
    const { sends, limiter } = await simulate(rate, 400);
    const total = sends.reduce((sum, send) => sum + send.count, 0);
    const spanS = ((sends.at(-1)?.at ?? 0) - (sends[0]?.at ?? 0)) / 1000;
    // At most the bucket's content at the start plus the rate over the time since.
    expect(total).toBeLessThanOrEqual(limiter.policy.capacity + rate * spanS + 1e-6);
    expect(achievedRate(sends)).toBeGreaterThan(rate * 0.99);
    expect(achievedRate(sends)).toBeLessThan(rate * 1.01);
  });

  it.each([10, 100])('at %d msgs/s keeps the average when every request starts 3 ms after its grant', async (rate) => {
    const { sends } = await simulate(rate, 400, { lateMs: 3 });
    expect(fullestWindow(sends, 1000)).toBeLessThanOrEqual(rate);
    expect(achievedRate(sends)).toBeGreaterThan(rate * 0.99);
  });

  it('counts a send from when its request started, not from its grant', async () => {
    const clock = new ManualClock();
    const limiter = new LocalRateLimiter(10, clock);
    const first = await limiter.acquire(10);
    clock.time += 400; // the request was held up after its grant
    first.started(clock.now());
    const second = await limiter.acquire(10);
    expect(second.count).toBe(10);
    expect(clock.now()).toBe(1400); // one second after the first request started, not after its grant
  });

  it('lets one batch go at once, then paces (a burst is one batch)', async () => {
    const clock = new ManualClock(5000);
    const limiter = new LocalRateLimiter(100, clock);
    expect((await limiter.acquire(10)).count).toBe(10);
    expect(clock.now()).toBe(5000);
    expect((await limiter.acquire(10)).count).toBe(10);
    expect(clock.now()).toBeGreaterThanOrEqual(5090); // 9.01 tokens at 100/s
  });

  it('grants at most one batch, and fewer below 10 msgs/s', async () => {
    expect((await new LocalRateLimiter(5, new ManualClock()).acquire(10)).count).toBe(5);
    expect((await new LocalRateLimiter(0.5, new ManualClock()).acquire(10)).count).toBe(1);
    expect(new LocalRateLimiter(1000).maxGrant).toBe(10);
  });

  it('serves concurrent callers in arrival order without exceeding the rate', async () => {
    const clock = new ManualClock();
    const limiter = new LocalRateLimiter(20, clock);
    const order: number[] = [];
    const sends: TimedSend[] = [];
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        limiter.acquire(10).then((grant) => {
          grant.started(clock.now());
          order.push(i);
          sends.push({ at: clock.now(), count: grant.count });
        }),
      ),
    );
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(fullestWindow(sends, 1000)).toBeLessThanOrEqual(20);
  });

  it('refuses a non-positive rate and a request for nothing', () => {
    expect(() => new LocalRateLimiter(0)).toThrow(RangeError);
    expect(() => new LocalRateLimiter(5).acquire(0)).toThrow(RangeError);
  });

  it('stops waiting when the signal aborts', async () => {
    const limiter = new LocalRateLimiter(1);
    (await limiter.acquire(1)).started(0);
    const controller = new AbortController();
    const waiting = limiter.acquire(1, controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
  });
});

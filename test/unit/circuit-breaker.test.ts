import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { CIRCUIT_OPEN, CircuitBreaker, DEFAULT_BREAKER } from '../../src/flags/circuit-breaker.js';
import { HttpFlagChecker, type HttpCheckerOptions } from '../../src/flags/http-checker.js';
import { ManualClock } from '../helpers/fakes.js';

/** A logger whose lines the test reads. */
function capturingLogger(): { logger: pino.Logger; messages: () => string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  return { logger, messages: () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg) };
}

describe('CircuitBreaker', () => {
  const COOLDOWN = 30_000;

  function breaker(threshold = 3) {
    const clock = new ManualClock(1000);
    const log = capturingLogger();
    return { clock, log, breaker: new CircuitBreaker(threshold, COOLDOWN, log.logger, clock) };
  }

  it('opens after `threshold` consecutive failures, and says so', () => {
    const { breaker: b, log } = breaker(3);
    b.failed('timeout after 2000 ms');
    b.failed('timeout after 2000 ms');
    expect(b.tryAcquire()).toBe(true);
    b.failed('network: connect ECONNREFUSED');
    expect(b.current).toBe('open');
    expect(b.tryAcquire()).toBe(false);
    expect(log.messages()).toEqual([
      'flag service circuit breaker opened after 3 consecutive failures (last: network: connect ECONNREFUSED): checks are unevaluable at once for 30000 ms, then one probe',
    ]);
  });

  it('counts consecutive failures only: an answer in between starts the count again', () => {
    const { breaker: b } = breaker(3);
    b.failed('HTTP 503');
    b.failed('HTTP 503');
    b.succeeded();
    b.failed('HTTP 503');
    b.failed('HTTP 503');
    expect(b.current).toBe('closed');
    b.failed('HTTP 503');
    expect(b.current).toBe('open');
  });

  it('refuses everything for the cool-down, then lets exactly one probe through', () => {
    const { breaker: b, clock } = breaker(1);
    b.failed('HTTP 502');
    clock.time += COOLDOWN - 1;
    expect(b.tryAcquire()).toBe(false);
    clock.time += 1;
    expect(b.tryAcquire()).toBe(true); // the probe
    expect(b.current).toBe('half-open');
    expect(b.tryAcquire()).toBe(false); // others wait for its answer
    expect(b.tryAcquire()).toBe(false);
  });

  it('closes when the probe is answered', () => {
    const { breaker: b, clock, log } = breaker(1);
    b.failed('HTTP 502');
    clock.time += COOLDOWN;
    expect(b.tryAcquire()).toBe(true);
    b.succeeded();
    expect(b.current).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(true);
    expect(log.messages().slice(1)).toEqual(['flag service circuit breaker half-open: one probe request after 30000 ms', 'flag service answers again: circuit breaker closed']);
  });

  it('opens for another full cool-down when the probe fails', () => {
    const { breaker: b, clock, log } = breaker(1);
    b.failed('HTTP 502');
    clock.time += COOLDOWN;
    expect(b.tryAcquire()).toBe(true);
    clock.time += 2000; // the probe timed out
    b.failed('timeout after 2000 ms');
    expect(b.current).toBe('open');
    clock.time += COOLDOWN - 1;
    expect(b.tryAcquire()).toBe(false);
    clock.time += 1;
    expect(b.tryAcquire()).toBe(true);
    expect(log.messages()).toContain('probe failed (timeout after 2000 ms): circuit breaker open for another 30000 ms');
  });

  it('is not extended by requests that were already in flight when it opened', () => {
    const { breaker: b, clock } = breaker(2);
    b.failed('timeout after 2000 ms');
    b.failed('timeout after 2000 ms'); // opens at t
    clock.time += 10_000;
    for (let i = 0; i < 14; i++) b.failed('timeout after 2000 ms'); // the rest of the 16 in flight
    clock.time += COOLDOWN - 10_000;
    expect(b.tryAcquire()).toBe(true);
  });

  it('never opens with threshold 0', () => {
    const { breaker: b } = breaker(0);
    for (let i = 0; i < 100; i++) b.failed('HTTP 500');
    expect(b.current).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
  });
});

/** A fake flag service: how each request is answered, and how many were made. */
function fakeFetch(respond: (url: string) => Response | Error): { fetcher: typeof fetch; calls: () => number } {
  let calls = 0;
  const fetcher = (input: string | URL | Request): Promise<Response> => {
    calls++;
    const outcome = respond(String(input));
    return outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(outcome);
  };
  return { fetcher: fetcher as typeof fetch, calls: () => calls };
}

const refused = (): Error => new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') });
const enabledAnswer = (): Response => new Response(JSON.stringify({ enabled: true }), { status: 200 });

function checkerWith(fetcher: typeof fetch, clock: ManualClock, overrides: Partial<HttpCheckerOptions> = {}) {
  const log = capturingLogger();
  const options: HttpCheckerOptions = {
    flag: 'f',
    urlTemplate: 'http://flags.test/{flag}/{userId}',
    batchUrl: null,
    batchSize: 100,
    responsePath: 'enabled',
    batchResponsePath: '',
    headers: {},
    concurrency: 16,
    timeoutMs: 2000,
    retries: 3,
    retryBaseMs: 100,
    retryMaxMs: 5000,
    breakerThreshold: 5,
    breakerCooldownMs: 30_000,
    ...overrides,
  };
  return { checker: new HttpFlagChecker(options, log.logger, clock, fetcher), log };
}

const users = (n: number): string[] => Array.from({ length: n }, (_, i) => `u${i}`);

describe('HttpFlagChecker with its circuit breaker (fake fetch, manual clock)', () => {
  it('asks a dead service about as often as the threshold, not once per user and retry', async () => {
    const service = fakeFetch(refused);
    const clock = new ManualClock();
    const { checker, log } = checkerWith(service.fetcher, clock);
    const results = await checker.check(users(1000));
    expect(results.every((result) => result === 'unevaluable')).toBe(true);
    // Without the breaker: 1000 users × 4 attempts. With it: the requests started before the
    // fifth failure came back, at most one per concurrency slot.
    expect(service.calls()).toBeGreaterThanOrEqual(5);
    expect(service.calls()).toBeLessThanOrEqual(5 + 16);
    // Only the failures before the fifth waited their first backoff (100 ms); none after it opened.
    expect(clock.time).toBeLessThan(5 * 100);
    expect(log.messages().some((m) => m.startsWith('flag service circuit breaker opened after 5 consecutive failures'))).toBe(true);
    const summary = log.messages().find((m) => m.startsWith('flag service gave no usable answer'));
    expect(summary).toBe('flag service gave no usable answer for 1000 users; counted as unevaluable');
  });

  it('counts 5xx as failures, but not a 4xx or a 429, which the service sent', async () => {
    const clock = new ManualClock();
    const fiveHundreds = fakeFetch(() => new Response('down', { status: 503 }));
    await checkerWith(fiveHundreds.fetcher, clock).checker.check(users(100));
    expect(fiveHundreds.calls()).toBeLessThanOrEqual(5 + 16);

    const notFound = fakeFetch(() => new Response('no such user', { status: 404 }));
    const { checker } = checkerWith(notFound.fetcher, clock);
    await checker.check(users(100));
    expect(notFound.calls()).toBe(100);
    expect(checker.breaker.current).toBe('closed');

    const limited = fakeFetch(() => new Response('slow down', { status: 429, headers: { 'retry-after': '0' } }));
    const limitedChecker = checkerWith(limited.fetcher, clock, { retries: 1 }).checker;
    await limitedChecker.check(users(20));
    expect(limited.calls()).toBe(40);
    expect(limitedChecker.breaker.current).toBe('closed');
  });

  it('answers at once while open, probes after the cool-down and uses the service again once it answers', async () => {
    let up = false;
    const service = fakeFetch(() => (up ? enabledAnswer() : refused()));
    const clock = new ManualClock();
    const { checker, log } = checkerWith(service.fetcher, clock);
    await checker.check(users(50));
    const whileDown = service.calls();

    up = true;
    expect(await checker.check(users(50))).toEqual(users(50).map(() => 'unevaluable')); // still cooling down: nobody asked
    expect(service.calls()).toBe(whileDown);
    const reasons = log.messages().at(-1);
    expect(reasons).toBe('flag service gave no usable answer for 50 users; counted as unevaluable');

    clock.time += 30_000;
    const afterCooldown = await checker.check(users(50));
    // One probe goes first; the users checked while it is in flight are refused, the rest asked.
    expect(afterCooldown.filter((result) => result === 'enabled').length).toBeGreaterThan(0);
    expect(checker.breaker.current).toBe('closed');
    expect(log.messages()).toContain('flag service answers again: circuit breaker closed');
    expect(await checker.check(users(50))).toEqual(users(50).map(() => 'enabled'));
  });

  it('labels users refused by the open breaker with their own reason', async () => {
    const lines: Array<{ msg: string; failures?: Record<string, number> }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    const service = fakeFetch(refused);
    const checker = new HttpFlagChecker(
      { flag: 'f', urlTemplate: 'http://x/{userId}', batchUrl: null, batchSize: 100, responsePath: 'enabled', batchResponsePath: '', headers: {}, concurrency: 1, timeoutMs: 100, retries: 0, retryBaseMs: 1, retryMaxMs: 1, breakerThreshold: 2 },
      logger,
      new ManualClock(),
      service.fetcher,
    );
    await checker.check(users(10));
    const failures = lines.find((line) => line.failures)?.failures;
    expect(failures).toEqual({ 'network: fetch failed': 2, [CIRCUIT_OPEN]: 8 });
  });

  it('uses the breaker for the batch endpoint too', async () => {
    const service = fakeFetch(refused);
    const { checker } = checkerWith(service.fetcher, new ManualClock(), { batchUrl: 'http://flags.test/batch', batchSize: 10, concurrency: 4 });
    expect((await checker.check(users(1000))).every((result) => result === 'unevaluable')).toBe(true);
    expect(service.calls()).toBeLessThanOrEqual(5 + 4);
  });
});

describe('flags.http breaker settings', () => {
  const http = { urlTemplate: 'https://flags.example/{flag}/{userId}' };

  it('default to 5 failures and a 30 s cool-down', () => {
    const config = loadConfig({ env: {}, overrides: { flags: { checker: 'http', http } } });
    expect(config.flags.http).toMatchObject({ breakerThreshold: DEFAULT_BREAKER.threshold, breakerCooldownMs: DEFAULT_BREAKER.cooldownMs });
    expect(DEFAULT_BREAKER).toEqual({ threshold: 5, cooldownMs: 30_000 });
  });

  it('take 0 to switch the breaker off, and refuse nonsense', () => {
    expect(loadConfig({ env: {}, overrides: { flags: { checker: 'http', http: { ...http, breakerThreshold: 0 } } } }).flags.http?.breakerThreshold).toBe(0);
    expect(() => loadConfig({ env: {}, overrides: { flags: { checker: 'http', http: { ...http, breakerThreshold: -1, breakerCooldownMs: 0 } } } })).toThrow(
      /flags\.http\.breakerThreshold[\s\S]*flags\.http\.breakerCooldownMs/,
    );
  });
});

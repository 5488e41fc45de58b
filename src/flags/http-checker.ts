import { FfError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { systemClock, type Clock } from '../time.js';
import { mapWithConcurrency, Semaphore } from '../concurrency.js';
import { CIRCUIT_OPEN, CircuitBreaker, DEFAULT_BREAKER } from './circuit-breaker.js';
import type { FlagChecker, FlagResult } from './types.js';

export interface HttpCheckerOptions {
  flag: string;
  /** Per-user URL; `{flag}` and `{userId}` are replaced (URL-encoded). */
  urlTemplate: string;
  /** Optional batch endpoint: POST {"flag", "userIds": [...]}, answered with a map userId → result. */
  batchUrl: string | null;
  batchSize: number;
  /** Dot path to the boolean in a per-user response, or in each value of the batch map ("" = the value itself). */
  responsePath: string;
  /** Dot path to the userId → result map in a batch response ("" = the body itself). */
  batchResponsePath: string;
  headers: Record<string, string>;
  concurrency: number;
  timeoutMs: number;
  retries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Consecutive failed requests (network error, timeout, 5xx) that open the circuit breaker; 0: never. Default 5. */
  breakerThreshold?: number;
  /** How long an open breaker answers `unevaluable` without asking, before one probe. Default 30 s. */
  breakerCooldownMs?: number;
}

type Attempt<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Asks the flag service itself, for rules that only it can evaluate. Retries 429, 5xx, timeouts
 * and network errors with capped exponential backoff (honouring Retry-After); stops the run on
 * 401/403. A user whose answer is still missing or malformed is `unevaluable`: counted, never
 * enqueued or marked.
 */
export class HttpFlagChecker implements FlagChecker {
  readonly description: string;
  /** One per checker: a daemon keeps it across runs, so a service found dead stays skipped until a probe answers. */
  readonly breaker: CircuitBreaker;
  /** Requests in flight to the flag service, whichever batch they are for. */
  private readonly inFlight: Semaphore;

  constructor(
    private readonly options: HttpCheckerOptions,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
    /** The HTTP client (tests pass a fake). */
    private readonly fetcher: typeof fetch = (input, init) => fetch(input, init),
  ) {
    this.description = `http ${options.batchUrl ?? options.urlTemplate} (concurrency ${options.concurrency})`;
    this.inFlight = new Semaphore(options.concurrency);
    this.breaker = new CircuitBreaker(options.breakerThreshold ?? DEFAULT_BREAKER.threshold, options.breakerCooldownMs ?? DEFAULT_BREAKER.cooldownMs, logger, clock);
  }

  async check(userIds: readonly string[]): Promise<FlagResult[]> {
    const failures = new Map<string, number>();
    const note = (reason: string): FlagResult => {
      failures.set(reason, (failures.get(reason) ?? 0) + 1);
      return 'unevaluable';
    };
    const results = this.options.batchUrl ? await this.checkInBatches(userIds, note) : await this.checkEach(userIds, note);
    if (failures.size > 0) {
      this.logger.warn({ failures: Object.fromEntries(failures) }, `flag service gave no usable answer for ${[...failures.values()].reduce((a, b) => a + b)} users; counted as unevaluable`);
    }
    return results;
  }

  private checkEach(userIds: readonly string[], note: (reason: string) => FlagResult): Promise<FlagResult[]> {
    return mapWithConcurrency(userIds, this.options.concurrency, async (userId) => {
      const url = this.options.urlTemplate.replaceAll('{flag}', encodeURIComponent(this.options.flag)).replaceAll('{userId}', encodeURIComponent(userId));
      const answer = await this.request(url, undefined);
      if (!answer.ok) return note(answer.reason);
      return toResult(dig(answer.value, this.options.responsePath), note);
    });
  }

  private async checkInBatches(userIds: readonly string[], note: (reason: string) => FlagResult): Promise<FlagResult[]> {
    const chunks: string[][] = [];
    for (let i = 0; i < userIds.length; i += this.options.batchSize) chunks.push(userIds.slice(i, i + this.options.batchSize));
    const answers = await mapWithConcurrency(chunks, this.options.concurrency, (chunk) =>
      this.request(this.options.batchUrl as string, JSON.stringify({ flag: this.options.flag, userIds: chunk })),
    );
    return chunks.flatMap((chunk, index) => {
      const answer = answers[index] as Attempt<unknown>;
      if (!answer.ok) return chunk.map(() => note(answer.reason));
      const map = dig(answer.value, this.options.batchResponsePath);
      if (typeof map !== 'object' || map === null) return chunk.map(() => note('batch response is not a map'));
      return chunk.map((userId) => toResult(dig((map as Record<string, unknown>)[userId], this.options.responsePath), note));
    });
  }

  /**
   * One call with retries; throws only for refused credentials, which no retry can fix. Every
   * attempt asks the circuit breaker first and tells it whether the service answered.
   */
  private request(url: string, body: string | undefined): Promise<Attempt<unknown>> {
    // Runs classify several batches at once: the limit is the checker's, across all of them.
    return this.inFlight.run(() => this.requestWithRetries(url, body));
  }

  private async requestWithRetries(url: string, body: string | undefined): Promise<Attempt<unknown>> {
    let reason = '';
    for (let attempt = 0; attempt <= this.options.retries; attempt++) {
      if (!this.breaker.tryAcquire()) return { ok: false, reason: CIRCUIT_OPEN };
      let retryAfterMs: number | undefined;
      let answered = false;
      try {
        const response = await this.fetcher(url, {
          method: body === undefined ? 'GET' : 'POST',
          headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...this.options.headers },
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
        // A 429 or a 4xx is the service answering; only 5xx, timeouts and network errors say it is down.
        answered = response.status < 500;
        if (answered) this.breaker.succeeded();
        if (response.status === 401 || response.status === 403) {
          throw new FfError('CHECKER_REFUSED', `flag service refused the request (${response.status}) at ${redactQuery(url)}: check its credentials`);
        }
        if (response.ok) {
          const text = await response.text();
          try {
            return { ok: true, value: JSON.parse(text) as unknown };
          } catch {
            return { ok: false, reason: 'response is not JSON' };
          }
        }
        reason = `HTTP ${response.status}`;
        if (response.status !== 429 && response.status < 500) return { ok: false, reason };
        retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
        await response.body?.cancel();
      } catch (error) {
        if (error instanceof FfError) throw error;
        reason = error instanceof DOMException && error.name === 'TimeoutError' ? `timeout after ${this.options.timeoutMs} ms` : `network: ${errorMessage(error)}`;
      }
      if (!answered) this.breaker.failed(reason);
      // No backoff to sit through when the retry would be refused anyway.
      if (this.breaker.refusing) return { ok: false, reason };
      if (attempt < this.options.retries) {
        const backoff = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** attempt);
        await this.clock.sleep(Math.min(this.options.retryMaxMs, Math.max(backoff, retryAfterMs ?? 0)));
      }
    }
    return { ok: false, reason };
  }
}

function toResult(value: unknown, note: (reason: string) => FlagResult): FlagResult {
  if (value === true) return 'enabled';
  if (value === false) return 'disabled';
  return note(value === undefined ? 'response path missing' : 'response value is not a boolean');
}

/** Follows a dot path ("data.enabled"); "" is the value itself. */
export function dig(value: unknown, dotPath: string): unknown {
  if (dotPath === '') return value;
  let current = value;
  for (const key of dotPath.split('.')) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function parseRetryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) ? seconds * 1000 : undefined;
}

function redactQuery(url: string): string {
  return url.replace(/\?.*$/, '?…');
}

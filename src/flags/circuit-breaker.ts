import type { Logger } from '../logger.js';
import { systemClock, type Clock } from '../time.js';

/** The breaker settings when not given (flags.http's and flags.openfeature's defaults too). */
export const DEFAULT_BREAKER = { threshold: 5, cooldownMs: 30_000 } as const;

/** Why a user is unevaluable while the breaker is open (the key in the failures log line). */
export const CIRCUIT_OPEN = 'circuit breaker open';

type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * Stops asking a flag service that is down. Without it, each user costs a full timeout and its
 * retries: 1,000 candidates against a dead service at concurrency 16 take 1000 / 16 × 4 × 2 s ≈
 * 8 minutes. After `threshold` consecutive failures it opens: requests are refused at once (the
 * users are unevaluable, retried next run). After `cooldownMs` one request goes out as a probe
 * (half-open); its answer closes the breaker, its failure opens it for another cool-down. Any
 * answer from the service, even a 4xx, proves it is up and resets the count.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private consecutiveFailures = 0;
  private openedAt = 0;

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {}

  get current(): BreakerState {
    return this.state;
  }

  /** May a request go out now? In half-open state only the one probe may. */
  tryAcquire(): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'half-open' || this.clock.now() - this.openedAt < this.cooldownMs) return false;
    this.state = 'half-open';
    this.logger.info(`flag service circuit breaker half-open: one probe request after ${this.cooldownMs} ms`);
    return true;
  }

  /** Refusing requests (open, or waiting for its probe): a retry would be refused too. */
  get refusing(): boolean {
    return this.state !== 'closed';
  }

  /** The service answered. */
  succeeded(): void {
    this.consecutiveFailures = 0;
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.logger.info('flag service answers again: circuit breaker closed');
  }

  /** No answer: a network error, a timeout or a 5xx. */
  failed(reason: string): void {
    if (this.threshold === 0) return;
    this.consecutiveFailures++;
    if (this.state === 'half-open') return this.open(`probe failed (${reason}): circuit breaker open for another ${this.cooldownMs} ms`);
    // Requests already in flight when it opened still fail; they neither reopen it nor extend the cool-down.
    if (this.state === 'closed' && this.consecutiveFailures >= this.threshold) {
      this.open(`flag service circuit breaker opened after ${this.consecutiveFailures} consecutive failures (last: ${reason}): checks are unevaluable at once for ${this.cooldownMs} ms, then one probe`);
    }
  }

  private open(message: string): void {
    this.state = 'open';
    this.openedAt = this.clock.now();
    this.logger.warn({ consecutiveFailures: this.consecutiveFailures, cooldownMs: this.cooldownMs }, message);
  }
}

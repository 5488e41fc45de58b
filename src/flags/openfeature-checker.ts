import type { EvaluationContext, EvaluationDetails } from '@openfeature/server-sdk';
import { mapWithConcurrency, Semaphore, TIMED_OUT, within } from '../concurrency.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { systemClock, type Clock } from '../time.js';
import { CIRCUIT_OPEN, CircuitBreaker } from './circuit-breaker.js';
import type { FlagChecker, FlagResult } from './types.js';

/** The one call the checker makes: an OpenFeature client's boolean evaluation (tests pass a fake). */
export interface BooleanFlagClient {
  /** READY, or NOT_READY, ERROR, STALE, FATAL (the SDK's ServerProviderStatus). */
  readonly providerStatus: string;
  getBooleanDetails(flagKey: string, defaultValue: boolean, context: EvaluationContext): Promise<EvaluationDetails<boolean>>;
}

export interface OpenFeatureCheckerOptions {
  flagKey: string;
  /** Evaluations in flight at once, across every batch. */
  concurrency: number;
  timeoutMs: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
  /** What the log says the checker is, e.g. "openfeature flagd (@openfeature/flagd-provider)". */
  description: string;
}

/**
 * Error codes that say the provider could not answer (its service is down, or it is not ready),
 * as a timeout or a 5xx does for the http checker: these count towards the circuit breaker. The
 * others (FLAG_NOT_FOUND, TYPE_MISMATCH, TARGETING_KEY_MISSING, INVALID_CONTEXT, PARSE_ERROR) are
 * answers about this flag or user: unevaluable, but proof that the provider is up.
 */
const PROVIDER_FAILURES: ReadonlySet<string> = new Set(['GENERAL', 'PROVIDER_NOT_READY', 'PROVIDER_FATAL']);

/** `problem` keys the failures log line (a code, never a per-call message); `detail` is one example's message. */
type Outcome = { result: FlagResult; problem?: string; detail?: string };

/**
 * Evaluates the target flag for each user through an OpenFeature provider, `targetingKey` = the
 * user ID. Fails closed: a provider that is not READY (not yet, ERROR, STALE, FATAL), an
 * evaluation with an error code, a provider error, a non-boolean value or no answer within
 * `timeoutMs` make the user `unevaluable` (never enqueued, never forgotten). Every
 * provider gets the http checker's timeout and circuit breaker: one that evaluates in-process never
 * trips them, one that calls a service is not waited on for ever once the service is down.
 */
export class OpenFeatureFlagChecker implements FlagChecker {
  readonly description: string;
  /** One per checker: a daemon keeps it across runs. */
  readonly breaker: CircuitBreaker;
  private readonly inFlight: Semaphore;

  constructor(
    private readonly client: BooleanFlagClient,
    private readonly options: OpenFeatureCheckerOptions,
    private readonly logger: Logger,
    clock: Clock = systemClock,
  ) {
    this.description = `${options.description}, flag ${options.flagKey} (concurrency ${options.concurrency})`;
    this.inFlight = new Semaphore(options.concurrency);
    this.breaker = new CircuitBreaker(options.breakerThreshold, options.breakerCooldownMs, logger, clock);
  }

  async check(userIds: readonly string[]): Promise<FlagResult[]> {
    const outcomes = await mapWithConcurrency(userIds, this.options.concurrency, (userId) => this.evaluate(userId));
    const failures = new Map<string, number>();
    const examples = new Map<string, string>();
    for (const { problem, detail } of outcomes) {
      if (problem === undefined) continue;
      failures.set(problem, (failures.get(problem) ?? 0) + 1);
      if (detail !== undefined && !examples.has(problem)) examples.set(problem, detail);
    }
    if (failures.size > 0) {
      const count = [...failures.values()].reduce((a, b) => a + b);
      this.logger.warn({ failures: Object.fromEntries(failures), examples: Object.fromEntries(examples) }, `the OpenFeature provider gave no usable answer for ${count} users; counted as unevaluable`);
    }
    return outcomes.map((outcome) => outcome.result);
  }

  private async evaluate(userId: string): Promise<Outcome> {
    if (!this.breaker.tryAcquire()) return { result: 'unevaluable', problem: CIRCUIT_OPEN };
    // Not ready, failed, or serving stale rules (lost its source): an answer now could be wrong.
    const status = this.client.providerStatus;
    if (status !== 'READY') return this.failed(`provider ${status}`);
    let answer: EvaluationDetails<boolean> | typeof TIMED_OUT;
    try {
      // The slot is held until the provider's call settles, not until the deadline: calls left
      // running past their timeout still count against the limit (a slow service gets no more).
      const call = this.inFlight.run(() => this.client.getBooleanDetails(this.options.flagKey, false, { targetingKey: userId }));
      answer = await within(call, this.options.timeoutMs);
    } catch (error) {
      // The SDK turns a provider's exception into an error code; a client that throws all the same is a failure too.
      return this.failed('provider error', errorMessage(error));
    }
    if (answer === TIMED_OUT) return this.failed(`timeout after ${this.options.timeoutMs} ms (or no free slot: the provider's calls in flight hang)`);
    if (answer.errorCode !== undefined || answer.reason === 'ERROR') {
      const code = answer.errorCode ?? 'GENERAL';
      // Keyed by code: messages vary per call and may echo the targeting key; one is kept as an example.
      const detail = answer.errorMessage?.slice(0, 200);
      if (PROVIDER_FAILURES.has(code)) return this.failed(code, detail);
      this.breaker.succeeded();
      return { result: 'unevaluable', problem: code, ...(detail === undefined ? {} : { detail }) };
    }
    this.breaker.succeeded();
    if (answer.value === true) return { result: 'enabled' };
    if (answer.value === false) return { result: 'disabled' };
    return { result: 'unevaluable', problem: 'value is not a boolean' };
  }

  private failed(problem: string, detail?: string): Outcome {
    this.breaker.failed(detail === undefined ? problem : `${problem}: ${detail}`);
    return { result: 'unevaluable', problem, ...(detail === undefined ? {} : { detail }) };
  }
}

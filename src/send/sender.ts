import type { Logger } from '../logger.js';
import type { OutgoingMessage } from '../sink/message.js';
import type { EntryOutcome, MessageSink } from '../sink/types.js';
import { systemClock, type Clock } from '../time.js';
import type { SendGate } from './send-gate.js';
import type { RateLimiter } from './rate-limiter.js';

export interface RetryPolicy {
  /** Extra attempts for entries that failed with SenderFault=false. */
  entryRetries: number;
  baseMs: number;
  maxMs: number;
}

export interface SendFailure {
  message: OutgoingMessage;
  code: string;
  reason: string;
  senderFault: boolean;
}

export interface BatchResult {
  accepted: OutgoingMessage[];
  failed: SendFailure[];
  /**
   * Why the batch stopped early: the queue unreachable (after the SDK's own retries) or the run
   * cancelled. Messages accepted before it are in `accepted` and must still be marked; the rest
   * were not sent.
   */
  interruptedBy?: unknown;
  /** Time spent waiting for the rate limiter. */
  waitedMs: number;
}

/**
 * Sends one batch (≤ the sink's batch size) under the rate limit. Entries the queue reports
 * Failed with SenderFault=false are retried with exponential backoff, as the same messages (same
 * request_id); SenderFault=true entries are reported at once. Never throws: a whole-call failure
 * or a cancel ends the batch with `interruptedBy`, keeping what was accepted until then.
 */
export class BatchSender {
  constructor(
    private readonly sink: MessageSink,
    private readonly limiter: RateLimiter | undefined,
    private readonly retry: RetryPolicy,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
    /** Pauses sending while the queue's backlog or the worker's consumer lag is too high. */
    private readonly gate?: SendGate,
  ) {}

  async send(messages: readonly OutgoingMessage[], signal?: AbortSignal): Promise<BatchResult> {
    const result: BatchResult = { accepted: [], failed: [], waitedMs: 0 };
    let pending = messages;
    try {
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) await this.clock.sleep(backoffMs(attempt, this.retry), signal);
        const retryable: OutgoingMessage[] = [];
        const onOutcome = (message: OutgoingMessage, outcome: EntryOutcome): void => {
          if (outcome.ok) result.accepted.push(message);
          else if (!outcome.senderFault && attempt < this.retry.entryRetries) retryable.push(message);
          else this.fail(result, message, outcome, attempt);
        };
        await this.sendPaced(pending, onOutcome, result, signal);
        pending = retryable;
      }
    } catch (error) {
      result.interruptedBy = error;
    }
    return result;
  }

  private fail(result: BatchResult, message: OutgoingMessage, outcome: EntryOutcome & { ok: false }, attempt: number): void {
    result.failed.push({ message, code: outcome.code, reason: outcome.message, senderFault: outcome.senderFault });
    this.logger.warn(
      { userId: message.userId, requestId: message.requestId, code: outcome.code, senderFault: outcome.senderFault, attempts: attempt + 1 },
      `send failed for user ${message.userId}: ${outcome.code} ${outcome.message}`,
    );
  }

  /** Sends under the rate limit, in as many calls as the limiter grants, reporting each outcome. */
  private async sendPaced(
    messages: readonly OutgoingMessage[],
    onOutcome: (message: OutgoingMessage, outcome: EntryOutcome) => void,
    result: BatchResult,
    signal?: AbortSignal,
  ): Promise<void> {
    let remaining = messages;
    while (remaining.length > 0) {
      signal?.throwIfAborted();
      await this.gate?.waitOpen(signal);
      const waitStarted = this.clock.now();
      const grant = this.limiter ? await this.limiter.acquire(remaining.length, signal) : undefined;
      result.waitedMs += this.clock.now() - waitStarted;
      const count = grant?.count ?? remaining.length;
      const chunk = remaining.slice(0, count);
      remaining = remaining.slice(count);
      const sending = this.sink.send(chunk);
      const startedAt = this.clock.now(); // the request is issued: the window counts it from here
      grant?.started(startedAt);
      this.logger.debug({ count, startedAt: this.clock.epochMs(startedAt) }, 'send started');
      const outcomes = await sending;
      chunk.forEach((message, index) => onOutcome(message, outcomes[index] as EntryOutcome));
    }
  }
}

export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
}

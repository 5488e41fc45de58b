import type { Logger } from '../logger.js';
import type { OutgoingMessage } from '../sink/message.js';
import type { EntryOutcome, MessageSink } from '../sink/types.js';
import { systemClock, type Clock } from '../time.js';
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
}

/**
 * Sends one batch (≤ the sink's batch size) under the rate limit. Entries the queue reports
 * Failed with SenderFault=false are retried with exponential backoff, as the same messages (same
 * request_id); SenderFault=true entries are reported at once. A whole-call failure (the queue
 * unreachable after the SDK's own retries) is thrown: the caller stops the run.
 */
export class BatchSender {
  constructor(
    private readonly sink: MessageSink,
    private readonly limiter: RateLimiter | undefined,
    private readonly retry: RetryPolicy,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {}

  async send(messages: readonly OutgoingMessage[], signal?: AbortSignal): Promise<BatchResult> {
    const result: BatchResult = { accepted: [], failed: [] };
    let pending = messages;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) await this.clock.sleep(backoffMs(attempt, this.retry), signal);
      const retryable: OutgoingMessage[] = [];
      for (const [message, outcome] of await this.sendPaced(pending, signal)) {
        if (outcome.ok) result.accepted.push(message);
        else if (!outcome.senderFault && attempt < this.retry.entryRetries) retryable.push(message);
        else {
          result.failed.push({ message, code: outcome.code, reason: outcome.message, senderFault: outcome.senderFault });
          this.logger.warn(
            { userId: message.userId, requestId: message.requestId, code: outcome.code, senderFault: outcome.senderFault, attempts: attempt + 1 },
            `send failed for user ${message.userId}: ${outcome.code} ${outcome.message}`,
          );
        }
      }
      pending = retryable;
    }
    return result;
  }

  /** Sends under the rate limit, in as many calls as the limiter grants, in order. */
  private async sendPaced(messages: readonly OutgoingMessage[], signal?: AbortSignal): Promise<Array<[OutgoingMessage, EntryOutcome]>> {
    const paired: Array<[OutgoingMessage, EntryOutcome]> = [];
    let remaining = messages;
    while (remaining.length > 0) {
      const granted = this.limiter ? await this.limiter.acquire(remaining.length, signal) : remaining.length;
      const chunk = remaining.slice(0, granted);
      remaining = remaining.slice(granted);
      const outcomes = await this.sink.send(chunk);
      chunk.forEach((message, index) => paired.push([message, outcomes[index] as EntryOutcome]));
    }
    return paired;
  }
}

export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
}

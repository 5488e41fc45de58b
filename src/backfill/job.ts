import { randomUUID } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { mapWithConcurrency } from '../concurrency.js';
import type { SendGate } from '../send/send-gate.js';
import type { RateLimiter } from '../send/rate-limiter.js';
import { BatchSender, type RetryPolicy } from '../send/sender.js';
import { buildUserLoadMessage, formatRequestedAt, type MessageSettings } from '../sink/message.js';
import type { MessageSink } from '../sink/types.js';
import { formatElapsed } from '../time.js';

export type BackfillStatus = 'running' | 'ok' | 'partial' | 'failed' | 'cancelled';

export interface BackfillProgress {
  jobId: string;
  status: BackfillStatus;
  total: number;
  sent: number;
  failed: number;
  startedAt: string;
  elapsedMs: number;
  etaSeconds: number | null;
  error: string | null;
}

export interface BackfillResult extends BackfillProgress {
  /** Users not accepted by the queue (never sent, or failed): what a resume must send. */
  remaining: string[];
}

export interface BackfillOptions {
  jobId?: string;
  message: MessageSettings;
  retry: RetryPolicy;
  concurrency: number;
  progressEvery: number;
  signal?: AbortSignal | undefined;
  onProgress?: (progress: BackfillProgress) => void;
  /** Pauses sending while the queue's backlog or the worker's consumer lag is too high. */
  gate?: SendGate | undefined;
  /**
   * After each batch, with the users the queue accepted and those it refused for good: where a
   * job kept in the state store records them. A throw stops the job (what it could not record is
   * sent again on resume: at least once).
   */
  onBatch?: (accepted: string[], failed: string[]) => Promise<void>;
}

/**
 * Sends one UserLoadEvent per user (seed section 1) through the detector's sender: batches of up
 * to 10 (fewer below 10 msgs/s), the rate limit, retries of SenderFault=false entries with the
 * same request_id. Stops at the first unrecoverable failure or on cancel, lets the batches in
 * flight finish, and says which users the queue did not accept.
 */
export class BackfillJob {
  readonly jobId: string;
  private readonly accepted = new Set<string>();
  private failedCount = 0;
  private status: BackfillStatus = 'running';
  private error: string | null = null;
  private readonly startedAt = new Date();

  constructor(
    private readonly userIds: readonly string[],
    private readonly sink: MessageSink,
    private readonly limiter: RateLimiter | undefined,
    private readonly logger: Logger,
    private readonly options: BackfillOptions,
  ) {
    this.jobId = options.jobId ?? randomUUID();
  }

  progress(): BackfillProgress {
    const elapsedMs = Date.now() - this.startedAt.getTime();
    const sent = this.accepted.size;
    const rate = sent / Math.max(elapsedMs / 1000, 0.001);
    const left = this.userIds.length - sent - this.failedCount;
    return {
      jobId: this.jobId,
      status: this.status,
      total: this.userIds.length,
      sent,
      failed: this.failedCount,
      startedAt: this.startedAt.toISOString(),
      elapsedMs,
      etaSeconds: this.status === 'running' && sent > 0 && left > 0 ? Math.ceil(left / rate) : null,
      error: this.error,
    };
  }

  async run(): Promise<BackfillResult> {
    const sender = new BatchSender(this.sink, this.limiter, this.options.retry, this.logger, undefined, this.options.gate);
    const batchSize = Math.min(this.sink.maxBatchSize, this.limiter?.maxGrant ?? Number.POSITIVE_INFINITY);
    const batches: string[][] = [];
    for (let i = 0; i < this.userIds.length; i += batchSize) batches.push(this.userIds.slice(i, i + batchSize));
    let nextLog = this.options.progressEvery;
    try {
      await mapWithConcurrency(batches, this.options.concurrency, async (batch) => {
        this.options.signal?.throwIfAborted();
        const requestedAt = formatRequestedAt(new Date());
        const result = await sender.send(batch.map((userId) => buildUserLoadMessage(userId, this.options.message, requestedAt)), this.options.signal);
        const accepted = result.accepted.map((message) => message.userId);
        for (const userId of accepted) this.accepted.add(userId);
        this.failedCount += result.failed.length;
        await this.options.onBatch?.(accepted, result.failed.map((failure) => failure.message.userId));
        this.options.onProgress?.(this.progress());
        if (this.accepted.size >= nextLog) {
          nextLog = (Math.floor(this.accepted.size / this.options.progressEvery) + 1) * this.options.progressEvery;
          this.logProgress();
        }
        if (result.interruptedBy !== undefined) throw result.interruptedBy;
      });
      this.status = this.failedCount > 0 ? 'partial' : 'ok';
    } catch (error) {
      this.status = this.options.signal?.aborted ? 'cancelled' : 'failed';
      this.error = errorMessage(this.options.signal?.aborted ? (this.options.signal.reason ?? error) : error);
      this.logger.error(`backfill ${this.status} after ${this.accepted.size}/${this.userIds.length} users: ${this.error}`);
    }
    return { ...this.progress(), remaining: this.userIds.filter((id) => !this.accepted.has(id)) };
  }

  /** The seed's format: `Sent 5000/75000 (6.7%), elapsed: 8m20s`, with the ETA. */
  private logProgress(): void {
    const { sent, total, elapsedMs, etaSeconds } = this.progress();
    const eta = etaSeconds === null ? '' : `, ETA: ${formatElapsed(etaSeconds * 1000)}`;
    this.logger.info({ jobId: this.jobId, sent, total }, `Sent ${sent}/${total} (${((100 * sent) / total).toFixed(1)}%), elapsed: ${formatElapsed(elapsedMs)}${eta}`);
  }
}

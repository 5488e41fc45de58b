import { randomUUID } from 'node:crypto';
import type { CandidateSource } from '../candidates/types.js';
import { FfError, errorMessage } from '../errors.js';
import type { FlagChecker } from '../flags/types.js';
import type { Logger } from '../logger.js';
import type { DetectorEventBus } from '../observability/events.js';
import { BatchSender, type RetryPolicy } from '../send/sender.js';
import type { SendGate } from '../send/send-gate.js';
import type { RateLimiter } from '../send/rate-limiter.js';
import { buildUserLoadMessage, formatRequestedAt, type MessageSettings } from '../sink/message.js';
import type { MessageSink } from '../sink/types.js';
import type { KnownUsers } from '../state/types.js';
import { formatElapsed, systemClock, type Clock } from '../time.js';
import { ForgetGuard, type ForgetPolicy } from './forget-guard.js';
import { PendingUsers } from './pending-users.js';
import { SeenSet } from './seen-set.js';
import { degradedReason, emptyCounts, type InvalidExample, type RunCounts, type RunHealthPolicy, type RunStatus, type RunSummary } from './summary.js';
import { acceptCandidates } from './validate.js';

/** A progress line per this many users sent (the seed's "Sent 5000/75000 (6.7%), elapsed: 8m20s"). */
const PROGRESS_EVERY = 1000;

/** Users removed from the known set per SREM. */
const FORGET_CHUNK = 1000;

export interface DetectionDeps {
  source: CandidateSource;
  checker: FlagChecker;
  known: KnownUsers;
  /** For the start-of-run log line. */
  stateDescription?: string;
  sink: MessageSink;
  /** Absent for --dry-run: nothing is sent, so nothing needs pacing. */
  limiter: RateLimiter | undefined;
  /** Pause sending while the queue's backlog or the worker's consumer lag is too high. */
  gate?: SendGate | undefined;
  logger: Logger;
  clock?: Clock;
  events?: DetectorEventBus;
}

export interface DetectionOptions {
  strategy: string;
  idPattern: RegExp;
  /** Write what would be sent; change no state. */
  dryRun: boolean;
  forgetDisabled: boolean;
  /** When a run's forgets are too many to apply without a person (the forget guard). */
  forgetPolicy: ForgetPolicy;
  /** Users enqueued at most in this run; 0 = no limit. */
  budget: number;
  maxInFlightBatches: number;
  /** Users to enqueue kept in memory during the scan; the rest are spilled to a file in spillDir. */
  pending: { maxInMemory: number; spillDir: string };
  sendConcurrency: number;
  message: MessageSettings;
  retry: RetryPolicy;
  /** When a finished run whose input was mostly unusable is `degraded` (safety.*). */
  health: RunHealthPolicy;
  signal?: AbortSignal | undefined;
  /** Named by the caller (the daemon); otherwise a new UUID. */
  runId?: string | undefined;
}

/**
 * One detection run over a candidate stream (design.md section 2):
 * validate+dedupe → flag check → known? → loaded? → enqueue (rate-limited) → mark known.
 * Two phases. The scan reads the source to its end at full speed, classifying batches
 * concurrently and keeping the users to enqueue (PendingUsers: at most the budget, spilled to a
 * file beyond a memory cap); the source is then closed, so no Snowflake result or S3 GET idles
 * while a long send goes on. The send drains those users under the rate limit and the send gate.
 * A user is marked known only after the queue accepted its message. Never throws: failures end up
 * in the summary.
 */
export async function runDetection(deps: DetectionDeps, options: DetectionOptions): Promise<RunSummary> {
  const run = new DetectionRun(deps, options);
  return run.execute();
}

class DetectionRun {
  private readonly counts: RunCounts = emptyCounts();
  private readonly examples: InvalidExample[] = [];
  private readonly seen = new SeenSet();
  private readonly pending: PendingUsers;
  private readonly stop = new AbortController();
  private readonly sender: BatchSender;
  private readonly clock: Clock;
  private reserved = 0;
  private firstError: unknown = undefined;
  private readonly forgets: ForgetGuard;
  private forgetHold: string | undefined;
  private degraded: string | null = null;
  private readonly runId: string;
  private startedAt = 0;
  private nextProgressLog = PROGRESS_EVERY;
  /** Users per send: a batch, or what one grant of the rate limiter allows (rates below 10/s). */
  private readonly batchSize: number;

  constructor(
    private readonly deps: DetectionDeps,
    private readonly options: DetectionOptions,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.runId = options.runId ?? randomUUID();
    this.forgets = new ForgetGuard(options.forgetPolicy);
    this.pending = new PendingUsers(options.pending.maxInMemory, options.pending.spillDir);
    this.sender = new BatchSender(deps.sink, deps.limiter, options.retry, deps.logger, this.clock, deps.gate);
    this.batchSize = Math.min(deps.sink.maxBatchSize, deps.limiter?.maxGrant ?? Number.POSITIVE_INFINITY);
    const { signal } = options;
    const cancel = (): void => this.halt(signal?.reason instanceof FfError ? signal.reason : new FfError('RUN_CANCELLED', 'run cancelled'));
    if (signal?.aborted) cancel();
    else signal?.addEventListener('abort', cancel, { once: true });
    // A long-lived signal (a feed's, the daemon's) must not keep every finished run reachable.
    this.detachCancel = () => signal?.removeEventListener('abort', cancel);
  }

  private readonly detachCancel: () => void;

  async execute(): Promise<RunSummary> {
    try {
      return await this.run();
    } finally {
      this.detachCancel();
    }
  }

  private async run(): Promise<RunSummary> {
    const runId = this.runId;
    const startedAt = new Date();
    const started = this.clock.now();
    this.startedAt = started;
    const logger = this.deps.logger.child({ runId });
    const { budget } = this.options;
    const rate = this.deps.limiter?.ratePerSecond;
    // How long sending takes is said once the scan knows how many users there are (sendPending).
    logger.info(
      { source: this.deps.source.description, checker: this.deps.checker.description, state: this.deps.stateDescription ?? 'state', sink: this.deps.sink.description, dryRun: this.options.dryRun, budget, rateLimit: rate ?? null },
      'detection run started',
    );
    await this.guard(this.classifyAll());
    if (this.firstError === undefined) await this.sendPending(logger);
    await this.pending.dispose().catch((error: unknown) => logger.warn({ err: error }, 'could not remove the spill file'));
    if (this.firstError === undefined) await this.guard(this.forgetDisabledUsers(logger));
    // Only a run that finished is judged: a failed one already says what went wrong.
    if (this.firstError === undefined) this.judgeHealth(logger);

    const summary: RunSummary = {
      runId,
      strategy: this.options.strategy,
      status: this.status(),
      dryRun: this.options.dryRun,
      budget: this.options.budget === 0 ? null : this.options.budget,
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(this.clock.now() - started),
      ...this.counts,
      invalidExamples: this.examples,
      error: this.firstError === undefined ? (this.forgetHold ?? this.degraded) : errorMessage(this.firstError),
    };
    if (summary.invalid > 0) logger.warn({ invalid: summary.invalid, examples: this.examples }, `${summary.invalid} invalid candidate lines`);
    if (summary.deferred > 0) logger.warn({ deferred: summary.deferred }, `${summary.deferred} users over the run budget are left for the next run`);
    const level = summary.status === 'ok' ? 'info' : 'error';
    logger[level]({ summary }, `detection run ${summary.status}`);
    return summary;
  }

  private status(): RunStatus {
    if (this.firstError instanceof FfError && this.firstError.code === 'RUN_CANCELLED') return 'cancelled';
    if (this.firstError !== undefined) return 'failed';
    if (this.counts.failed > 0) return 'partial';
    if (this.forgetHold) return 'held';
    return this.degraded ? 'degraded' : 'ok';
  }

  /**
   * A run whose input was mostly unusable (the flag service down, a candidate file in the wrong
   * encoding) must not end `ok`: it ends `degraded`, which alerts (exit 1, no last-success time).
   * What it sent and marked is unchanged — the usable users were processed as usual.
   */
  private judgeHealth(logger: Logger): void {
    this.degraded = degradedReason(this.counts, this.options.health);
    if (!this.degraded) return;
    const { candidates, invalid, evaluated, unevaluable } = this.counts;
    logger.error({ candidates, invalid, evaluated, unevaluable }, this.degraded);
  }

  /**
   * Reads the source with up to maxInFlightBatches batches being classified at once. Returns only
   * once every batch started is done, also when the source fails: nothing may write to the state
   * after the run reported and released its lock.
   */
  private async classifyAll(): Promise<void> {
    let active = 0;
    let slotFreed: (() => void) | undefined;
    const waitForSlot = (): Promise<void> => new Promise((resolve) => (slotFreed = resolve));
    try {
      for await (const batch of this.deps.source.batches(this.stop.signal)) {
        if (this.stop.signal.aborted) break;
        const ids = acceptCandidates(batch, this.options.idPattern, this.seen, this.counts, this.examples);
        if (ids.length === 0) continue;
        while (active >= this.options.maxInFlightBatches) await waitForSlot();
        active++;
        void this.guard(this.classify(ids)).then(() => {
          active--;
          slotFreed?.();
        });
      }
    } finally {
      while (active > 0) await waitForSlot();
    }
  }

  private async classify(ids: string[]): Promise<void> {
    const { checker, known: knownUsers } = this.deps;
    const { forgetDisabled, dryRun } = this.options;
    const results = await checker.check(ids);
    // Known-set lookups: every user when disabled ones may need forgetting, else enabled ones only.
    const lookups = forgetDisabled ? ids : ids.filter((_, i) => results[i] === 'enabled');
    const known = await knownUsers.areKnown(lookups);
    const unknownEnabled: string[] = [];
    const toForget: string[] = [];
    let enabled = 0;
    let disabled = 0;
    for (let i = 0, k = 0; i < ids.length; i++) {
      const result = results[i];
      if (result === 'enabled') {
        enabled++;
        if (!known[forgetDisabled ? i : k++]) unknownEnabled.push(ids[i] as string);
      } else if (result === 'disabled') {
        disabled++;
        if (forgetDisabled && known[i]) toForget.push(ids[i] as string);
      } else {
        this.counts.unevaluable++;
      }
    }
    this.counts.evaluated += ids.length;
    this.counts.enabled += enabled;
    this.counts.disabled += disabled;
    this.counts.alreadyKnown += enabled - unknownEnabled.length;

    const loaded = await knownUsers.areLoaded(unknownEnabled);
    const alreadyLoaded = unknownEnabled.filter((_, i) => loaded[i]);
    if (!dryRun) await knownUsers.markKnown(alreadyLoaded);
    this.counts.alreadyLoaded += alreadyLoaded.length;
    // Forgotten at the end of the run, all or none (the forget guard).
    if (forgetDisabled) this.forgets.meet(known.filter(Boolean).length, toForget);

    for (let i = 0; i < unknownEnabled.length; i++) {
      if (loaded[i]) continue;
      if (this.options.budget > 0 && this.reserved >= this.options.budget) {
        this.counts.deferred++;
        continue;
      }
      this.reserved++;
      await this.pending.add(unknownEnabled[i] as string);
    }
  }

  /** The send phase: every user kept by the scan, by `sendConcurrency` loops sharing one iterator. */
  private async sendPending(logger: Logger): Promise<void> {
    const { size, spilledCount } = this.pending;
    const rate = this.deps.limiter?.ratePerSecond;
    const duration = rate ? `; at ${rate}/s sending takes about ${formatElapsed((size / rate) * 1000)}` : '';
    logger.info({ toEnqueue: size, spilled: spilledCount, scanMs: Math.round(this.clock.now() - this.startedAt) }, `candidate scan done, source closed: ${size} users to enqueue${duration}`);
    if (size === 0) return;
    const batches = this.pending.batches(this.batchSize);
    try {
      await Promise.all(Array.from({ length: this.options.sendConcurrency }, () => this.guard(this.sendLoop(batches))));
    } finally {
      // Stopped early (a failure, a cancel): close the spill file's reader, or it stays open.
      await batches.return(undefined);
    }
  }

  /**
   * Once every candidate was seen and the run did not fail: the known users found disabled are
   * forgotten, unless they are too many (ForgetGuard) — then nobody is, and the run says why.
   */
  private async forgetDisabledUsers(logger: Logger): Promise<void> {
    const decision = await this.forgets.decide();
    if ('held' in decision) {
      this.forgetHold = decision.reason;
      this.counts.forgetHeld = decision.held;
      logger.error({ forgetHeld: decision.held }, decision.reason);
      return;
    }
    for (let i = 0; i < decision.forget.length; i += FORGET_CHUNK) {
      const chunk = decision.forget.slice(i, i + FORGET_CHUNK);
      if (!this.options.dryRun) await this.deps.known.forget(chunk);
      this.counts.forgotten += chunk.length;
    }
  }

  private async sendLoop(batches: AsyncIterator<string[]>): Promise<void> {
    for (;;) {
      if (this.stop.signal.aborted) return;
      const next = await batches.next();
      if (next.done) return;
      const userIds = next.value;
      // Built when first sent, so requested_at is the send time; retries reuse the message.
      const requestedAt = formatRequestedAt(new Date());
      const messages = userIds.map((userId) => buildUserLoadMessage(userId, this.options.message, requestedAt));
      const result = await this.sender.send(messages, this.stop.signal);
      // Counted before marking: a marking failure below must not hide the batch's failed sends.
      this.counts.failed += result.failed.length;
      if (result.waitedMs > 0) this.deps.events?.emit('send:rate-wait', result.waitedMs);
      for (const failure of result.failed) this.deps.events?.emit('send:failed', { code: failure.code, senderFault: failure.senderFault });
      // Users the queue accepted are marked even when the batch was interrupted after them.
      if (result.accepted.length > 0) {
        try {
          if (!this.options.dryRun) await this.deps.known.markKnown(result.accepted.map((message) => message.userId));
        } catch (error) {
          // Sent but not marked: the next run sends them again (at least once); count them.
          this.counts.sentUnmarked += result.accepted.length;
          throw error;
        }
        this.counts.enqueued += result.accepted.length;
      }
      this.reportProgress();
      if (result.interruptedBy !== undefined) throw result.interruptedBy;
    }
  }

  /** Every batch: an event; every PROGRESS_EVERY users: a log line in the seed's format. */
  private reportProgress(): void {
    const elapsedMs = this.clock.now() - this.startedAt;
    const { enqueued } = this.counts;
    this.deps.events?.emit('run:progress', { runId: this.runId, strategy: this.options.strategy, enqueued, queued: this.reserved, elapsedMs });
    if (enqueued < this.nextProgressLog) return;
    this.nextProgressLog = (Math.floor(enqueued / PROGRESS_EVERY) + 1) * PROGRESS_EVERY;
    const percent = ((100 * enqueued) / Math.max(1, this.reserved)).toFixed(1);
    this.deps.logger.info({ runId: this.runId, enqueued, queued: this.reserved }, `Sent ${enqueued}/${this.reserved} (${percent}%), elapsed: ${formatElapsed(elapsedMs)}`);
  }

  /** Turns the first failure anywhere into a stop of the whole run; later ones are dropped. */
  private guard(work: Promise<void>): Promise<void> {
    return work.catch((error: unknown) => this.halt(error));
  }

  private halt(error: unknown): void {
    this.firstError ??= error;
    this.stop.abort(error);
  }
}

import { randomUUID } from 'node:crypto';

/** What one run did, counted per unique candidate (design.md section 6). */
export interface RunCounts {
  /** Every non-blank, non-comment line or row read, duplicates included. */
  candidates: number;
  /** Lines that are not an ID: failed the pattern, too long, not UTF-8. Never sent. */
  invalid: number;
  /** Repeats of an ID already seen in this run; processed once. */
  duplicates: number;
  evaluated: number;
  enabled: number;
  disabled: number;
  /** The flag could not be decided offline for these users; never enqueued. */
  unevaluable: number;
  alreadyKnown: number;
  /** Enabled, not known, but `loaded_users:{id}` exists: marked known without a send. */
  alreadyLoaded: number;
  /** Accepted by the queue (or written, for stdout and --dry-run) and then marked known. */
  enqueued: number;
  /** Accepted by the queue, but marking them failed (the state store lost): sent again next run. */
  sentUnmarked: number;
  /** Send failed for good (SenderFault, or retries exhausted); left un-marked for the next run. */
  failed: number;
  /** Known users now disabled, removed from the known set so a re-enable is detected again. */
  forgotten: number;
  /** Known users now disabled but not forgotten: too many at once (the forget guard held them). */
  forgetHeld: number;
  /** Over this run's budget; left un-marked for the next run. */
  deferred: number;
}

/**
 * ok: finished, nothing failed · partial: finished, some sends failed for good · failed: stopped
 * by an error · cancelled: stopped by a signal or a lost lock · skipped: another run held the lock ·
 * deferred: the safety gate held enqueueing back (consumer lag); nothing sent, nobody marked ·
 * held: finished, but too many known users were found disabled to forget without a person.
 */
export type RunStatus = 'ok' | 'partial' | 'failed' | 'cancelled' | 'skipped' | 'deferred' | 'held';

export interface InvalidExample {
  origin: string;
  line: number;
  reason: string;
  value?: string;
}

export interface RunSummary extends RunCounts {
  runId: string;
  strategy: string;
  status: RunStatus;
  dryRun: boolean;
  budget: number | null;
  startedAt: string;
  durationMs: number;
  invalidExamples: InvalidExample[];
  error: string | null;
}

export function emptyCounts(): RunCounts {
  return {
    candidates: 0,
    invalid: 0,
    duplicates: 0,
    evaluated: 0,
    enabled: 0,
    disabled: 0,
    unevaluable: 0,
    alreadyKnown: 0,
    alreadyLoaded: 0,
    enqueued: 0,
    sentUnmarked: 0,
    failed: 0,
    forgotten: 0,
    forgetHeld: 0,
    deferred: 0,
  };
}

/** The summary of a run that never reached the pipeline (skipped, or failed while starting). */
export function summaryWithoutRun(
  strategy: string,
  status: 'failed' | 'skipped' | 'deferred',
  error: string,
  run: { dryRun: boolean; budget: number; startedAt: Date },
): RunSummary {
  return {
    runId: randomUUID(),
    strategy,
    status,
    dryRun: run.dryRun,
    budget: run.budget === 0 ? null : run.budget,
    startedAt: run.startedAt.toISOString(),
    durationMs: Date.now() - run.startedAt.getTime(),
    ...emptyCounts(),
    invalidExamples: [],
    error,
  };
}

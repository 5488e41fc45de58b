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
 * held: finished, but too many known users were found disabled to forget without a person ·
 * degraded: finished, but too much of its input was unusable (invalid lines, or users the flag
 * checker could not decide) for the run to count as a success; the usable rest was processed.
 */
export type RunStatus = 'ok' | 'partial' | 'failed' | 'cancelled' | 'skipped' | 'deferred' | 'held' | 'degraded';

/**
 * When a finished run is `degraded` rather than `ok` (config `safety.*`): a run whose candidates
 * are mostly unusable did not do its job — a flag service that is down makes every user
 * unevaluable, a UTF-16 or CR-only candidate file makes every line invalid — and must alert,
 * not end `ok` with exit 0.
 */
export interface RunHealthPolicy {
  /** More than this share of the candidates invalid… */
  maxInvalidFraction: number;
  /** …or more than this share of the users checked unevaluable… */
  maxUnevaluableFraction: number;
  /** …and at least this many of them; a run where every one is unusable is degraded whatever the count. */
  degradedFloor: number;
}

/**
 * Half: past it a run did more harm than good (most of its input was never judged). Healthy runs
 * are far below — a maintained list has a few typos, a working flag service answers every user —
 * so the limit is not close to anything normal. The floor keeps a short hand-made list with a
 * few typos (3 of 5) from paging anyone; a wholly unusable input always does.
 */
export const DEFAULT_RUN_HEALTH: RunHealthPolicy = { maxInvalidFraction: 0.5, maxUnevaluableFraction: 0.5, degradedFloor: 10 };

/**
 * Why a finished run is degraded, or null when it is healthy. Invalid lines are a share of every
 * candidate read; unevaluable users a share of the unique valid IDs checked (invalid lines and
 * repeats never reach the checker). An empty run is healthy: nothing was unusable.
 */
export function degradedReason(counts: RunCounts, policy: RunHealthPolicy): string | null {
  const reasons = [
    excess(counts.invalid, counts.candidates, policy.maxInvalidFraction, policy.degradedFloor) &&
      `${counts.invalid} of ${counts.candidates} candidates (${percent(counts.invalid / counts.candidates)}) are invalid, above safety.maxInvalidFraction (${percent(policy.maxInvalidFraction)}): check the candidate list's encoding (UTF-8) and line endings (LF or CRLF); invalidExamples names the first lines`,
    excess(counts.unevaluable, counts.evaluated, policy.maxUnevaluableFraction, policy.degradedFloor) &&
      `${counts.unevaluable} of ${counts.evaluated} users checked (${percent(counts.unevaluable / counts.evaluated)}) are unevaluable, above safety.maxUnevaluableFraction (${percent(policy.maxUnevaluableFraction)}): the flag checker could not decide them (flag service down or failing, or rules that cannot be evaluated offline); they are retried next run`,
  ].filter((reason): reason is string => typeof reason === 'string');
  return reasons.length === 0 ? null : `run degraded: ${reasons.join('; ')}`;
}

/** Over the limit: above the share, and either at least `floor` of them or every one. */
function excess(bad: number, total: number, maxFraction: number, floor: number): boolean {
  if (total === 0 || bad / total <= maxFraction) return false;
  return bad >= floor || bad === total;
}

function percent(fraction: number): string {
  return `${Number((fraction * 100).toFixed(1))} %`;
}

export interface InvalidExample {
  origin: string;
  line: number;
  reason: string;
  value?: string;
}

/**
 * Shadow mode's report card, on each polling run while an experimental feed runs in shadow: the
 * users the run enqueued that the feed had found too (and how much earlier), those only polling
 * found (the feed missed them), and those only the feed found (recorded before the run, not
 * enqueued by it).
 */
export interface ShadowAgreement {
  feed: string;
  both: number;
  onlyPolling: number;
  onlyFeed: number;
  /** Users the run enqueued whose shadow entry could not be read (Valkey failed then): in no count. */
  unmatched: number;
  /** How many minutes before the run the feed found the users both found: median and maximum. */
  feedEarlierMinutes: { p50: number | null; max: number | null };
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
  /** Present when a feed runs in shadow mode beside polling. */
  shadow?: ShadowAgreement;
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
  run: { dryRun: boolean; budget: number; startedAt: Date; runId?: string | undefined },
): RunSummary {
  return {
    runId: run.runId ?? randomUUID(),
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

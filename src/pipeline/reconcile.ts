import { randomUUID } from 'node:crypto';
import { errorMessage, FfError } from '../errors.js';
import type { FlagChecker } from '../flags/types.js';
import type { Logger } from '../logger.js';
import type { KnownUsers } from '../state/types.js';
import { ForgetGuard, type ForgetPolicy } from './forget-guard.js';
import { degradedReason, emptyCounts, type RunHealthPolicy, type RunSummary } from './summary.js';

export interface ReconcileOptions {
  dryRun: boolean;
  forgetPolicy: ForgetPolicy;
  batchSize: number;
  /** When a reconcile whose users were mostly unevaluable (a dead flag service) is `degraded`. */
  health: RunHealthPolicy;
  signal?: AbortSignal | undefined;
  /** Named by the caller (the daemon); otherwise a new UUID. */
  runId?: string | undefined;
}

/**
 * Re-checks every member of the known set against the current rules — detection only meets the
 * known users among its candidates, so one who left the candidate window is never re-checked —
 * and forgets those now disabled, under the forget guard, at the end and only if nothing failed.
 * A user whose evaluation failed (`unevaluable`) is never forgotten. The summary uses the run
 * summary's counts: `candidates` and `evaluated` are the members scanned.
 */
export async function reconcileKnownUsers(deps: { known: KnownUsers; checker: FlagChecker; logger: Logger }, options: ReconcileOptions): Promise<RunSummary> {
  const startedAt = new Date();
  const started = performance.now();
  const counts = emptyCounts();
  const guard = new ForgetGuard(options.forgetPolicy);
  const seen = new Set<string>();
  let error: unknown;
  let hold: string | undefined;
  try {
    for await (const members of deps.known.scan(options.batchSize)) {
      if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new FfError('RUN_CANCELLED', 'reconcile cancelled');
      const fresh = members.filter((id) => !seen.has(id) && seen.add(id)); // SSCAN may repeat a member
      const results = await deps.checker.check(fresh);
      const disabled = fresh.filter((_, i) => results[i] === 'disabled');
      counts.candidates += fresh.length;
      counts.evaluated += fresh.length;
      counts.enabled += results.filter((result) => result === 'enabled').length;
      counts.disabled += disabled.length;
      counts.unevaluable += results.filter((result) => result === 'unevaluable').length;
      guard.meet(fresh.length, disabled);
    }
    const decision = await guard.decide();
    if ('held' in decision) {
      hold = decision.reason;
      counts.forgetHeld = decision.held;
      deps.logger.error({ forgetHeld: decision.held }, decision.reason);
    } else {
      for (let i = 0; i < decision.forget.length; i += options.batchSize) {
        const chunk = decision.forget.slice(i, i + options.batchSize);
        if (!options.dryRun) await deps.known.forget(chunk);
        counts.forgotten += chunk.length;
      }
    }
  } catch (caught) {
    error = caught;
  }
  const cancelled = error instanceof FfError && error.code === 'RUN_CANCELLED';
  // Unevaluable users are never forgotten, so a dead flag service makes reconcile a no-op: say so.
  const degraded = error === undefined && !hold ? degradedReason(counts, options.health) : null;
  const summary: RunSummary = {
    runId: options.runId ?? randomUUID(),
    strategy: 'reconcile',
    status: error !== undefined ? (cancelled ? 'cancelled' : 'failed') : hold ? 'held' : degraded ? 'degraded' : 'ok',
    dryRun: options.dryRun,
    budget: null,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - started),
    ...counts,
    invalidExamples: [],
    error: error !== undefined ? errorMessage(error) : (hold ?? degraded),
  };
  deps.logger[summary.status === 'ok' ? 'info' : 'error']({ summary }, `reconcile ${summary.status}: ${counts.evaluated} known users re-checked, ${counts.forgotten} forgotten`);
  return summary;
}

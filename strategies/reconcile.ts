import { reconcileKnownUsers } from '../src/pipeline/reconcile.js';
import { summaryWithoutRun, type RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { RunLease } from '../src/state/run-lease.js';
import { forgetPolicyFor } from './polling.js';
import type { RunRequest, Strategy } from './types.js';

/**
 * Not a way to find candidates but the known set's upkeep: re-check every known user against the
 * current rules and forget the disabled (under the forget guard). It writes the known set, so it
 * takes the polling run's lock: the two never overlap.
 */
export const reconcileStrategy: Strategy = {
  name: 'reconcile',
  experimental: false,

  async run(runtime: Runtime, request: RunRequest): Promise<RunSummary> {
    const { config, logger } = runtime;
    const store = await runtime.openStore();
    const checker = await runtime.openChecker();
    const reconcile = (signal: AbortSignal | undefined): Promise<RunSummary> =>
      reconcileKnownUsers(
        { known: store.known, checker, logger },
        { dryRun: request.dryRun, forgetPolicy: forgetPolicyFor(runtime, store, request), batchSize: config.candidates.batchSize, signal },
      );
    if (request.dryRun) return reconcile(request.signal);
    const lockKey = `${config.state.detectorKeyPrefix}lock:polling`;
    const lease = await RunLease.acquire(store.locks, lockKey, logger);
    if (!lease) {
      return summaryWithoutRun('reconcile', 'skipped', `another run holds the lock ${lockKey}; reconcile is skipped`, { dryRun: false, budget: 0, startedAt: new Date() });
    }
    try {
      return await reconcile(request.signal ? AbortSignal.any([request.signal, lease.lost]) : lease.lost);
    } finally {
      await lease.release();
    }
  },
};

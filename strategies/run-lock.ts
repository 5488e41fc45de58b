import { summaryWithoutRun, type RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { RunLease } from '../src/state/run-lease.js';
import type { StateStore } from '../src/state/types.js';
import type { RunRequest } from './types.js';

/**
 * Runs `work` holding the deployment's run lock, which every run that writes the known set takes
 * (polling, reconcile): one at a time. A run that finds it taken is skipped. `work` gets the
 * signal that aborts when the caller cancels or the lock is lost.
 */
export async function underRunLock(
  runtime: Runtime,
  store: StateStore,
  strategy: string,
  request: RunRequest,
  work: (signal: AbortSignal) => Promise<RunSummary>,
): Promise<RunSummary> {
  const { config, logger } = runtime;
  const lockKey = `${config.state.detectorKeyPrefix}lock:polling`;
  const lease = await RunLease.acquire(store.locks, lockKey, logger, config.state.runLockTtlMs);
  if (!lease) {
    const message = `another run holds the lock ${lockKey}; this ${strategy} run is skipped`;
    logger.warn({ lock: lockKey }, message);
    return summaryWithoutRun(strategy, 'skipped', message, { dryRun: request.dryRun, budget: config.enqueue.budget, startedAt: new Date(), runId: request.runId });
  }
  try {
    return await work(request.signal ? AbortSignal.any([request.signal, lease.lost]) : lease.lost);
  } finally {
    await lease.release();
  }
}

import { reconcileKnownUsers } from '../src/pipeline/reconcile.js';
import type { RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { forgetPolicyFor } from './forget-policy.js';
import { RECONCILE } from './names.js';
import { underRunLock } from './run-lock.js';
import type { OneShotStrategy, RunRequest } from './types.js';

/**
 * Not a way to find candidates but the known set's upkeep: re-check every known user against the
 * current rules and forget the disabled (under the forget guard). It writes the known set, so it
 * takes the polling run's lock: the two never overlap.
 */
export const reconcileStrategy: OneShotStrategy = {
  kind: 'one-shot',
  name: RECONCILE,
  experimental: false,

  async run(runtime: Runtime, request: RunRequest): Promise<RunSummary> {
    const { config, logger } = runtime;
    const store = await runtime.openStore();
    const checker = await runtime.openChecker();
    const reconcile = (signal: AbortSignal | undefined): Promise<RunSummary> =>
      reconcileKnownUsers(
        { known: store.known, checker, logger },
        { dryRun: request.dryRun, forgetPolicy: forgetPolicyFor(runtime, store, request), batchSize: config.candidates.batchSize, health: config.safety, signal, runId: request.runId },
      );
    if (request.dryRun) return reconcile(request.signal);
    return underRunLock(runtime, store, RECONCILE, request, reconcile);
  },
};

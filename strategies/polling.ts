import { pendingSettingsOf, retryPolicyOf } from '../src/config/settings.js';
import { checkConsumerLag } from '../src/safety/lag-gate.js';
import type { FlagChecker } from '../src/flags/types.js';
import { runDetection } from '../src/pipeline/detection.js';
import { summaryWithoutRun, type RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { underRunLock } from './run-lock.js';
import type { StateStore } from '../src/state/types.js';
import { forgetPolicyFor } from './forget-policy.js';
import { POLLING } from './names.js';
import type { OneShotStrategy, RunRequest } from './types.js';

/**
 * Strategy A of the seed: test every candidate (recently active users, or a maintained list)
 * against the flag and enqueue those newly enabled. Works with nothing but the flag's rules.
 * One run at a time per deployment: a run that finds the lock taken is skipped. A dry run
 * changes nothing, so it takes no lock.
 */
export const pollingStrategy: OneShotStrategy = {
  kind: 'one-shot',
  name: POLLING,
  experimental: false,

  async run(runtime: Runtime, request: RunRequest): Promise<RunSummary> {
    const store = await runtime.openStore();
    const checker = await runtime.openChecker();
    if (request.dryRun) return detect(runtime, store, checker, request, request.signal); // read-only: no lock needed
    return underRunLock(runtime, store, POLLING, request, async (signal) => {
      const held = await lagGate(runtime);
      if (held) return summaryWithoutRun(POLLING, 'deferred', held, { dryRun: request.dryRun, budget: runtime.config.enqueue.budget, startedAt: new Date() });
      return detect(runtime, store, checker, request, signal);
    });
  },
};

/**
 * The consumer-lag safety gate (seed runbook), before the scan: while the worker's Kafka
 * consumers lag, a backfill can double-count aggregates, so the run reads and enqueues nothing.
 * The same gate is read again during the send (Runtime.createSendGate). Returns why, or null.
 */
async function lagGate(runtime: Runtime): Promise<string | null> {
  const gate = runtime.config.safety.consumerLag;
  if (!gate.enabled) return null;
  const verdict = await checkConsumerLag(await runtime.openLagReader(), gate.groups, gate);
  runtime.events.emit('safety:lag', verdict.lags);
  if (verdict.ok) {
    runtime.logger.info({ lags: verdict.lags.map(({ group, topic, lag }) => ({ group, topic, lag })) }, 'consumer lag within the limit');
    return null;
  }
  runtime.logger.warn({ lags: verdict.lags }, `run deferred: ${verdict.reason}`);
  return `deferred by the consumer-lag gate: ${verdict.reason}`;
}

async function detect(runtime: Runtime, store: StateStore, checker: FlagChecker, request: RunRequest, signal: AbortSignal | undefined): Promise<RunSummary> {
  const { config, logger } = runtime;
  const { dryRun } = request;
  const sink = await runtime.openSink(dryRun);
  const source = await runtime.openCandidateSource();
  return runDetection(
    { source, checker, known: store.known, stateDescription: store.description, sink, limiter: await runtime.createLimiter(dryRun, sink), gate: await runtime.createSendGate(dryRun, sink), logger, events: runtime.events },
    {
      strategy: POLLING,
      idPattern: runtime.idPattern,
      dryRun,
      forgetDisabled: config.state.forgetDisabled,
      forgetPolicy: forgetPolicyFor(runtime, store, request),
      budget: config.enqueue.budget,
      maxInFlightBatches: config.state.maxInFlightBatches,
      health: config.safety,
      pending: pendingSettingsOf(config),
      sendConcurrency: config.sqs.concurrency,
      message: config.enqueue,
      retry: retryPolicyOf(config),
      signal,
    },
  );
}

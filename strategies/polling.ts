import { pendingSettingsOf, retryPolicyOf } from '../src/config/settings.js';
import { checkConsumerLag } from '../src/safety/lag-gate.js';
import type { FlagChecker } from '../src/flags/types.js';
import { runDetection } from '../src/pipeline/detection.js';
import { summaryWithoutRun, type RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { underRunLock } from './run-lock.js';
import type { StateStore } from '../src/state/types.js';
import type { ForgetPolicy } from '../src/pipeline/forget-guard.js';
import type { RunRequest, Strategy } from './types.js';

/**
 * Strategy A of the seed: test every candidate (recently active users, or a maintained list)
 * against the flag and enqueue those newly enabled. Works with nothing but the flag's rules.
 * One run at a time per deployment: a run that finds the lock taken is skipped. A dry run
 * changes nothing, so it takes no lock.
 */
export const pollingStrategy: Strategy = {
  name: 'polling',
  experimental: false,

  async run(runtime: Runtime, request: RunRequest): Promise<RunSummary> {
    const store = await runtime.openStore();
    const checker = await runtime.openChecker();
    if (request.dryRun) return detect(runtime, store, checker, request, request.signal); // read-only: no lock needed
    return underRunLock(runtime, store, 'polling', request, async (signal) => {
      const held = await lagGate(runtime);
      if (held) return summaryWithoutRun('polling', 'deferred', held, { dryRun: request.dryRun, budget: runtime.config.enqueue.budget, startedAt: new Date() });
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

/** The admin API's release of the forget guard, used by the next run that needs it. */
export const MASS_FORGET_PERMIT = 'permit:mass-forget';

/**
 * The forget guard's policy for a run: released by --allow-mass-forget, or by a permit granted
 * through the admin API. A dry run only reports what would be held; it does not use up a permit.
 */
export function forgetPolicyFor(runtime: Runtime, store: StateStore, request: RunRequest): ForgetPolicy {
  const { state } = runtime.config;
  const released = (): Promise<boolean> =>
    request.allowMassForget ? Promise.resolve(true) : request.dryRun ? Promise.resolve(false) : store.permits.take(`${state.detectorKeyPrefix}${MASS_FORGET_PERMIT}`);
  return { maxFraction: state.maxForgetFraction, floor: state.maxForgetFloor, released };
}

async function detect(runtime: Runtime, store: StateStore, checker: FlagChecker, request: RunRequest, signal: AbortSignal | undefined): Promise<RunSummary> {
  const { config, logger } = runtime;
  const { dryRun } = request;
  const sink = await runtime.openSink(dryRun);
  const source = await runtime.openCandidateSource();
  return runDetection(
    { source, checker, known: store.known, stateDescription: store.description, sink, limiter: await runtime.createLimiter(dryRun, sink), gate: await runtime.createSendGate(dryRun, sink), logger, events: runtime.events },
    {
      strategy: 'polling',
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

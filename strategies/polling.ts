import { detectionSettingsOf } from '../src/config/settings.js';
import { checkConsumerLag } from '../src/safety/lag-gate.js';
import type { FlagChecker } from '../src/flags/types.js';
import { runDetection } from '../src/pipeline/detection.js';
import { summaryWithoutRun, type RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { underRunLock } from './run-lock.js';
import type { StateStore } from '../src/state/types.js';
import { forgetPolicyFor } from './forget-policy.js';
import { KAFKA_TOPIC, POLLING, S3_BUCKET } from './names.js';
import { ShadowComparison } from './shadow-report.js';
import { ObservedSink } from '../src/sink/observed-sink.js';
import { liveStateChecker } from '../src/feeds/live-checker.js';
import { errorMessage } from '../src/errors.js';
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
      if (held) return summaryWithoutRun(POLLING, 'deferred', held, { dryRun: request.dryRun, budget: runtime.config.enqueue.budget, startedAt: new Date(), runId: request.runId });
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

async function detect(runtime: Runtime, store: StateStore, rulesChecker: FlagChecker, request: RunRequest, signal: AbortSignal | undefined): Promise<RunSummary> {
  const { config, logger } = runtime;
  const { dryRun } = request;
  const { kafkaTopic, s3Bucket } = config.strategies;
  // Feeds beside polling: their live state may replace the rules file's users, switch and
  // percentage, and in shadow mode each run reports how the feeds' findings compare with its own
  // (they share one shadow record). Only a shared (Valkey) feed store holds what a feed found; a
  // file-backed CLI run has none.
  const shadowFeeds = [kafkaTopic.enabled && kafkaTopic.shadow ? KAFKA_TOPIC : null, s3Bucket.enabled && s3Bucket.shadow ? S3_BUCKET : null].filter((name): name is string => name !== null);
  const feedStore = (kafkaTopic.enabled || s3Bucket.enabled) && config.state.valkeyUrl !== null ? await runtime.openFeedStore(false) : undefined;
  const checker = feedStore && kafkaTopic.pollingUsesLiveState ? liveStateChecker(rulesChecker, await feedStore.read(config.flag), feedStore) : rulesChecker;
  const comparison = feedStore && shadowFeeds.length > 0 && !dryRun ? new ShadowComparison(feedStore, config.flag, shadowFeeds.join('+')) : undefined;
  const runSink = await runtime.openSink(dryRun);
  const sink = comparison ? new ObservedSink(runSink, (users) => comparison.observe(users)) : runSink;
  const source = await runtime.openCandidateSource();
  const summary = await runDetection(
    { source, checker, known: store.known, stateDescription: store.description, sink, limiter: await runtime.createLimiter(dryRun, sink), gate: await runtime.createSendGate(dryRun, sink), logger, events: runtime.events },
    {
      strategy: POLLING,
      idPattern: runtime.idPattern,
      dryRun,
      forgetDisabled: config.state.forgetDisabled,
      forgetPolicy: forgetPolicyFor(runtime, store, request),
      budget: config.enqueue.budget,
      ...detectionSettingsOf(config),
      signal,
      runId: request.runId,
    },
  );
  if (!comparison) return summary;
  try {
    const shadow = await comparison.finish();
    runtime.events.emit('feed:agreement', shadow);
    logger.info({ shadow }, `shadow agreement with the ${shadow.feed} feed: ${shadow.both} found by both (the feed ${shadow.feedEarlierMinutes.p50 ?? '-'} min earlier, median), ${shadow.onlyPolling} only by polling, ${shadow.onlyFeed} only by the feed`);
    return { ...summary, shadow };
  } catch (error) {
    logger.warn({ err: error }, `could not compare the run with the feed's shadow record: ${errorMessage(error)}`);
    return summary;
  }
}

import { writeFile, rename } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RunCounts } from '../pipeline/summary.js';
import type { DetectorEventBus } from './events.js';

/** Run counts exported as `ff_detector_candidates_total` etc., by the summary field they come from. */
const COUNTERS: ReadonlyArray<{ field: keyof RunCounts; name: string; help: string }> = [
  { field: 'candidates', name: 'candidates_total', help: 'Candidate lines read, repeats included' },
  { field: 'invalid', name: 'invalid_candidates_total', help: 'Candidate lines that are not a valid ID' },
  { field: 'duplicates', name: 'duplicate_candidates_total', help: 'Repeats of an ID within a run' },
  { field: 'enqueued', name: 'enqueued_total', help: 'Backfill messages accepted by the queue' },
  { field: 'sentUnmarked', name: 'sent_unmarked_total', help: 'Messages the queue accepted whose users could not be marked known (sent again next run)' },
  { field: 'forgotten', name: 'forgotten_total', help: 'Known users removed from the known set because now disabled' },
  { field: 'deferred', name: 'deferred_total', help: 'Users left for the next run by the budget' },
];

/**
 * The one module that binds detector events to Prometheus metrics (prefix `ff_detector_`).
 * Counters are updated when a run finishes, from its summary.
 */
export function bindMetrics(events: DetectorEventBus, registry: Registry = new Registry()): Registry {
  const prefix = 'ff_detector_';
  const counters = COUNTERS.map((spec) => ({ ...spec, metric: new Counter({ name: prefix + spec.name, help: spec.help, labelNames: ['strategy'], registers: [registry] }) }));
  const evaluations = new Counter({ name: `${prefix}evaluations_total`, help: 'Flag checks by result', labelNames: ['strategy', 'result'], registers: [registry] });
  const skips = new Counter({ name: `${prefix}skips_total`, help: 'Enabled users not sent, by reason', labelNames: ['strategy', 'reason'], registers: [registry] });
  const sendFailures = new Counter({ name: `${prefix}send_failures_total`, help: 'Entries the queue refused for good, by code', labelNames: ['code'], registers: [registry] });
  const schemaDrift = new Counter({ name: `${prefix}schema_check_failures_total`, help: 'Runs stopped by the candidate schema gate', labelNames: ['table'], registers: [registry] });
  const runs = new Histogram({
    name: `${prefix}run_duration_seconds`,
    help: 'Run duration by strategy and status',
    labelNames: ['strategy', 'status'],
    buckets: [1, 10, 60, 300, 900, 1800, 3600, 7200],
    registers: [registry],
  });
  const forgetHeld = new Gauge({ name: `${prefix}forget_held_users`, help: 'Known users the last run found disabled but did not forget: too many at once (the forget guard)', labelNames: ['strategy'], registers: [registry] });
  const lastSuccess = new Gauge({ name: `${prefix}last_success_timestamp_seconds`, help: 'End of the last run with status ok', labelNames: ['strategy'], registers: [registry] });

  events.on('run:finished', (summary) => {
    const strategy = summary.strategy;
    for (const { field, metric } of counters) metric.inc({ strategy }, summary[field]);
    for (const result of ['enabled', 'disabled', 'unevaluable'] as const) evaluations.inc({ strategy, result }, summary[result]);
    skips.inc({ strategy, reason: 'known' }, summary.alreadyKnown);
    skips.inc({ strategy, reason: 'loaded' }, summary.alreadyLoaded);
    runs.observe({ strategy, status: summary.status }, summary.durationMs / 1000);
    forgetHeld.set({ strategy }, summary.forgetHeld);
    if (summary.status === 'ok') lastSuccess.set({ strategy }, Date.parse(summary.startedAt) / 1000 + summary.durationMs / 1000);
  });
  const consumerLag = new Gauge({ name: `${prefix}consumer_lag_messages`, help: 'Lag of the worker consumer groups the safety gate reads', labelNames: ['group', 'topic'], registers: [registry] });
  const lagBehind = new Gauge({ name: `${prefix}consumer_lag_behind`, help: '1 while a worker consumer group has unconsumed messages older than safety.consumerLag.maxLagSeconds', labelNames: ['group', 'topic'], registers: [registry] });
  events.on('safety:lag', (lags) => {
    for (const { group, topic, lag, partitions } of lags) {
      consumerLag.set({ group, topic }, lag);
      lagBehind.set({ group, topic }, partitions.some((p) => p.behind) ? 1 : 0);
    }
  });
  const rateWait = new Counter({ name: `${prefix}rate_limit_wait_seconds_total`, help: 'Time send batches waited for the rate limiter', registers: [registry] });
  events.on('send:rate-wait', (waitedMs) => rateWait.inc(waitedMs / 1000));
  events.on('send:failed', ({ code }) => sendFailures.inc({ code }));
  const backlog = new Gauge({ name: `${prefix}queue_backlog_messages`, help: 'The queue\'s backlog (waiting + in flight) at the last reading before a send', registers: [registry] });
  const paused = new Gauge({ name: `${prefix}sending_paused`, help: '1 while sending waits for a gate: the queue\'s backlog (queue_backlog) or the worker\'s consumer lag (consumer_lag)', labelNames: ['gate'], registers: [registry] });
  for (const gate of ['queue_backlog', 'consumer_lag'] as const) paused.set({ gate }, 0);
  events.on('send:backlog', (reading) => backlog.set(reading));
  events.on('send:paused', ({ gate, paused: isPaused }) => paused.set({ gate }, isPaused ? 1 : 0));
  events.on('source:schema-drift', ({ table }) => schemaDrift.inc({ table }));
  bindFeedMetrics(events, registry, prefix);
  return registry;
}

/** The feeds' event-driven metrics; their gauges (lag, pending users, live state age) are the daemon's. */
function bindFeedMetrics(events: DetectorEventBus, registry: Registry, prefix: string): void {
  const messages = new Counter({ name: `${prefix}feed_messages_total`, help: 'Feed messages read, by outcome (applied, unrelated, malformed) and the reason a message was malformed', labelNames: ['feed', 'outcome', 'reason'], registers: [registry] });
  const changes = new Counter({ name: `${prefix}feed_changes_total`, help: 'Feed changes by type and outcome (stale: older than the live state — a replay or a redelivery, counted as a duplicate)', labelNames: ['type', 'outcome'], registers: [registry] });
  const rebucketing = new Counter({ name: `${prefix}feed_rebucketing_total`, help: 'Changes of the bucketing parameters (the rollout cohort re-drawn; a full run follows)', registers: [registry] });
  const agreement = new Counter({ name: `${prefix}shadow_agreement_users_total`, help: 'Shadow mode: users a polling run enqueued that the feed found too (both), missed (only_polling), or the feed alone found (only_feed)', labelNames: ['feed', 'result'], registers: [registry] });
  const lead = new Gauge({ name: `${prefix}shadow_feed_earlier_minutes`, help: 'Shadow mode, last polling run: how many minutes earlier the feed found the users both found (median)', labelNames: ['feed'], registers: [registry] });
  events.on('feed:message', ({ feed, outcome, reason }) => messages.inc({ feed, outcome, reason: reason ?? '' }));
  events.on('feed:applied', ({ type, outcome, rebucketing: rebucketed }) => {
    changes.inc({ type, outcome });
    if (rebucketed) rebucketing.inc();
  });
  events.on('feed:agreement', ({ feed, both, onlyPolling, onlyFeed, feedEarlierMinutes }) => {
    agreement.inc({ feed, result: 'both' }, both);
    agreement.inc({ feed, result: 'only_polling' }, onlyPolling);
    agreement.inc({ feed, result: 'only_feed' }, onlyFeed);
    if (feedEarlierMinutes.p50 !== null) lead.set({ feed }, feedEarlierMinutes.p50);
  });
}

/**
 * Writes the registry in Prometheus text format, atomically (for node_exporter's textfile
 * collector, which scrapes the metrics of batch runs such as `ff-detector detect`).
 */
export async function writeMetricsFile(registry: Registry, file: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, await registry.metrics());
  await rename(temporary, file);
}

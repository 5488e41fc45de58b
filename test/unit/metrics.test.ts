import { describe, expect, it } from 'vitest';
import { DetectorEventBus } from '../../src/observability/events.js';
import { bindMetrics } from '../../src/observability/metrics.js';
import { emptyCounts, type RunSummary } from '../../src/pipeline/summary.js';

const summary = (overrides: Partial<RunSummary> = {}): RunSummary => ({
  runId: 'r',
  strategy: 'polling',
  status: 'ok',
  dryRun: false,
  budget: 100,
  startedAt: '2026-11-28T10:00:00.000Z',
  durationMs: 2500,
  ...emptyCounts(),
  invalidExamples: [],
  error: null,
  ...overrides,
});

describe('metrics bound to detector events', () => {
  it('turns run summaries, send failures and schema drift into ff_detector_ metrics', async () => {
    const events = new DetectorEventBus();
    const registry = bindMetrics(events);
    events.emit('run:finished', summary({ candidates: 10, enabled: 4, disabled: 5, unevaluable: 1, alreadyKnown: 2, enqueued: 2 }));
    events.emit('run:finished', summary({ status: 'failed', candidates: 3 }));
    events.emit('send:failed', { code: 'InvalidMessageContents', senderFault: true });
    events.emit('source:schema-drift', { table: 'DB.S.RECEIPTS', missing: ['USER_ID_RAW'] });
    events.emit('send:rate-wait', 1500);
    events.emit('safety:lag', [{ group: 'unified-worker-receipts', topic: 'receipts', lag: 42, partitions: [{ partition: 0, lag: 42, behind: true }] }]);
    events.emit('send:backlog', 7000);
    events.emit('send:paused', { gate: 'queue_backlog', paused: true, reason: 'queue backlog 7000 is above sqs.maxBacklog 5000' });
    const text = await registry.metrics();
    expect(text).toContain('ff_detector_candidates_total{strategy="polling"} 13');
    expect(text).toContain('ff_detector_enqueued_total{strategy="polling"} 2');
    expect(text).toContain('ff_detector_evaluations_total{strategy="polling",result="unevaluable"} 1');
    expect(text).toContain('ff_detector_skips_total{strategy="polling",reason="known"} 2');
    expect(text).toContain('ff_detector_send_failures_total{code="InvalidMessageContents"} 1');
    expect(text).toContain('ff_detector_schema_check_failures_total{table="DB.S.RECEIPTS"} 1');
    expect(text).toContain('ff_detector_rate_limit_wait_seconds_total 1.5');
    expect(text).toContain('ff_detector_consumer_lag_messages{group="unified-worker-receipts",topic="receipts"} 42');
    expect(text).toContain('ff_detector_consumer_lag_behind{group="unified-worker-receipts",topic="receipts"} 1');
    expect(text).toContain('ff_detector_queue_backlog_messages 7000');
    expect(text).toContain('ff_detector_sending_paused{gate="queue_backlog"} 1');
    expect(text).toContain('ff_detector_sending_paused{gate="consumer_lag"} 0');
    expect(text).toContain('ff_detector_run_duration_seconds_count{strategy="polling",status="failed"} 1');
    expect(text).toContain(`ff_detector_last_success_timestamp_seconds{strategy="polling"} ${Date.parse('2026-11-28T10:00:02.500Z') / 1000}`);
  });
});

import { EventEmitter } from 'node:events';
import type { RunSummary, ShadowAgreement } from '../pipeline/summary.js';
import type { GroupLag } from '../safety/consumer-lag.js';
import type { GateName } from '../send/send-gate.js';

/**
 * What the detector tells the outside world, as typed events. Metrics (metrics.ts) and any other
 * observer bind to these in one place; the pipeline and its parts never touch prom-client.
 */
export interface DetectorEvents {
  /** A run ended, whatever its status. */
  'run:finished': [summary: RunSummary];
  /** The schema gate found the candidate table changed; the run stops before its query. */
  'source:schema-drift': [drift: { table: string; missing: string[] }];
  /** After each send batch: users accepted so far, users queued for sending so far. */
  'run:progress': [progress: { runId: string; strategy: string; enqueued: number; queued: number; elapsedMs: number }];
  /** The consumer-lag gate read the worker's consumer groups. */
  'safety:lag': [lags: GroupLag[]];
  /** A send batch waited this long for the rate limiter. */
  'send:rate-wait': [waitedMs: number];
  /** The queue's backlog was read before sending. */
  'send:backlog': [backlog: number];
  /** A send gate closed (sending paused) or opened again; `reason`: what it read. */
  'send:paused': [change: { gate: GateName; paused: boolean; reason: string }];
  /** A feed change reached the live state (or was older than it: stale). */
  'feed:applied': [change: { flag: string; type: string; outcome: 'applied' | 'stale' | 'held'; added: number; removed: number; rebucketing: boolean }];
  /** A feed message was read: applied, about another flag (unrelated), or unusable (malformed, with the reason). */
  'feed:message': [message: { feed: string; outcome: 'applied' | 'unrelated' | 'malformed' | 'invalid-user-id'; reason?: string }];
  /** Shadow mode: a polling run compared its sends with what the feed would have sent. */
  'feed:agreement': [agreement: ShadowAgreement];
  /** SQS refused an entry for good. */
  'send:failed': [failure: { code: string; senderFault: boolean }];
}

export class DetectorEventBus extends EventEmitter<DetectorEvents> {}

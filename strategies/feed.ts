import type { FeedChange, FeedChangeSink, FeedHandle } from '../src/feeds/changes.js';
import type { Runtime } from '../src/runtime/runtime.js';
import type { StrategyBase } from './types.js';

export type { AddChange, ChangeVersion, FeedChange, FeedChangeSink, FeedHandle, FeedHealth, FeedPosition, FeedState, RemoveChange, ResyncChange, SnapshotChange } from '../src/feeds/changes.js';

/**
 * The contract of a feed (strategy B: the flag system's Kafka topic; strategy C: its S3 bucket),
 * modelled on flagd's syncs: a long-running source that turns what the flag system publishes into
 * typed changes and hands them, in order, to one consumer (the FeedChangeSink), which owns the
 * state: src/feeds/live-state-sink.ts. strategies/kafka-topic.ts is the topic's feed;
 * test/unit/strategy-contract.test.ts drives an in-memory one.
 */

/** How a feed is started; the daemon passes none. */
export interface FeedStartOptions {
  /** Leave no trace in the source: a consumer group of its own, no offset committed (watch --dry-run). */
  readOnly?: boolean;
  /** Stop, as `stopped`, once what the source held at start is applied (watch --until-end). */
  untilEnd?: boolean;
  /** Whether this replica leads: a source without a consumer group (the bucket) reads on the leader only. */
  leading?: () => boolean;
  /** Told of each change once applied, with where in the source it was (watch prints them). */
  onChange?: (change: FeedChange, at: { partition: number; offset: string }) => void;
}

/**
 * A strategy that follows the flag system: start() returns at once and the feed runs in the
 * background, emitting changes into `sink` until stopped (or the signal aborts). Every replica
 * runs it: the topic feed's consumer group spreads partitions across them, and the live state's
 * versions make concurrent or replayed changes harmless.
 */
export interface FeedStrategy extends StrategyBase {
  readonly kind: 'feed';
  start(runtime: Runtime, sink: FeedChangeSink, signal: AbortSignal, options?: FeedStartOptions): FeedHandle;
}

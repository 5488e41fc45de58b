import type { FeedChange, FeedChangeSink, FeedPosition } from '../src/feeds/changes.js';
import type { Runtime } from '../src/runtime/runtime.js';
import type { StrategyBase } from './types.js';

export type { AddChange, ChangeVersion, FeedChange, FeedChangeSink, FeedPosition, RemoveChange, ResyncChange, SnapshotChange } from '../src/feeds/changes.js';

/**
 * The contract of a feed (strategy B: the flag system's Kafka topic; strategy C: its S3 bucket),
 * modelled on flagd's syncs: a long-running source that turns what the flag system publishes into
 * typed changes and hands them, in order, to one consumer (the FeedChangeSink), which owns the
 * state: src/feeds/live-state-sink.ts. strategies/kafka-topic.ts is the topic's feed;
 * test/unit/strategy-contract.test.ts drives an in-memory one.
 */

/**
 * starting: reading up to the source's head; live: caught up; lagging: behind the head by more
 * than the feed tolerates (changes still flow, late); stopped: by stop() or the signal; failed:
 * cannot go on (`error` says why). stopped and failed are final.
 */
export type FeedState = 'starting' | 'live' | 'lagging' | 'stopped' | 'failed';

/** What /status and the metrics show of a feed; plain JSON. */
export interface FeedHealth {
  readonly state: FeedState;
  /** The position of the last change applied, null before the first. */
  readonly position: FeedPosition | null;
  /** When the last change was applied (ISO 8601), null before the first. */
  readonly lastChangeAt: string | null;
  readonly error: string | null;
}

/** A started feed. */
export interface FeedHandle {
  /** Now, without I/O: the daemon may ask on every /status request. */
  health(): FeedHealth;
  /** The source's own figures for /status (per-partition lag, messages read…); plain JSON. */
  details?(): object;
  /** Settles once the feed has stopped or failed. */
  readonly ended: Promise<void>;
  /**
   * Stops reading and resolves once no apply is in flight nor will be made; the state is then
   * `stopped` (or stays `failed`). Safe to call twice. Aborting start's signal does the same.
   */
  stop(): Promise<void>;
}

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

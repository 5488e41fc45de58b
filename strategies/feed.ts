import type { Runtime } from '../src/runtime/runtime.js';
import type { StrategyBase } from './types.js';

/**
 * The contract of a feed (strategy B: the flag system's Kafka topic; strategy C: its S3 bucket),
 * modelled on flagd's syncs: a long-running source that turns what the flag system publishes into
 * typed changes and hands them, in order, to one consumer (the FeedChangeSink), which owns the
 * state. No feed exists yet; test/unit/strategy-contract.test.ts drives an in-memory one.
 */

/**
 * Where in its source a feed is, as plain JSON so the consumer can store it as it is: Kafka
 * offsets per partition, S3 ETags per key. Only the feed that wrote it reads its content.
 */
export type FeedPosition = string | number | boolean | null | readonly FeedPosition[] | { readonly [key: string]: FeedPosition };

interface ChangeBase {
  /** The flag the change is about. */
  readonly flag: string;
  /** The source's position just after this change: stored once the change is applied. */
  readonly position: FeedPosition;
}

/**
 * The full state of the flag at `position`: `users` is every user enabled. The consumer enqueues
 * those it does not know and forgets the known ones missing from it (under the forget guard).
 */
export interface SnapshotChange extends ChangeBase {
  readonly type: 'snapshot';
  readonly users: readonly string[];
}

/** Users newly enabled: the consumer enqueues a backfill for each one it does not know yet. */
export interface AddChange extends ChangeBase {
  readonly type: 'add';
  readonly users: readonly string[];
}

/** Users disabled: the consumer forgets them (under the forget guard), so a re-enable is detected. */
export interface RemoveChange extends ChangeBase {
  readonly type: 'remove';
  readonly users: readonly string[];
}

/**
 * The feed cannot tell the state: first start with no stored position, a gap (offsets beyond
 * retention, an object rewritten between two reads), a message it cannot read, a rules change it
 * cannot turn into users. The consumer starts a full polling run (the one-shot strategy), which
 * finds what the feed missed; the feed goes on from `position` meanwhile.
 */
export interface ResyncChange extends ChangeBase {
  readonly type: 'resync';
  readonly reason: string;
}

export type FeedChange = SnapshotChange | AddChange | RemoveChange | ResyncChange;

/**
 * The one consumer of a feed's changes. It — not the feed — persists positions: the position of
 * a change is stored only once the change is applied, so a crash replays changes (applying one
 * twice is harmless: the known set dedupes) and never skips one.
 */
export interface FeedChangeSink {
  /** The position of the last change applied (null: none): the feed resumes after it, or emits resync if it cannot. */
  position(): Promise<FeedPosition | null>;
  /**
   * Applies one change and stores its position. The feed awaits it before emitting the next, so
   * changes arrive in order and a slow consumer slows the feed (which may then report `lagging`).
   * A rejection leaves the change unapplied: the feed retries it or stops as `failed`; it never
   * emits a later change instead.
   */
  apply(change: FeedChange): Promise<void>;
}

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
  /**
   * Stops reading and resolves once no apply is in flight nor will be made; the state is then
   * `stopped` (or stays `failed`). Safe to call twice. Aborting start's signal does the same.
   */
  stop(): Promise<void>;
}

/**
 * A strategy that follows the flag system: start() returns at once and the feed runs in the
 * background, emitting changes into `sink` until stopped. The daemon would start it while
 * leading and stop it on losing leadership (the signal), so one replica feeds at a time.
 */
export interface FeedStrategy extends StrategyBase {
  readonly kind: 'feed';
  start(runtime: Runtime, sink: FeedChangeSink, signal: AbortSignal): FeedHandle;
}

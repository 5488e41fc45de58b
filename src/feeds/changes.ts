/**
 * The changes a feed emits, the consumer that applies them (the FeedChangeSink) and the handle of
 * a started feed: below the strategies, so the consumer (live-state-sink.ts), the feeds'
 * sources (topic-feed.ts, bucket-feed.ts) and strategies/ share them. strategies/feed.ts holds
 * the rest of the feed contract and re-exports these.
 */

/**
 * Where in its source a feed is, as plain JSON so the consumer can store it as it is: Kafka
 * offsets per partition, S3 ETags per key. Only the feed that wrote it reads its content.
 */
export type FeedPosition = string | number | boolean | null | readonly FeedPosition[] | { readonly [key: string]: FeedPosition };

/**
 * Orders changes from sources that can deliver them out of order (two partitions, a replay): the
 * source's time, then partition and offset (for S3: the object's time and a sequence).
 */
export interface ChangeVersion {
  readonly at: number;
  readonly partition: number;
  readonly offset: number;
}

interface ChangeBase {
  /** The flag the change is about. */
  readonly flag: string;
  /** The source's position just after this change: stored once the change is applied. */
  readonly position: FeedPosition;
  /** Absent: the consumer orders the change by its arrival. */
  readonly version?: ChangeVersion;
}

/**
 * The full state of the flag at `position`: `users` is every user enabled. The consumer enqueues
 * those it does not know and forgets the known ones missing from it (under the forget guard).
 */
export interface SnapshotChange extends ChangeBase {
  readonly type: 'snapshot';
  readonly users: readonly string[];
  /** The flag's switch and percentage, when the source carries them (null: it does not say). */
  readonly enabled?: boolean | null;
  readonly percentage?: number | null;
  /**
   * Digests of the rest of the flag's definition (segments, rules) and of its bucketing
   * parameters (salt, seed, groupId…): a change the users cannot express shows as a new digest.
   */
  readonly rulesDigest?: string | null;
  readonly bucketingDigest?: string | null;
  /**
   * A list too large to hold: the feed loaded it into a stage of the feed store (FeedStore.stage)
   * and `users` is empty; `count` is the distinct users staged.
   */
  readonly stage?: { readonly id: string; readonly count: number };
  /** Refuse (hold) the snapshot if it would remove more explicit users than this (the bucket's forget guard). */
  readonly maxRemoved?: number | null;
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
  /**
   * The position of the last change applied (null: none): the feed resumes after it, or emits
   * resync if it cannot. A source that keeps its own positions (the topic feed's consumer group
   * commits each offset once its change is applied) need not ask.
   */
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

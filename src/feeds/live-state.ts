/**
 * Where a change came from: the message's time, its partition and its offset (for documents of
 * one message: offset × 1000 + index). Changes without one get (now, -1, a sequence).
 */
export interface LiveVersion {
  /** The message's timestamp (or the document's own version), milliseconds. */
  at: number;
  partition: number;
  offset: number;
}

/**
 * The flag as the feed last saw it, without its users: they live in Valkey sets beside it (the
 * explicit users, and the users removed while the whole list is unknown), so a change costs the
 * same with ten users or a million.
 */
export interface LiveFlagState {
  flag: string;
  /** Incremented by every commit: what a commit compares (and sets) to detect a concurrent one. */
  revision: number;
  /** The last change applied. */
  version: LiveVersion;
  /** The last snapshot applied: an older snapshot (another partition behind) is stale. */
  snapshotVersion: LiveVersion | null;
  /**
   * The highest offset applied per partition: a change at or below it is a redelivery or a
   * replay (stale). Deltas on different partitions are independent, so only their own partition
   * orders them — an add is never dropped because another partition is ahead.
   */
  applied: Record<string, number>;
  enabled: boolean | null;
  percentage: number | null;
  /**
   * True once a snapshot gave the whole list. Before that (only adds and removes seen) the
   * explicit-users set holds what was added, and the removed set what was taken out, of a list
   * the feed never saw whole.
   */
  complete: boolean;
  /** Digests of the definition's other rules and of its bucketing parameters (feeds/digest.ts). */
  rulesDigest: string | null;
  bucketingDigest: string | null;
  updatedAt: string;
}

/** Why a full polling run is owed (a change the feed cannot turn into users). */
export interface RunTrigger {
  reason: string;
  /** The rollout cohort was re-drawn (salt, seed, groupId, algorithm or flag key changed). */
  rebucketing: boolean;
  at: string;
}

/** What a commit does to the explicit users. */
export type UsersChange =
  | { kind: 'none' }
  /** The whole list: the users added and removed are found by the store (a set difference) and pended. */
  | { kind: 'replace'; users: readonly string[] }
  /**
   * The whole list, already loaded into a stage (FeedStore.stage) so it never sits in the process.
   * `count`: the distinct users staged; a stage that lost any (expired, evicted) is refused.
   */
  | { kind: 'replace-staged'; stage: string; count: number }
  | { kind: 'add'; users: readonly string[] }
  /** `remember`: the whole list is unknown, so the removal is kept to override the rules file. */
  | { kind: 'remove'; users: readonly string[]; remember: boolean };

export interface LiveStateCommit {
  state: LiveFlagState;
  /** The revision read before planning (0: nothing stored): another commit since is a conflict. */
  base: number;
  users: UsersChange;
  trigger: RunTrigger | null;
  /** A replace that would remove more explicit users than this is held: nothing applied (null: no limit). */
  maxRemoved: number | null;
}

/** What a bucket feed did with an object's version (its checkpoint, by key). */
export interface ObjectMark {
  etag: string;
  /** applied: its snapshot is the live state; held: not applied (unreadable, or it tripped the forget guard). */
  outcome: 'applied' | 'held' | 'unrelated';
  /** Why a version was held: released forget-guard holds are read again. */
  heldBy?: 'forget-guard' | 'unreadable' | 'vanished';
  detail: string | null;
  at: string;
}

export type CommitOutcome = { result: 'applied' | 'held'; added: number; removed: number } | { result: 'conflict' } | { result: 'stage-lost' };

/**
 * What a feed keeps in Valkey, per flag: the live state and its user sets, the pending set, the
 * re-run flag and the shadow record. A commit writes the state, the users, the pending users and
 * the trigger at once, so a crash never leaves a state whose users were not queued.
 */
export interface FeedStore {
  readonly description: string;
  read(flag: string): Promise<LiveFlagState | null>;
  commit(flag: string, commit: LiveStateCommit): Promise<CommitOutcome>;
  /** Whether each user is an explicit user of the live state, and was removed while it was incomplete. */
  membership(flag: string, users: readonly string[]): Promise<{ explicit: boolean[]; removed: boolean[] }>;
  explicitCount(flag: string): Promise<number>;
  /** Adds users to a stage (expires after `ttlSeconds`), for a replace-staged commit; the distinct users staged so far. */
  stage(flag: string, stage: string, users: readonly string[], ttlSeconds: number): Promise<number>;
  dropStage(flag: string, stage: string): Promise<void>;
  /** The bucket feed's checkpoint: per object key, the ETag last read and what came of it. */
  objectMarks(flag: string): Promise<Map<string, ObjectMark>>;
  markObject(flag: string, key: string, mark: ObjectMark): Promise<void>;
  unmarkObject(flag: string, key: string): Promise<void>;
  /** Up to `max` pending users (not removed: settle() does that once they are handled). */
  peekPending(flag: string, max: number): Promise<string[]>;
  /** Each pending user's token: what settle() compares, so a user pended again since is kept. */
  pendingTokens(flag: string, users: readonly string[]): Promise<string[]>;
  /** Removes users from the pending set — with tokens, only those not pended again since; the count removed. */
  settle(flag: string, users: readonly string[], tokens?: readonly string[]): Promise<number>;
  pendingSize(flag: string): Promise<number>;
  /** Takes the re-run flag: the trigger, once; null when none is set. */
  takeTrigger(flag: string): Promise<RunTrigger | null>;
  peekTrigger(flag: string): Promise<RunTrigger | null>;
  /** Puts a taken trigger back (no run could start), unless a newer one was set meanwhile. */
  restoreTrigger(flag: string, trigger: RunTrigger): Promise<void>;
  /** Shadow mode: when the feed would first have enqueued each user (kept if already there). */
  recordShadow(flag: string, users: readonly string[], atMs: number): Promise<void>;
  /** When the feed recorded each user (null: never), and those entries removed. */
  takeShadow(flag: string, users: readonly string[]): Promise<Array<number | null>>;
  /** Every shadow entry recorded before `beforeMs`, removed. */
  takeShadowBefore(flag: string, beforeMs: number): Promise<Array<{ user: string; atMs: number }>>;
  shadowSize(flag: string): Promise<number>;
}

export function isNewer(candidate: LiveVersion, stored: LiveVersion): boolean {
  if (candidate.at !== stored.at) return candidate.at > stored.at;
  if (candidate.partition !== stored.partition) return candidate.partition > stored.partition;
  return candidate.offset > stored.offset;
}

/** Whether a change at `version` was applied already (a replay), or is a snapshot older than the last. */
export function isStale(state: LiveFlagState | null, version: LiveVersion, snapshot: boolean): boolean {
  if (!state) return false;
  const applied = state.applied[String(version.partition)];
  if (applied !== undefined && version.offset <= applied) return true;
  const last = state.snapshotVersion;
  if (!snapshot || last === null) return false;
  // Within one partition the offset orders (a producer's clock may step back); across partitions, time.
  return last.partition === version.partition ? version.offset <= last.offset : !isNewer(version, last);
}

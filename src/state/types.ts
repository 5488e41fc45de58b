/**
 * The detector's state: which enabled users already got their backfill (the known set) and which
 * the worker loaded recently (`loaded_users:{id}`, written by the worker, only read here).
 */
export interface StateStore {
  readonly description: string;
  /** Fails with STATE_UNAVAILABLE when the store cannot be reached. */
  ping(): Promise<void>;
  areKnown(userIds: readonly string[]): Promise<boolean[]>;
  areLoaded(userIds: readonly string[]): Promise<boolean[]>;
  markKnown(userIds: readonly string[]): Promise<void>;
  forget(userIds: readonly string[]): Promise<void>;
  /** Takes `key` for `ttlMs` unless someone else holds it; true when taken. */
  tryLock(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Extends the lock only while `token` still holds it; false when it was lost. */
  renewLock(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock only if `token` holds it. */
  unlock(key: string, token: string): Promise<void>;
  /** Records a run summary (JSON), keeping the newest `keep`. */
  pushHistory(entry: string, keep: number): Promise<void>;
  /** The newest `count` run summaries, newest first. */
  readHistory(count: number): Promise<string[]>;
  close(): Promise<void>;
}

export interface StateKeys {
  knownSetKey: string;
  loadedKeyPrefix: string;
}

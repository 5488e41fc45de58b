import type { BackfillJobStore } from './backfill-jobs.js';

/**
 * Which enabled users already got their backfill (the known set) and which the worker loaded
 * recently (`loaded_users:{id}`, written by the worker, only read here).
 */
export interface KnownUsers {
  areKnown(userIds: readonly string[]): Promise<boolean[]>;
  areLoaded(userIds: readonly string[]): Promise<boolean[]>;
  /** Only for users whose message the queue accepted (or who were found loaded). */
  markKnown(userIds: readonly string[]): Promise<void>;
  forget(userIds: readonly string[]): Promise<void>;
  /** Every member of the known set, in batches (a member may come twice on Valkey: SSCAN). */
  scan(batchSize: number): AsyncIterable<string[]>;
  /** How many users the known set holds (SCARD). */
  count(): Promise<number>;
}

/** Leases: one holder per key, with a TTL; only the holder's token may renew or release. */
export interface Locks {
  /** Takes `key` for `ttlMs` unless someone else holds it; true when taken. */
  tryLock(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Extends the lock only while `token` still holds it; false when it was lost. */
  renewLock(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock only if `token` holds it. */
  unlock(key: string, token: string): Promise<void>;
}

/** An operator's one-off permission (release a held guard for the next run), kept until used or expired. */
export interface Permits {
  grant(key: string, ttlMs: number): Promise<void>;
  /** True (and the permit is gone) when it was granted and not used yet. */
  take(key: string): Promise<boolean>;
}

/** The newest run summaries (JSON), for /status and `ff-detector status`. */
export interface RunHistory {
  push(entry: string, keep: number): Promise<void>;
  /** The newest `count`, newest first. */
  read(count: number): Promise<string[]>;
}

/**
 * What the replicas tell each other, so that any of them can show the whole deployment (the
 * console, /status): who is there, and notes only one replica can write — the leader's run in
 * progress, the lag gate's last reading. Entries are JSON written by the daemon; each expires on
 * its own, so a replica that dies disappears without anyone cleaning up after it.
 */
export interface ReplicaBoard {
  /** Records this replica's heartbeat, heard for `ttlMs`. */
  announce(replicaId: string, entry: string, ttlMs: number): Promise<void>;
  /** The heartbeats heard within their TTL. */
  replicas(): Promise<string[]>;
  withdraw(replicaId: string): Promise<void>;
  /** Replaces the note `name` (null: removes it), kept for `ttlMs` (null: until replaced). */
  post(name: string, entry: string | null, ttlMs: number | null): Promise<void>;
  read(name: string): Promise<string | null>;
}

/**
 * One state backend (Valkey, or the file-backed default). Its parts share one connection; each
 * consumer depends only on the part it uses.
 */
export interface StateStore {
  readonly description: string;
  readonly known: KnownUsers;
  readonly locks: Locks;
  readonly permits: Permits;
  readonly history: RunHistory;
  readonly backfillJobs: BackfillJobStore;
  readonly board: ReplicaBoard;
  /** Fails with STATE_UNAVAILABLE when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

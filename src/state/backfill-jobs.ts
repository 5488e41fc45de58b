import type { MessageSettings } from '../sink/message.js';

/**
 * preparing: accepted, its users still being gathered (the candidate source) · running ·
 * interrupted: its replica stopped it (shutdown); another replica resumes it · cancelling: asked
 * to stop, its replica stops at the next batch · ok · partial: some users refused for good ·
 * failed: the queue failed, users remain · cancelled: by request, users remain.
 */
export type BackfillJobStatus = 'preparing' | 'running' | 'interrupted' | 'cancelling' | 'ok' | 'partial' | 'failed' | 'cancelled';

/** Statuses whose work a replica takes over once the job's lease is free. */
export const UNFINISHED: ReadonlySet<BackfillJobStatus> = new Set(['preparing', 'running', 'interrupted']);

export interface BackfillJobRecord {
  jobId: string;
  status: BackfillJobStatus;
  /** Where the users came from: `user_ids`, an `s3://` URI, or `candidates`. */
  origin: string;
  /** The same contract for every message of the job, whichever replica sends it. */
  message: MessageSettings;
  total: number;
  sent: number;
  failed: number;
  remaining: number;
  invalid: number;
  duplicates: number;
  createdAt: string;
  updatedAt: string;
  /** The replica (host:pid) that worked on it last. */
  owner: string | null;
  error: string | null;
}

export type NewBackfillJob = Pick<BackfillJobRecord, 'jobId' | 'origin' | 'message' | 'owner'>;

/**
 * The deployment's backfill job, kept in the state store so that a stopped or dead replica
 * loses nobody: its users not yet accepted stay recorded until they are. One job at a time (the
 * job's lease is a lock beside it); a new job replaces the last finished one. Writes name the
 * job, and are ignored once another job replaced it.
 */
export interface BackfillJobStore {
  /** The current or last job, with its counts; null when there never was one. */
  current(): Promise<BackfillJobRecord | null>;
  /** Replaces the previous job with a new one, `preparing`, with no users yet. */
  create(job: NewBackfillJob): Promise<void>;
  /** Stores the job's users, all at once, and marks it `running`. */
  fill(jobId: string, userIds: readonly string[], counts: { invalid: number; duplicates: number }): Promise<void>;
  /** Users neither accepted nor refused for good yet. */
  remaining(jobId: string): Promise<string[]>;
  /** Users the queue accepted; returns how many were still remaining (repeats count once). */
  recordSent(jobId: string, userIds: readonly string[]): Promise<number>;
  /** Users the queue refused for good (SenderFault, or retries used up). */
  recordFailed(jobId: string, userIds: readonly string[]): Promise<number>;
  update(jobId: string, fields: Partial<Pick<BackfillJobRecord, 'status' | 'error' | 'owner'>>): Promise<void>;
}

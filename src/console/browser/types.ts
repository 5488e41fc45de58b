/** The parts of the admin API's answers the console shows (README "Admin API"). */

import type { LagReading, ReplicaEntry, SharedRun } from '../board-types.js';

export type { LagReading, ReplicaEntry, SharedRun };

export interface RunSummary {
  runId: string;
  strategy: string;
  status: string;
  startedAt: string;
  durationMs: number;
  enqueued: number;
  deferred: number;
  failed: number;
  forgotten: number;
  forgetHeld: number;
  error: string | null;
}

export interface FeedStatus {
  strategy: string;
  shadow: boolean;
  leading: boolean;
  health: { state: string; lastChangeAt: string | null; error: string | null };
  pending: number | null;
  shadowRecorded: number | null;
  liveState: { revision: number; ageSeconds: number; enabled: boolean | null; percentage: number | null; explicitUsers: number; complete: boolean } | null;
  lastAgreement: { both: number; onlyPolling: number; onlyFeed: number; feedEarlierMinutes: { p50: number | null }; at: string } | null;
  details: { held?: Array<{ key: string; detail: string | null }> } | null;
  error: string | null;
}

export interface Status {
  flag: string;
  role: string;
  replica: string;
  replicas: ReplicaEntry[];
  currentRun: SharedRun | null;
  sendingPaused: Array<{ gate: string; since: string; reason: string }>;
  forgetHold: { runId: string; users: number; reason: string | null } | null;
  lagGate: LagReading | null;
  knownUsers: number | null;
  feeds: FeedStatus[];
  lastRuns: RunSummary[];
  errors?: string[];
}

export interface BackfillJob {
  jobId: string;
  status: string;
  origin: string;
  total: number;
  sent: number;
  failed: number;
  remaining: number;
  invalid: number;
  duplicates: number;
  updatedAt: string;
  owner: string | null;
  error: string | null;
  etaSeconds: number | null;
}

export interface BackfillStatus {
  running: boolean;
  here: boolean;
  job: BackfillJob | null;
}

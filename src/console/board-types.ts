/**
 * What the replicas' board holds, as /status returns it: written by the daemon
 * (src/daemon/replica-presence.ts) and read by the console's page. No imports: this file is
 * compiled for Node and, through the page's types, checked against the DOM build too.
 */

export interface ReplicaEntry {
  replicaId: string;
  host: string;
  pid: number;
  role: 'leader' | 'follower';
  version: string;
  startedAt: string;
  seenAt: string;
}

/** The leader's run in progress, as any replica reads it. */
export interface SharedRun {
  replicaId: string;
  runId: string;
  trigger: string;
  startedAt: string;
  enqueued: number;
  queued: number;
  /** Users enqueued per second since the run started. */
  rate: number;
  etaSeconds: number | null;
  updatedAt: string;
}

export interface LagReading {
  readAt: string;
  replicaId: string;
  groups: Array<{ group: string; topic: string; lag: number; behind: boolean }>;
}

import type { Valkey } from 'iovalkey';
import type { StateStore } from '../types.js';
import { ValkeyBackfillJobs } from './backfill-jobs.js';
import { ValkeyConnection } from './connection.js';
import { ValkeyKnownUsers, type KnownUserKeys } from './known-users.js';
import { ValkeyLocks, ValkeyPermits, ValkeyRunHistory } from './locks.js';
import { ValkeyReplicaBoard } from './replica-board.js';

export interface ValkeyStateOptions extends KnownUserKeys {
  url: string;
  /** Cluster mode: `url` is a seed node (state.valkeyCluster). */
  cluster?: boolean;
  /** Prefix of ff-detector's own keys: locks, run history, backfill job, rate limits, the replicas' board. */
  detectorKeyPrefix: string;
  connectTimeoutMs: number;
  commandTimeoutMs?: number;
}

/** Production state: every part over one Valkey connection. */
export class ValkeyStateStore implements StateStore {
  readonly connection: ValkeyConnection;
  readonly known: ValkeyKnownUsers;
  readonly locks: ValkeyLocks;
  readonly permits: ValkeyPermits;
  readonly history: ValkeyRunHistory;
  readonly backfillJobs: ValkeyBackfillJobs;
  readonly board: ValkeyReplicaBoard;
  readonly description: string;

  constructor(options: ValkeyStateOptions, client?: Valkey) {
    this.connection = new ValkeyConnection(options, client);
    this.known = new ValkeyKnownUsers(this.connection, options);
    this.locks = new ValkeyLocks(this.connection);
    this.permits = new ValkeyPermits(this.connection);
    this.history = new ValkeyRunHistory(this.connection, `${options.detectorKeyPrefix}runs`);
    this.backfillJobs = new ValkeyBackfillJobs(this.connection, options.detectorKeyPrefix);
    this.board = new ValkeyReplicaBoard(this.connection, options.detectorKeyPrefix);
    this.description = `${this.connection.description} (set ${options.knownSetKey})`;
  }

  async ping(): Promise<void> {
    await this.connection.call('PING', () => this.connection.client.ping());
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}

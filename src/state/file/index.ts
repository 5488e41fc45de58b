import type { StateStore } from '../types.js';
import { FileBackfillJobs } from './backfill-jobs.js';
import { JournalKnownUsers } from './known-users.js';
import { FileLocks, FilePermits } from './locks.js';
import { FileRunHistory } from './run-history.js';
import { MemoryReplicaBoard } from '../memory-replica-board.js';

/**
 * The embedded default's state, in files beside the journal (`state.file`): the known set's
 * journal, lock files, the run history and the backfill job. For one machine; production uses
 * Valkey.
 */
export class FileStateStore implements StateStore {
  readonly known: JournalKnownUsers;
  readonly locks: FileLocks;
  readonly permits: FilePermits;
  readonly history: FileRunHistory;
  readonly backfillJobs: FileBackfillJobs;
  readonly board = new MemoryReplicaBoard();
  readonly description: string;

  constructor(file: string) {
    this.known = new JournalKnownUsers(file);
    this.locks = new FileLocks(file);
    this.permits = new FilePermits(file);
    this.history = new FileRunHistory(`${file}.runs.jsonl`);
    this.backfillJobs = new FileBackfillJobs(`${file}.backfill`);
    this.description = `file ${file}`;
  }

  ping(): Promise<void> {
    return this.known.catchUp();
  }

  close(): Promise<void> {
    return this.known.close();
  }
}

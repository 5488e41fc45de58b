import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DetectorEventBus } from '../observability/events.js';
import type { GroupLag } from '../safety/consumer-lag.js';
import type { ReplicaBoard, Permits } from '../state/types.js';
import type { LagReading, ReplicaEntry, SharedRun } from '../console/board-types.js';
import type { Role } from './leadership.js';

/** A heartbeat every 5 s, heard for three of them: a replica gone is off the board within 15 s. */
const HEARTBEAT_MS = 5000;
const HEARD_FOR_MS = 3 * HEARTBEAT_MS;
/** Progress is posted at most this often (a run reports every batch); a cancel asked elsewhere is looked for as often. */
const PROGRESS_EVERY_MS = 500;
const CURRENT_RUN = 'current-run';
const LAG_READING = 'lag-gate';
/** A lag reading older than this is not shown (the gate may have been turned off since). */
const LAG_READING_KEPT_MS = 24 * 60 * 60 * 1000;

export interface LocalRun {
  runId: string;
  trigger: string;
  startedAt: Date;
  enqueued: number;
  queued: number;
  elapsedMs: number;
  cancel(reason: string): void;
}

export interface PresenceDeps {
  board: ReplicaBoard;
  permits: Permits;
  keyPrefix: string;
  version: string;
  /** The sending rate limit, for an ETA before the run has a rate of its own. */
  rateLimit: number;
  /** safety.consumerLag.enabled: when off, a reading left from before is removed at start. */
  lagGateEnabled: boolean;
  role(): Role;
  localRun(): LocalRun | undefined;
  events: DetectorEventBus;
  logger: Logger;
}

/**
 * What this replica tells the others through the state store (the ReplicaBoard), so that the
 * console and /status on any replica show the whole deployment: a heartbeat with its role, the
 * leader's run in progress (progress, rate, ETA), the lag gate's last reading. A cancel asked on
 * a follower reaches the leader as a permit keyed by the run's ID, which the leader looks for
 * while its run goes on. The board is for display: a failed write is logged, never fatal, and
 * the heartbeat rewrites what it holds (this replica, its run, or the run's removal) every 5 s.
 */
export class ReplicaPresence {
  readonly replicaId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly startedAt = new Date().toISOString();
  private heartbeat: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private posting: Promise<void> = Promise.resolve();
  /** Board writes queued and not yet done: a heartbeat or progress post waits while any is (a slow Valkey must not pile them up). */
  private pendingWrites = 0;
  /** This replica's run is on the board (posted, and its removal not yet written). */
  private runOnBoard = false;
  private warned = false;
  private readonly onProgress = (): void => this.scheduleProgress();
  private readonly onFinished = (): void => this.queue(() => this.postRun());
  private readonly onLag = (lags: GroupLag[]): void => this.queue(() => this.deps.board.post(LAG_READING, JSON.stringify(this.toLagReading(lags)), LAG_READING_KEPT_MS));

  constructor(private readonly deps: PresenceDeps) {
    deps.events.on('run:progress', this.onProgress);
    deps.events.on('run:finished', this.onFinished);
    deps.events.on('safety:lag', this.onLag);
  }

  start(): void {
    if (!this.deps.lagGateEnabled) this.queue(() => this.deps.board.post(LAG_READING, null, null));
    const beat = (): void => {
      if (this.pendingWrites === 0) this.announce();
      this.heartbeat = setTimeout(beat, HEARTBEAT_MS);
      this.heartbeat.unref();
    };
    beat();
  }

  /** Writes this replica's heartbeat (and its run) now: on every beat, and when its role changes. */
  announce(): void {
    this.queue(async () => {
      await this.deps.board.announce(this.replicaId, JSON.stringify(this.self()), HEARD_FOR_MS);
      await this.postRun();
    });
  }

  /** A run started here: on the board at once, so it can be seen and cancelled before its first batch. */
  runStarted(): void {
    this.queue(() => this.postRun());
  }

  async stop(): Promise<void> {
    clearTimeout(this.heartbeat);
    clearTimeout(this.progressTimer);
    this.heartbeat = undefined;
    this.deps.events.off('run:progress', this.onProgress);
    this.deps.events.off('run:finished', this.onFinished);
    this.deps.events.off('safety:lag', this.onLag);
    this.queue(() => this.deps.board.withdraw(this.replicaId));
    await this.posting;
  }

  /** Every replica heard from (this one included, even before its first heartbeat is written). */
  async replicas(): Promise<ReplicaEntry[]> {
    const entries = (await this.deps.board.replicas()).flatMap((entry) => parse<ReplicaEntry>(entry) ?? []);
    if (!entries.some((entry) => entry.replicaId === this.replicaId)) entries.push(this.self());
    return entries.sort((a, b) => a.replicaId.localeCompare(b.replicaId));
  }

  /** This replica, as its heartbeat says. */
  self(): ReplicaEntry {
    return { replicaId: this.replicaId, host: hostname(), pid: process.pid, role: this.deps.role(), version: this.deps.version, startedAt: this.startedAt, seenAt: new Date().toISOString() };
  }

  /** The run in progress on whichever replica leads. */
  async currentRun(): Promise<SharedRun | null> {
    const local = this.deps.localRun();
    if (local) return this.shared(local);
    return parse<SharedRun>(await this.deps.board.read(CURRENT_RUN)) ?? null;
  }

  async lagReading(): Promise<LagReading | null> {
    return parse<LagReading>(await this.deps.board.read(LAG_READING)) ?? null;
  }

  /** Asks the leader to cancel its run: true when a run was in progress on another replica. */
  async askLeaderToCancel(): Promise<boolean> {
    const run = await this.currentRun();
    if (!run) return false;
    await this.deps.permits.grant(cancelKey(this.deps.keyPrefix, run.runId), HEARD_FOR_MS * 4);
    return true;
  }

  private scheduleProgress(): void {
    if (this.progressTimer || this.heartbeat === undefined) return;
    this.progressTimer = setTimeout(() => {
      this.progressTimer = undefined;
      if (this.pendingWrites === 0) this.queue(() => this.postRun());
      else this.scheduleProgress();
    }, PROGRESS_EVERY_MS);
    this.progressTimer.unref();
  }

  /**
   * Posts the local run's progress and honours a cancel asked on another replica; with no run,
   * removes the one this replica posted (again, if that failed before).
   */
  private async postRun(): Promise<void> {
    const local = this.deps.localRun();
    if (!local) {
      if (this.runOnBoard) await this.deps.board.post(CURRENT_RUN, null, null);
      this.runOnBoard = false;
      return;
    }
    await this.deps.board.post(CURRENT_RUN, JSON.stringify(this.shared(local)), HEARD_FOR_MS);
    this.runOnBoard = true;
    if (await this.deps.permits.take(cancelKey(this.deps.keyPrefix, local.runId))) {
      this.deps.logger.info({ runId: local.runId }, 'run cancelled by a request on another replica');
      local.cancel('cancelled by request (on another replica)');
    }
    // Runs can go long without progress (scanning, a paused gate): look for a cancel meanwhile.
    this.scheduleProgress();
  }

  private shared(local: LocalRun): SharedRun {
    const seconds = local.elapsedMs / 1000;
    const rate = seconds > 0 ? local.enqueued / seconds : 0;
    const remaining = local.queued - local.enqueued;
    const perSecond = rate > 0 ? rate : this.deps.rateLimit;
    return {
      replicaId: this.replicaId,
      runId: local.runId,
      trigger: local.trigger,
      startedAt: local.startedAt.toISOString(),
      enqueued: local.enqueued,
      queued: local.queued,
      rate: Math.round(rate * 10) / 10,
      etaSeconds: remaining > 0 ? Math.ceil(remaining / perSecond) : null,
      updatedAt: new Date().toISOString(),
    };
  }

  private toLagReading(lags: GroupLag[]): LagReading {
    return {
      readAt: new Date().toISOString(),
      replicaId: this.replicaId,
      groups: lags.map(({ group, topic, lag, partitions }) => ({ group, topic, lag, behind: partitions.some((partition) => partition.behind) })),
    };
  }

  /** Board writes one at a time, in order (a finished run's removal after its last progress). */
  private queue(write: () => Promise<void>): void {
    this.pendingWrites++;
    this.posting = this.posting
      .then(write)
      .then(
        () => void (this.warned = false),
        (error: unknown) => {
          if (!this.warned) this.deps.logger.warn(`could not update the replicas' board (retried at the next heartbeat): ${errorMessage(error)}`);
          this.warned = true;
        },
      )
      .finally(() => void this.pendingWrites--);
  }
}

function cancelKey(prefix: string, runId: string): string {
  return `${prefix}run-cancel:${runId}`;
}

function parse<T>(entry: string | null): T | undefined {
  if (entry === null) return undefined;
  try {
    return JSON.parse(entry) as T;
  } catch {
    return undefined;
  }
}

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { FileCandidateSource } from '../candidates/file-source.js';
import { sourceOfIds } from '../candidates/memory-source.js';
import { backfillMessageOf, retryPolicyOf } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Runtime } from '../runtime/runtime.js';
import { UNFINISHED, type BackfillJobRecord, type BackfillJobStore } from '../state/backfill-jobs.js';
import { RunLease } from '../state/run-lease.js';
import type { StateStore } from '../state/types.js';
import { enabledCandidates } from './enabled-candidates.js';
import { BackfillJob } from './job.js';
import { readUserList, tooMany, type UserList } from './user-list.js';

/** What POST /admin/backfill asks for (seed section 6). */
export type BackfillRequest = { kind: 'user_ids'; userIds: string[] } | { kind: 's3_uri'; uri: string } | { kind: 'candidates' };

export type StartOutcome =
  | { outcome: 'accepted'; job: BackfillJobRecord }
  | { outcome: 'busy'; reason: string; job: BackfillJobRecord | null }
  | { outcome: 'invalid'; error: string };

export interface BackfillStatusReport {
  /** A job is being worked on (or waits for a replica to take it over). */
  running: boolean;
  /** This replica works on it. */
  here: boolean;
  /** The current or last job, with a lower bound on the time left at the configured rate. */
  job: (BackfillJobRecord & { etaSeconds: number | null }) | null;
}

/** While preparing, a job of explicit IDs whose replica died before storing them cannot go on. */
function canResume(job: BackfillJobRecord): boolean {
  return UNFINISHED.has(job.status) && !(job.status === 'preparing' && job.origin === 'user_ids');
}

/**
 * The deployment's backfill job (POST /admin/backfill), kept in the state store: one at a time
 * across every replica (a lease in the store, taken before anything else is awaited), its users
 * stored before the request is answered, each batch the queue accepted recorded as sent. When its
 * replica stops (shutdown: `interrupted`) or dies (the lease expires), another replica — or this
 * one after a restart — takes the lease and resumes it with the users still remaining. Sends
 * with the CLI's sender, the queue's shared rate limit and the message contract fixed at creation.
 */
export class BackfillCoordinator {
  private readonly owner = `${hostname()}:${process.pid}`;
  private readonly leaseKey: string;
  /** Taken synchronously when a request or a takeover starts, so two never race here. */
  private busy = false;
  private local: { jobId: string; cancel: AbortController; done: Promise<void> } | undefined;
  private stopping = false;
  private watcher: NodeJS.Timeout | undefined;

  constructor(
    private readonly runtime: Runtime,
    private readonly store: StateStore,
    private readonly logger: Logger,
  ) {
    this.leaseKey = `${runtime.config.state.detectorKeyPrefix}lock:backfill`;
  }

  private get jobs(): BackfillJobStore {
    return this.store.backfillJobs;
  }

  async start(request: BackfillRequest): Promise<StartOutcome> {
    if (this.busy || this.local) return { outcome: 'busy', reason: 'a backfill job is running on this replica', job: await this.jobs.current() };
    this.busy = true;
    try {
      const lease = await RunLease.acquire(this.store.locks, this.leaseKey, this.logger, this.runtime.config.backfill.leaseTtlMs);
      if (!lease) return { outcome: 'busy', reason: 'a backfill job is running on another replica', job: await this.jobs.current() };
      const previous = await this.jobs.current();
      if (previous && canResume(previous)) {
        this.launch(lease, previous.jobId);
        return { outcome: 'busy', reason: `backfill job ${previous.jobId} was unfinished (${previous.remaining} users remaining): resumed it; start a new one when it ends`, job: previous };
      }
      // The candidate source is read once the job runs (it can take minutes); lists are read now.
      let list: UserList | undefined;
      try {
        if (request.kind !== 'candidates') list = await this.readList(request);
        if (list?.ids.length === 0) throw new Error(`no valid user ID in ${request.kind === 's3_uri' ? request.uri : 'the request'} (${list.invalid} invalid${list.invalidExamples[0] ? `, e.g. line ${list.invalidExamples[0].line}: ${list.invalidExamples[0].reason}` : ''})`);
      } catch (error) {
        await lease.release();
        return { outcome: 'invalid', error: errorMessage(error) };
      }
      const { config } = this.runtime;
      const jobId = randomUUID();
      const origin = request.kind === 's3_uri' ? request.uri : request.kind;
      const message = backfillMessageOf(config);
      if (previous && previous.remaining > 0) this.logger.warn({ job: previous }, `backfill job ${previous.jobId} (${previous.status}) left ${previous.remaining} users unsent; the new job replaces it`);
      await this.jobs.create({ jobId, origin, message, owner: this.owner });
      if (list) await this.jobs.fill(jobId, list.ids, { invalid: list.invalid, duplicates: list.duplicates });
      this.launch(lease, jobId);
      return { outcome: 'accepted', job: (await this.jobs.current()) as BackfillJobRecord };
    } finally {
      this.busy = false;
    }
  }

  async status(): Promise<BackfillStatusReport> {
    const job = await this.jobs.current();
    if (!job) return { running: false, here: false, job: null };
    const running = UNFINISHED.has(job.status) || job.status === 'cancelling';
    const etaSeconds = running && job.remaining > 0 ? Math.ceil(job.remaining / this.runtime.config.enqueue.rateLimit) : null;
    return { running, here: this.local?.jobId === job.jobId, job: { ...job, etaSeconds } };
  }

  /** Stops the job wherever it runs: here at once, on another replica at its next batch. */
  async cancel(): Promise<'cancelling' | 'none'> {
    const job = await this.jobs.current();
    if (!job || !(UNFINISHED.has(job.status) || job.status === 'cancelling')) return 'none';
    await this.jobs.update(job.jobId, { status: 'cancelling' });
    this.local?.cancel.abort(new Error('cancelled by request'));
    return 'cancelling';
  }

  /** A failed or cancelled job with users remaining goes on (from the users still remaining). */
  async resume(): Promise<'resuming' | 'none'> {
    const job = await this.jobs.current();
    if (!job || UNFINISHED.has(job.status) || job.status === 'cancelling' || job.remaining === 0) return 'none';
    await this.jobs.update(job.jobId, { status: 'interrupted', error: null });
    await this.takeOverIfOrphaned();
    return 'resuming';
  }

  /** Looks for a job to take over now, then every third of the lease's TTL. */
  watch(): void {
    const check = (): void => {
      void this.takeOverIfOrphaned()
        .catch((error: unknown) => this.logger.warn(`could not look for a backfill job to resume: ${errorMessage(error)}`))
        .finally(() => {
          if (!this.stopping) this.watcher = setTimeout(check, this.runtime.config.backfill.leaseTtlMs / 3).unref();
        });
    };
    check();
  }

  /** On shutdown: the job stops after its batches in flight and is left `interrupted` for another replica. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.watcher);
    const local = this.local;
    if (!local) return;
    local.cancel.abort(new Error('shutting down'));
    await local.done;
  }

  private async takeOverIfOrphaned(): Promise<void> {
    if (this.busy || this.local || this.stopping) return;
    this.busy = true;
    try {
      const job = await this.jobs.current();
      if (!job || !(canResume(job) || job.status === 'cancelling')) return;
      const lease = await RunLease.acquire(this.store.locks, this.leaseKey, this.logger, this.runtime.config.backfill.leaseTtlMs);
      if (!lease) return; // its replica is alive and holds it
      if (job.status === 'cancelling') {
        await this.jobs.update(job.jobId, { status: 'cancelled', owner: null });
        await lease.release();
        return;
      }
      this.logger.warn({ jobId: job.jobId, status: job.status, remaining: job.remaining, previousOwner: job.owner }, `taking over backfill job ${job.jobId}: ${job.remaining} users remaining`);
      this.launch(lease, job.jobId);
    } finally {
      this.busy = false;
    }
  }

  private launch(lease: RunLease, jobId: string): void {
    const cancel = new AbortController();
    const local = { jobId, cancel, done: Promise.resolve() };
    local.done = this.execute(lease, jobId, cancel).finally(() => {
      if (this.local === local) this.local = undefined;
    });
    this.local = local;
  }

  private async execute(lease: RunLease, jobId: string, cancel: AbortController): Promise<void> {
    const { runtime, jobs, logger } = this;
    const signal = AbortSignal.any([cancel.signal, lease.lost]);
    try {
      let job = await jobs.current();
      if (job?.jobId !== jobId) return;
      if (job.status === 'preparing') {
        const list = await this.gatherAgain(job, signal);
        await jobs.fill(jobId, list.ids, { invalid: list.invalid, duplicates: list.duplicates });
      }
      await jobs.update(jobId, { status: 'running', owner: this.owner, error: null });
      job = (await jobs.current()) as BackfillJobRecord;
      const users = await jobs.remaining(jobId);
      const sink = await runtime.openSink(false);
      const { sqs } = runtime.config;
      logger.info({ jobId, origin: job.origin, users: users.length, total: job.total }, `admin backfill ${job.sent > 0 ? 'resumed' : 'started'}: ${users.length} users to send`);
      const result = await new BackfillJob(users, sink, await runtime.createLimiter(false, sink), logger, {
        jobId,
        message: job.message,
        retry: retryPolicyOf(runtime.config),
        concurrency: sqs.concurrency,
        progressEvery: 1000,
        signal,
        gate: await runtime.createSendGate(false, sink),
        onBatch: async (accepted, failed) => {
          await jobs.recordSent(jobId, accepted);
          await jobs.recordFailed(jobId, failed);
          if ((await jobs.current())?.status === 'cancelling') cancel.abort(new Error('cancelled by request'));
        },
      }).run();
      if (lease.lost.aborted) {
        logger.error({ jobId }, `lost the backfill lease: another replica goes on with job ${jobId}`);
        return;
      }
      const final = result.status === 'cancelled' && this.stopping && (await jobs.current())?.status !== 'cancelling' ? 'interrupted' : result.status;
      await jobs.update(jobId, { status: final, error: result.error, owner: null });
      const record = await jobs.current();
      logger.info({ job: record }, `admin backfill ${final}: sent ${record?.sent ?? result.sent}/${record?.total ?? result.total}, ${record?.remaining ?? 0} remaining`);
    } catch (error) {
      logger.error({ jobId }, `admin backfill failed: ${errorMessage(error)}`);
      // Best effort: with the store gone the job stays `running` and is taken over once it is back.
      await jobs.update(jobId, { status: this.stopping ? 'interrupted' : 'failed', error: errorMessage(error), owner: null }).catch(() => undefined);
    } finally {
      await lease.release();
    }
  }

  /** A job accepted but whose users were not stored yet: gathered again from where they came. */
  private gatherAgain(job: BackfillJobRecord, signal: AbortSignal): Promise<UserList> {
    if (job.origin === 'candidates') return this.readList({ kind: 'candidates' }, signal);
    return this.readList({ kind: 's3_uri', uri: job.origin }, signal);
  }

  private async readList(request: BackfillRequest, signal?: AbortSignal): Promise<UserList> {
    const { runtime } = this;
    const cap = runtime.config.backfill.maxUsers;
    switch (request.kind) {
      case 'user_ids':
        if (request.userIds.length > cap * 2) throw tooMany('the request', cap); // before even deduplicating
        return readUserList(sourceOfIds(request.userIds, 'request'), runtime.idPattern, cap);
      case 's3_uri':
        return readUserList(new FileCandidateSource({ location: request.uri, batchSize: 10_000 }, { objectStore: runtime.objectStore }), runtime.idPattern, cap);
      case 'candidates':
        return enabledCandidates(await runtime.openCandidateSource(), await runtime.openChecker(), runtime.idPattern, cap, signal ?? new AbortController().signal);
    }
  }
}

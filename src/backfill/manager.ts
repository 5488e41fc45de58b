import { z } from 'zod';
import { FileCandidateSource } from '../candidates/file-source.js';
import { sourceOfIds } from '../candidates/memory-source.js';
import type { CandidateSource } from '../candidates/types.js';
import { errorMessage, FfError } from '../errors.js';
import type { AdminResponse } from '../daemon/admin-server.js';
import type { Runtime } from '../runtime/runtime.js';
import { BackfillJob, type BackfillProgress } from './job.js';
import { readUserList, tooMany, type UserList } from './user-list.js';

/** POST /admin/backfill bodies (seed section 6). */
const requestSchema = z.union([
  z.object({ user_ids: z.array(z.string()).min(1) }).strict(),
  z.object({ s3_uri: z.string().startsWith('s3://') }).strict(),
  z.object({ source: z.literal('candidates') }).strict(),
]);

interface ActiveJob {
  job: BackfillJob | undefined;
  cancel: AbortController;
  done: Promise<void>;
  last: (BackfillProgress & { remaining?: number; invalid?: number; duplicates?: number }) | undefined;
  origin: string;
}

/**
 * Backfills requested through the admin API, one at a time, with the CLI's sender, rate limit and
 * message contract. An explicit list or an S3 object is read and validated before the request is
 * accepted (a missing object is a 400); the candidate source is read in the background and only
 * the users the flag enables are sent. Cancellable, and cancelled on shutdown.
 */
export class BackfillManager {
  private active: ActiveJob | undefined;
  private finished: ActiveJob['last'];

  constructor(private readonly runtime: Runtime) {}

  async start(body: unknown): Promise<AdminResponse> {
    if (this.active) return { status: 409, body: { error: 'a backfill job is already running', job: this.status().body } };
    const parsed = requestSchema.safeParse(body);
    if (!parsed.success) return { status: 400, body: { error: 'body must be {"user_ids": [...]}, {"s3_uri": "s3://…"} or {"source": "candidates"}' } };
    const request = parsed.data;
    const cap = this.runtime.config.backfill.maxUsers;
    let list: UserList | undefined;
    try {
      if ('user_ids' in request) {
        if (request.user_ids.length > cap * 2) throw tooMany('the request', cap); // before even deduplicating
        list = await readUserList(sourceOfIds(request.user_ids, 'request'), this.runtime.idPattern, cap);
      } else if ('s3_uri' in request) {
        list = await readUserList(new FileCandidateSource({ location: request.s3_uri, batchSize: 10_000 }, { objectStore: this.runtime.objectStore }), this.runtime.idPattern, cap);
      }
    } catch (error) {
      return { status: 400, body: { error: errorMessage(error) } };
    }
    const origin = 'user_ids' in request ? 'user_ids' : 's3_uri' in request ? request.s3_uri : 'candidates';
    const cancel = new AbortController();
    const active: ActiveJob = { job: undefined, cancel, last: undefined, origin, done: Promise.resolve() };
    active.done = this.execute(active, list).finally(() => {
      this.finished = active.last;
      if (this.active === active) this.active = undefined;
    });
    this.active = active;
    return { status: 202, body: { accepted: true, origin, users: list?.ids.length ?? null, invalid: list?.invalid ?? null, duplicates: list?.duplicates ?? null } };
  }

  status(): AdminResponse {
    if (this.active) return { status: 200, body: { running: true, origin: this.active.origin, job: this.active.job?.progress() ?? null } };
    return { status: 200, body: { running: false, last: this.finished ?? null } };
  }

  cancel(): AdminResponse {
    if (!this.active) return { status: 409, body: { error: 'no backfill job is running' } };
    this.active.cancel.abort(new Error('cancelled by request'));
    return { status: 202, body: { cancelling: true } };
  }

  /** On shutdown: cancel the job and wait until it stopped and reported what it sent. */
  async stop(): Promise<void> {
    const active = this.active;
    if (!active) return;
    active.cancel.abort(new Error('shutting down'));
    await active.done;
  }

  private async execute(active: ActiveJob, given: UserList | undefined): Promise<void> {
    const { runtime } = this;
    const { config, logger } = runtime;
    try {
      const list = given ?? (await this.enabledCandidates(active.cancel.signal));
      const sink = await runtime.openSink(false);
      const job = new BackfillJob(list.ids, sink, await runtime.createLimiter(false, sink), logger.child({ module: 'backfill' }), {
        message: { reason: config.backfill.reason, requestIdPrefix: config.backfill.requestIdPrefix, lookbackDays: config.backfill.lookbackDays, priority: config.enqueue.priority },
        retry: { entryRetries: config.sqs.entryRetries, baseMs: config.sqs.retryBaseMs, maxMs: config.sqs.retryMaxMs },
        concurrency: config.sqs.concurrency,
        progressEvery: 1000,
        signal: active.cancel.signal,
      });
      active.job = job;
      logger.info({ jobId: job.jobId, origin: active.origin, users: list.ids.length }, 'admin backfill started');
      const result = await job.run();
      const { remaining, ...progress } = result;
      active.last = { ...progress, remaining: remaining.length, invalid: list.invalid, duplicates: list.duplicates };
      logger.info({ job: active.last }, `admin backfill ${result.status}: sent ${result.sent}/${result.total}`);
    } catch (error) {
      logger.error(`admin backfill failed: ${errorMessage(error)}`);
      active.last = { ...(active.job?.progress() ?? emptyProgress()), status: 'failed', error: errorMessage(error) };
    }
  }

  /**
   * The configured candidate source, filtered by the flag: the users it enables, streamed batch by
   * batch so that only those (at most backfill.maxUsers) are held.
   */
  private async enabledCandidates(signal: AbortSignal): Promise<UserList> {
    const { runtime } = this;
    const checker = await runtime.openChecker();
    const source: CandidateSource = await runtime.openCandidateSource();
    const cap = runtime.config.backfill.maxUsers;
    const enabled = new Set<string>();
    const list: UserList = { ids: [], invalid: 0, duplicates: 0, invalidExamples: [] };
    for await (const batch of source.batches(signal)) {
      signal.throwIfAborted();
      list.invalid += batch.rejected.length;
      const valid = batch.ids.filter((id) => runtime.idPattern.test(id));
      list.invalid += batch.ids.length - valid.length;
      const results = await checker.check(valid);
      valid.forEach((id, i) => {
        if (results[i] !== 'enabled') return;
        if (enabled.has(id)) list.duplicates++;
        else if (enabled.size >= cap) throw new FfError('INPUT_MALFORMED', `the candidate source enables more than ${cap} users, the cap for one backfill job`);
        else enabled.add(id);
      });
    }
    return { ...list, ids: [...enabled] };
  }
}

function emptyProgress(): BackfillProgress {
  return { jobId: '', status: 'failed', total: 0, sent: 0, failed: 0, startedAt: new Date().toISOString(), elapsedMs: 0, etaSeconds: null, error: null };
}

import type { BackfillJobRecord, BackfillJobStatus, BackfillJobStore, NewBackfillJob } from '../backfill-jobs.js';
import type { ValkeyConnection } from './connection.js';

/** Members per SADD / SSCAN round trip when storing or reading a job's users. */
const CHUNK = 10_000;

// Each script touches only the job's keys, which share one hash tag (one cluster slot), and
// acts only while the job is still the one named: a replica that lost its lease cannot write
// into the job that replaced it.
const RECORD_SENT = `
if redis.call('HGET', KEYS[1], 'jobId') ~= ARGV[1] then return -1 end
local removed = 0
for i = 3, #ARGV do removed = removed + redis.call('SREM', KEYS[2], ARGV[i]) end
redis.call('HINCRBY', KEYS[1], 'sent', removed)
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
return removed`;
const RECORD_FAILED = `
if redis.call('HGET', KEYS[1], 'jobId') ~= ARGV[1] then return -1 end
local moved = 0
for i = 3, #ARGV do moved = moved + redis.call('SMOVE', KEYS[2], KEYS[3], ARGV[i]) end
redis.call('HINCRBY', KEYS[1], 'failed', moved)
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
return moved`;
const UPDATE = `
if redis.call('HGET', KEYS[1], 'jobId') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1`;
const FILL = `
if redis.call('HGET', KEYS[1], 'jobId') ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[2]) else redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[1], 'status', 'running', 'total', ARGV[2], 'invalid', ARGV[3], 'duplicates', ARGV[4], 'updatedAt', ARGV[5])
return 1`;

/**
 * The backfill job in Valkey: a hash (the record), a set of the users remaining, a set of those
 * refused for good, and a staging set while the users are stored.
 */
export class ValkeyBackfillJobs implements BackfillJobStore {
  private readonly keys: { job: string; remaining: string; failed: string; staging: string };

  constructor(
    private readonly connection: ValkeyConnection,
    prefix: string,
  ) {
    const tagged = `${prefix}{backfill-job}`;
    this.keys = { job: `${tagged}:record`, remaining: `${tagged}:remaining`, failed: `${tagged}:failed`, staging: `${tagged}:staging` };
  }

  async current(): Promise<BackfillJobRecord | null> {
    const { client } = this.connection;
    const replies = await this.connection.call('backfill job', () => client.multi().hgetall(this.keys.job).scard(this.keys.remaining).exec());
    const fields = (replies?.[0]?.[1] ?? {}) as Record<string, string>;
    if (!fields.jobId) return null;
    return {
      jobId: fields.jobId,
      status: fields.status as BackfillJobStatus,
      origin: fields.origin ?? '',
      message: JSON.parse(fields.message ?? '{}') as BackfillJobRecord['message'],
      total: Number(fields.total ?? 0),
      sent: Number(fields.sent ?? 0),
      failed: Number(fields.failed ?? 0),
      remaining: Number(replies?.[1]?.[1] ?? 0),
      invalid: Number(fields.invalid ?? 0),
      duplicates: Number(fields.duplicates ?? 0),
      createdAt: fields.createdAt ?? '',
      updatedAt: fields.updatedAt ?? '',
      owner: fields.owner || null,
      error: fields.error || null,
    };
  }

  async create(job: NewBackfillJob): Promise<void> {
    const { client } = this.connection;
    const now = new Date().toISOString();
    const { job: record, remaining, failed, staging } = this.keys;
    await this.connection.call('create backfill job', () =>
      client
        .multi()
        .del(record, remaining, failed, staging)
        .hset(record, {
          jobId: job.jobId,
          status: 'preparing',
          origin: job.origin,
          message: JSON.stringify(job.message),
          total: 0,
          sent: 0,
          failed: 0,
          invalid: 0,
          duplicates: 0,
          createdAt: now,
          updatedAt: now,
          owner: job.owner ?? '',
          error: '',
        })
        .exec(),
    );
  }

  async fill(jobId: string, userIds: readonly string[], counts: { invalid: number; duplicates: number }): Promise<void> {
    const { client } = this.connection;
    await this.connection.call('store backfill users', () => client.del(this.keys.staging));
    for (let i = 0; i < userIds.length; i += CHUNK) {
      const chunk = userIds.slice(i, i + CHUNK);
      await this.connection.call('store backfill users', () => client.sadd(this.keys.staging, chunk));
    }
    const { job, remaining, staging } = this.keys;
    await this.connection.call('store backfill users', () =>
      client.eval(FILL, 3, job, remaining, staging, jobId, userIds.length, counts.invalid, counts.duplicates, new Date().toISOString()),
    );
  }

  async remaining(jobId: string): Promise<string[]> {
    const { client } = this.connection;
    const record = await this.current();
    if (record?.jobId !== jobId) return [];
    const users: string[] = [];
    let cursor = '0';
    do {
      const [next, members] = await this.connection.call('SSCAN', () => client.sscan(this.keys.remaining, cursor, 'COUNT', CHUNK));
      cursor = next;
      users.push(...members);
    } while (cursor !== '0');
    return users;
  }

  async recordSent(jobId: string, userIds: readonly string[]): Promise<number> {
    if (userIds.length === 0) return 0;
    const { job, remaining } = this.keys;
    const reply = await this.connection.call('record sent users', () => this.connection.client.eval(RECORD_SENT, 2, job, remaining, jobId, new Date().toISOString(), ...userIds));
    return Math.max(0, Number(reply));
  }

  async recordFailed(jobId: string, userIds: readonly string[]): Promise<number> {
    if (userIds.length === 0) return 0;
    const { job, remaining, failed } = this.keys;
    const reply = await this.connection.call('record failed users', () =>
      this.connection.client.eval(RECORD_FAILED, 3, job, remaining, failed, jobId, new Date().toISOString(), ...userIds),
    );
    return Math.max(0, Number(reply));
  }

  async update(jobId: string, fields: Partial<Pick<BackfillJobRecord, 'status' | 'error' | 'owner'>>): Promise<void> {
    const pairs = Object.entries({ ...fields, updatedAt: new Date().toISOString() }).flatMap(([name, value]) => [name, value ?? '']);
    await this.connection.call('update backfill job', () => this.connection.client.eval(UPDATE, 1, this.keys.job, jobId, ...pairs));
  }
}

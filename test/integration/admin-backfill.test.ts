import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, drainQueue, putObject, uniqueName, userIdsOf, valkeyUrl, waitFor } from '../helpers/services.js';

// POST /admin/backfill on real daemons, real Valkey, SQS and S3.

interface Job {
  jobId: string;
  status: string;
  sent: number;
  total: number;
  failed: number;
  remaining: number;
  invalid: number;
  duplicates: number;
  owner: string | null;
  error: string | null;
}
interface BackfillStatus {
  running: boolean;
  here: boolean;
  job: Job | null;
}

const daemons = daemonsForTests(afterEach);

/** One deployment: its own keys and queue; `replica()` starts a daemon of it. */
class Deployment {
  readonly fixture = new PollingFixture();
  readonly queueUrl: Promise<string> = createQueue();
  constructor(
    private readonly rateLimit: number,
    private readonly candidates: string[] = [],
    private readonly enabled: string[] = [],
  ) {}

  async replica(): Promise<DaemonProcess> {
    const { fixture } = this;
    const config = [
      `candidates:\n  path: ${fixture.writeCandidates(this.candidates)}`,
      `flags:\n  rules: ${fixture.writeRules(this.enabled)}`,
      `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"`,
      `enqueue:\n  rateLimit: ${this.rateLimit}`,
      'backfill:\n  leaseTtlMs: 1500',
      'daemon:\n  schedule: "0 0 1 1 *"',
    ].join('\n');
    const daemon = await DaemonProcess.start(config, { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: await this.queueUrl });
    daemons.push(daemon);
    return daemon;
  }

  async received(): Promise<string[]> {
    return userIdsOf(await drainQueue(await this.queueUrl));
  }
}

const status = (daemon: DaemonProcess): Promise<BackfillStatus> => daemon.get<BackfillStatus>('/admin/backfill/status');

async function finished(daemon: DaemonProcess): Promise<Job> {
  await waitFor(async () => !(await status(daemon)).running, 'the backfill to finish', 60_000);
  return (await status(daemon)).job as Job;
}

const ids = (n: number, prefix = 'u') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('POST /admin/backfill', () => {
  it('sends an explicit list once each (deduplicated, invalid IDs counted)', async () => {
    const deployment = new Deployment(200);
    const daemon = await deployment.replica();
    const users = ids(120);
    const accepted = await daemon.post('/admin/backfill', { user_ids: [...users, 'u-1', 'not valid!'] });
    expect(accepted.status).toBe(202);
    expect(await accepted.json()).toMatchObject({ accepted: true, users: 120, invalid: 1, duplicates: 1 });
    expect(await finished(daemon)).toMatchObject({ status: 'ok', sent: 120, total: 120, remaining: 0 });
    const bodies = (await drainQueue(await deployment.queueUrl)).map((m) => JSON.parse(m.Body as string) as { user_id: string; reason: string; request_id: string });
    expect(bodies.map((b) => b.user_id).sort()).toEqual([...users].sort());
    expect(bodies[0]).toMatchObject({ reason: 'batch_backfill' });
    expect(bodies[0]?.request_id).toMatch(/^backfill-/);
  });

  it('validates an S3 list before accepting: a missing object is a 400 and nothing is sent', async () => {
    const deployment = new Deployment(1000);
    const daemon = await deployment.replica();
    const bucket = uniqueName('bf');
    await putObject(bucket, 'users.txt', 's1\ns2\ns3\n');
    const missing = await daemon.post('/admin/backfill', { s3_uri: `s3://${bucket}/nope.txt` });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ error: `cannot read s3://${bucket}/nope.txt: object does not exist` });
    expect((await daemon.post('/admin/backfill', { s3_uri: `s3://${bucket}/users.txt` })).status).toBe(202);
    expect(await finished(daemon)).toMatchObject({ status: 'ok', sent: 3 });
    expect((await deployment.received()).sort()).toEqual(['s1', 's2', 's3']);
  });

  it('backfills the candidate source filtered by the flag', async () => {
    const deployment = new Deployment(1000, ['c1', 'c2', 'c3', 'c4'], ['c2', 'c4']);
    const daemon = await deployment.replica();
    const accepted = await daemon.post('/admin/backfill', { source: 'candidates' });
    expect(accepted.status).toBe(202);
    expect(await accepted.json()).toMatchObject({ accepted: true, origin: 'candidates', users: null });
    expect(await finished(daemon)).toMatchObject({ status: 'ok', sent: 2, total: 2 });
    expect((await deployment.received()).sort()).toEqual(['c2', 'c4']);
  });

  it('refuses bodies that are not one of the three forms, and a list with no valid ID', async () => {
    const daemon = await new Deployment(1000).replica();
    for (const body of [{}, { user_ids: [] }, { source: 'neo4j' }, { user_ids: ['a'], s3_uri: 's3://b/k' }]) {
      expect((await daemon.post('/admin/backfill', body)).status).toBe(400);
    }
    const allInvalid = await daemon.post('/admin/backfill', { user_ids: ['not valid!', 'also bad?'] });
    expect(allInvalid.status).toBe(400);
    expect(((await allInvalid.json()) as { error: string }).error).toContain('no valid user ID in the request (2 invalid');
    expect((await status(daemon)).job).toBeNull();
  });
});

describe('one backfill job at a time means one', () => {
  it('ten concurrent requests for one S3 list on two replicas: one is accepted, each user sent once', async () => {
    const deployment = new Deployment(500);
    const [a, b] = [await deployment.replica(), await deployment.replica()];
    const bucket = uniqueName('bf');
    const users = ids(300, 's');
    await putObject(bucket, 'users.txt', `${users.join('\n')}\n`);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).post('/admin/backfill', { s3_uri: `s3://${bucket}/users.txt` })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([202, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    expect(await finished(a)).toMatchObject({ status: 'ok', sent: 300, remaining: 0 });
    const received = await deployment.received();
    expect(received).toHaveLength(300);
    expect(new Set(received)).toEqual(new Set(users));
  });
});

describe('interrupted backfills lose nobody', () => {
  it('a replica shut down mid-job leaves it interrupted; another replica finishes it', async () => {
    const deployment = new Deployment(50);
    const [a, b] = [await deployment.replica(), await deployment.replica()];
    const users = ids(300, 'k');
    expect((await a.post('/admin/backfill', { user_ids: users })).status).toBe(202);
    await waitFor(async () => ((await status(b)).job?.sent ?? 0) >= 30, '30 users sent, seen from the other replica');
    a.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    const done = await finished(b);
    expect(done).toMatchObject({ status: 'ok', sent: 300, remaining: 0, total: 300 });
    expect(b.log).toContain('taking over backfill job');
    const received = await deployment.received();
    expect(new Set(received)).toEqual(new Set(users));
    expect(received.length - users.length).toBeLessThanOrEqual(10); // at most the batch in flight at the stop
  });

  it('a replica killed mid-job: another takes it over once the lease expires', async () => {
    const deployment = new Deployment(50);
    const [a, b] = [await deployment.replica(), await deployment.replica()];
    const users = ids(300, 'z');
    expect((await a.post('/admin/backfill', { user_ids: users })).status).toBe(202);
    await waitFor(async () => ((await status(b)).job?.sent ?? 0) >= 30, '30 users sent');
    a.kill('SIGKILL');
    await a.exited;
    expect((await status(b)).running).toBe(true); // still recorded as running, with what remains
    expect(await finished(b)).toMatchObject({ status: 'ok', remaining: 0, total: 300 });
    const received = await deployment.received();
    expect(new Set(received)).toEqual(new Set(users));
    expect(received.length - users.length).toBeLessThanOrEqual(10);
  });

  it('a single replica restarted after a shutdown resumes its job', async () => {
    const deployment = new Deployment(50);
    const first = await deployment.replica();
    const users = ids(200, 'r');
    expect((await first.post('/admin/backfill', { user_ids: users })).status).toBe(202);
    await waitFor(async () => ((await status(first)).job?.sent ?? 0) >= 20, '20 users sent');
    first.kill('SIGTERM');
    await first.exited;
    const interrupted = (await (await deployment.replica()).get<BackfillStatus>('/admin/backfill/status')).job;
    expect(interrupted?.remaining).toBeGreaterThan(0);
    const second = daemons.at(-1) as DaemonProcess;
    expect(await finished(second)).toMatchObject({ status: 'ok', remaining: 0 });
    expect(new Set(await deployment.received())).toEqual(new Set(users));
  });

  it('cancel from any replica stops the job; the remaining users are reported and can be resumed', async () => {
    const deployment = new Deployment(20);
    const [a, b] = [await deployment.replica(), await deployment.replica()];
    const users = ids(200, 'c');
    expect((await a.post('/admin/backfill', { user_ids: users })).status).toBe(202);
    await waitFor(async () => ((await status(b)).job?.sent ?? 0) >= 20, '20 users sent');
    expect((await b.post('/admin/backfill/cancel')).status).toBe(202);
    const cancelled = await finished(a);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.remaining).toBe(200 - cancelled.sent);
    expect((await b.post('/admin/backfill/cancel')).status).toBe(409);
    expect((await b.post('/admin/backfill/resume')).status).toBe(202);
    expect(await finished(a)).toMatchObject({ status: 'ok', remaining: 0 });
    const received = await deployment.received();
    expect(new Set(received)).toEqual(new Set(users));
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, drainQueue, putObject, uniqueName, userIdsOf, valkeyUrl, waitFor } from '../helpers/services.js';

// POST /admin/backfill on a real daemon, real SQS and S3.

interface BackfillStatus {
  running: boolean;
  job: { sent: number } | null;
  last: { status: string; sent: number; total: number; remaining?: number; invalid?: number; duplicates?: number } | null;
}

const daemons = daemonsForTests(afterEach);

async function start(rateLimit: number, candidates: string[] = [], enabled: string[] = []): Promise<{ daemon: DaemonProcess; queueUrl: string }> {
  const fixture = new PollingFixture();
  const queueUrl = await createQueue();
  const config = [
    `candidates:\n  path: ${fixture.writeCandidates(candidates)}`,
    `flags:\n  rules: ${fixture.writeRules(enabled)}`,
    `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"`,
    `enqueue:\n  rateLimit: ${rateLimit}`,
    'daemon:\n  schedule: "0 0 1 1 *"',
  ].join('\n');
  const daemon = await DaemonProcess.start(config, { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl });
  daemons.push(daemon);
  return { daemon, queueUrl };
}

const finished = async (daemon: DaemonProcess): Promise<NonNullable<BackfillStatus['last']>> => {
  await waitFor(async () => !(await daemon.get<BackfillStatus>('/admin/backfill/status')).running, 'the backfill to finish', 30_000);
  return (await daemon.get<BackfillStatus>('/admin/backfill/status')).last as NonNullable<BackfillStatus['last']>;
};

describe('POST /admin/backfill', () => {
  it('sends an explicit list once each (deduplicated, invalid IDs counted), one job at a time', async () => {
    const { daemon, queueUrl } = await start(200);
    const ids = Array.from({ length: 120 }, (_, i) => `u-${i}`);
    const accepted = await daemon.post('/admin/backfill', { user_ids: [...ids, 'u-1', 'not valid!'] });
    expect(accepted.status).toBe(202);
    expect(await accepted.json()).toMatchObject({ accepted: true, users: 120, invalid: 1, duplicates: 1 });
    expect((await daemon.post('/admin/backfill', { user_ids: ['x'] })).status).toBe(409);
    expect(await finished(daemon)).toMatchObject({ status: 'ok', sent: 120, total: 120, remaining: 0 });
    const bodies = (await drainQueue(queueUrl)).map((m) => JSON.parse(m.Body as string) as { user_id: string; reason: string; request_id: string });
    expect(bodies.map((b) => b.user_id).sort()).toEqual([...ids].sort());
    expect(bodies[0]).toMatchObject({ reason: 'batch_backfill' });
    expect(bodies[0]?.request_id).toMatch(/^backfill-/);
  });

  it('validates an S3 list before accepting: a missing object is a 400 and nothing is sent', async () => {
    const { daemon, queueUrl } = await start(1000);
    const bucket = uniqueName('bf');
    await putObject(bucket, 'users.txt', 's1\ns2\ns3\n');
    const missing = await daemon.post('/admin/backfill', { s3_uri: `s3://${bucket}/nope.txt` });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ error: `cannot read s3://${bucket}/nope.txt: object does not exist` });
    expect((await daemon.post('/admin/backfill', { s3_uri: `s3://${bucket}/users.txt` })).status).toBe(202);
    expect(await finished(daemon)).toMatchObject({ status: 'ok', sent: 3 });
    expect(userIdsOf(await drainQueue(queueUrl)).sort()).toEqual(['s1', 's2', 's3']);
  });

  it('backfills the candidate source filtered by the flag', async () => {
    const { daemon, queueUrl } = await start(1000, ['c1', 'c2', 'c3', 'c4'], ['c2', 'c4']);
    expect((await daemon.post('/admin/backfill', { source: 'candidates' })).status).toBe(202);
    expect(await finished(daemon)).toMatchObject({ status: 'ok', sent: 2 });
    expect(userIdsOf(await drainQueue(queueUrl)).sort()).toEqual(['c2', 'c4']);
  });

  it('refuses bodies that are not one of the three forms', async () => {
    const { daemon } = await start(1000);
    for (const body of [{}, { user_ids: [] }, { source: 'neo4j' }, { user_ids: ['a'], s3_uri: 's3://b/k' }]) {
      expect((await daemon.post('/admin/backfill', body)).status).toBe(400);
    }
  });

  it('cancels on request, and stops a running job on shutdown, reporting what it sent', async () => {
    const { daemon, queueUrl } = await start(20);
    const ids = Array.from({ length: 200 }, (_, i) => `k-${i}`);
    expect((await daemon.post('/admin/backfill', { user_ids: ids })).status).toBe(202);
    await waitFor(async () => ((await daemon.get<BackfillStatus>('/admin/backfill/status')).job?.sent ?? 0) >= 20, '20 users sent');
    expect((await daemon.post('/admin/backfill/cancel')).status).toBe(202);
    const cancelled = await finished(daemon);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.sent).toBeLessThan(200);
    expect(cancelled.remaining).toBe(200 - cancelled.sent);
    expect(userIdsOf(await drainQueue(queueUrl))).toHaveLength(cancelled.sent);
    expect((await daemon.post('/admin/backfill/cancel')).status).toBe(409);

    expect((await daemon.post('/admin/backfill', { user_ids: ids })).status).toBe(202);
    await waitFor(async () => ((await daemon.get<BackfillStatus>('/admin/backfill/status')).job?.sent ?? 0) >= 10, '10 users sent');
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(daemon.log).toMatch(/admin backfill cancelled: sent \d+\/200/);
  });
});

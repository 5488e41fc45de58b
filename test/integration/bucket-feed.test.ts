import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { daemonsForTests, type DaemonProcess } from '../helpers/daemon.js';
import {
  BucketFixture,
  FLAG,
  changesIn,
  csv,
  deleteObject,
  investigatedMapping,
  s3Event,
  sentBy,
  users,
  type BucketConfigOptions,
  type BucketDetails,
  type BucketStatus,
} from '../helpers/bucket-feed.js';
import { createQueue, putObject, sqsClient, valkeyClient, waitFor } from '../helpers/services.js';
import { QueueCollector } from '../helpers/topic-feed.js';

// Issue 16, strategy C: the flag system's bucket feed (src/feeds/bucket-feed.ts) through
// `ff-detector watch s3` and `ff-detector run`, against the real S3 server (fauxqs), Valkey and
// SQS. Each test has its own bucket, key prefix and queues; the mapping is the one
// `investigate s3 --format json` prints for the bucket, as a user would copy it.

const daemons = daemonsForTests(afterEach);
const valkey = valkeyClient();

afterAll(async () => {
  await valkey.quit();
});

const CSV_KEY = `exports/${FLAG}.csv`;

async function startDaemon(fixture: BucketFixture, options: BucketConfigOptions, queueUrl: string): Promise<DaemonProcess> {
  const daemon = await fixture.startDaemon(options, queueUrl);
  daemons.push(daemon);
  return daemon;
}

async function feedOf(daemon: DaemonProcess): Promise<BucketStatus['feeds'][number] & { details: BucketDetails }> {
  const status = await daemon.get<BucketStatus>('/status');
  const feed = status.feeds[0];
  if (!feed?.details) throw new Error(`/status lists no bucket feed: ${JSON.stringify(status)}`);
  return feed as BucketStatus['feeds'][number] & { details: BucketDetails };
}

/** The ETag the feed recorded for an object (a watch's summary details, or /status). */
const etagOf = (details: BucketDetails, key: string): string | undefined => details.objects.find((object) => object.key === key)?.etag;

/** The log lines (JSON) of objects held, with the key and ETag they name. */
const heldLogs = (log: string): Array<{ key?: string; etag?: string; msg?: string }> =>
  log
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('flag bucket object held'))
    .map((line) => JSON.parse(line) as { key?: string; etag?: string; msg?: string });

async function queueDepth(queueUrl: string): Promise<number> {
  const client = sqsClient();
  try {
    const { Attributes = {} } = await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
    return Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
  } finally {
    client.destroy();
  }
}

async function notify(queueUrl: string, body: string): Promise<void> {
  const client = sqsClient();
  try {
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
  } finally {
    client.destroy();
  }
}

describe('the four bucket layouts of the investigation tests', () => {
  // The layouts of investigate-families.test.ts: other flags' objects beside the flag's, which
  // the mapping (key pattern, flag name, newest) must leave out.
  const layouts = [
    {
      name: 'per-flag CSV exports (linked by key, streamed): the flag’s export only, not the _v2 one',
      put: async (bucket: string) => {
        await putObject(bucket, CSV_KEY, csv(users('csv', 6)));
        await putObject(bucket, `exports/${FLAG}_v2.csv`, csv(users('csvtwo', 6)));
        await putObject(bucket, 'exports/dark_mode.csv', csv(users('dark', 6)));
      },
      expected: users('csv', 6),
      read: [CSV_KEY],
    },
    {
      name: 'one gzipped map of all flags: the flag’s subtree only',
      put: async (bucket: string) => {
        await putObject(bucket, 'all-flags.json.gz', gzipSync(JSON.stringify({ features: { [FLAG]: { enabled: true, users: users('map', 5) }, dark_mode: { enabled: false, users: users('dark', 40) } } })));
      },
      expected: users('map', 5),
      read: ['all-flags.json.gz'],
    },
    {
      name: 'dated snapshots of every flag: the newest day only',
      put: async (bucket: string) => {
        for (const day of [27, 28, 29]) await putObject(bucket, `snapshots/2026/11/${day}/flags.json`, JSON.stringify([{ name: FLAG, actors: users(`day${day}`, 4) }, { name: 'dark_mode', actors: users('dark', 3) }]));
      },
      expected: users('day29', 4),
      read: ['snapshots/2026/11/29/flags.json'],
    },
    {
      name: 'one JSON object per flag: the flag’s object only',
      put: async (bucket: string) => {
        for (const name of [FLAG, 'search_v2', 'checkout']) await putObject(bucket, `flags/${name}.json`, JSON.stringify({ key: name, actors: users(name === FLAG ? 'json' : name.replace(/_/g, ''), 3) }));
      },
      expected: users('json', 3),
      read: [`flags/${FLAG}.json`],
    },
  ];

  it.each(layouts)('$name', async ({ put, expected, read }) => {
    const fixture = new BucketFixture();
    await put(fixture.bucket);
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    const { code, lines, stderr, summary } = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(code, stderr).toBe(0);
    // The flag's object only is read…
    expect(summary.details.objects.map((object) => object.key)).toEqual(read);
    expect(summary.details).toMatchObject({ objectsRead: 1, held: [], lastListing: { read: 1, matched: 1 } });
    expect(changesIn(lines)).toHaveLength(1);
    // …and only the flag's users are applied and sent (shadow: false: for real, no would-enqueue).
    expect(sentBy(lines)).toEqual(expected);
    expect(lines.filter((line) => line.type === 'would-enqueue')).toEqual([]);
    expect((await queue.collect()).sort()).toEqual(expected);
    expect(changesIn(lines)[0]).toMatchObject({ change: 'snapshot', userCount: expected.length });
    expect(summary).toMatchObject({ state: 'stopped', error: null, changes: 1, sent: expected.length, pendingLeft: 0 });
    expect((await valkey.smembers(fixture.knownKey)).sort()).toEqual(expected);
  });
});

describe('ETag checkpoint', () => {
  const layouts = [
    { name: 'a per-flag CSV (streamed into a stage)', key: CSV_KEY, body: (ids: string[]) => csv(ids) },
    { name: 'a per-flag JSON object (parsed through the mapping)', key: `flags/${FLAG}.json`, body: (ids: string[]) => JSON.stringify({ key: FLAG, actors: ids }) },
  ];

  it.each(layouts)('an object rewritten with one user added sends only that user: $name', async ({ key, body }) => {
    const fixture = new BucketFixture();
    await putObject(fixture.bucket, key, body(users('etag', 5)));
    if (key.startsWith('flags/')) await putObject(fixture.bucket, 'flags/search_v2.json', JSON.stringify({ key: 'search_v2', actors: ['other-1'] }));
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    const first = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(first.code, first.stderr).toBe(0);
    expect((await queue.collect()).sort()).toEqual(users('etag', 5));
    const firstEtag = etagOf(first.summary.details, key);

    await putObject(fixture.bucket, key, body(users('etag', 6)));
    const second = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(second.code, second.stderr).toBe(0);
    expect(etagOf(second.summary.details, key)).not.toBe(firstEtag);
    expect(second.summary.details).toMatchObject({ objectsRead: 1, lastListing: { read: 1 } });
    expect(sentBy(second.lines)).toEqual(['etag-0005']);
    await queue.collect();
    expect(queue.users.sort()).toEqual(users('etag', 6));
    expect(await valkey.scard(fixture.feedKey('users'))).toBe(6);
  });

  it('an unchanged ETag is not read again: a second run (the object even re-put with the same bytes) reads 0 objects and 0 bytes, and sends nothing', async () => {
    const fixture = new BucketFixture();
    const body = csv(users('same', 8));
    await putObject(fixture.bucket, CSV_KEY, body);
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    const first = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(first.code, first.stderr).toBe(0);
    expect(first.summary.details).toMatchObject({ objectsRead: 1, bytesRead: Buffer.byteLength(body), lastListing: { listed: 1, matched: 1, read: 1 } });
    expect((await queue.collect()).sort()).toEqual(users('same', 8));

    await putObject(fixture.bucket, CSV_KEY, body); // same bytes: same ETag, a new LastModified
    const second = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(second.code, second.stderr).toBe(0);
    expect(second.summary.details).toMatchObject({ objectsRead: 0, bytesRead: 0, held: [], lastListing: { listed: 1, matched: 1, read: 0 } });
    expect(second.summary.details.objects).toEqual([{ key: CSV_KEY, etag: etagOf(first.summary.details, CSV_KEY), outcome: 'applied' }]);
    expect(changesIn(second.lines)).toEqual([]);
    expect(sentBy(second.lines)).toEqual([]);
    expect(await queue.collect()).toHaveLength(8); // nothing new
  });
});

describe('objects held: the last good state stays', () => {
  it('a deleted object is held and reported with its key and ETag; its users are not forgotten', async () => {
    const fixture = new BucketFixture();
    await putObject(fixture.bucket, CSV_KEY, csv(users('del', 4)));
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    const first = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(first.code, first.stderr).toBe(0);
    expect((await queue.collect()).sort()).toEqual(users('del', 4));
    const etag = etagOf(first.summary.details, CSV_KEY) ?? '';
    expect(etag).not.toBe('');

    await deleteObject(fixture.bucket, CSV_KEY);
    const second = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(second.code, second.stderr).toBe(0);
    expect(second.summary.details.held).toEqual([{ key: CSV_KEY, etag, detail: expect.stringContaining('disappeared') as unknown, at: expect.any(String) as unknown }]);
    expect(second.summary.details.lastListing).toMatchObject({ listed: 0, matched: 0, read: 0 });
    expect(heldLogs(second.stderr)).toMatchObject([{ key: CSV_KEY, etag }]);
    // Not applied as "no users": nobody removed, pending or forgotten.
    expect(changesIn(second.lines)).toEqual([]);
    expect((await valkey.smembers(fixture.feedKey('users'))).sort()).toEqual(users('del', 4));
    expect((await valkey.smembers(fixture.knownKey)).sort()).toEqual(users('del', 4));
    expect(await valkey.scard(fixture.feedKey('pending'))).toBe(0);
    expect(await queue.collect()).toHaveLength(4);

    // Still held (and reported) at the next run, without a new log line for it.
    const third = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(third.summary.details.held).toMatchObject([{ key: CSV_KEY, etag }]);
    expect(heldLogs(third.stderr)).toEqual([]);

    // Restored with the same bytes: applied again (no longer reported held), nobody sent again.
    await putObject(fixture.bucket, CSV_KEY, csv(users('del', 4)));
    const restored = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.summary.details.held).toEqual([]);
    expect(restored.summary.details.objects).toEqual([{ key: CSV_KEY, etag, outcome: 'applied' }]);
    expect(sentBy(restored.lines)).toEqual([]);
    expect(await queue.collect()).toHaveLength(4);
  });

  const truncatedCases = [
    {
      name: 'a gzipped CSV export (streamed)',
      key: `exports/${FLAG}.csv.gz`,
      body: (ids: string[]) => gzipSync(csv(ids)),
    },
    {
      name: 'a gzipped map of all flags (parsed whole)',
      key: 'all-flags.json.gz',
      body: (ids: string[]) => gzipSync(JSON.stringify({ features: { [FLAG]: { enabled: true, users: ids }, dark_mode: { enabled: true, users: ['dark-1'] } } })),
    },
  ];

  it.each(truncatedCases)('a truncated gzip object is held, nothing applied; then a good version applies: $name', async ({ key, body }) => {
    const fixture = new BucketFixture();
    await putObject(fixture.bucket, key, body(users('gz', 5)));
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    const first = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(first.code, first.stderr).toBe(0);
    expect((await queue.collect()).sort()).toEqual(users('gz', 5));

    // A long list cut in the middle: its first half is readable, and must not be applied.
    const whole = body(users('gz', 3000));
    await putObject(fixture.bucket, key, whole.subarray(0, Math.floor(whole.length / 2)));
    const second = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(second.code, second.stderr).toBe(0);
    const held = second.summary.details.held;
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ key, detail: expect.stringMatching(/corrupt or truncated gzip/) as unknown });
    expect(held[0]?.etag).not.toBe(etagOf(first.summary.details, key));
    expect(heldLogs(second.stderr)).toMatchObject([{ key, etag: held[0]?.etag }]);
    expect(changesIn(second.lines)).toEqual([]);
    expect(sentBy(second.lines)).toEqual([]);
    expect((await valkey.smembers(fixture.feedKey('users'))).sort()).toEqual(users('gz', 5));
    expect(await valkey.keys(`${fixture.detectorPrefix}*stage:*`)).toEqual([]); // the half-loaded stage is dropped
    expect(await queue.collect()).toHaveLength(5);

    await putObject(fixture.bucket, key, body(users('gz', 7)));
    const third = await fixture.watch({ mapping }, { queueUrl: queue.queueUrl });
    expect(third.code, third.stderr).toBe(0);
    expect(third.summary.details.held).toEqual([]);
    expect(third.summary.details.objects).toMatchObject([{ key, outcome: 'applied' }]);
    expect(sentBy(third.lines)).toEqual(['gz-0005', 'gz-0006']);
    await queue.collect();
    expect(queue.users.sort()).toEqual(users('gz', 7));
  });
});

describe('a large object', () => {
  it('a gzipped list of 2,000,000 users is streamed with bounded memory', async ({ annotate, onTestFinished }) => {
    const fixture = new BucketFixture();
    // The shared Valkey keeps other files' keys: the 2,000,000 users go once the test is over.
    onTestFinished(async () => {
      await valkey.unlink(fixture.feedKey('users'));
    });
    const key = `exports/${FLAG}.csv.gz`;
    const total = 2_000_000;
    const ids = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `big-${String(from + i).padStart(7, '0')}`);
    // A first, small version: the live state, as investigate's mapping reads it.
    await putObject(fixture.bucket, key, gzipSync(csv(users('small', 3))));
    const mapping = await investigatedMapping(fixture.bucket);
    expect(mapping.objects).toEqual({ keyPattern: key, newest: false, linkedByKey: true });
    const first = await fixture.watch({ mapping, shadow: true }, { measureRss: true });
    expect(first.code, first.stderr).toBe(0);
    // The live users as a previous large version left them (all but the last 10 of the new list):
    // what this run streams is 2,000,000 users, what it drains is only the difference.
    for (let from = 0; from < total - 10; from += 20_000) await valkey.sadd(fixture.feedKey('users'), ...ids(from, Math.min(from + 20_000, total - 10)));

    const lines = ['user_id,enabled_at'];
    for (let i = 0; i < total; i += 1) lines.push(`big-${String(i).padStart(7, '0')},2026-11-29`);
    const text = `${lines.join('\n')}\n`;
    const gzipped = gzipSync(text);
    await putObject(fixture.bucket, key, gzipped);
    const started = Date.now();
    const big = await fixture.watch({ mapping, shadow: true }, { measureRss: true });
    const seconds = (Date.now() - started) / 1000;
    expect(big.code, big.stderr.slice(-3000)).toBe(0);
    expect(changesIn(big.lines)).toMatchObject([{ change: 'snapshot', userCount: total, usersTruncated: true }]);
    expect(sentBy(big.lines)).toEqual(ids(total - 10, total));
    expect(big.summary.details).toMatchObject({ objectsRead: 1, bytesRead: Buffer.byteLength(text), held: [] });
    expect(await valkey.scard(fixture.feedKey('users'))).toBe(total);
    expect(await valkey.keys(`${fixture.detectorPrefix}*stage:*`)).toEqual([]);
    const peakMb = (big.maxRssKb ?? Number.NaN) / 1024;
    const smallMb = (first.maxRssKb ?? Number.NaN) / 1024;
    await annotate(`[bucket-feed] 2,000,000 users (${(gzipped.length / 1e6).toFixed(1)} MB gzipped, ${(text.length / 1e6).toFixed(1)} MB of CSV) streamed in ${seconds.toFixed(1)} s, peak RSS ${peakMb.toFixed(0)} MB (${smallMb.toFixed(0)} MB for 3 users)`);
    expect(peakMb).toBeLessThan(300);
    // The list held in the process, even as plain strings, costs ~125 MB more (237 MB measured):
    // streamed, the run needs hardly more than one over a 3-user object (~120 vs ~110 MB).
    expect(peakMb - smallMb).toBeLessThan(64);
  }, 120_000);
});

describe('ff-detector run with the bucket feed', () => {
  it('a restart (SIGTERM mid-drain) resumes from the checkpoint: the object is not read again, every user arrives once', async () => {
    const fixture = new BucketFixture();
    const all = users('restart', 150);
    await putObject(fixture.bucket, CSV_KEY, csv(all));
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    // 50 sends a second: the stop lands while the drain is sending. A long interval: one listing each.
    const options = { mapping, intervalSeconds: 300, rateLimit: 50 };
    const first = await startDaemon(fixture, options, queue.queueUrl);
    await waitFor(async () => (await valkey.scard(fixture.knownKey)) >= 30, 'the first 30 users to be sent');
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(await valkey.scard(fixture.feedKey('pending'))).toBeGreaterThan(0); // stopped mid-drain

    const second = await startDaemon(fixture, options, queue.queueUrl);
    await waitFor(async () => (await feedOf(second)).details.lastListing !== null, 'the restarted daemon to list the bucket', 15_000);
    await waitFor(async () => {
      await queue.collect();
      return queue.distinct().size === all.length && (await feedOf(second)).pending === 0;
    }, 'every user in SQS and nothing pending');
    const feed = await feedOf(second);
    expect(feed.details).toMatchObject({ objectsRead: 0, bytesRead: 0, held: [], lastListing: { listed: 1, matched: 1, read: 0 } });
    expect(feed.details.objects).toMatchObject([{ key: CSV_KEY, outcome: 'applied' }]);
    expect(feed.liveState).toMatchObject({ explicitUsers: all.length, complete: true });
    await queue.collect();
    expect([...queue.distinct()].sort()).toEqual(all);
    expect(queue.duplicates()).toBe(0);
  });

  it('a restart after a crash (SIGKILL): the new leader lists at once, reads nothing and enqueues nobody again', async () => {
    const fixture = new BucketFixture();
    await putObject(fixture.bucket, CSV_KEY, csv(users('crash', 12)));
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    const options = { mapping, intervalSeconds: 300 };
    const first = await startDaemon(fixture, options, queue.queueUrl);
    await waitFor(async () => {
      await queue.collect();
      return queue.distinct().size === 12 && (await feedOf(first)).pending === 0;
    }, 'the 12 users sent');
    first.kill('SIGKILL');
    await first.exited;

    // The dead leader's lease runs out (daemon.leaderTtlMs 2 s): the new process starts as a follower.
    const second = await startDaemon(fixture, options, queue.queueUrl);
    await waitFor(async () => (await second.get<BucketStatus>('/status')).role === 'leader', 'the restarted daemon to lead', 15_000);
    await waitFor(async () => (await feedOf(second)).details.lastListing !== null, 'the new leader to list the bucket (intervalSeconds is 300)', 15_000);
    const feed = await feedOf(second);
    expect(feed.details).toMatchObject({ objectsRead: 0, bytesRead: 0, lastListing: { listed: 1, read: 0 } });
    expect(feed.pending).toBe(0);
    expect(await queueDepth(queue.queueUrl)).toBe(0);
    expect(queue.users).toHaveLength(12);
  });

  it('an S3 event notification wakes the listing long before the interval; a malformed one is deleted and counted', async ({ annotate }) => {
    const fixture = new BucketFixture();
    await putObject(fixture.bucket, CSV_KEY, csv(users('note', 3)));
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    const notifications = await createQueue();
    const daemon = await startDaemon(fixture, { mapping, intervalSeconds: 300, notificationQueueUrl: notifications }, queue.queueUrl);
    await waitFor(async () => {
      await queue.collect();
      return queue.distinct().size === 3;
    }, 'the first listing’s users');
    const listedAt = (await feedOf(daemon)).details.lastListing?.at;

    await notify(notifications, 'consumer_graph_ingestion.csv was updated');
    await waitFor(async () => (await feedOf(daemon)).details.notifications.malformed === 1, 'the malformed notification to be counted');
    await waitFor(async () => (await queueDepth(notifications)) === 0, 'the malformed notification to be deleted');
    expect((await feedOf(daemon)).details.lastListing?.at).toBe(listedAt); // it woke nothing
    expect(daemon.log).toContain('bucket notification is not an S3 event: deleted, ignored');

    await putObject(fixture.bucket, CSV_KEY, csv(users('note', 4)));
    const sentAt = Date.now();
    await notify(notifications, s3Event(fixture.bucket, CSV_KEY, 'etag'));
    await waitFor(
      async () => {
        await queue.collect();
        return queue.distinct().has('note-0003');
      },
      'the added user to reach SQS',
      20_000,
    );
    const latency = Date.now() - sentAt;
    await annotate(`[bucket-feed] notification to SQS: ${latency} ms (intervalSeconds 300)`);
    expect(latency).toBeLessThan(10_000);

    // Through SNS (the S3 event as the notification's Message) too.
    await putObject(fixture.bucket, CSV_KEY, csv(users('note', 5)));
    await notify(notifications, JSON.stringify({ Type: 'Notification', MessageId: 'm-1', TopicArn: 'arn:aws:sns:us-east-1:000000000000:flags', Message: s3Event(fixture.bucket, CSV_KEY, 'etag2') }));
    await waitFor(
      async () => {
        await queue.collect();
        return queue.distinct().has('note-0004');
      },
      'the user added behind SNS to reach SQS',
      20_000,
    );
    const feed = await feedOf(daemon);
    expect(feed.details.notifications).toEqual({ received: 3, relevant: 2, malformed: 1 });
    expect(feed.details.objectsRead).toBe(3);
    expect(queue.users.sort()).toEqual(users('note', 5));
    await waitFor(async () => (await queueDepth(notifications)) === 0, 'every notification deleted');
  });

  it('with two replicas, the notifications go to the leader (a follower, which does not list, leaves them in the queue)', async () => {
    const fixture = new BucketFixture();
    await putObject(fixture.bucket, CSV_KEY, csv(users('pair', 1)));
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    const notifications = await createQueue();
    const options = { mapping, intervalSeconds: 300, notificationQueueUrl: notifications };
    const leader = await startDaemon(fixture, options, queue.queueUrl);
    await waitFor(async () => {
      await queue.collect();
      return queue.distinct().size === 1;
    }, 'the first listing’s user');
    const follower = await startDaemon(fixture, options, queue.queueUrl);
    expect((await follower.get<BucketStatus>('/status')).role).toBe('follower');
    // Each change is notified while both replicas run: every one must wake the leader's listing
    // (a notification the follower took would be deleted, and the change left to the interval).
    for (let n = 2; n <= 5; n += 1) {
      await putObject(fixture.bucket, CSV_KEY, csv(users('pair', n)));
      await notify(notifications, s3Event(fixture.bucket, CSV_KEY, `etag-${n}`));
      const user = users('pair', 1, n - 1)[0] ?? '';
      await waitFor(
        async () => {
          await queue.collect();
          return queue.distinct().has(user);
        },
        `${user} to reach SQS through the leader's woken listing`,
        10_000,
      );
    }
    expect((await feedOf(leader)).details.notifications).toMatchObject({ received: 4, relevant: 4 });
    const follows = await feedOf(follower);
    expect(follows.details.notifications).toEqual({ received: 0, relevant: 0, malformed: 0 });
    expect(follows.details.lastListing).toBeNull();
    expect(queue.users.sort()).toEqual(users('pair', 5));
  });

  it('the forget guard: an object removing most users is held (they stay explicit and known); after POST /admin/forget-hold/release it applies', async () => {
    const fixture = new BucketFixture();
    const all = users('guard', 20);
    await putObject(fixture.bucket, CSV_KEY, csv(all));
    const mapping = await investigatedMapping(fixture.bucket);
    const queue = new QueueCollector(await createQueue());
    // Removing more than max(2, 10 % of the explicit users) at once is held; a listing every second.
    const daemon = await startDaemon(fixture, { mapping, intervalSeconds: 1, maxForgetFloor: 2, maxForgetFraction: 0.1 }, queue.queueUrl);
    await waitFor(async () => {
      await queue.collect();
      return queue.distinct().size === 20 && (await feedOf(daemon)).pending === 0;
    }, 'the 20 users sent');

    await putObject(fixture.bucket, CSV_KEY, csv(all.slice(0, 2)));
    await waitFor(async () => (await feedOf(daemon)).details.held.length === 1, 'the new version to be held');
    const held = await feedOf(daemon);
    const [hold] = held.details.held;
    expect(hold).toMatchObject({ key: CSV_KEY, etag: etagOf(held.details, CSV_KEY), detail: expect.stringContaining('forget guard') as unknown });
    expect(heldLogs(daemon.log)).toMatchObject([{ key: CSV_KEY, etag: hold?.etag }]);
    expect(held.liveState).toMatchObject({ explicitUsers: 20 });
    expect(await valkey.scard(fixture.feedKey('users'))).toBe(20);
    expect(await valkey.scard(fixture.knownKey)).toBe(20);
    // Held versions are not read again every listing.
    const readWhenHeld = held.details.objectsRead;
    const listedAt = held.details.lastListing?.at;
    await waitFor(async () => (await feedOf(daemon)).details.lastListing?.at !== listedAt, 'another listing');
    expect((await feedOf(daemon)).details.objectsRead).toBe(readWhenHeld);

    expect((await daemon.post('/admin/forget-hold/release')).status).toBe(202);
    await waitFor(async () => {
      const feed = await feedOf(daemon);
      return feed.details.held.length === 0 && feed.liveState?.explicitUsers === 2;
    }, 'the released version to apply');
    expect((await feedOf(daemon)).details.objects).toMatchObject([{ key: CSV_KEY, outcome: 'applied' }]);
    expect((await valkey.smembers(fixture.feedKey('users'))).sort()).toEqual(all.slice(0, 2));
    expect(await queue.collect()).toHaveLength(20); // nothing sent for a removal
    // The 18 removed users are disabled now: forgotten (the release was for this removal), so a
    // re-enable is detected.
    await waitFor(async () => (await feedOf(daemon)).pending === 0 && (await valkey.scard(fixture.knownKey)) === 2, 'the 18 removed users to be forgotten', 10_000).catch(async (error: unknown) => {
      const held = daemon.log.split('\n').find((line) => line.includes('feed drain pass held')) ?? 'no drain pass held';
      throw new Error(`${String(error)}: ${await valkey.scard(fixture.knownKey)} known, ${(await feedOf(daemon)).pending} pending; ${held.slice(0, 400)}`);
    });
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRolloutTest } from '../../src/flags/bucketing.js';
import { runCli } from '../helpers/cli.js';
import { daemonsForTests, type DaemonProcess } from '../helpers/daemon.js';
import { createQueue, valkeyClient, valkeyUrl, waitFor } from '../helpers/services.js';
import {
  DELTA_MAPPING,
  FLAG,
  FeedFixture,
  QueueCollector,
  SNAPSHOT_MAPPING,
  TopicWriter,
  delta,
  flipperFeature,
  produceAdds,
  userIds,
  type DaemonStatus,
  type FeedConfigOptions,
} from '../helpers/topic-feed.js';

// Issue 15, strategy B: the flag system's Kafka topic feed (src/feeds/topic-feed.ts) through
// `ff-detector watch kafka` and `ff-detector run`, against the real broker, Valkey and SQS. Each
// test has its own topic, consumer group prefix, queue and key prefix. The broker restart is in
// topic-feed-broker-restart.test.ts (a private broker: restarting the shared one would disturb
// every other file running in parallel).

const daemons = daemonsForTests(afterEach);
const valkey = valkeyClient();
let writer: TopicWriter;

beforeAll(async () => {
  writer = await new TopicWriter().connect();
});

afterAll(async () => {
  await writer.close();
  await valkey.quit();
});

async function startDaemon(fixture: FeedFixture, options: FeedConfigOptions, queueUrl: string): Promise<DaemonProcess> {
  const daemon = await fixture.startDaemon(options, queueUrl);
  daemons.push(daemon);
  return daemon;
}

const statusOf = (daemon: DaemonProcess): Promise<DaemonStatus> => daemon.get<DaemonStatus>('/status');

async function feedOf(daemon: DaemonProcess): Promise<DaemonStatus['feeds'][number]> {
  const feed = (await statusOf(daemon)).feeds[0];
  if (!feed) throw new Error('/status lists no feed');
  return feed;
}

/** The feed logs this once its consumer joined the group (kafkajs run() returns after the join). */
const joined = (daemon: DaemonProcess, timeoutMs = 20_000): Promise<void> => waitFor(() => daemon.log.includes('following the flag topic'), 'the feed to join its consumer group', timeoutMs);

/** Every user reached SQS, nothing is pending any more and no run is in progress: no more sends can come. */
async function settledWith(daemon: DaemonProcess, queue: QueueCollector, users: string[], timeoutMs: number): Promise<void> {
  try {
    await waitFor(
      async () => {
        await queue.collect();
        if (!users.every((user) => queue.distinct().has(user))) return false;
        const status = await statusOf(daemon);
        return status.currentRun === null && status.feeds[0]?.pending === 0;
      },
      `all ${users.length} users in SQS and nothing pending`,
      timeoutMs,
    );
  } catch (error) {
    const missing = users.filter((user) => !queue.distinct().has(user));
    const feed = await feedOf(daemon).catch(() => null);
    const state = { pending: feed?.pending, health: feed?.health, messages: feed?.details?.messages, drained: feed?.drained };
    throw new Error(`${String(error)}: ${missing.length} of ${users.length} users not in SQS (e.g. ${missing.slice(0, 5).join(', ')}); feed ${JSON.stringify(state)}`);
  }
  await queue.collect();
}

type WatchLine = { type: string; [key: string]: unknown };
const linesOf = (stdout: string): WatchLine[] =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as WatchLine);

async function watchDryRun(fixture: FeedFixture, options: FeedConfigOptions): Promise<{ code: number | null; lines: WatchLine[]; stderr: string }> {
  const config = fixture.writeConfig(options);
  const result = await runCli(['watch', 'kafka', '--dry-run', '--until-end', '--config', config], { env: { VALKEY_URL: valkeyUrl(), KAFKAJS_NO_PARTITIONER_WARNING: '1' } });
  return { code: result.code, lines: linesOf(result.stdout), stderr: result.stderr };
}

const wouldEnqueue = (lines: WatchLine[]): string[] => lines.filter((line) => line.type === 'would-enqueue').map((line) => String(line.user));

/** The users of `expected` missing from `found`, said as a count and a few examples. */
function expectNoneMissing(found: Iterable<string>, expected: string[]): void {
  const seen = new Set(found);
  const missing = expected.filter((user) => !seen.has(user));
  expect(missing.length, `${missing.length} of ${expected.length} added users never enqueued, e.g. ${missing.slice(0, 5).join(', ')}`).toBe(0);
}

describe('watch kafka --dry-run --until-end', () => {
  it('prints each change of the flag and would-enqueue for exactly the users enabled, counts malformed messages by reason, and commits and writes nothing', async () => {
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic);
    await writer.send(fixture.topic, [
      flipperFeature(FLAG, ['user-1', 'user-2', 'excluded-1']),
      flipperFeature('search_v2', ['other-1']),
      { key: FLAG, value: '{"key":"consumer_graph_ingestion", broken' },
      { key: FLAG, value: 'consumer_graph_ingestion was enabled for user-9 by alice' },
      // Confluent wire format (magic byte 0, schema id 42): Avro/Protobuf behind a schema registry.
      { key: FLAG, value: Buffer.concat([Buffer.from([0, 0, 0, 0, 42, 0x0a, 0x18]), Buffer.from(FLAG)]) },
      // One actor is no user ID (idPattern): dropped and counted, the rest of the snapshot applies
      // (the same users as before, so it changes nobody).
      flipperFeature(FLAG, ['user-1', 'user-2', 'excluded-1', 'not an id!']),
      flipperFeature('checkout_v3', ['other-2'], 30),
      flipperFeature(FLAG, ['user-1', 'user-2', 'user-3', 'excluded-1']),
      { key: FLAG, value: '{"key":"consumer_graph_ingestion","gates":[{"key":"actors","value":["user-4"' },
    ]);
    const rules = fixture.writeRules({ excludedUsers: ['excluded-1'] });
    const { code, lines, stderr } = await watchDryRun(fixture, { mapping: SNAPSHOT_MAPPING, rules });
    expect(code, stderr).toBe(0);

    const changes = lines.filter((line) => line.type === 'change');
    expect(changes).toMatchObject([
      { change: 'snapshot', userCount: 3, users: ['user-1', 'user-2', 'excluded-1'], percentage: 0, usersTruncated: false },
      { change: 'snapshot', userCount: 3, users: ['user-1', 'user-2', 'excluded-1'], percentage: 0, usersTruncated: false },
      { change: 'snapshot', userCount: 4, users: ['user-1', 'user-2', 'user-3', 'excluded-1'], percentage: 0, usersTruncated: false },
    ]);
    // The flag's messages share its key, so one partition, in order.
    expect(new Set(changes.map((change) => change.partition)).size).toBe(1);
    const offsets = changes.map((change) => Number(change.offset));
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));

    // excluded-1 is in every snapshot, but the rules file excludes it; other flags' users are not the flag's.
    expect(wouldEnqueue(lines).sort()).toEqual(['user-1', 'user-2', 'user-3']);
    // The feed knew nothing before its first change: a full run is owed (and only reported by watch).
    const owed = lines.filter((line) => line.type === 'run-owed');
    expect(owed).toHaveLength(1);
    expect(owed[0]?.reason).toBe('the first change the feed applied: what happened before it is unknown');

    const summary = lines.at(-1);
    expect(summary).toMatchObject({ type: 'summary', feed: 'kafka-topic', dryRun: true, state: 'stopped', error: null, changes: 3, sent: 3, pendingLeft: 0 });
    expect(summary?.messages).toEqual({ read: 9, applied: 3, unrelated: 2, invalidUserIds: 1, malformed: { malformed: 2, text: 1, 'schema-registry': 1 } });
    // Each skipped message, and the dropped ID, is logged with where it is.
    expect(stderr.match(/flag topic message skipped \(/g)).toHaveLength(4);
    expect(stderr).toContain('1 user IDs in a flag topic message do not match idPattern (dropped, the rest applied), e.g. \\"not an id!\\"');

    // Dry run: a group of its own, deleted at the end; the configured group never committed; no Valkey key written.
    expect(await writer.groupsStartingWith(fixture.groupPrefix)).toEqual([]);
    expect(Object.values(await writer.committed(fixture.group, fixture.topic))).toEqual(['-1', '-1', '-1']);
    expect(await valkey.keys(`${fixture.prefix}*`)).toEqual([]);
  });

  it('does not read a message about another flag whose name contains the flag’s (consumer_graph_ingestion_v2) as the flag', async () => {
    // The mapping as the brief documents it (flagNamePath: $.key, no filters). The bytes of the
    // other flag's message contain the flag's name, so only the mapping can tell them apart.
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic, 1);
    await writer.send(fixture.topic, [flipperFeature(FLAG, ['user-1']), flipperFeature(`${FLAG}_v2`, ['user-v2'])]);
    const { code, lines, stderr } = await watchDryRun(fixture, { mapping: SNAPSHOT_MAPPING, rules: fixture.writeRules({}) });
    expect(code, stderr).toBe(0);
    expect(wouldEnqueue(lines)).toEqual(['user-1']);
    expect(lines.at(-1)?.messages).toMatchObject({ read: 2, applied: 1, unrelated: 1 });
  });
});

describe('ff-detector run with the topic feed', () => {
  it('an explicit add sends exactly one user_load_request and marks the user; a remove forgets a user the rules do not enable otherwise', async () => {
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic);
    const queue = new QueueCollector(await createQueue());
    // listed-1 is explicit in the rules file, beta-1 a segment member; both known already, as is known-1.
    await valkey.sadd(fixture.knownKey, 'known-1', 'listed-1', 'beta-1');
    const rules = fixture.writeRules({ users: ['listed-1'], segments: { beta: ['beta-1'] } });
    const daemon = await startDaemon(fixture, { mapping: DELTA_MAPPING, rules }, queue.queueUrl);
    await waitFor(async () => (await statusOf(daemon)).role === 'leader', 'leadership');
    await joined(daemon);

    await writer.send(fixture.topic, [delta('new-1', 'add'), delta('known-1', 'add')]);
    await waitFor(async () => {
      const feed = await feedOf(daemon);
      return feed.pending === 0 && feed.drained.users >= 2 && (await valkey.sismember(fixture.knownKey, 'new-1')) === 1;
    }, 'new-1 to be sent and marked');
    expect(await queue.collect()).toEqual(['new-1']);
    expect(queue.bodies[0]).toMatchObject({ event_type: 'user_load_request', user_id: 'new-1', reason: 'feature_flag_enabled', priority: 'low' });
    const feed = await feedOf(daemon);
    expect(feed).toMatchObject({ strategy: 'kafka-topic', shadow: false, leading: true, pending: 0, shadowRecorded: 0, error: null, drained: { sent: 1, unsettledPasses: 0 } });
    expect(feed.health.state).toBe('live');
    expect(feed.liveState).toMatchObject({ explicitUsers: 2, complete: false, enabled: null, percentage: null });
    expect(feed.liveState?.ageSeconds).toBeLessThan(60);
    expect(feed.details).toMatchObject({ topic: fixture.topic, group: fixture.group, messages: { read: 2, applied: 2, unrelated: 0, malformed: {} } });
    expect(Object.values(feed.details?.partitions ?? {})).toMatchObject([{ lag: 0 }]);

    // Removed by the flag system: new-1 (enabled only by the feed) and listed-1 (the live removal
    // overrides the rules file's list) are forgotten, so a re-enable is detected; beta-1 stays
    // enabled through its segment and stays known.
    await writer.send(fixture.topic, [delta('new-1', 'remove'), delta('listed-1', 'remove'), delta('beta-1', 'remove')]);
    await waitFor(async () => {
      const after = await feedOf(daemon);
      return after.pending === 0 && after.drained.users >= 5 && (await valkey.sismember(fixture.knownKey, 'new-1')) === 0;
    }, 'new-1 to be forgotten');
    expect((await valkey.smembers(fixture.knownKey)).sort()).toEqual(['beta-1', 'known-1']);
    expect((await feedOf(daemon)).liveState).toMatchObject({ explicitUsers: 1, complete: false });
    // Nothing more was sent: one message for new-1 in all.
    expect(await queue.collect()).toEqual(['new-1']);
    expect(await (await fetch(`${daemon.admin}/metrics`)).text()).toMatch(/ff_detector_feed_pending_users\{feed="kafka-topic"\} 0/);
  });

  it('a snapshot raising the percentage starts a full polling run after the debounce; one owed while a run is busy is kept, and follows', async () => {
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic);
    const queue = new QueueCollector(await createQueue());
    const candidates = userIds('c', 60);
    const inHalf = candidates.filter(createRolloutTest(FLAG, 50, { algorithm: 'flipper' }));
    expect(inHalf.length).toBeGreaterThan(10);
    expect(inHalf.length).toBeLessThan(50);
    // Polling evaluates with the live state (its percentage) over the rules file's 0%; 5 sends a
    // second make a run at 50% last several seconds.
    const options = { mapping: SNAPSHOT_MAPPING, rules: fixture.writeRules({}), candidates: fixture.writeCandidates(candidates), pollingUsesLiveState: true, debounceSeconds: 2, rateLimit: 5 };
    const daemon = await startDaemon(fixture, options, queue.queueUrl);
    await waitFor(async () => (await statusOf(daemon)).role === 'leader', 'leadership');
    await joined(daemon);

    // The first snapshot: what came before it is unknown, so a full run is owed (nothing enabled at 0%).
    await writer.send(fixture.topic, [flipperFeature(FLAG, [], 0)]);
    await waitFor(async () => (await statusOf(daemon)).lastRuns.length === 1, 'the run owed by the first change', 15_000);
    expect((await statusOf(daemon)).lastRuns[0]).toMatchObject({ strategy: 'polling', status: 'ok', enqueued: 0 });
    expect(daemon.log).toContain('full run started for the feed: the first change the feed applied');

    // Raised to 50%: no user list can say who that enables, so a full run, once the debounce passed.
    const raisedAt = Date.now();
    await writer.send(fixture.topic, [flipperFeature(FLAG, [], 50)]);
    await waitFor(async () => (await statusOf(daemon)).currentRun?.trigger === 'feed: the percentage rose from 0% to 50%', 'the run owed by the raise to start', 15_000);
    const started = (await statusOf(daemon)).currentRun;
    expect(Date.parse(started?.startedAt ?? '')).toBeGreaterThanOrEqual(raisedAt + 2000);
    // It evaluates with 50% (it read the live state before sending its first user)…
    await waitFor(async () => ((await statusOf(daemon)).currentRun?.enqueued ?? 0) > 0, 'the run to send');

    // …and while it sends, the percentage rises again: the run owed finds the daemon busy and is kept.
    await writer.send(fixture.topic, [flipperFeature(FLAG, [], 100)]);
    await waitFor(() => daemon.log.includes('feed: the percentage rose from 50% to 100% skipped: a run is in progress'), 'the owed run to find a run in progress', 15_000);
    await waitFor(async () => (await feedOf(daemon)).runOwed?.reason === 'the percentage rose from 50% to 100%', 'the re-run flag to be kept');
    expect((await statusOf(daemon)).currentRun?.trigger).toBe('feed: the percentage rose from 0% to 50%');

    await waitFor(async () => (await statusOf(daemon)).lastRuns.length === 3, 'the kept run to follow', 30_000);
    expect(daemon.log).toContain('full run started for the feed: the percentage rose from 50% to 100%');
    const [third, second] = (await statusOf(daemon)).lastRuns; // newest first
    expect(second).toMatchObject({ strategy: 'polling', status: 'ok', enqueued: inHalf.length });
    expect(third).toMatchObject({ strategy: 'polling', status: 'ok', enqueued: candidates.length - inHalf.length, alreadyKnown: inHalf.length });
    const feed = await feedOf(daemon);
    expect(feed.runOwed).toBeNull();
    expect(feed.liveState).toMatchObject({ percentage: 100, complete: true, explicitUsers: 0 });
    await queue.collect();
    expect([...queue.distinct()].sort()).toEqual(candidates);
    expect(queue.duplicates()).toBe(0);
  });
});

describe('no added user lost (issue 15, item 5)', () => {
  // A SIGKILL can lose the marks of the one SendMessageBatch in flight (sqs.concurrency 1, at most
  // 10 entries): those users are sent again after the restart. Nothing else may repeat.
  const MAX_DUPLICATES = 10;

  it('(a) SIGKILL of the daemon while 300 adds are produced: after a restart all 300 users reach SQS', async ({ annotate }) => {
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic);
    const queue = new QueueCollector(await createQueue());
    const users = userIds('k', 300);
    // 100 sends a second: the kill lands while a drain pass is sending.
    const options = { mapping: DELTA_MAPPING, rules: fixture.writeRules({}), rateLimit: 100 };
    const first = await startDaemon(fixture, options, queue.queueUrl);
    await joined(first);
    const stream = produceAdds(writer, fixture.topic, users, 10, 100);
    await waitFor(async () => (await valkey.scard(fixture.knownKey)) >= 50, 'the first 50 users to be sent');
    first.kill('SIGKILL');
    await first.exited;
    expect(stream.produced()).toBeLessThan(users.length); // killed mid-stream

    // The dead member keeps its partitions until its session times out (30 s), then the new one resumes from the last commit.
    const second = await startDaemon(fixture, options, queue.queueUrl);
    await stream.done;
    await settledWith(second, queue, users, 90_000);
    expectNoneMissing(queue.users, users);
    expect(await valkey.scard(fixture.knownKey)).toBe(users.length);
    // It resumed after what the first had committed, not from the beginning.
    const read = (await feedOf(second)).details?.messages.read ?? 0;
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(users.length);
    await annotate(`[topic-feed] SIGKILL + restart: ${queue.users.length} SQS messages for ${users.length} users, ${queue.duplicates()} duplicates`);
    expect(queue.duplicates()).toBeLessThanOrEqual(MAX_DUPLICATES);
  }, 150_000);

  it('(b) a second replica joining mid-stream, then the first leaving: every user arrives', async ({ annotate }) => {
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic);
    const queue = new QueueCollector(await createQueue());
    const users = userIds('r', 300);
    const options = { mapping: DELTA_MAPPING, rules: fixture.writeRules({}), rateLimit: 100 };
    const first = await startDaemon(fixture, options, queue.queueUrl);
    await waitFor(async () => (await statusOf(first)).role === 'leader', 'leadership');
    await joined(first);
    // 10 adds every 300 ms: about 9 s of stream.
    const stream = produceAdds(writer, fixture.topic, users, 10, 300);
    await waitFor(async () => (await valkey.scard(fixture.knownKey)) >= 30, 'the first 30 users to be sent');
    // Same group: its join rebalances the partitions between the two while messages keep coming.
    const second = await startDaemon(fixture, options, queue.queueUrl);
    expect(stream.produced()).toBeLessThan(users.length);
    await joined(second, 45_000);
    expect((await statusOf(second)).role).toBe('follower');
    // The first leaves, still mid-stream: the partitions and the leadership it held move to the second.
    expect(stream.produced()).toBeLessThan(users.length);
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    await stream.done;
    await waitFor(async () => (await statusOf(second)).role === 'leader', 'the second replica to lead', 15_000);
    await settledWith(second, queue, users, 60_000);
    expectNoneMissing(queue.users, users);
    expect(await valkey.scard(fixture.knownKey)).toBe(users.length);
    expect((await feedOf(second)).details?.messages.read ?? 0).toBeGreaterThan(0); // it did take the stream over
    await annotate(`[topic-feed] rebalance + handover: ${queue.users.length} SQS messages for ${users.length} users, ${queue.duplicates()} duplicates`);
    expect(queue.duplicates()).toBeLessThanOrEqual(MAX_DUPLICATES);
  }, 120_000);

  it('(d) adds keyed by user, spread over three partitions, are each enqueued', async () => {
    // A delta topic keyed by user: the partitions are read one batch after another, so a batch of
    // one partition holds messages older than those already applied from another.
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic, 3);
    const users = userIds('p', 300);
    for (let i = 0; i < users.length; i += 10) await writer.send(fixture.topic, users.slice(i, i + 10).map((user) => delta(user, 'add', user)));
    const { code, lines, stderr } = await watchDryRun(fixture, { mapping: DELTA_MAPPING, rules: fixture.writeRules({}) });
    expect(code, stderr).toBe(0);
    expect(lines.at(-1)).toMatchObject({ changes: 300, messages: { read: 300, applied: 300 } });
    expectNoneMissing(wouldEnqueue(lines), users);
    expect(wouldEnqueue(lines)).toHaveLength(users.length);
  });

  it('(e) an add whose producer timestamp is older than the previous message’s (two producers, skewed clocks) is enqueued', async () => {
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic, 1);
    const now = Date.now();
    await writer.send(fixture.topic, [
      { ...delta('user-a', 'add'), timestamp: String(now) },
      { ...delta('user-b', 'add'), timestamp: String(now - 2000) },
    ]);
    const { code, lines, stderr } = await watchDryRun(fixture, { mapping: DELTA_MAPPING, rules: fixture.writeRules({}) });
    expect(code, stderr).toBe(0);
    expect(wouldEnqueue(lines).sort()).toEqual(['user-a', 'user-b']);
  });
});

describe('shadow mode', () => {
  it('records adds without sending; the next polling run reports both, onlyPolling, onlyFeed and how much earlier the feed was', async () => {
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic);
    const queue = new QueueCollector(await createQueue());
    const feedUsers = userIds('s', 20);
    // Both found by the feed and in the candidates; one only in the candidates; one only in the topic.
    const rules = fixture.writeRules({ users: [...feedUsers, 'poll-only', 'feed-only'] });
    const candidates = fixture.writeCandidates([...feedUsers, 'poll-only']);
    // The run owed by the first change is debounced for an hour: the run compared is the one requested here.
    const daemon = await startDaemon(fixture, { mapping: DELTA_MAPPING, rules, candidates, shadow: true, debounceSeconds: 3600 }, queue.queueUrl);
    await waitFor(async () => (await statusOf(daemon)).role === 'leader', 'leadership');
    await joined(daemon);

    await writer.send(fixture.topic, [...feedUsers, 'feed-only'].map((user) => delta(user, 'add')));
    await waitFor(async () => {
      const feed = await feedOf(daemon);
      return feed.shadowRecorded === 21 && feed.pending === 0;
    }, 'the feed to record 21 users');
    const recorded = await feedOf(daemon);
    expect(recorded).toMatchObject({ shadow: true, drained: { sent: 21 } });
    expect(recorded.runOwed?.reason).toBe('the first change the feed applied: what happened before it is unknown');
    expect(await queue.collect()).toEqual([]);
    expect(await valkey.scard(fixture.knownKey)).toBe(0);

    expect((await daemon.post('/runs')).status).toBe(202);
    await waitFor(async () => {
      const status = await statusOf(daemon);
      return status.lastRuns.length === 1 && status.currentRun === null;
    }, 'the polling run');
    const [run] = (await statusOf(daemon)).lastRuns;
    expect(run).toMatchObject({ strategy: 'polling', status: 'ok', enqueued: 21, shadow: { feed: 'kafka-topic', both: 20, onlyPolling: 1, onlyFeed: 1 } });
    expect(typeof run?.shadow?.feedEarlierMinutes.p50).toBe('number');
    expect(run?.shadow?.feedEarlierMinutes.p50).toBeGreaterThanOrEqual(0);
    expect((await feedOf(daemon)).shadowRecorded).toBe(0);
    // Polling sends for real in shadow mode; the feed never did.
    await queue.collect();
    expect([...queue.distinct()].sort()).toEqual([...feedUsers, 'poll-only'].sort());
    expect(queue.duplicates()).toBe(0);
  });
});

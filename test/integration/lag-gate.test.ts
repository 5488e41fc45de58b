import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KafkaLagReader } from '../../src/safety/consumer-lag.js';
import { runCli } from '../helpers/cli.js';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { tempDir } from '../helpers/files.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, drainQueue, sqsClient, uniqueName, userIdsOf, valkeyClient, valkeyUrl, waitFor } from '../helpers/services.js';

// The consumer-lag safety gate against a real Kafka broker (KRaft) with real consumer groups:
// read before a polling run's scan, and before every send of runs and backfills (issue 11, item 6).

function brokers(): string[] {
  const list = process.env.FFD_TEST_KAFKA_BROKERS;
  if (!list) throw new Error('FFD_TEST_KAFKA_BROKERS is not set: run integration tests with `npm test`, which starts the services');
  return list.split(',');
}

const TEN_MINUTES_AGO = () => String(Date.now() - 10 * 60_000);

/** 10 messages written just now. */
const fresh = uniqueName('purchases');
/** 10 messages written ten minutes ago (producer timestamps), then 5 just now. */
const replayed = uniqueName('replayed');
const caughtUp = uniqueName('caught-up');
const lagging = uniqueName('lagging');
const replaying = uniqueName('replaying');
const current = uniqueName('current');
let kafka: kafkajs.Kafka;
let admin: kafkajs.Admin;
let producer: kafkajs.Producer;

/** Consumes `count` messages of `topic` as `group`, committing after each, then leaves. */
async function consume(group: string, topic: string, count: number): Promise<void> {
  const consumer = kafka.consumer({ groupId: group });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (seen >= count) return;
      seen++;
      await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
    },
  });
  await waitFor(() => seen >= count, `${group} to consume ${count} messages`);
  await consumer.disconnect();
}

async function createTopic(topic: string): Promise<void> {
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
}

/** The group's committed position: it has consumed everything before `offset`. */
async function commit(group: string, topic: string, offset: number): Promise<void> {
  await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: String(offset) }] });
}

async function produce(topic: string, count: number, timestamp?: string): Promise<void> {
  await producer.send({ topic, messages: Array.from({ length: count }, (_, i) => ({ value: `receipt-${i}`, ...(timestamp ? { timestamp } : {}) })) });
}

beforeAll(async () => {
  kafka = new kafkajs.Kafka({ clientId: 'lag-gate-test', brokers: brokers(), logLevel: kafkajs.logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer();
  await producer.connect();
  await createTopic(fresh);
  await createTopic(replayed);
  await produce(fresh, 10);
  await produce(replayed, 10, TEN_MINUTES_AGO());
  await produce(replayed, 5);
  // Each takes seconds (a group join), so all at once.
  await Promise.all([consume(caughtUp, fresh, 10), consume(lagging, fresh, 4), commit(replaying, replayed, 3), commit(current, replayed, 10)]);
});

afterAll(async () => {
  await producer.disconnect();
  await admin.disconnect();
});

describe('consumer lag', () => {
  it('counts unconsumed messages from committed and latest offsets', async () => {
    const reader = new KafkaLagReader(brokers(), 5000);
    try {
      expect(await reader.lag(caughtUp, fresh, null)).toMatchObject({ lag: 0 });
      expect(await reader.lag(lagging, fresh, null)).toMatchObject({ lag: 6, partitions: [{ partition: 0, lag: 6, behind: false }] });
      expect(await reader.lag(uniqueName('never-consumed'), fresh, null)).toMatchObject({ lag: 10 });
    } finally {
      await reader.close();
    }
  });

  it('measures time: behind when the oldest unconsumed message is older than the limit, not for recent ones', async () => {
    const reader = new KafkaLagReader(brokers(), 5000);
    const minuteAgo = Date.now() - 60_000;
    try {
      expect(await reader.lag(replaying, replayed, minuteAgo)).toMatchObject({ lag: 12, partitions: [{ partition: 0, lag: 12, behind: true }] });
      // Caught up with the old messages: five recent ones unconsumed, as a busy group always has.
      expect(await reader.lag(current, replayed, minuteAgo)).toMatchObject({ lag: 5, partitions: [{ partition: 0, lag: 5, behind: false }] });
      expect(await reader.lag(lagging, fresh, minuteAgo)).toMatchObject({ lag: 6, partitions: [{ behind: false }] });
      expect(await reader.lag(uniqueName('never-consumed'), replayed, minuteAgo)).toMatchObject({ lag: 15, partitions: [{ behind: true }] });
    } finally {
      await reader.close();
    }
  });
});

describe('the gate before a polling run', () => {
  const valkey = valkeyClient();
  afterAll(() => valkey.quit());
  const gate = (groups: Array<{ group: string; topic: string }>, limits: Record<string, unknown> = {}, brokerList = brokers()) => ({
    consumerLag: { enabled: true, brokers: brokerList, groups, timeoutMs: 2000, ...limits },
  });

  it('by default lets a busy group that is caught up pass, messages unconsumed and all', async () => {
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    const safety = gate([{ group: caughtUp, topic: fresh }, { group: lagging, topic: fresh }, { group: current, topic: replayed }]);
    const summary = await fixture.run({ candidates: fixture.writeCandidates(['u1', 'u2']), rules: fixture.writeRules(['u1', 'u2']), queueUrl, safety });
    expect(summary).toMatchObject({ status: 'ok', enqueued: 2 });
  });

  it('defers the run, sending and marking nothing, while a group replays messages older than maxLagSeconds', async () => {
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    const safety = gate([{ group: caughtUp, topic: fresh }, { group: replaying, topic: replayed }]);
    const summary = await fixture.run({ candidates: fixture.writeCandidates(['u1', 'u2']), rules: fixture.writeRules(['u1', 'u2']), queueUrl, safety });
    expect(summary).toMatchObject({ status: 'deferred', enqueued: 0 });
    expect(summary.error).toBe(`deferred by the consumer-lag gate: consumer group ${replaying} is more than 60 s behind on ${replayed} (partition 0; 12 messages unconsumed)`);
    expect(await drainQueue(queueUrl)).toEqual([]);
    expect(await valkey.scard(fixture.knownKey)).toBe(0);
  });

  it('keeps the message count as an option: maxLag defers a group over it', async () => {
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    const groups = [{ group: caughtUp, topic: fresh }, { group: lagging, topic: fresh }];
    const held = await fixture.run({ candidates: fixture.writeCandidates(['u1', 'u2']), rules: fixture.writeRules(['u1', 'u2']), queueUrl, safety: gate(groups, { maxLag: 5 }) });
    expect(held.error).toBe(`deferred by the consumer-lag gate: consumer group ${lagging} lags 6 messages on ${fresh} (limit 5)`);
    const passed = await fixture.run({ candidates: fixture.writeCandidates(['u1', 'u2']), rules: fixture.writeRules(['u1', 'u2']), queueUrl, safety: gate(groups, { maxLag: 6 }) });
    expect(passed).toMatchObject({ status: 'ok', enqueued: 2 });
  });

  it('fails clearly, within the timeout, when the broker cannot be reached', async () => {
    const fixture = new PollingFixture();
    const started = Date.now();
    const failure = await fixture
      .run({ candidates: fixture.writeCandidates(['u1']), rules: fixture.writeRules(['u1']), queueUrl: await createQueue(), safety: gate([{ group: caughtUp, topic: fresh }], {}, ['127.0.0.1:1']) })
      .catch((error: unknown) => error);
    expect(String(failure)).toMatch(/cannot read the lag of consumer group .* on purchases-/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await valkey.scard(fixture.knownKey)).toBe(0);
  });
});

describe('the gate during a send', () => {
  const valkey = valkeyClient();
  afterAll(() => valkey.quit());
  const users = Array.from({ length: 100 }, (_, i) => `u-${i}`);

  /**
   * An empty topic (its group has nothing to consume) and an SQS client that, at the second batch
   * sent, writes three messages the group does not consume, stamped ten minutes ago (a worker
   * that stopped, a producer replaying history).
   */
  async function fallsBehindMidSend(): Promise<{ topic: string; group: string; batches: () => number; sqs: ReturnType<typeof sqsClient> }> {
    const topic = uniqueName('live');
    const group = uniqueName('worker');
    await createTopic(topic);
    const sqs = sqsClient();
    let batches = 0;
    sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand' && ++batches === 2) await produce(topic, 3, TEN_MINUTES_AGO());
        return next(args);
      },
      { step: 'initialize', name: 'workerFallsBehind' },
    );
    return { topic, group, batches: () => batches, sqs };
  }

  /** A polling run of `users` at 50/s whose lag gate watches `group` on `topic`, re-read every 100 ms. */
  const runWatching = (fixture: PollingFixture, queueUrl: string, sqs: ReturnType<typeof sqsClient>, lag: { group: string; topic: string }, more: Partial<Parameters<PollingFixture['run']>[0]> = {}, maxPauseMinutes = 60) =>
    fixture.run({
      candidates: fixture.writeCandidates(users),
      rules: fixture.writeRules(users),
      queueUrl,
      sqs,
      rateLimit: 50,
      safety: { consumerLag: { enabled: true, brokers: brokers(), groups: [lag], recheckMs: 100, timeoutMs: 5000 }, maxPauseMinutes },
      ...more,
    });

  it('pauses sending while the worker lags, nothing sent meanwhile, and resumes once it caught up', async () => {
    const { topic, group, batches, sqs } = await fallsBehindMidSend();
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    const changes: Array<{ paused: boolean; batches: number }> = [];
    try {
      const summary = await runWatching(fixture, queueUrl, sqs, { group, topic }, {
        onRuntime: (runtime) =>
          runtime.events.on('send:paused', ({ gate, paused }) => {
            if (gate !== 'consumer_lag') return;
            changes.push({ paused, batches: batches() });
            if (paused) void commit(group, topic, 3); // the worker has caught up
          }),
      });
      expect(summary).toMatchObject({ status: 'ok', enqueued: 100 });
      expect(changes.map((change) => change.paused)).toEqual([true, false]);
      expect(changes[1]?.batches).toBe(changes[0]?.batches);
      expect((await drainQueue(queueUrl)).length).toBe(100);
    } finally {
      sqs.destroy();
    }
  });

  it('gives up after safety.maxPauseMinutes: users sent are marked, the rest are neither sent nor marked', async () => {
    const { topic, group, sqs } = await fallsBehindMidSend();
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    try {
      const summary = await runWatching(fixture, queueUrl, sqs, { group, topic }, {}, 0.01);
      expect(summary.status).toBe('failed');
      expect(summary.error).toMatch(new RegExp(`^sending gave up after a pause of .* \\(safety.maxPauseMinutes\\): consumer group ${group} is more than 60 s behind on ${topic}`));
      expect(summary.enqueued).toBeGreaterThan(0);
      expect(summary.enqueued).toBeLessThan(100);
      const sent = userIdsOf(await drainQueue(queueUrl));
      expect(sent).toHaveLength(summary.enqueued);
      expect((await valkey.smembers(fixture.knownKey)).sort()).toEqual(sent.sort());
    } finally {
      sqs.destroy();
    }
  });
});

describe('the gate on backfills', () => {
  const daemons = daemonsForTests(afterEach);
  const users = Array.from({ length: 20 }, (_, i) => `b-${i}`);
  const safetyYaml = (maxPauseMinutes: number) =>
    [
      'safety:',
      `  maxPauseMinutes: ${maxPauseMinutes}`,
      '  consumerLag:',
      '    enabled: true',
      `    brokers: ${JSON.stringify(brokers())}`,
      `    groups: [{ group: ${replaying}, topic: ${replayed} }]`,
      '    recheckMs: 100',
    ].join('\n');

  it('a CLI backfill sends nothing while the worker lags and leaves every user in the resume file', async () => {
    const dir = tempDir();
    const userFile = path.join(dir, 'users.txt');
    const config = path.join(dir, 'config.yaml');
    writeFileSync(userFile, `${users.join('\n')}\n`);
    writeFileSync(config, `${safetyYaml(0.01)}\n`);
    const queueUrl = await createQueue();
    const resumeFile = path.join(dir, 'resume.txt');
    const result = await runCli(['backfill', '--config', config, '--user-file', userFile, '--resume-file', resumeFile], { env: { ...awsEnv(), SQS_QUEUE_URL: queueUrl } });
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'failed', sent: 0, remaining: 20, resumeFile });
    expect(String(result.summary.error)).toContain(`sending gave up after a pause of`);
    expect(String(result.summary.error)).toContain(`consumer group ${replaying} is more than 60 s behind on ${replayed}`);
    expect(readFileSync(resumeFile, 'utf8').trim().split('\n').sort()).toEqual([...users].sort());
    expect(await drainQueue(queueUrl)).toEqual([]);
  });

  it('an admin backfill ends failed with every user remaining, and says why', async () => {
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    const config = [
      `candidates:\n  path: ${fixture.writeCandidates([])}`,
      `flags:\n  rules: ${fixture.writeRules([])}`,
      `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"`,
      'daemon:\n  schedule: "0 0 1 1 *"',
      safetyYaml(0.05),
    ].join('\n');
    const daemon = await DaemonProcess.start(config, { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl });
    daemons.push(daemon);
    expect((await daemon.post('/admin/backfill', { user_ids: users })).status).toBe(202);
    type Status = { sendingPaused: Array<{ gate: string; reason: string }> };
    await waitFor(async () => (await daemon.get<Status>('/status')).sendingPaused.length > 0, '/status to show the pause');
    const paused = (await daemon.get<Status>('/status')).sendingPaused;
    expect(paused).toMatchObject([{ gate: 'consumer_lag', reason: `consumer group ${replaying} is more than 60 s behind on ${replayed} (partition 0; 12 messages unconsumed)` }]);
    expect(await (await fetch(`${daemon.admin}/metrics`)).text()).toContain('ff_detector_sending_paused{gate="consumer_lag"} 1');
    await waitFor(async () => !(await daemon.get<{ running: boolean }>('/admin/backfill/status')).running, 'the backfill to end');
    const { job } = await daemon.get<{ job: { status: string; sent: number; remaining: number; error: string } }>('/admin/backfill/status');
    expect(job).toMatchObject({ status: 'failed', sent: 0, remaining: 20 });
    expect(job.error).toContain(`consumer group ${replaying} is more than 60 s behind on ${replayed}`);
    expect((await daemon.get<Status>('/status')).sendingPaused).toEqual([]);
    expect(await drainQueue(queueUrl)).toEqual([]);
  });
});

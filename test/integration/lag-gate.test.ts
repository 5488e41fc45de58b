import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaLagReader } from '../../src/safety/consumer-lag.js';
import { PollingFixture } from '../helpers/polling.js';
import { createQueue, drainQueue, uniqueName, valkeyClient, waitFor } from '../helpers/services.js';

// The consumer-lag safety gate against a real Kafka broker (KRaft) with real consumer groups.

function brokers(): string[] {
  const list = process.env.FFD_TEST_KAFKA_BROKERS;
  if (!list) throw new Error('FFD_TEST_KAFKA_BROKERS is not set: run integration tests with `npm test`, which starts the services');
  return list.split(',');
}

const topic = uniqueName('purchases');
const caughtUp = uniqueName('caught-up');
const lagging = uniqueName('lagging');
let kafka: kafkajs.Kafka;

/** Consumes `count` messages as `group`, committing after each, then leaves. */
async function consume(group: string, count: number): Promise<void> {
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

beforeAll(async () => {
  kafka = new kafkajs.Kafka({ clientId: 'lag-gate-test', brokers: brokers(), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ value: `receipt-${i}` })) });
  await producer.disconnect();
  await consume(caughtUp, 10);
  await consume(lagging, 4);
});

describe('consumer lag', () => {
  it('reads each group’s lag from committed and latest offsets', async () => {
    const reader = new KafkaLagReader(brokers(), 5000);
    try {
      expect(await reader.lag(caughtUp, topic)).toMatchObject({ lag: 0 });
      expect(await reader.lag(lagging, topic)).toMatchObject({ lag: 6, partitions: [{ partition: 0, lag: 6 }] });
      expect(await reader.lag(uniqueName('never-consumed'), topic)).toMatchObject({ lag: 10 });
    } finally {
      await reader.close();
    }
  });
});

describe('the safety gate in a polling run', () => {
  const valkey = valkeyClient();
  afterAll(() => valkey.quit());
  const gate = (maxLag: number, brokerList = brokers()) => ({
    consumerLag: { enabled: true, brokers: brokerList, groups: [{ group: caughtUp, topic }, { group: lagging, topic }], maxLag, timeoutMs: 2000 },
  });

  it('defers the run, sending and marking nothing, and names the lagging group', async () => {
    const fixture = new PollingFixture();
    const candidates = fixture.writeCandidates(['u1', 'u2']);
    const rules = fixture.writeRules(['u1', 'u2']);
    const queueUrl = await createQueue();
    const summary = await fixture.run({ candidates, rules, queueUrl, safety: gate(5) });
    expect(summary).toMatchObject({ status: 'deferred', enqueued: 0 });
    expect(summary.error).toBe(`deferred by the consumer-lag gate: consumer group ${lagging} lags 6 messages on ${topic} (limit 5)`);
    expect(await drainQueue(queueUrl)).toEqual([]);
    expect(await valkey.scard(fixture.knownKey)).toBe(0);
  });

  it('lets the run go ahead when every group is within the limit', async () => {
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    const summary = await fixture.run({ candidates: fixture.writeCandidates(['u1', 'u2']), rules: fixture.writeRules(['u1', 'u2']), queueUrl, safety: gate(6) });
    expect(summary).toMatchObject({ status: 'ok', enqueued: 2 });
  });

  it('fails clearly, within the timeout, when the broker cannot be reached', async () => {
    const fixture = new PollingFixture();
    const started = Date.now();
    const failure = await fixture
      .run({ candidates: fixture.writeCandidates(['u1']), rules: fixture.writeRules(['u1']), queueUrl: await createQueue(), safety: gate(0, ['127.0.0.1:1']) })
      .catch((error: unknown) => error);
    expect(String(failure)).toMatch(/cannot read the lag of consumer group .* on purchases-/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await valkey.scard(fixture.knownKey)).toBe(0);
  });
});

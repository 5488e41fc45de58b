import kafkajs from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { sampleKafka, type SampledRecord } from '../../src/investigate/kafka-sampler.js';
import { parseSince } from '../../src/cli/sample.js';
import { uniqueName } from '../helpers/services.js';

// `sample kafka` against a real broker: read-only, no group left behind, never hangs.

function brokers(): string[] {
  const list = process.env.FFD_TEST_KAFKA_BROKERS;
  if (!list) throw new Error('FFD_TEST_KAFKA_BROKERS is not set: run integration tests with `npm test`, which starts the services');
  return list.split(',');
}

const topic = uniqueName('feature-flipper-flags');
const empty = uniqueName('empty-topic');
let kafka: kafkajs.Kafka;
let producedAt = 0;

beforeAll(async () => {
  kafka = new kafkajs.Kafka({ clientId: 'sample-test', brokers: brokers(), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }, { topic: empty, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  producedAt = Date.now();
  for (let i = 0; i < 10; i++) {
    await producer.send({
      topic,
      messages: [{ partition: i % 2, key: `flag-${i}`, value: JSON.stringify({ flag: 'consumer_graph_ingestion', n: i }), headers: { source: 'flipper' }, timestamp: String(producedAt + i) }],
    });
  }
  await producer.send({ topic, messages: [{ partition: 0, key: null, value: Buffer.from([0x00, 0x00, 0x00, 0x00, 0x2a, 0xff, 0xfe]), timestamp: String(producedAt + 10) }] });
  await producer.disconnect();
});

const sample = (overrides: Partial<Parameters<typeof sampleKafka>[0]> = {}) =>
  sampleKafka({ brokers: brokers(), topic, count: 100, start: { from: 'beginning' }, timeoutMs: 10_000, ...overrides });

describe('sampleKafka', () => {
  it('reads every message from the beginning, with keys, headers and value encodings', async () => {
    const records = await sample();
    expect(records).toHaveLength(11);
    const first = records.find((r) => r.key === 'flag-0') as SampledRecord;
    expect(first).toMatchObject({ topic, partition: 0, offset: '0', keyEncoding: 'utf8', headers: { source: 'flipper' }, valueEncoding: 'utf8' });
    expect(JSON.parse(first.value as string)).toEqual({ flag: 'consumer_graph_ingestion', n: 0 });
    const binary = records.find((r) => r.key === null) as SampledRecord;
    expect(binary).toMatchObject({ valueEncoding: 'base64', value: Buffer.from([0, 0, 0, 0, 0x2a, 0xff, 0xfe]).toString('base64') });
  });

  it('stops at --count, takes the newest with --latest, filters one partition', async () => {
    expect(await sample({ count: 3 })).toHaveLength(3);
    const latest = await sample({ count: 3, start: { from: 'latest' } });
    expect(latest.map((r) => r.timestamp)).toEqual([8, 9, 10].map((i) => new Date(producedAt + i).toISOString()));
    const one = await sample({ partition: 1 });
    expect(one.every((r) => r.partition === 1)).toBe(true);
    expect(one).toHaveLength(5);
  });

  it('starts at a time with --since', async () => {
    const records = await sample({ start: { from: 'since', timestamp: producedAt + 7 } });
    expect(records.map((r) => r.key).sort()).toEqual(['flag-7', 'flag-8', 'flag-9', null].sort());
  });

  it('returns at once on an empty topic, and leaves no consumer group or offset behind', async () => {
    const started = Date.now();
    expect(await sample({ topic: empty })).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5000);
    const admin = kafka.admin();
    await admin.connect();
    const { groups } = await admin.listGroups();
    expect(groups.filter((g) => g.groupId.startsWith('ff-detector-sample-'))).toEqual([]);
    await admin.disconnect();
  });

  it('fails clearly when the broker is unreachable', async () => {
    await expect(sampleKafka({ brokers: ['127.0.0.1:1'], topic, count: 1, start: { from: 'beginning' }, timeoutMs: 2000 })).rejects.toThrow(/cannot sample .* from 127\.0\.0\.1:1/);
  });
});

describe('--since', () => {
  it('takes durations and timestamps', () => {
    expect(parseSince('15m', 1_000_000)).toBe(100_000);
    expect(parseSince('2026-11-28T00:00:00Z')).toBe(Date.parse('2026-11-28T00:00:00Z'));
    expect(parseSince('1700000000000')).toBe(1_700_000_000_000);
    expect(() => parseSince('yesterday')).toThrow('neither a duration');
  });
});

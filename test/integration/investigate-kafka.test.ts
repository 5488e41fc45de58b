import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import kafkajs from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/files.js';
import { uniqueName } from '../helpers/services.js';

// `ff-detector sample kafka` and `investigate kafka` as a user runs them, against a real broker.

const BIN = path.resolve(import.meta.dirname, '../../bin/ff-detector');
const FLAG = 'consumer_graph_ingestion';
const topics = { snapshots: uniqueName('ff-snapshots'), events: uniqueName('ff-events'), rollouts: uniqueName('ff-rollouts'), avro: uniqueName('ff-avro') };

function brokers(): string {
  const list = process.env.FFD_TEST_KAFKA_BROKERS;
  if (!list) throw new Error('FFD_TEST_KAFKA_BROKERS is not set: run integration tests with `npm test`, which starts the services');
  return list;
}

async function cli(args: string[]): Promise<string> {
  const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, KAFKA_BROKERS: brokers() };
  return (await promisify(execFile)(BIN, args, { env, cwd: tempDir(), maxBuffer: 64 * 1024 * 1024 })).stdout;
}

beforeAll(async () => {
  const kafka = new kafkajs.Kafka({ clientId: 'investigate-test', brokers: brokers().split(','), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 2 })), waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: topics.snapshots,
    messages: [
      ...Array.from({ length: 12 }, (_, i) => ({ key: `flag:${FLAG}`, value: JSON.stringify({ name: FLAG, enabled: true, gates: { actors: [`user-${i}01`, `user-${i}02`] } }) })),
      { key: 'flag:other', value: JSON.stringify({ name: 'other', enabled: false, gates: { actors: [] } }) },
      { key: null, value: '{"truncated":' },
      { key: null, value: '' },
    ],
  });
  await producer.send({
    topic: topics.events,
    messages: Array.from({ length: 20 }, (_, i) => ({ key: `user-${500 + i}`, value: JSON.stringify({ flag: FLAG, user_id: `user-${500 + i}`, action: i % 4 ? 'enable' : 'disable', at: Date.now() }) })),
  });
  await producer.send({ topic: topics.rollouts, messages: Array.from({ length: 8 }, (_, i) => ({ key: FLAG, value: JSON.stringify({ feature: FLAG, rollout_percent: 5 * i, enabled: true }) })) });
  await producer.send({ topic: topics.avro, messages: Array.from({ length: 4 }, () => ({ key: FLAG, value: Buffer.from([0, 0, 0, 0, 9, 2, 4, 6]) })) });
  await producer.disconnect();
});

const investigate = async (topic: string) => JSON.parse(await cli(['investigate', 'kafka', '--topic', topic, '--format', 'json', '--timeout', '5000'])) as {
  samples: number;
  encodings: Record<string, number>;
  malformed: { count: number; examples: Array<{ where: string; problem: string }> };
  verdict: { result: string; evidence: string[] };
  mapping: Record<string, string | null> | null;
};

describe('investigate kafka (CLI, real broker)', () => {
  it('judges full snapshots with per-user lists feasible, counting malformed and empty messages', async () => {
    const report = await investigate(topics.snapshots);
    expect(report.samples).toBe(15);
    expect(report.encodings).toMatchObject({ json: 13, malformed: 1, empty: 1 });
    expect(report.malformed.examples[0]?.where).toMatch(/^partition \d+ offset \d+$/);
    expect(report.verdict.result).toBe('feasible');
    expect(report.mapping).toMatchObject({ flagNamePath: '$.name', usersPath: '$.gates.actors[*]', enabledPath: '$.enabled' });
  });

  it('judges per-user delta events feasible through their user field', async () => {
    const report = await investigate(topics.events);
    expect(report.verdict.result).toBe('feasible');
    expect(report.mapping).toMatchObject({ flagNamePath: '$.flag', usersPath: '$.user_id' });
  });

  it('judges percentage-only rollouts unclear and Confluent-framed Avro unclear', async () => {
    expect((await investigate(topics.rollouts)).verdict.result).toBe('unclear');
    const avro = await investigate(topics.avro);
    expect(avro.verdict.result).toBe('unclear');
    expect(avro.verdict.evidence[0]).toContain('schema ids 9');
  });

  it('analyses samples saved by `sample kafka` offline, as Markdown', async () => {
    const file = path.join(tempDir(), 'samples.ndjson');
    await cli(['sample', 'kafka', '--topic', topics.snapshots, '--count', '100', '--out', file, '--timeout', '5000']);
    const markdown = await cli(['investigate', 'kafka', '--input', file]);
    expect(markdown).toContain('## Verdict for strategy B (kafka-topic): **feasible**');
    expect(markdown).toContain('usersPath: "$.gates.actors[*]"');
    expect(markdown).toContain('<redacted: user id>');
  });
});

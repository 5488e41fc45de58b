import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import kafkajs from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MappingConfig } from '../../src/investigate/mapping.js';
import { tempDir } from '../helpers/files.js';
import { awsEnv, putObject, uniqueName } from '../helpers/services.js';

// Issue 14, item 5: `investigate` on topics and buckets shaped as flag systems document their
// formats, on the real broker and S3 server. Each family cites the format it follows.

const BIN = path.resolve(import.meta.dirname, '../../bin/ff-detector');
const FLAG = 'consumer_graph_ingestion';
const users = (n: number, from: number) => Array.from({ length: n }, (_, i) => `user-${from + i}`);

interface Investigation {
  flagDocuments: number;
  verdict: { result: string; evidence: string[] };
  mapping: MappingConfig | null;
  nearMisses: string[];
  flagObjects?: string[];
}

function brokers(): string {
  const list = process.env.FFD_TEST_KAFKA_BROKERS;
  if (!list) throw new Error('FFD_TEST_KAFKA_BROKERS is not set: run integration tests with `npm test`, which starts the services');
  return list;
}

async function cli(args: string[]): Promise<Investigation> {
  const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, KAFKA_BROKERS: brokers(), ...awsEnv() };
  const { stdout } = await promisify(execFile)(BIN, [...args, '--format', 'json'], { env, cwd: tempDir(), maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as Investigation;
}

const topicFamilies = {
  // Flipper's adapter/API representation: a feature with gates [{key, name, value}]
  // (https://www.flippercloud.io/docs/api#get-a-feature); percentages travel as strings.
  flipper: Array.from({ length: 10 }, (_, i) => ({
    key: i % 5 === 4 ? 'search_v2' : FLAG,
    state: 'conditional',
    gates: [
      { key: 'boolean', name: 'boolean', value: null },
      { key: 'actors', name: 'actor', value: users(3, 1000 + i * 10) },
      { key: 'percentage_of_actors', name: 'percentage_of_actors', value: String(5 * i) },
      { key: 'groups', name: 'group', value: ['admins'] },
    ],
  })),
  // Unleash feature toggle (https://docs.getunleash.io/reference/api/legacy/unleash/client/features):
  // strategies [{name, parameters}]; userWithId lists users as one comma-separated string.
  unleash: Array.from({ length: 8 }, (_, i) => ({
    name: FLAG,
    enabled: true,
    strategies: [
      { name: 'userWithId', parameters: { userIds: users(3, 2000 + i * 10).join(',') } },
      { name: 'flexibleRollout', parameters: { rollout: String(10 * i), stickiness: 'userId', groupId: FLAG } },
    ],
  })),
  // LaunchDarkly flag (https://apidocs.launchdarkly.com/tag/Feature-flags): targets [{values,
  // variation}]; another flag naming ours as a prerequisite is not about it.
  launchdarkly: [
    ...Array.from({ length: 6 }, (_, i) => ({ key: FLAG, on: true, version: 3 + i, targets: [{ values: users(4, 3000 + i * 10), variation: 0 }], rules: [], fallthrough: { variation: 1 } })),
    { key: 'checkout_v3', on: true, prerequisites: [{ key: FLAG, variation: 0 }], targets: [{ values: users(50, 9000), variation: 0 }] },
  ],
  // flagd flag definitions (https://flagd.dev/reference/flag-definitions/): a map of flags whose
  // targeting is JSON Logic, users listed with "in".
  flagd: Array.from({ length: 5 }, (_, i) => ({
    flags: {
      [FLAG]: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ in: [{ var: 'targetingKey' }, users(3, 4000 + i * 10)] }, 'on', 'off'] } },
      [`${FLAG}_shadow`]: { state: 'DISABLED', variants: { on: true, off: false }, defaultVariant: 'off' },
    },
  })),
  // CloudEvents 1.0 envelopes (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md).
  cloudevents: Array.from({ length: 8 }, (_, i) => ({
    specversion: '1.0',
    id: `0b9a4e62-6f1c-4d8e-9a4f-${String(i).padStart(12, '0')}`,
    source: '/flag-service',
    type: 'com.example.flag.user_targeted',
    subject: FLAG,
    time: `2026-11-29T10:0${i}:00Z`,
    data: { user_id: `user-${5000 + i}`, operation: i % 3 ? 'added' : 'removed' },
  })),
  // Per-user events, keys in sorted order (as Go and many exporters write maps).
  userEvents: Array.from({ length: 12 }, (_, i) => ({ at: `2026-11-29T11:${String(i).padStart(2, '0')}:00Z`, enabled: i % 4 !== 0, flag_key: FLAG, request_id: `7c1e2f40-0000-4000-8000-${String(i).padStart(12, '0')}`, user: `user-${6000 + i}`, v: '2.1' })),
};
const topicNames = Object.fromEntries(Object.keys(topicFamilies).map((family) => [family, uniqueName(`ff-${family}`)])) as Record<keyof typeof topicFamilies, string>;

const buckets = { perFlagCsv: uniqueName('ff-csv'), gzippedMap: uniqueName('ff-gzmap'), dated: uniqueName('ff-dated'), perFlagJson: uniqueName('ff-json') };

beforeAll(async () => {
  const kafka = new kafkajs.Kafka({ clientId: 'families-test', brokers: brokers().split(','), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: Object.values(topicNames).map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  for (const [family, documents] of Object.entries(topicFamilies)) {
    await producer.send({ topic: topicNames[family as keyof typeof topicFamilies], messages: documents.map((document) => ({ value: JSON.stringify(document) })) });
  }
  await producer.disconnect();
  // A per-flag CSV export: the users of one flag, the flag only in the key.
  await putObject(buckets.perFlagCsv, `exports/${FLAG}.csv`, `user_id,enabled_at\n${users(6, 7000).map((u) => `${u},2026-11-29`).join('\n')}\n`);
  await putObject(buckets.perFlagCsv, `exports/${FLAG}_v2.csv`, `user_id,enabled_at\n${users(6, 7100).map((u) => `${u},2026-11-29`).join('\n')}\n`);
  await putObject(buckets.perFlagCsv, 'exports/dark_mode.csv', `user_id,enabled_at\n${users(6, 7200).map((u) => `${u},2026-11-29`).join('\n')}\n`);
  // One gzipped map of every flag.
  await putObject(buckets.gzippedMap, 'all-flags.json.gz', gzipSync(JSON.stringify({ features: { [FLAG]: { enabled: true, users: users(5, 8000) }, dark_mode: { enabled: false, users: users(40, 8100) } } })));
  // Dated snapshots of every flag, one object a day.
  for (const day of ['27', '28', '29']) await putObject(buckets.dated, `snapshots/2026/11/${day}/flags.json`, JSON.stringify([{ name: FLAG, actors: users(4, 8500 + Number(day) * 10) }, { name: 'dark_mode', actors: [] }]));
  // One JSON object per flag.
  for (const name of [FLAG, 'search_v2', 'checkout']) await putObject(buckets.perFlagJson, `flags/${name}.json`, JSON.stringify({ key: name, actors: name === FLAG ? users(3, 8900) : [] }));
});

describe('topic families (real broker)', () => {
  const kafka = (family: keyof typeof topicFamilies) => cli(['investigate', 'kafka', '--topic', topicNames[family], '--timeout', '5000']);

  it('Flipper: the actors gate by a filter, the percentage as a string, other flags filtered out', async () => {
    const report = await kafka('flipper');
    expect(report.verdict.result).toBe('feasible');
    expect(report.mapping).toMatchObject({
      kind: 'snapshot',
      usersPath: "$.gates[?(@.key=='actors')].value[*]",
      percentagePath: "$.gates[?(@.key=='percentage_of_actors')].value",
      filters: [{ path: '$.key', equals: FLAG }],
    });
  });

  it('Unleash: users of the userWithId strategy as a comma-separated string, the rollout as a string', async () => {
    const report = await kafka('unleash');
    expect(report.mapping).toMatchObject({ usersPath: "$.strategies[?(@.name=='userWithId')].parameters.userIds", usersSeparator: ',', percentagePath: "$.strategies[?(@.name=='flexibleRollout')].parameters.rollout" });
    expect(report.verdict.result).toBe('feasible');
  });

  it('LaunchDarkly: the targets of the flag itself, not of the flag that names it as a prerequisite', async () => {
    const report = await kafka('launchdarkly');
    expect(report.flagDocuments).toBe(6);
    expect(report.mapping).toMatchObject({ kind: 'snapshot', flagNamePath: '$.key', usersPath: '$.targets[*].values[*]' });
    expect(report.verdict.evidence.join(' ')).not.toContain('rule or segment'); // `rules: []` is no evidence
  });

  it('flagd: the flag as a key of the flags map, its users in the JSON Logic "in" list; the _shadow flag a near miss', async () => {
    const report = await kafka('flagd');
    expect(report.mapping?.flagNamePath).toBe(`$.flags.${FLAG}`);
    expect(report.mapping?.usersPath).toBe(`$.flags.${FLAG}.targeting.if[*].in[*][*]`);
    expect(report.mapping?.filters).toEqual([]);
    expect(report.nearMisses).toContain(`${FLAG}_shadow`);
  });

  it('CloudEvents: the subject names the flag; one user per event with its operation', async () => {
    const report = await kafka('cloudevents');
    expect(report.mapping).toMatchObject({ kind: 'delta', flagNamePath: '$.subject', usersPath: '$.data.user_id', operationPath: '$.data.operation', addValues: ['added'], removeValues: ['removed'] });
  });

  it('per-user events with sorted keys: the user field, not the request UUID or the version', async () => {
    const report = await kafka('userEvents');
    expect(report.mapping).toMatchObject({ kind: 'delta', flagNamePath: '$.flag_key', usersPath: '$.user', operationPath: '$.enabled', addValues: ['true'], removeValues: ['false'] });
  });
});

describe('bucket layouts (real S3 server)', () => {
  const s3 = (bucket: string) => cli(['investigate', 's3', '--bucket', bucket]);

  it('per-flag CSV exports: linked to the flag by the key alone, the _v2 export not', async () => {
    const report = await s3(buckets.perFlagCsv);
    expect(report.flagObjects).toEqual([`exports/${FLAG}.csv`]);
    expect(report.mapping?.objects).toEqual({ keyPattern: `exports/${FLAG}.csv`, newest: false, linkedByKey: true });
  });

  it('one gzipped map of all flags: found after decompression, the flag’s subtree only', async () => {
    const report = await s3(buckets.gzippedMap);
    expect(report.flagObjects).toEqual(['all-flags.json.gz']);
    expect(report.mapping).toMatchObject({ usersPath: `$.features.${FLAG}.users[*]`, objects: { keyPattern: 'all-flags.json.gz', newest: false, linkedByKey: false } });
  });

  it('dated snapshots: read the newest only', async () => {
    const report = await s3(buckets.dated);
    expect(report.mapping).toMatchObject({ flagNamePath: '$[*].name', objects: { keyPattern: 'snapshots/{n}/{n}/{n}/flags.json', newest: true } });
  });

  it('one JSON object per flag', async () => {
    const report = await s3(buckets.perFlagJson);
    expect(report.verdict.result).toBe('feasible');
    expect(report.mapping).toMatchObject({ flagNamePath: '$.key', usersPath: '$.actors[*]', objects: { keyPattern: `flags/${FLAG}.json`, newest: false, linkedByKey: false } });
  });
});

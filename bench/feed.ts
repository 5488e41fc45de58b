import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CreateQueueCommand, DeleteQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Valkey } from 'iovalkey';
import kafkajs from 'kafkajs';
import { loadConfig } from '../src/config/load.js';
import { sampleKafka } from '../src/investigate/kafka-sampler.js';
import { createLogger } from '../src/logger.js';
import { Runtime } from '../src/runtime/runtime.js';
import { FeedRunner } from '../strategies/feed-runner.js';
import { feedStrategy, KAFKA_TOPIC } from '../strategies/index.js';
import { benchDir, FLAG } from './fixtures.js';
import { deleteKeys, firstArrivals, percentile, receiveAll } from './feed-helpers.js';

/**
 * Strategy B, the flag topic's feed (strategies/feed-runner.ts over src/feeds/topic-feed.ts),
 * against the real broker, Valkey and the local SQS server:
 * (a) latency: 1,000 explicit adds produced at 100/s, each user's add produced (wall clock just
 *     before producer.send) → its message accepted by SQS (the server's SentTimestamp, same host
 *     and clock), with a leading FeedRunner in this process; also to applied and to onDrained;
 * (b) throughput: a 100,000-message backlog, 1 % adds of the flag and 99 % other flags, read by
 *     the feed until the end of the topic (untilEnd) beside `sample kafka` over the same messages;
 *     the feed on the leader (draining as it goes) and on a follower (applying only).
 * `node dist/bench/feed.js` runs this section alone.
 */
export interface FeedFigures {
  latencyUsers: number;
  /** Add produced (the producer's clock, just before send) → SentTimestamp of its SQS message. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  /** The same, to when onDrained reported the pass that sent it (after the users were marked). */
  drainedP50Ms: number;
  drainedP99Ms: number;
  /** The same, to when the feed applied the add (live state and pending set committed in Valkey). */
  appliedP50Ms: number;
  appliedP99Ms: number;
  drainPasses: number;
  duplicates: number;
  backlogMessages: number;
  backlogFlagMessages: number;
  /** The feed from start until the end of the topic, all flag messages applied (msgs/s). */
  feedPerS: number;
  feedSeconds: number;
  /** The same backlog, start to all 1,000 users accepted by SQS (s). */
  feedSentSeconds: number;
  /** The feed on a follower: applying only, no drain passes meanwhile (msgs/s). */
  followerPerS: number;
  samplePerS: number;
  sampleSeconds: number;
}

const MAPPING = { kind: 'delta', flagNamePath: '$.flag', usersPath: '$.user', operationPath: '$.op', addValues: ['add'], removeValues: ['remove'] };
const LATENCY_USERS = 1000;
const LATENCY_RATE = 100;
const BACKLOG = 100_000;
const FLAG_EVERY = 100;
/** As long as FLAG, so the 99 % weigh the same. */
const otherFlag = (n: number): string => `other_feature_flag_${String(n % 50).padStart(5, '0')}`;

interface Services {
  brokers: string[];
  valkeyUrl: string;
  awsEndpoint: string;
}

export async function benchFeed(services: Services): Promise<FeedFigures> {
  const dir = benchDir();
  const run = `bench-feed-${Date.now()}`;
  const rulesFile = path.join(dir, 'rules.yaml');
  // Explicit users come from the live state; the file only switches the flag on.
  writeFileSync(rulesFile, `flag: ${FLAG}\nenabled: true\n`);
  const kafka = new kafkajs.Kafka({ clientId: 'bench-feed', brokers: services.brokers, logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  const sqs = new SQSClient({ region: 'us-east-1', endpoint: services.awsEndpoint, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  const valkey = new Valkey(services.valkeyUrl);
  const topics: string[] = [];
  const groups: string[] = [];
  const queues: string[] = [];
  const context: Context = { services, run, rulesFile, kafka, admin, sqs, topics, groups, queues };
  await admin.connect();
  try {
    const latency = await measureLatency(context);
    const throughput = await measureThroughput(context);
    return { ...latency, ...throughput };
  } finally {
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.deleteGroups(groups).catch(() => undefined);
    await admin.disconnect();
    for (const queueUrl of queues) await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    sqs.destroy();
    await deleteKeys(valkey, `${run}:*`);
    await valkey.quit();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Context {
  services: Services;
  run: string;
  rulesFile: string;
  kafka: kafkajs.Kafka;
  admin: kafkajs.Admin;
  sqs: SQSClient;
  topics: string[];
  groups: string[];
  queues: string[];
}

async function createTopic(context: Context, name: string, partitions: number): Promise<string> {
  const topic = `${context.run}-${name}`;
  await context.admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  context.topics.push(topic);
  return topic;
}

/** A fresh queue, consumer group and key space, and the runtime of a non-shadow feed of `topic` on them. */
async function setUp(context: Context, name: string, topic: string): Promise<{ queueUrl: string; runtime: Runtime }> {
  const { run, sqs } = context;
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${run}-${name}` }))).QueueUrl as string;
  context.queues.push(queueUrl);
  const groupId = `${run}-${name}`;
  const config = loadConfig({
    env: {},
    overrides: {
      kafka: { brokers: context.services.brokers },
      flags: { rules: context.rulesFile },
      state: { valkeyUrl: context.services.valkeyUrl, knownSetKey: `${run}:${name}:known`, loadedKeyPrefix: `${run}:${name}:loaded:`, detectorKeyPrefix: `${run}:${name}:detector:` },
      sqs: { queueUrl },
      enqueue: { rateLimit: 100_000 },
      strategies: { kafkaTopic: { enabled: true, topic, groupId, shadow: false, mapping: MAPPING } },
    },
  });
  context.groups.push(`${config.kafka.groupPrefix}${groupId}`);
  return { queueUrl, runtime: new Runtime(config, createLogger('warn'), { sqs }) };
}

function runnerOf(runtime: Runtime, store: Awaited<ReturnType<Runtime['openFeedStore']>>, options: Partial<ConstructorParameters<typeof FeedRunner>[3]>): FeedRunner {
  // debounceMs: the first change owes a full run ("what happened before it is unknown"): reported, never started here.
  return new FeedRunner(runtime, feedStrategy(KAFKA_TOPIC, 'bench'), store, { shadow: false, dryRun: false, debounceMs: 3_600_000, ...options });
}

async function measureLatency(context: Context): Promise<Pick<FeedFigures, 'latencyUsers' | 'latencyP50Ms' | 'latencyP99Ms' | 'latencyMaxMs' | 'drainedP50Ms' | 'drainedP99Ms' | 'appliedP50Ms' | 'appliedP99Ms' | 'drainPasses' | 'duplicates'>> {
  // Keyed by the flag, as a flag system keeps one flag's changes in order: one partition holds them.
  const topic = await createTopic(context, 'latency', 3);
  const { queueUrl, runtime } = await setUp(context, 'latency', topic);
  const producer = context.kafka.producer();
  await producer.connect();
  const drainedAt = new Map<string, number>();
  const appliedAt = new Map<string, number>();
  let passes = 0;
  let wake: () => void = () => undefined;
  const runner = runnerOf(runtime, await runtime.openFeedStore(false), {
    onChange: (change) => {
      const now = Date.now();
      if (change.type === 'add') for (const user of change.users) if (!appliedAt.has(user)) appliedAt.set(user, now);
    },
    onDrained: (pass) => {
      const now = Date.now();
      passes += 1;
      for (const user of pass.sent) if (!drainedAt.has(user)) drainedAt.set(user, now);
      wake();
    },
  });
  const stopper = new AbortController();
  const until = async (done: () => boolean, timeoutMs: number, what: string): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`feed bench: ${what} not within ${timeoutMs / 1000} s (${drainedAt.size} users sent)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  const add = (user: string, at: number) => ({ key: FLAG, value: JSON.stringify({ flag: FLAG, user, op: 'add' }), timestamp: String(at) });
  const users = Array.from({ length: LATENCY_USERS }, (_, i) => `${context.run}-lat-${i}`);
  const producedAt = new Map<string, number>();
  try {
    runner.start(stopper.signal);
    runner.setLeading(true);
    // Warm-up: the group joined, the first change's owed run noted, the drain's clients opened.
    const warm = `${context.run}-warmup`;
    await producer.send({ topic, messages: [add(warm, Date.now())] });
    await until(() => drainedAt.has(warm), 60_000, 'the warm-up user');
    const started = Date.now();
    for (const [i, user] of users.entries()) {
      const due = started + (i * 1000) / LATENCY_RATE;
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      const at = Date.now();
      producedAt.set(user, at);
      await producer.send({ topic, messages: [add(user, at)] });
    }
    const produceSeconds = (Date.now() - started) / 1000;
    if (produceSeconds > (LATENCY_USERS / LATENCY_RATE) * 1.1) process.stderr.write(`feed bench: producing ${LATENCY_USERS} adds took ${produceSeconds.toFixed(1)} s, not ${LATENCY_USERS / LATENCY_RATE} s\n`);
    await until(() => users.every((user) => drainedAt.has(user)), 30_000, `all ${LATENCY_USERS} users sent`);
  } finally {
    stopper.abort();
    await runner.stop();
    await producer.disconnect();
    await runtime.close();
  }
  const { sentAt, duplicates } = firstArrivals(await receiveAll(context.sqs, queueUrl, LATENCY_USERS + 1), users, 'feed bench');
  const server = users.map((user) => (sentAt.get(user) as number) - (producedAt.get(user) as number));
  const drained = users.map((user) => (drainedAt.get(user) as number) - (producedAt.get(user) as number));
  const applied = users.map((user) => (appliedAt.get(user) as number) - (producedAt.get(user) as number));
  return {
    latencyUsers: users.length,
    latencyP50Ms: percentile(server, 50),
    latencyP99Ms: percentile(server, 99),
    latencyMaxMs: Math.max(...server),
    drainedP50Ms: percentile(drained, 50),
    drainedP99Ms: percentile(drained, 99),
    appliedP50Ms: percentile(applied, 50),
    appliedP99Ms: percentile(applied, 99),
    drainPasses: passes,
    duplicates,
  };
}

async function measureThroughput(context: Context): Promise<Pick<FeedFigures, 'backlogMessages' | 'backlogFlagMessages' | 'feedPerS' | 'feedSeconds' | 'feedSentSeconds' | 'followerPerS' | 'samplePerS' | 'sampleSeconds'>> {
  const topic = await createTopic(context, 'backlog', 3);
  const flagUsers = new Set<string>();
  const producer = context.kafka.producer();
  await producer.connect();
  try {
    for (let start = 0; start < BACKLOG; start += 1000) {
      await producer.send({
        topic,
        messages: Array.from({ length: 1000 }, (_, i) => {
          const n = start + i;
          const about = n % FLAG_EVERY === 0 ? FLAG : otherFlag(n);
          const user = `${context.run}-tp-${String(n).padStart(6, '0')}`;
          if (about === FLAG) flagUsers.add(user);
          return { key: about, value: JSON.stringify({ flag: about, user, op: 'add', at: new Date().toISOString() }) };
        }),
      });
    }
  } finally {
    await producer.disconnect();
  }

  // sample kafka over the same messages.
  const started = performance.now();
  const records = await sampleKafka({ brokers: context.services.brokers, topic, count: BACKLOG, start: { from: 'beginning' }, timeoutMs: 60_000 });
  const sampleSeconds = (performance.now() - started) / 1000;
  if (records.length !== BACKLOG) throw new Error(`feed bench: sample kafka read ${records.length} of ${BACKLOG}`);

  // The feed on a follower (applies only; its users drained once at the end), then on the leader
  // (draining, so sending, as it goes): each with a consumer group of its own, from the beginning.
  const follower = await feedBacklog(context, topic, flagUsers, false);
  const leader = await feedBacklog(context, topic, flagUsers, true);
  return {
    backlogMessages: BACKLOG,
    backlogFlagMessages: flagUsers.size,
    feedPerS: BACKLOG / leader.feedSeconds,
    feedSeconds: leader.feedSeconds,
    feedSentSeconds: leader.sentSeconds,
    followerPerS: BACKLOG / follower.feedSeconds,
    samplePerS: BACKLOG / sampleSeconds,
    sampleSeconds,
  };
}

/** A FeedRunner with untilEnd over the backlog: seconds to the end of the topic, and until every flag user was accepted by SQS. */
async function feedBacklog(context: Context, topic: string, flagUsers: ReadonlySet<string>, leading: boolean): Promise<{ feedSeconds: number; sentSeconds: number }> {
  const { runtime } = await setUp(context, `backlog-${leading ? 'leader' : 'follower'}`, topic);
  let applied = 0;
  let sent = 0;
  let allSentAt = 0;
  const runner = runnerOf(runtime, await runtime.openFeedStore(false), {
    untilEnd: true,
    onChange: (change) => {
      if (change.type === 'add') applied += change.users.filter((user) => flagUsers.has(user)).length;
    },
    onDrained: (pass) => {
      sent += pass.sent.filter((user) => flagUsers.has(user)).length;
      if (sent >= flagUsers.size && allSentAt === 0) allSentAt = performance.now();
    },
  });
  const stopper = new AbortController();
  try {
    const started = performance.now();
    runner.start(stopper.signal);
    runner.setLeading(leading);
    await runner.ended;
    const feedSeconds = (performance.now() - started) / 1000;
    const status = await runner.status();
    if (status.health.state !== 'stopped') throw new Error(`feed bench: the feed ended ${status.health.state}: ${status.health.error ?? ''}`);
    const read = (status.details as { messages: { read: number } } | null)?.messages.read ?? 0;
    if (applied !== flagUsers.size || read !== BACKLOG) throw new Error(`feed bench: the feed applied ${applied} of ${flagUsers.size} flag users, read ${read} of ${BACKLOG} messages`);
    if (!(await runner.drainAll())) throw new Error('feed bench: a drain pass left users unsettled');
    if (sent !== flagUsers.size) throw new Error(`feed bench: ${sent} of ${flagUsers.size} flag users sent`);
    return { feedSeconds, sentSeconds: (allSentAt - started) / 1000 };
  } finally {
    stopper.abort();
    await runner.stop();
    await runtime.close();
  }
}

/** The rows bench/run.ts prints, and its JSON figures. */
export function feedRows(figures: FeedFigures): { rows: Array<[string, number | string, string?]>; json: Record<string, number> } {
  const round = (value: number, digits = 0): number => Number(value.toFixed(digits));
  const json = {
    feed_latency_p50_ms: round(figures.latencyP50Ms),
    feed_latency_p99_ms: round(figures.latencyP99Ms),
    feed_latency_max_ms: round(figures.latencyMaxMs),
    ratio_feed_latency_p99_vs_target: round(figures.latencyP99Ms / 1000, 3),
    feed_drained_p50_ms: round(figures.drainedP50Ms),
    feed_drained_p99_ms: round(figures.drainedP99Ms),
    feed_applied_p50_ms: round(figures.appliedP50Ms),
    feed_applied_p99_ms: round(figures.appliedP99Ms),
    feed_drain_passes: figures.drainPasses,
    feed_duplicates: figures.duplicates,
    feed_backlog_per_s: round(figures.feedPerS),
    feed_backlog_seconds: round(figures.feedSeconds, 2),
    feed_backlog_sent_seconds: round(figures.feedSentSeconds, 2),
    feed_backlog_follower_per_s: round(figures.followerPerS),
    sample_kafka_backlog_per_s: round(figures.samplePerS),
    ratio_feed_vs_sample: round(figures.feedPerS / figures.samplePerS, 3),
  };
  const users = figures.latencyUsers.toLocaleString('en-US');
  const backlog = figures.backlogMessages.toLocaleString('en-US');
  const rows: Array<[string, number | string, string?]> = [
    [`feed latency, ${users} adds at ${LATENCY_RATE}/s, produced → SentTimestamp p50 (ms)`, json.feed_latency_p50_ms],
    [`feed latency, produced → SentTimestamp p99 (ms)`, json.feed_latency_p99_ms, `< 1000 (p99/1000 ms = ${json.ratio_feed_latency_p99_vs_target})`],
    [`feed latency, produced → applied (live state + pending) p50 / p99 (ms)`, `${json.feed_applied_p50_ms} / ${json.feed_applied_p99_ms}`],
    [`feed latency, produced → onDrained p50 / p99 (ms)`, `${json.feed_drained_p50_ms} / ${json.feed_drained_p99_ms}`],
    [`feed drain passes for ${users} adds / duplicates in SQS`, `${json.feed_drain_passes} / ${json.feed_duplicates}`],
    [`feed (leader) over a ${backlog}-message backlog, 1 % the flag's (msgs/s)`, json.feed_backlog_per_s],
    [`sample kafka, the same ${backlog} messages (msgs/s)`, json.sample_kafka_backlog_per_s],
    ['feed / sample kafka', json.ratio_feed_vs_sample],
    ['feed over the same backlog on a follower (applies, no drains) (msgs/s)', json.feed_backlog_follower_per_s],
    [`feed backlog: to the end / to all ${figures.backlogFlagMessages.toLocaleString('en-US')} users sent (s)`, `${json.feed_backlog_seconds} / ${json.feed_backlog_sent_seconds}`],
  ];
  return { rows, json };
}

// `node dist/bench/feed.js` (services up: scripts/services.sh env): this section alone.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { FFD_TEST_KAFKA_BROKERS: brokers, FFD_TEST_VALKEY_URL: valkeyUrl, FFD_TEST_AWS_ENDPOINT: awsEndpoint } = process.env;
  if (!brokers || !valkeyUrl || !awsEndpoint) throw new Error('eval "$(scripts/services.sh env)" first');
  const { rows, json } = feedRows(await benchFeed({ brokers: brokers.split(','), valkeyUrl, awsEndpoint }));
  for (const [name, value, target = ''] of rows) process.stderr.write(`${name.padEnd(70)} ${String(value).padEnd(12)} ${target}\n`);
  process.stdout.write(`${JSON.stringify(json)}\n`);
}

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import YAML from 'yaml';
import type { RunSummary } from '../../src/pipeline/summary.js';
import type { FeedStatus } from '../../strategies/feed-runner.js';
import type { TopicFeedDetails } from '../../src/feeds/topic-feed.js';
import { DaemonProcess } from './daemon.js';
import { tempDir } from './files.js';
import { awsEnv, drainQueue, uniqueName, userIdsOf, valkeyUrl } from './services.js';

// Strategy B (the flag topic feed, issue 15) against the real broker, Valkey and SQS: a test's
// private topic, consumer group, queue and keys, and the flag system's messages.

export const FLAG = 'consumer_graph_ingestion';

export function kafkaBrokers(): string {
  const list = process.env.FFD_TEST_KAFKA_BROKERS;
  if (!list) throw new Error('FFD_TEST_KAFKA_BROKERS is not set: run integration tests with `npm test`, which starts the services');
  return list;
}

/** Flipper's adapter format (https://www.flippercloud.io/docs/api#get-a-feature), as the brief's mapping reads it. */
export const SNAPSHOT_MAPPING = {
  kind: 'snapshot',
  flagNamePath: '$.key',
  usersPath: "$.gates[?(@.key=='actors')].value[*]",
  percentagePath: "$.gates[?(@.key=='percentage_of_actors')].value",
};

/** One user per message, with the operation. */
export const DELTA_MAPPING = { kind: 'delta', flagNamePath: '$.flag', usersPath: '$.user', operationPath: '$.op', addValues: ['add'], removeValues: ['remove'] };

/** A Flipper feature: its actors and percentage of actors (a string, as Flipper sends it). */
export function flipperFeature(key: string, actors: string[], percentage = 0): kafkajs.Message {
  return {
    key,
    value: JSON.stringify({
      key,
      state: 'conditional',
      gates: [
        { key: 'boolean', name: 'boolean', value: null },
        { key: 'actors', name: 'actor', value: actors },
        { key: 'percentage_of_actors', name: 'percentage_of_actors', value: String(percentage) },
      ],
    }),
  };
}

/** A delta message keyed by the flag (one partition for the flag, in order), unless `key` says otherwise. */
export function delta(user: string, op: 'add' | 'remove', key: string = FLAG): kafkajs.Message {
  return { key, value: JSON.stringify({ flag: FLAG, op, user }) };
}

export interface DaemonStatus {
  role: string;
  currentRun: { trigger: string; startedAt: string; enqueued: number } | null;
  lastRuns: Array<RunSummary & { shadow?: { feed: string; both: number; onlyPolling: number; onlyFeed: number; feedEarlierMinutes: { p50: number | null; max: number | null } } }>;
  feeds: Array<FeedStatus & { details: TopicFeedDetails | null }>;
}

export interface FeedConfigOptions {
  mapping: object;
  rules: string;
  candidates?: string;
  shadow?: boolean;
  debounceSeconds?: number;
  pollingUsesLiveState?: boolean;
  rateLimit?: number;
  leaderTtlMs?: number;
  brokers?: string;
}

/** One test's slice of the shared servers: its topic, consumer group names, Valkey keys and files. */
export class FeedFixture {
  readonly prefix = uniqueName('feed');
  readonly dir = tempDir('ffd-feed-');
  readonly topic = uniqueName('flags');
  /** Unique, so every group this test's processes create (the feed's, watch's) can be found by it. */
  readonly groupPrefix = `${uniqueName('ffd')}-`;
  readonly groupId = 'feed';
  readonly knownKey = `${this.prefix}:known`;
  readonly loadedPrefix = `${this.prefix}:loaded:`;
  readonly detectorPrefix = `${this.prefix}:detector:`;

  /** The consumer group every replica shares (kafka.groupPrefix + strategies.kafkaTopic.groupId). */
  get group(): string {
    return `${this.groupPrefix}${this.groupId}`;
  }

  /** The feed's Valkey keys for the flag (live-state.ts: `<prefix>{feed:<flag>}:<part>`). */
  feedKey(part: 'state' | 'pending' | 'rerun' | 'shadow'): string {
    return `${this.detectorPrefix}{feed:${FLAG}}:${part}`;
  }

  writeFile(name: string, content: string): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, content);
    return file;
  }

  writeRules(rules: Record<string, unknown>): string {
    return this.writeFile(`rules-${uniqueName()}.yaml`, YAML.stringify({ flag: FLAG, enabled: true, users: [], percentage: 0, ...rules }));
  }

  writeCandidates(ids: string[]): string {
    return this.writeFile(`candidates-${uniqueName()}.txt`, `${ids.join('\n')}\n`);
  }

  config(options: FeedConfigOptions): string {
    return YAML.stringify({
      flag: FLAG,
      candidates: { path: options.candidates ?? this.writeCandidates([]) },
      flags: { rules: options.rules },
      state: { knownSetKey: this.knownKey, loadedKeyPrefix: this.loadedPrefix, detectorKeyPrefix: this.detectorPrefix },
      enqueue: { rateLimit: options.rateLimit ?? 1000, budget: 0 },
      daemon: { schedule: '0 0 1 1 *', leaderTtlMs: options.leaderTtlMs ?? 2000 },
      sqs: { maxBacklog: 0, requestTimeoutMs: 5000 },
      kafka: { brokers: (options.brokers ?? kafkaBrokers()).split(','), groupPrefix: this.groupPrefix },
      strategies: {
        kafkaTopic: {
          enabled: true,
          topic: this.topic,
          groupId: this.groupId,
          shadow: options.shadow ?? false,
          debounceSeconds: options.debounceSeconds ?? 1,
          pollingUsesLiveState: options.pollingUsesLiveState ?? false,
          mapping: options.mapping,
        },
      },
    });
  }

  writeConfig(options: FeedConfigOptions): string {
    return this.writeFile(`config-${uniqueName()}.yaml`, this.config(options));
  }

  startDaemon(options: FeedConfigOptions, queueUrl: string): Promise<DaemonProcess> {
    return DaemonProcess.start(this.config(options), { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl, KAFKAJS_NO_PARTITIONER_WARNING: '1' });
  }
}

/** The test's side of the broker: creates topics, produces, reads groups. */
export class TopicWriter {
  readonly kafka: kafkajs.Kafka;
  readonly admin: kafkajs.Admin;
  readonly producer: kafkajs.Producer;

  constructor(brokers = kafkaBrokers()) {
    this.kafka = new kafkajs.Kafka({ clientId: 'topic-feed-test', brokers: brokers.split(','), logLevel: kafkajs.logLevel.NOTHING });
    this.admin = this.kafka.admin();
    this.producer = this.kafka.producer({ allowAutoTopicCreation: false });
  }

  async connect(): Promise<this> {
    await this.admin.connect();
    await this.producer.connect();
    return this;
  }

  async createTopic(topic: string, numPartitions = 3): Promise<void> {
    await this.admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
  }

  async send(topic: string, messages: kafkajs.Message[]): Promise<void> {
    await this.producer.send({ topic, messages });
  }

  /** Committed offsets of `group` on `topic`, by partition ('-1': none). */
  async committed(group: string, topic: string): Promise<Record<number, string>> {
    const [offsets] = await this.admin.fetchOffsets({ groupId: group, topics: [topic] });
    return Object.fromEntries((offsets?.partitions ?? []).map(({ partition, offset }) => [partition, offset]));
  }

  async groupsStartingWith(prefix: string): Promise<string[]> {
    const { groups } = await this.admin.listGroups();
    return groups.map((group) => group.groupId).filter((id) => id.startsWith(prefix));
  }

  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
  }
}

/** Every message a queue received, kept across reads (each read deletes what it received). */
export class QueueCollector {
  readonly users: string[] = [];
  readonly bodies: Array<Record<string, unknown>> = [];

  constructor(readonly queueUrl: string) {}

  async collect(): Promise<string[]> {
    const messages = await drainQueue(this.queueUrl);
    this.users.push(...userIdsOf(messages));
    this.bodies.push(...messages.map((message) => JSON.parse(message.Body as string) as Record<string, unknown>));
    return this.users;
  }

  distinct(): Set<string> {
    return new Set(this.users);
  }

  /** Messages beyond the first for a user: SQS messages − distinct users. */
  duplicates(): number {
    return this.users.length - this.distinct().size;
  }
}

/** The n users `${prefix}-000`… */
export function userIds(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
}

/**
 * Produces `users` as adds, `perSend` per produce request, yielding to the event loop between
 * requests so the test can act mid-stream; `produced()` says how many are in the topic so far.
 */
export function produceAdds(writer: TopicWriter, topic: string, users: string[], perSend = 10, pauseMs = 100): { produced: () => number; done: Promise<void> } {
  let produced = 0;
  const done = (async () => {
    for (let i = 0; i < users.length; i += perSend) {
      const chunk = users.slice(i, i + perSend);
      await writer.send(topic, chunk.map((user) => delta(user, 'add')));
      produced += chunk.length;
      // Pacing of the stream (a flag system writes over time), not a wait for a condition.
      if (i + perSend < users.length) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  })();
  return { produced: () => produced, done };
}

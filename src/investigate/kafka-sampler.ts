import { randomUUID } from 'node:crypto';
import type kafkajs from 'kafkajs';
import { FfError, errorMessage } from '../errors.js';
import { DEFAULT_KAFKA_SETTINGS, kafkaClient, type KafkaSettings } from '../kafka/client.js';

/** One sampled message, as `sample kafka` writes it (NDJSON). */
export interface SampledRecord {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: string | null;
  keyEncoding: 'utf8' | 'base64' | null;
  headers: Record<string, string>;
  value: string | null;
  /** utf8 when the bytes are valid UTF-8, else base64 of the raw bytes. */
  valueEncoding: 'utf8' | 'base64' | null;
}

export type SampleStart = { from: 'beginning' } | { from: 'latest' } | { from: 'since'; timestamp: number };

export interface SampleOptions {
  brokers: string[];
  topic: string;
  count: number;
  start: SampleStart;
  partition?: number | undefined;
  /** Give up waiting for more messages after this long (an idle topic never hangs the sampler). */
  timeoutMs: number;
  /** TLS, SASL and the group prefix (config `kafka`); `brokers` above wins over its brokers. */
  kafka?: KafkaSettings | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text when the bytes are UTF-8, else base64, saying which. */
export function encodeBytes(bytes: Buffer | null): { text: string | null; encoding: 'utf8' | 'base64' | null } {
  if (bytes === null) return { text: null, encoding: null };
  try {
    return { text: utf8.decode(bytes), encoding: 'utf8' };
  } catch {
    return { text: bytes.toString('base64'), encoding: 'base64' };
  }
}

/**
 * Reads up to `count` messages of a topic without disturbing anyone: it uses a consumer group of
 * its own (a fresh random id), commits no offset, and deletes the group when done. It stops at
 * `count`, at the end of the data present when it started, or at the timeout.
 */
export async function sampleKafka(options: SampleOptions): Promise<SampledRecord[]> {
  const settings = { ...(options.kafka ?? DEFAULT_KAFKA_SETTINGS), brokers: options.brokers };
  const kafka = kafkaClient(settings, 'ff-detector-sample', { connectionTimeout: 3000, requestTimeout: options.timeoutMs, retry: { retries: 1 } });
  const admin = kafka.admin();
  // Under the configured prefix, so one prefixed ACL on groups lets the sampler in.
  const groupId = `${settings.groupPrefix}sample-${randomUUID()}`;
  try {
    await admin.connect();
    const plan = await planOffsets(admin, options);
    const pending = plan.filter((p) => BigInt(p.start) < BigInt(p.end));
    if (pending.length === 0) return [];
    const records = await consume(kafka, groupId, options, pending);
    return pickNewest(records, options);
  } catch (error) {
    if (error instanceof FfError) throw error;
    throw new FfError('SOURCE_UNAVAILABLE', `cannot sample ${options.topic} from ${options.brokers.join(',')}: ${errorMessage(error)}`, { cause: error });
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined); // it may never have been created
    await admin.disconnect().catch(() => undefined);
  }
}

interface PartitionPlan {
  partition: number;
  start: string;
  /** The high watermark when sampling began: messages up to it are "the data present". */
  end: string;
}

async function planOffsets(admin: kafkajs.Admin, options: SampleOptions): Promise<PartitionPlan[]> {
  const offsets = (await admin.fetchTopicOffsets(options.topic)).filter((p) => options.partition === undefined || p.partition === options.partition);
  if (offsets.length === 0) throw new FfError('INPUT_UNREADABLE', `topic ${options.topic} has no partition ${options.partition}`);
  const since = options.start.from === 'since' ? await admin.fetchTopicOffsetsByTimestamp(options.topic, options.start.timestamp) : [];
  return offsets.map(({ partition, low, high }) => {
    let start = low;
    if (options.start.from === 'latest') start = String(maxBig(BigInt(low), BigInt(high) - BigInt(options.count)));
    if (options.start.from === 'since') {
      const found = since.find((entry) => entry.partition === partition)?.offset;
      start = found === undefined || Number(found) < 0 ? high : found;
    }
    return { partition, start, end: high };
  });
}

async function consume(kafka: kafkajs.Kafka, groupId: string, options: SampleOptions, plan: PartitionPlan[]): Promise<SampledRecord[]> {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000, allowAutoTopicCreation: false });
  const records: SampledRecord[] = [];
  const remaining = new Map(plan.map((p) => [p.partition, p]));
  // A "latest" sample reads the tail of every partition and keeps the newest `count` overall.
  const limit = options.start.from === 'latest' ? options.count * plan.length : options.count;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const timer = setTimeout(finish, options.timeoutMs);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: options.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const target = remaining.get(partition);
        if (!target || BigInt(message.offset) >= BigInt(target.end) || records.length >= limit) return;
        const key = encodeBytes(message.key);
        const value = encodeBytes(message.value);
        records.push({
          topic: options.topic,
          partition,
          offset: message.offset,
          timestamp: new Date(Number(message.timestamp)).toISOString(),
          key: key.text,
          keyEncoding: key.encoding,
          headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([name, header]) => [name, Buffer.isBuffer(header) ? header.toString('utf8') : String(header)])),
          value: value.text,
          valueEncoding: value.encoding,
        });
        if (BigInt(message.offset) + 1n >= BigInt(target.end)) remaining.delete(partition);
        if (remaining.size === 0 || records.length >= limit) finish();
      },
    });
    for (const { partition, start } of plan) consumer.seek({ topic: options.topic, partition, offset: start });
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
  return records;
}

function pickNewest(records: SampledRecord[], options: SampleOptions): SampledRecord[] {
  if (options.start.from !== 'latest') return records;
  return [...records].sort((a, b) => a.timestamp.localeCompare(b.timestamp) || Number(BigInt(a.offset) - BigInt(b.offset))).slice(-options.count);
}

function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

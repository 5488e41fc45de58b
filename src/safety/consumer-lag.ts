import kafkajs from 'kafkajs';
import { FfError, errorMessage } from '../errors.js';

export interface GroupLag {
  group: string;
  topic: string;
  /** Messages the group has yet to consume, over all partitions. */
  lag: number;
  partitions: Array<{ partition: number; lag: number }>;
}

/** The Kafka calls the safety gate makes: the lag of a consumer group on a topic. */
export interface LagReader {
  lag(group: string, topic: string): Promise<GroupLag>;
  close(): Promise<void>;
}

/**
 * Consumer lag through the kafkajs admin client: latest offsets minus the group's committed ones
 * (a partition never committed counts from its low watermark). Read-only: joins no group and
 * commits nothing.
 */
export class KafkaLagReader implements LagReader {
  private readonly admin: kafkajs.Admin;
  private connected: Promise<void> | undefined;

  constructor(brokers: string[], timeoutMs: number) {
    const kafka = new kafkajs.Kafka({
      clientId: 'ff-detector-lag-gate',
      brokers,
      connectionTimeout: Math.min(timeoutMs, 3000),
      requestTimeout: timeoutMs,
      retry: { retries: 2, initialRetryTime: 200 },
      logLevel: kafkajs.logLevel.NOTHING,
    });
    this.admin = kafka.admin();
  }

  async lag(group: string, topic: string): Promise<GroupLag> {
    try {
      this.connected ??= this.admin.connect();
      await this.connected;
      const [committed, latest] = await Promise.all([this.admin.fetchOffsets({ groupId: group, topics: [topic] }), this.admin.fetchTopicOffsets(topic)]);
      const offsets = new Map((committed.find((entry) => entry.topic === topic)?.partitions ?? []).map((p) => [p.partition, p.offset]));
      const partitions = latest.map(({ partition, high, low }) => {
        const done = offsets.get(partition);
        const from = done === undefined || Number(done) < 0 ? BigInt(low) : BigInt(done); // negative: never committed
        return { partition, lag: Number(BigInt(high) - from) };
      });
      return { group, topic, lag: partitions.reduce((sum, p) => sum + p.lag, 0), partitions };
    } catch (error) {
      this.connected = undefined;
      throw new FfError('SOURCE_UNAVAILABLE', `cannot read the lag of consumer group ${group} on ${topic}: ${errorMessage(error)}`, { cause: error, retryable: true });
    }
  }

  async close(): Promise<void> {
    await this.admin.disconnect();
  }
}

export interface LagVerdict {
  ok: boolean;
  lags: GroupLag[];
  /** Why enqueueing must wait, naming each group over the limit. */
  reason: string | null;
}

/** Seed runbook: backfilling while the worker's consumers lag can double-count aggregates. */
export async function checkConsumerLag(reader: LagReader, groups: ReadonlyArray<{ group: string; topic: string }>, maxLag: number): Promise<LagVerdict> {
  const lags = await Promise.all(groups.map(({ group, topic }) => reader.lag(group, topic)));
  const over = lags.filter((entry) => entry.lag > maxLag);
  const reason = over.length === 0 ? null : over.map((entry) => `consumer group ${entry.group} lags ${entry.lag} messages on ${entry.topic} (limit ${maxLag})`).join('; ');
  return { ok: over.length === 0, lags, reason };
}

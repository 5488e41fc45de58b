import type kafkajs from 'kafkajs';
import { FfError, errorMessage } from '../errors.js';
import { DEFAULT_KAFKA_SETTINGS, kafkaClient, type KafkaSettings } from '../kafka/client.js';

export interface PartitionLag {
  partition: number;
  /** Messages not yet consumed. */
  lag: number;
  /** The oldest unconsumed message is older than the time limit asked for. */
  behind: boolean;
}

export interface GroupLag {
  group: string;
  topic: string;
  /** Messages the group has yet to consume, over all partitions. */
  lag: number;
  partitions: PartitionLag[];
}

/** The Kafka calls the safety gate makes: the lag of a consumer group on a topic. */
export interface LagReader {
  /**
   * `behindBefore` (epoch ms, or null for no time measure): a partition is `behind` when its
   * oldest unconsumed message was written before this time.
   */
  lag(group: string, topic: string, behindBefore: number | null): Promise<GroupLag>;
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

  /** `settings`: TLS and SASL (config `kafka`); `brokers` wins over its brokers. */
  constructor(brokers: string[], timeoutMs: number, settings: KafkaSettings = DEFAULT_KAFKA_SETTINGS) {
    const kafka = kafkaClient({ ...settings, brokers }, 'ff-detector-lag-gate', {
      connectionTimeout: Math.min(timeoutMs, 3000),
      requestTimeout: timeoutMs,
      retry: { retries: 2, initialRetryTime: 200 },
    });
    this.admin = kafka.admin();
  }

  async lag(group: string, topic: string, behindBefore: number | null): Promise<GroupLag> {
    try {
      this.connected ??= this.admin.connect();
      await this.connected;
      const [committed, latest, firstAfter] = await Promise.all([
        this.admin.fetchOffsets({ groupId: group, topics: [topic] }),
        this.admin.fetchTopicOffsets(topic),
        behindBefore === null ? Promise.resolve([]) : this.admin.fetchTopicOffsetsByTimestamp(topic, behindBefore),
      ]);
      const offsets = new Map((committed.find((entry) => entry.topic === topic)?.partitions ?? []).map((p) => [p.partition, p.offset]));
      // The first offset written at or after behindBefore (the high watermark when none was).
      const recent = new Map(firstAfter.map((p) => [p.partition, BigInt(p.offset)]));
      const partitions = latest.map(({ partition, high, low }): PartitionLag => {
        const done = offsets.get(partition);
        const from = done === undefined || Number(done) < 0 ? BigInt(low) : BigInt(done); // negative: never committed
        const threshold = recent.get(partition);
        // Read at two moments: a commit in between can put the group past the high watermark read.
        const lag = Math.max(0, Number(BigInt(high) - from));
        // A partition the timestamp lookup did not answer for is not known to be caught up: behind.
        const behind = behindBefore !== null && (threshold === undefined || from < threshold);
        return { partition, lag, behind };
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

import { randomUUID } from 'node:crypto';
import type kafkajs from 'kafkajs';
import { FfError, errorMessage } from '../errors.js';
import type { MappingConfig } from '../investigate/mapping.js';
import { kafkaClient, type KafkaSettings } from '../kafka/client.js';
import type { Logger } from '../logger.js';
import type { DetectorEventBus } from '../observability/events.js';
import type { FeedChange, FeedChangeSink, FeedHandle, FeedPosition, FeedState } from './changes.js';
import { MappingReader } from './extract.js';
import { MAX_DOCUMENTS_PER_MESSAGE, decodeMessage, type MalformedReason } from './message-decoder.js';

export interface TopicFeedSettings {
  kafka: KafkaSettings;
  topic: string;
  /** The group every replica shares (without the kafka.groupPrefix, added here). */
  groupId: string;
  flag: string;
  mapping: MappingConfig;
  /** Where a group with no committed offset starts: the oldest message kept (default) or new ones only. */
  fromBeginning: boolean;
  idPattern: RegExp;
  /** Behind the head by more than this many messages (summed over partitions), the feed is `lagging`. */
  maxLagMessages: number;
}

export interface PartitionProgress {
  /** The next offset to read; null before the first message. */
  next: string | null;
  highWatermark: string | null;
  lag: number | null;
  lastMessageAt: string | null;
}

/** What /status shows of the topic feed. */
export interface TopicFeedDetails {
  topic: string;
  group: string;
  partitions: Record<string, PartitionProgress>;
  messages: { read: number; applied: number; unrelated: number; invalidUserIds: number; malformed: Partial<Record<MalformedReason, number>> };
}

export interface TopicFeedHandle extends FeedHandle {
  details(): TopicFeedDetails;
}

export interface TopicFeedOptions {
  /** A group of its own, nothing committed, the group deleted at the end (watch --dry-run). */
  readOnly?: boolean;
  /** Stop once every partition reached the offset it had when the feed started (watch --until-end). */
  untilEnd?: boolean;
  /** Told of each change the feed emits, after it was applied (watch prints them). */
  onChange?: (change: FeedChange, at: { partition: number; offset: string }) => void;
}

const RETRY_FIRST_MS = 500;
const SESSION_TIMEOUT_MS = 10_000;
const RESTART_FIRST_MS = 5000;
const RESTART_MAX_MS = 60_000;
const RETRY_MAX_MS = 30_000;

/**
 * Strategy B's source: the flag topic through the investigation mapping. Each message about the
 * flag becomes changes, applied by the sink (live state + pending users in one Valkey commit);
 * only then is its offset committed. A message that cannot be read is counted by reason, logged
 * with its partition and offset, and skipped; a sink that cannot apply (Valkey down) holds the
 * partition, retried with backoff, never skipped. One group for every replica: Kafka spreads the
 * partitions, and the live state's version makes a change delivered twice harmless.
 */
export function startTopicFeed(settings: TopicFeedSettings, sink: FeedChangeSink, logger: Logger, events: DetectorEventBus, signal: AbortSignal, options: TopicFeedOptions = {}): TopicFeedHandle {
  return new TopicFeed(settings, sink, logger, events, signal, options).toHandle();
}

class TopicFeed {
  private state: FeedState = 'starting';
  private error: string | null = null;
  private lastChangeAt: string | null = null;
  private readonly partitions = new Map<number, PartitionProgress>();
  private readonly counts = { read: 0, applied: 0, unrelated: 0, invalidUserIds: 0, malformed: {} as Partial<Record<MalformedReason, number>> };
  private readonly reader: MappingReader;
  private readonly needle: Buffer;
  private readonly group: string;
  private readonly kafka: kafkajs.Kafka;
  private consumer: kafkajs.Consumer | undefined;
  /** The high watermarks when the feed started (untilEnd). */
  private endOffsets: Map<number, bigint> | undefined;
  private readonly stopper = new AbortController();
  private readonly stopping: AbortSignal;
  private readonly ended: Promise<void>;

  constructor(
    private readonly settings: TopicFeedSettings,
    private readonly sink: FeedChangeSink,
    private readonly logger: Logger,
    private readonly events: DetectorEventBus,
    signal: AbortSignal,
    private readonly options: TopicFeedOptions,
  ) {
    this.reader = new MappingReader(settings.mapping, settings.flag);
    this.needle = Buffer.from(settings.flag);
    const prefix = settings.kafka.groupPrefix;
    this.group = options.readOnly ? `${prefix}watch-${randomUUID()}` : `${prefix}${settings.groupId}`;
    this.kafka = kafkaClient(settings.kafka, 'ff-detector-feed', { connectionTimeout: 5000, requestTimeout: 30_000, retry: { retries: 8, maxRetryTime: RETRY_MAX_MS } });
    this.stopping = AbortSignal.any([signal, this.stopper.signal]);
    this.ended = this.follow();
  }

  toHandle(): TopicFeedHandle {
    return {
      health: () => ({ state: this.state, position: this.position(), lastChangeAt: this.lastChangeAt, error: this.error }),
      details: () => ({ topic: this.settings.topic, group: this.group, partitions: Object.fromEntries([...this.partitions].map(([partition, progress]) => [String(partition), { ...progress }])), messages: { ...this.counts, malformed: { ...this.counts.malformed } } }),
      ended: this.ended,
      stop: async () => {
        this.stopper.abort();
        await this.ended;
      },
    };
  }

  private position(): FeedPosition | null {
    const entries = [...this.partitions].filter(([, progress]) => progress.next !== null);
    return entries.length === 0 ? null : Object.fromEntries(entries.map(([partition, progress]) => [String(partition), progress.next]));
  }

  /**
   * Follows the topic until stopped. A daemon's feed that fails (Kafka unreachable at start, the
   * topic not created yet, a crash kafkajs does not recover from) starts again with backoff, so it
   * does not stay down until the process restarts; a watch reports the failure instead.
   */
  private async follow(): Promise<void> {
    let wait = RESTART_FIRST_MS;
    for (;;) {
      const error = await this.followOnce();
      if (error === null || this.stopping.aborted) {
        this.state = 'stopped';
        return;
      }
      this.logger.error({ topic: this.settings.topic }, `the flag topic feed stopped: ${error}`);
      if (this.options.untilEnd || this.options.readOnly) {
        this.state = 'failed';
        this.error = error;
        return;
      }
      this.state = 'starting';
      this.error = `${error} (starting again in ${wait / 1000} s)`;
      if (!(await sleep(wait, this.stopping))) {
        this.state = 'stopped';
        return;
      }
      wait = Math.min(wait * 2, RESTART_MAX_MS);
    }
  }

  /** One consumer's life: null when stopped, else why it failed. */
  private async followOnce(): Promise<string | null> {
    const { topic } = this.settings;
    let crashed: (error: Error) => void = () => undefined;
    const crash = new Promise<never>((_, reject) => (crashed = reject));
    crash.catch(() => undefined);
    try {
      if (this.options.untilEnd) this.endOffsets = await this.readEndOffsets();
      // A dead replica's partitions move to the others after this long (heartbeats every 3 s).
      const consumer = this.kafka.consumer({ groupId: this.group, sessionTimeout: SESSION_TIMEOUT_MS, heartbeatInterval: 3000, allowAutoTopicCreation: false, retry: { retries: 8, maxRetryTime: RETRY_MAX_MS } });
      this.consumer = consumer;
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        // kafkajs restarts the consumer itself after a retriable error; anything else ends this life.
        if (!payload.restart) crashed(payload.error);
        else this.logger.warn({ err: payload.error, topic }, `flag topic consumer restarting: ${errorMessage(payload.error)}`);
      });
      // A fetch that brought nothing means caught up (an empty topic never brings a batch to say so).
      consumer.on(consumer.events.FETCH, ({ payload }) => {
        if (payload.numberOfBatches === 0) this.updateState();
      });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: this.settings.fromBeginning });
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.eachBatch(payload) });
      this.logger.info({ topic, group: this.group, readOnly: this.options.readOnly === true }, `following the flag topic ${topic} for ${this.settings.flag}`);
      this.error = null;
      if (this.endOffsets && this.reachedEnd()) this.stopper.abort();
      if (!this.stopping.aborted) await Promise.race([new Promise<void>((resolve) => this.stopping.addEventListener('abort', () => resolve(), { once: true })), crash]);
      return null;
    } catch (error) {
      return errorMessage(error);
    } finally {
      await this.consumer?.disconnect().catch(() => undefined);
      this.consumer = undefined;
      if (this.options.readOnly) await this.deleteGroup();
    }
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: kafkajs.EachBatchPayload): Promise<void> {
    const { partition } = batch;
    let uncommitted: string | null = null;
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.stopping.aborted) break;
      const outcome = await this.handle(partition, message, heartbeat, () => isRunning() && !isStale());
      if (outcome === 'stopped') break;
      const next = (BigInt(message.offset) + 1n).toString();
      resolveOffset(message.offset);
      this.progress(partition, next, batch.highWatermark, message.timestamp);
      // An applied change is committed at once (its users are safe in the pending set); skipped
      // messages only with the next commit or at the end of the batch.
      if (outcome === 'applied') {
        await this.commit(partition, next);
        uncommitted = null;
      } else uncommitted = next;
      await heartbeat();
    }
    if (uncommitted !== null) await this.commit(partition, uncommitted);
    const progress = this.partitions.get(partition);
    if (progress && progress.next === null) this.progress(partition, null, batch.highWatermark, null);
    this.updateState();
    if (this.endOffsets && this.reachedEnd()) this.stopper.abort();
  }

  /** One message: its changes applied, or skipped (unrelated, malformed). Sink failures are retried here. */
  private async handle(partition: number, message: kafkajs.KafkaMessage, heartbeat: () => Promise<void>, running: () => boolean): Promise<'applied' | 'skipped' | 'stopped'> {
    this.counts.read += 1;
    const changes = this.changesOf(partition, message);
    if (changes === 'skipped') return 'skipped';
    for (const change of changes) {
      const outcome = await this.applyWithRetry(change, partition, message.offset, heartbeat, running);
      if (outcome === 'stopped') return 'stopped';
      if (outcome === 'poison') continue; // the message's other changes still apply
      this.options.onChange?.(change, { partition, offset: message.offset });
    }
    this.counts.applied += 1;
    this.lastChangeAt = new Date().toISOString();
    this.events.emit('feed:message', { feed: 'kafka-topic', outcome: 'applied' });
    return 'applied';
  }

  private changesOf(partition: number, message: kafkajs.KafkaMessage): FeedChange[] | 'skipped' {
    const { flag } = this.settings;
    const offset = Number(message.offset);
    const at = Number(message.timestamp);
    const position: FeedPosition = { partition, offset: message.offset };
    const version = (index: number) => ({ at, partition, offset: offset * MAX_DOCUMENTS_PER_MESSAGE + index });
    const decoded = decodeMessage(message.value, message.key, this.needle);
    if (decoded.kind === 'unrelated') return this.skip('unrelated');
    if (decoded.kind === 'malformed') return this.malformed(decoded.reason, decoded.detail, partition, message.offset);
    if (decoded.kind === 'tombstone') return [{ type: 'resync', flag, position, version: version(0), reason: 'a tombstone (no value) under a key naming the flag: deleted, or compacted away' }];
    const changes: FeedChange[] = [];
    for (const [index, document] of decoded.documents.entries()) {
      let extracted;
      try {
        extracted = this.reader.read(document);
      } catch (error) {
        return this.malformed('unreadable', errorMessage(error), partition, message.offset);
      }
      if (extracted.type === 'unrelated') continue;
      if (extracted.type === 'other') {
        changes.push({ type: 'resync', flag, position, version: version(index), reason: `a change the feed cannot turn into users: ${extracted.reason}` });
        continue;
      }
      // IDs that are not user IDs are dropped and counted; the rest of the message still applies.
      const valid = extracted.users.filter((user) => this.settings.idPattern.test(user));
      const invalid = extracted.users.length - valid.length;
      if (invalid > 0) this.invalidIds(invalid, extracted.users.find((user) => !this.settings.idPattern.test(user)) ?? '', partition, message.offset);
      const base = { flag, position, version: version(index), users: valid };
      if (extracted.type === 'snapshot') {
        const { enabled, percentage, rulesDigest, bucketingDigest } = extracted;
        changes.push({ ...base, type: 'snapshot', enabled, percentage, rulesDigest, bucketingDigest });
      } else changes.push({ ...base, type: extracted.type });
    }
    return changes.length > 0 ? changes : this.skip('unrelated');
  }

  private skip(outcome: 'unrelated'): 'skipped' {
    this.counts.unrelated += 1;
    this.events.emit('feed:message', { feed: 'kafka-topic', outcome });
    return 'skipped';
  }

  private malformed(reason: MalformedReason, detail: string, partition: number, offset: string): 'skipped' {
    this.counts.malformed[reason] = (this.counts.malformed[reason] ?? 0) + 1;
    this.events.emit('feed:message', { feed: 'kafka-topic', outcome: 'malformed', reason });
    this.logger.warn({ topic: this.settings.topic, partition, offset, reason }, `flag topic message skipped (${reason}): ${detail}`);
    return 'skipped';
  }

  private invalidIds(count: number, example: string, partition: number, offset: string): void {
    this.counts.invalidUserIds += count;
    this.events.emit('feed:message', { feed: 'kafka-topic', outcome: 'invalid-user-id' });
    this.logger.warn({ topic: this.settings.topic, partition, offset, invalid: count }, `${count} user IDs in a flag topic message do not match idPattern (dropped, the rest applied), e.g. ${JSON.stringify(example.slice(0, 64))}`);
  }

  /**
   * Applies until it works or the feed stops: a partition waits for Valkey (a retryable error)
   * rather than skip a change. An error that retrying cannot cure (FfError.retryable false, or a
   * bug's TypeError) makes the message poison: counted, logged, skipped — it must not block its
   * partition for ever.
   */
  private async applyWithRetry(change: FeedChange, partition: number, offset: string, heartbeat: () => Promise<void>, running: () => boolean): Promise<'applied' | 'poison' | 'stopped'> {
    let wait = RETRY_FIRST_MS;
    for (;;) {
      try {
        await this.sink.apply(change);
        if (this.error !== null && this.state !== 'failed') this.error = null;
        return 'applied';
      } catch (error) {
        if (!(error instanceof FfError && error.retryable)) {
          this.malformed('unapplicable', `the change cannot be applied: ${errorMessage(error)}`, partition, offset);
          return 'poison';
        }
        this.error = `cannot apply a change (partition ${partition}, offset ${offset}): ${errorMessage(error)}`;
        this.logger.warn({ err: error, partition, offset, retryInMs: wait }, this.error);
        if (!(await sleep(wait, this.stopping))) return 'stopped';
        // A rebalance took the partition (or the consumer stops): its new owner applies the change.
        if (!running()) return 'stopped';
        await heartbeat().catch(() => undefined);
        wait = Math.min(wait * 2, RETRY_MAX_MS);
      }
    }
  }

  private async commit(partition: number, offset: string): Promise<void> {
    if (this.options.readOnly || !this.consumer) return;
    try {
      await this.consumer.commitOffsets([{ topic: this.settings.topic, partition, offset }]);
    } catch (error) {
      // Uncommitted, the change is read again after a restart or a rebalance: stale then, harmless.
      this.logger.warn({ err: error, partition, offset }, `could not commit the flag topic offset: ${errorMessage(error)}`);
    }
  }

  private progress(partition: number, next: string | null, highWatermark: string, timestamp: string | null): void {
    const previous = this.partitions.get(partition);
    const nextOffset = next ?? previous?.next ?? null;
    const lag = nextOffset === null ? null : Math.max(0, Number(BigInt(highWatermark) - BigInt(nextOffset)));
    this.partitions.set(partition, { next: nextOffset, highWatermark, lag, lastMessageAt: timestamp === null ? (previous?.lastMessageAt ?? null) : new Date(Number(timestamp)).toISOString() });
  }

  private updateState(): void {
    if (this.state === 'stopped' || this.state === 'failed') return;
    const lag = [...this.partitions.values()].reduce((sum, progress) => sum + (progress.lag ?? 0), 0);
    if (lag === 0) this.state = 'live';
    else if (this.state !== 'starting' && lag > this.settings.maxLagMessages) this.state = 'lagging';
  }

  private async readEndOffsets(): Promise<Map<number, bigint>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(this.settings.topic);
      // Partitions with nothing to read are done from the start: empty ones, and those the group
      // has already committed to their end (kafkajs calls no handler for a fetch that brings nothing).
      const committed = new Map<number, bigint>();
      if (!this.options.readOnly) {
        const [group] = await admin.fetchOffsets({ groupId: this.group, topics: [this.settings.topic] });
        for (const { partition, offset } of group?.partitions ?? []) if (BigInt(offset) >= 0n) committed.set(partition, BigInt(offset));
      }
      return new Map(offsets.filter(({ partition, low, high }) => BigInt(high) > BigInt(low) && (committed.get(partition) ?? -1n) < BigInt(high)).map(({ partition, high }) => [partition, BigInt(high)]));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private reachedEnd(): boolean {
    for (const [partition, end] of this.endOffsets ?? []) {
      const next = this.partitions.get(partition)?.next;
      if (next === null || next === undefined || BigInt(next) < end) return false;
    }
    return true;
  }

  private async deleteGroup(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      await admin.deleteGroups([this.group]);
    } catch {
      // It may never have been created.
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/** Resolves true after `ms`, false at once if `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

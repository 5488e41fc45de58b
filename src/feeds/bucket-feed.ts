import { randomUUID } from 'node:crypto';
import { FfError, errorMessage } from '../errors.js';
import { openInput } from '../inputs/open-input.js';
import type { ObjectInfo, ObjectStore } from '../inputs/object-store.js';
import { classify } from '../investigate/encodings.js';
import type { MappingConfig } from '../investigate/mapping.js';
import { namesFlag } from '../investigate/bucket.js';
import type { Logger } from '../logger.js';
import type { DetectorEventBus } from '../observability/events.js';
import type { FeedChange, FeedChangeSink, FeedHandle, FeedState } from './changes.js';
import { MappingReader } from './extract.js';
import { keyPatternMatcher } from './key-pattern.js';
import type { FeedStore, ObjectMark } from './live-state.js';
import { listUsers } from './object-users.js';

export interface BucketFeedSettings {
  bucket: string;
  prefix: string;
  flag: string;
  mapping: MappingConfig & { objects: NonNullable<MappingConfig['objects']> };
  intervalMs: number;
  maxObjects: number;
  maxDocumentBytes: number;
  idPattern: RegExp;
  /**
   * The forget guard's share and floor: a snapshot removing more explicit users is held, until
   * `released()` (an operator's release, POST /admin/forget-hold/release) says it may go.
   */
  guard: { maxFraction: number; floor: number; released: () => Promise<boolean> };
}

export interface BucketFeedDeps {
  objects: ObjectStore;
  store: FeedStore;
  logger: Logger;
  events: DetectorEventBus;
}

export interface BucketFeedOptions {
  /** One listing cycle, then stop (watch s3 --once). */
  once?: boolean;
  /** Lists only while this says so (the daemon's leader); default always. */
  leading?: () => boolean;
  onChange?: (change: FeedChange, at: { key: string; etag: string }) => void;
}

/** What /status shows of the bucket feed. */
export interface BucketFeedDetails {
  bucket: string;
  prefix: string;
  lastListing: { at: string; listed: number; matched: number; read: number; durationMs: number } | null;
  objectsRead: number;
  bytesRead: number;
  notifications: number;
  /** Objects whose last version was not applied (unreadable, deleted, held by the forget guard), with why. */
  held: Array<{ key: string; etag: string; detail: string | null; at: string }>;
  objects: Array<{ key: string; etag: string; outcome: ObjectMark['outcome'] }>;
}

export interface BucketFeedHandle extends FeedHandle {
  details(): BucketFeedDetails;
  /** Lists now (a notification arrived) instead of at the next interval. */
  wake(): void;
}

/** The partition of bucket changes in the live state's versions (Kafka's are 0 and up; -1 is arrival order). */
const BUCKET_PARTITION = -2;
/** A stage lives this long: a cycle that dies mid-load leaves nothing behind for longer. */
const STAGE_TTL_SECONDS = 3600;
const SHOWN_OBJECTS = 20;
/** How often a follower checks whether it leads now. */
const FOLLOWER_RECHECK_MS = 1000;

type ObjectRead = { kind: 'snapshot'; change: Omit<FeedChange & { type: 'snapshot' }, 'flag' | 'position' | 'version' | 'maxRemoved'> } | { kind: 'unrelated' } | { kind: 'unreadable'; detail: string };

/**
 * Strategy C's source: the flag bucket. Every interval (or when woken by a notification) it lists
 * the prefix, keeps the objects of the mapping's key pattern (the newest only for dated
 * snapshots), and reads only those whose ETag differs from the checkpoint in Valkey. A JSON or
 * YAML object is read through the mapping; an object that is the list itself (linkedByKey) is
 * streamed into a stage in Valkey, so memory stays flat in its size. Each snapshot goes to the
 * sink (Valkey diffs it against the live users). An object that cannot be read, disappears, or
 * would remove too many users at once is held: the last good state stays, the object is
 * reported with its key and ETag, and it is not read again until its ETag changes.
 */
export function startBucketFeed(settings: BucketFeedSettings, deps: BucketFeedDeps, sink: FeedChangeSink, signal: AbortSignal, options: BucketFeedOptions = {}): BucketFeedHandle {
  return new BucketFeed(settings, deps, sink, signal, options).toHandle();
}

class BucketFeed {
  private state: FeedState = 'starting';
  private error: string | null = null;
  private lastChangeAt: string | null = null;
  private lastListing: BucketFeedDetails['lastListing'] = null;
  private objectsRead = 0;
  private bytesRead = 0;
  private notifications = 0;
  private marks = new Map<string, ObjectMark>();
  private readonly matcher: RegExp;
  private readonly reader: MappingReader;
  private readonly stopper = new AbortController();
  private readonly stopping: AbortSignal;
  private woken = false;
  private wakeUp: () => void = () => void (this.woken = true);
  private readonly ended: Promise<void>;

  constructor(
    private readonly settings: BucketFeedSettings,
    private readonly deps: BucketFeedDeps,
    private readonly sink: FeedChangeSink,
    signal: AbortSignal,
    private readonly options: BucketFeedOptions,
  ) {
    this.matcher = keyPatternMatcher(settings.mapping.objects.keyPattern);
    this.reader = new MappingReader(settings.mapping, settings.flag);
    this.stopping = AbortSignal.any([signal, this.stopper.signal]);
    this.ended = this.follow();
  }

  toHandle(): BucketFeedHandle {
    return {
      health: () => ({ state: this.state, position: null, lastChangeAt: this.lastChangeAt, error: this.error }),
      details: () => this.details(),
      wake: () => {
        this.notifications += 1;
        this.wakeUp();
      },
      ended: this.ended,
      stop: async () => {
        this.stopper.abort();
        this.wakeUp();
        await this.ended;
      },
    };
  }

  private details(): BucketFeedDetails {
    const marks = [...this.marks];
    return {
      bucket: this.settings.bucket,
      prefix: this.settings.prefix,
      lastListing: this.lastListing,
      objectsRead: this.objectsRead,
      bytesRead: this.bytesRead,
      notifications: this.notifications,
      held: marks.filter(([, mark]) => mark.outcome === 'held').map(([key, { etag, detail, at }]) => ({ key, etag, detail, at })),
      objects: marks.slice(0, SHOWN_OBJECTS).map(([key, { etag, outcome }]) => ({ key, etag, outcome })),
    };
  }

  private async follow(): Promise<void> {
    const { logger } = this.deps;
    logger.info({ bucket: this.settings.bucket, prefix: this.settings.prefix, keyPattern: this.settings.mapping.objects.keyPattern }, `following the flag bucket s3://${this.settings.bucket}/${this.settings.prefix} for ${this.settings.flag}`);
    while (!this.stopping.aborted) {
      const leading = this.options.leading?.() ?? true;
      if (leading) {
        try {
          await this.cycle();
          this.state = 'live';
          this.error = null;
        } catch (error) {
          this.error = errorMessage(error);
          logger.warn({ err: error, bucket: this.settings.bucket }, `bucket listing cycle failed (retried at the next interval): ${this.error}`);
          if (this.options.once) {
            this.state = 'failed';
            return;
          }
        }
      }
      if (this.options.once) break;
      // A follower looks again soon: once it leads (the leader died), it lists at once, not an interval later.
      await this.sleep(leading ? this.settings.intervalMs : Math.min(this.settings.intervalMs, FOLLOWER_RECHECK_MS));
    }
    this.state = 'stopped';
  }

  private sleep(ms: number): Promise<void> {
    // A wake-up that came during the cycle (a notification while a large object was read) is kept.
    if (this.woken || this.stopping.aborted) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = () => void (this.woken = true);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /** One listing: the changed objects read and applied, the vanished ones reported. */
  private async cycle(): Promise<void> {
    const { bucket, prefix, flag } = this.settings;
    const { store } = this.deps;
    const started = Date.now();
    const listed = await this.deps.objects.list(bucket, prefix, this.settings.maxObjects);
    const chosen = this.choose(listed);
    this.marks = await store.objectMarks(flag);
    const guardHeld = chosen.some((object) => this.marks.get(object.key)?.heldBy === 'forget-guard');
    // An operator's release lets the held snapshots through, once (the permit is used up).
    const released = guardHeld && (await this.settings.guard.released());
    let read = 0;
    for (const object of chosen) {
      if (this.stopping.aborted) break;
      const etag = object.etag ?? `${object.size}:${object.lastModified?.getTime() ?? 0}`;
      const mark = this.marks.get(object.key);
      const retry = released && mark?.heldBy === 'forget-guard';
      // Unchanged: not read again (but one listed again after it vanished is, to be applied again).
      if (mark?.etag === etag && !retry && mark.heldBy !== 'vanished') continue;
      read += 1;
      try {
        await this.readAndApply(object, etag, retry);
      } catch (error) {
        // One object S3 refuses (AccessDenied, KMS) must not stop the others; a retryable failure
        // (S3 or Valkey unreachable) fails the cycle, retried at the next one.
        if (error instanceof FfError && error.retryable) throw error;
        const detail = `cannot be read: ${errorMessage(error)}`;
        this.deps.logger.error({ bucket, key: object.key, etag }, `flag bucket object held: ${detail}`);
        const entry: ObjectMark = { etag, outcome: 'held', heldBy: 'unreadable', detail, at: new Date().toISOString() };
        this.marks.set(object.key, entry);
        await store.markObject(flag, object.key, entry);
      }
    }
    // A listing cut at maxObjects cannot tell a vanished object from one beyond the cut.
    if (listed.length >= this.settings.maxObjects) this.deps.logger.warn({ bucket, prefix, maxObjects: this.settings.maxObjects }, 'the listing reached strategies.s3Bucket.maxObjects: objects beyond it are not seen (narrow the prefix or raise the limit)');
    else await this.reportVanished(listed, chosen);
    this.lastListing = { at: new Date(started).toISOString(), listed: listed.length, matched: chosen.length, read, durationMs: Date.now() - started };
  }

  /** The objects of the key pattern (about the flag by key when linkedByKey), the newest only for dated snapshots. */
  private choose(listed: ObjectInfo[]): ObjectInfo[] {
    const { objects } = this.settings.mapping;
    const matching = listed.filter((object) => this.matcher.test(object.key) && (!objects.linkedByKey || namesFlag(object.key, this.settings.flag)));
    if (!objects.newest || matching.length <= 1) return matching;
    const newest = matching.reduce((best, object) => ((object.lastModified?.getTime() ?? 0) > (best.lastModified?.getTime() ?? 0) || ((object.lastModified?.getTime() ?? 0) === (best.lastModified?.getTime() ?? 0) && object.key > best.key) ? object : best));
    return [newest];
  }

  private async readAndApply(object: ObjectInfo, etag: string, released: boolean): Promise<void> {
    const { flag } = this.settings;
    const { store, logger, events } = this.deps;
    const stageId = `${randomUUID()}`;
    const mark = async (outcome: ObjectMark['outcome'], detail: string | null, heldBy?: ObjectMark['heldBy']): Promise<void> => {
      const entry: ObjectMark = { etag, outcome, detail, at: new Date().toISOString(), ...(heldBy ? { heldBy } : {}) };
      this.marks.set(object.key, entry);
      await store.markObject(flag, object.key, entry);
    };
    try {
      const content = await this.read(object, stageId);
      this.objectsRead += 1;
      events.emit('feed:message', { feed: 's3-bucket', outcome: content.kind === 'snapshot' ? 'applied' : content.kind === 'unrelated' ? 'unrelated' : 'malformed', ...(content.kind === 'unreadable' ? { reason: 'unreadable' } : {}) });
      if (content.kind === 'unrelated') return await mark('unrelated', null);
      if (content.kind === 'unreadable') {
        logger.error({ bucket: this.settings.bucket, key: object.key, etag }, `flag bucket object held, the last good state stays: ${content.detail}`);
        return await mark('held', content.detail, 'unreadable');
      }
      const explicit = await store.explicitCount(flag);
      const maxRemoved = released ? null : Math.max(this.settings.guard.floor, Math.floor(explicit * this.settings.guard.maxFraction));
      const at = object.lastModified?.getTime() ?? Date.now();
      // After the last offset of the bucket's partition: the clock alone repeats within a
      // millisecond (or steps back), and an offset at or below the stored one is stale.
      const applied = (await store.read(flag))?.applied[String(BUCKET_PARTITION)] ?? 0;
      const offset = Math.max(Date.now(), applied + 1);
      const change: FeedChange = { ...content.change, type: 'snapshot', flag, position: { key: object.key, etag }, version: { at, partition: BUCKET_PARTITION, offset }, maxRemoved };
      await this.sink.apply(change);
      const state = await store.read(flag);
      // Applied when the bucket's partition records this change's offset (only an applied commit
      // writes it; a topic commit since may have moved `version`).
      if (state !== null && state.applied[String(BUCKET_PARTITION)] === change.version?.offset) {
        this.lastChangeAt = new Date().toISOString();
        this.options.onChange?.(change, { key: object.key, etag });
        return await mark('applied', null);
      }
      const detail = `not applied: it would remove more than ${maxRemoved ?? 'any'} of the ${explicit} explicit users at once (the forget guard: POST /admin/forget-hold/release lets it through), or a newer snapshot was applied since`;
      logger.error({ bucket: this.settings.bucket, key: object.key, etag }, `flag bucket object held, the last good state stays: ${detail}`);
      await mark('held', detail, 'forget-guard');
    } finally {
      await store.dropStage(flag, stageId).catch(() => undefined);
    }
  }

  /** The object's snapshot: streamed into a stage when it is the list itself, else parsed whole (capped). */
  private async read(object: ObjectInfo, stageId: string): Promise<ObjectRead> {
    const { bucket, mapping, flag, idPattern, maxDocumentBytes } = this.settings;
    const location = `s3://${bucket}/${object.key}`;
    const bytes = openInput(location, { objectStore: this.deps.objects });
    try {
      if (mapping.objects.linkedByKey) {
        let count = 0;
        let invalid = 0;
        let example: string | null = null;
        for await (const batch of listUsers(this.counted(bytes), mapping, idPattern)) {
          count = await this.deps.store.stage(flag, stageId, batch.users, STAGE_TTL_SECONDS);
          invalid += batch.invalid;
          example ??= batch.firstInvalid;
        }
        if (invalid > 0) this.deps.logger.warn({ key: object.key, invalid }, `${invalid} lines of ${location} hold no valid user ID (dropped), e.g. ${JSON.stringify(example)}`);
        return { kind: 'snapshot', change: { type: 'snapshot', users: [], enabled: null, percentage: null, stage: { id: stageId, count } } };
      }
      const content = await this.readCapped(bytes, maxDocumentBytes);
      if (content === null) return { kind: 'unreadable', detail: `larger than strategies.s3Bucket.maxDocumentBytes (${maxDocumentBytes}) once decompressed` };
      const classified = classify(content);
      if (classified.encoding === 'malformed' || classified.documents.length === 0) return { kind: 'unreadable', detail: classified.problem ?? `not a document (${classified.encoding})` };
      for (const document of classified.documents) {
        const extracted = this.reader.read(document);
        if (extracted.type !== 'snapshot') continue;
        const users = extracted.users.filter((user) => idPattern.test(user));
        if (users.length < extracted.users.length) this.deps.logger.warn({ key: object.key, invalid: extracted.users.length - users.length }, `user IDs in ${location} do not match idPattern (dropped)`);
        const { enabled, percentage, rulesDigest, bucketingDigest } = extracted;
        return { kind: 'snapshot', change: { type: 'snapshot', users, enabled, percentage, rulesDigest, bucketingDigest } };
      }
      return { kind: 'unrelated' };
    } catch (error) {
      // A truncated gzip, or an object deleted since the listing: the object is bad, not the feed
      // (S3 itself unreachable propagates: the cycle is retried).
      if (error instanceof FfError && (error.code === 'INPUT_MALFORMED' || /does not exist/.test(error.message))) return { kind: 'unreadable', detail: errorMessage(error) };
      throw error;
    }
  }

  private async *counted(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      this.bytesRead += chunk.length;
      yield chunk;
    }
  }

  private async readCapped(chunks: AsyncIterable<Buffer>, max: number): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of this.counted(chunks)) {
      size += chunk.length;
      if (size > max) return null;
      parts.push(chunk);
    }
    return Buffer.concat(parts);
  }

  /**
   * An object applied before and no longer listed is held (never applied as "no users") and
   * reported. For dated snapshots (newest) an older object's removal is retention, not loss: only
   * an empty listing counts.
   */
  private async reportVanished(listed: ObjectInfo[], chosen: ObjectInfo[]): Promise<void> {
    const present = new Set(listed.map((object) => object.key));
    if (this.settings.mapping.objects.newest && chosen.length > 0) {
      // Retention removed older dated snapshots: their marks go too (the checkpoint stays as small as the listing).
      for (const key of [...this.marks.keys()]) {
        if (present.has(key) || !this.matcher.test(key)) continue;
        this.marks.delete(key);
        await this.deps.store.unmarkObject(this.settings.flag, key);
      }
      return;
    }
    for (const [key, mark] of this.marks) {
      if (present.has(key) || mark.outcome !== 'applied' || !this.matcher.test(key)) continue;
      const detail = 'the object disappeared: its snapshot stays the live state until another object replaces it';
      this.deps.logger.error({ bucket: this.settings.bucket, key, etag: mark.etag }, `flag bucket object held: ${detail}`);
      const entry: ObjectMark = { ...mark, outcome: 'held', heldBy: 'vanished', detail, at: new Date().toISOString() };
      this.marks.set(key, entry);
      await this.deps.store.markObject(this.settings.flag, key, entry);
    }
  }
}

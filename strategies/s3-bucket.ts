import { FfError } from '../src/errors.js';
import { startBucketFeed } from '../src/feeds/bucket-feed.js';
import type { NotificationCounts } from '../src/feeds/bucket-notifications.js';
import type { Runtime } from '../src/runtime/runtime.js';
import type { FeedChangeSink, FeedHandle, FeedStartOptions, FeedStrategy } from './feed.js';
import { forgetPolicyFor } from './forget-policy.js';
import { S3_BUCKET } from './names.js';

/**
 * Strategy C of the seed: the flag system's bucket, read through the investigation mapping
 * (strategies.s3Bucket). Experimental: shadow mode by default. It lists on the leader only (a
 * bucket has no consumer group to share it out); S3 event notifications, when configured, wake it.
 */
export const s3BucketStrategy: FeedStrategy = {
  kind: 'feed',
  name: S3_BUCKET,
  experimental: true,

  start(runtime: Runtime, sink: FeedChangeSink, signal: AbortSignal, options: FeedStartOptions = {}): FeedHandle {
    const { config, logger, events } = runtime;
    const feed = config.strategies.s3Bucket;
    const { mapping, bucket } = feed;
    if (!mapping?.objects || !bucket) throw new FfError('CONFIG_INVALID', 'strategies.s3Bucket: the bucket feed needs a bucket and a mapping with its objects (run `ff-detector investigate s3 --format json`)');
    if (mapping.kind !== 'snapshot') throw new FfError('CONFIG_INVALID', 'strategies.s3Bucket.mapping.kind: a bucket holds state: the mapping must be a snapshot one');
    const stopping = new AbortController();
    const all = AbortSignal.any([signal, stopping.signal]);
    const notifications: NotificationCounts = { received: 0, relevant: 0, malformed: 0 };
    let store: Awaited<ReturnType<Runtime['openFeedStore']>> | undefined;
    const storeReady = runtime.openFeedStore(options.readOnly ?? false).then((opened) => (store = opened));
    const handles = storeReady.then(async (feedStore) => {
      const stateStore = await runtime.openStore();
      const policy = forgetPolicyFor(runtime, stateStore, { dryRun: options.readOnly ?? false });
      const handle = startBucketFeed(
        {
          bucket,
          prefix: feed.prefix,
          flag: config.flag,
          mapping: { ...mapping, objects: mapping.objects as NonNullable<typeof mapping.objects> },
          intervalMs: feed.intervalSeconds * 1000,
          maxObjects: feed.maxObjects,
          maxDocumentBytes: feed.maxDocumentBytes,
          idPattern: runtime.idPattern,
          guard: { maxFraction: config.state.maxForgetFraction, floor: config.state.maxForgetFloor, released: policy.released },
        },
        { objects: runtime.objectStore, store: feedStore, logger, events },
        sink,
        all,
        { once: options.untilEnd ?? false, ...(options.leading ? { leading: options.leading } : {}), ...(options.onChange ? { onChange: (change, at) => options.onChange?.(change, { partition: -2, offset: `${at.key}@${at.etag}` }) } : {}) },
      );
      const queueUrl = feed.notificationQueueUrl;
      let following: Promise<void> = Promise.resolve();
      if (queueUrl && !options.untilEnd) {
        const [{ SQSClient }, { followNotifications }] = await Promise.all([import('@aws-sdk/client-sqs'), import('../src/feeds/bucket-notifications.js')]);
        // As the sink's client (sqs-sink.ts): with a custom endpoint (sqs.endpoint) the queue URL's
        // host need not resolve, so requests go to the endpoint.
        const { region, endpoint } = config.sqs;
        const client = new SQSClient({ ...(region ? { region } : {}), ...(endpoint ? { endpoint } : {}), maxAttempts: 3, useQueueUrlAsEndpoint: !endpoint });
        // Only the leader lists, so only the leader takes notifications: a follower would delete them unheard.
        following = followNotifications(client, { queueUrl, bucket, prefix: feed.prefix }, () => handle.wake(), logger, all, notifications, options.leading).finally(() => client.destroy());
      }
      return { handle, following };
    });
    const failed = handles.then(
      () => null,
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    let startError: string | null = null;
    void failed.then((error) => (startError = error));
    const ended = handles.then(
      async ({ handle, following }) => {
        await handle.ended;
        stopping.abort();
        await following;
      },
      () => undefined,
    );
    let current: Awaited<typeof handles>['handle'] | undefined;
    void handles.then(({ handle }) => (current = handle)).catch(() => undefined);
    return {
      health: () => current?.health() ?? { state: startError ? 'failed' : 'starting', position: null, lastChangeAt: null, error: startError },
      details: () => ({ ...(current?.details() ?? {}), notificationQueue: feed.notificationQueueUrl, notifications: { ...notifications }, store: store?.description ?? null }),
      ended,
      stop: async () => {
        stopping.abort();
        await (await handles.catch(() => undefined))?.handle.stop();
        await ended;
      },
    };
  },
};

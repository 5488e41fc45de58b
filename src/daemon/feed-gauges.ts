import { Gauge, type Registry } from 'prom-client';
import type { FeedStatus } from '../../strategies/feed-runner.js';
/** Gauges read from the feeds' status at each scrape: lag per partition, pending users, live state age. */
export function bindFeedGauges(registry: Registry, read: () => Promise<FeedStatus[]>): void {
  let latest: Promise<FeedStatus[]> | undefined;
  // One status read per scrape, shared by the gauges.
  const statuses = (): Promise<FeedStatus[]> => (latest ??= read().finally(() => setImmediate(() => (latest = undefined))));
  const gauge = (name: string, help: string, labelNames: string[], fill: (gauge: Gauge, feeds: FeedStatus[]) => void): void => {
    new Gauge({
      name: `ff_detector_${name}`,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        fill(this, await statuses());
      },
    });
  };
  gauge('feed_partition_lag_messages', 'Messages of the flag topic not yet read, per partition this replica reads', ['feed', 'partition'], (metric, feeds) => {
    for (const feed of feeds) {
      const partitions = (feed.details as { partitions?: Record<string, { lag: number | null }> } | null)?.partitions ?? {};
      for (const [partition, { lag }] of Object.entries(partitions)) if (lag !== null) metric.set({ feed: feed.strategy, partition }, lag);
    }
  });
  gauge('feed_pending_users', 'Users a feed found whose send (or forget) is still to do', ['feed'], (metric, feeds) => {
    for (const feed of feeds) if (feed.pending !== null) metric.set({ feed: feed.strategy }, feed.pending);
  });
  gauge('feed_live_state_age_seconds', 'Time since the live flag state last changed', ['feed'], (metric, feeds) => {
    for (const feed of feeds) if (feed.liveState) metric.set({ feed: feed.strategy }, feed.liveState.ageSeconds);
  });
  gauge('feed_live_state_version_timestamp_seconds', 'The time of the change the live state was last built from (message time, or object LastModified)', ['feed'], (metric, feeds) => {
    for (const feed of feeds) if (feed.liveState) metric.set({ feed: feed.strategy }, feed.liveState.version.at / 1000);
  });
  const bucket = (feed: FeedStatus): { lastListing?: { at: string } | null; objectsRead?: number; held?: unknown[] } => (feed.details ?? {}) as { lastListing?: { at: string } | null; objectsRead?: number; held?: unknown[] };
  gauge('feed_bucket_last_listing_timestamp_seconds', 'When the bucket feed last listed its prefix', ['feed'], (metric, feeds) => {
    for (const feed of feeds) {
      const at = bucket(feed).lastListing?.at;
      if (at) metric.set({ feed: feed.strategy }, Date.parse(at) / 1000);
    }
  });
  gauge('feed_bucket_objects_read', 'Objects the bucket feed read since it started (unchanged ETags are not read)', ['feed'], (metric, feeds) => {
    for (const feed of feeds) {
      const read = bucket(feed).objectsRead;
      if (read !== undefined) metric.set({ feed: feed.strategy }, read);
    }
  });
  gauge('feed_bucket_held_objects', 'Bucket objects whose last version was not applied (unreadable, vanished, or held by the forget guard)', ['feed'], (metric, feeds) => {
    for (const feed of feeds) {
      const held = bucket(feed).held;
      if (held !== undefined) metric.set({ feed: feed.strategy }, held.length);
    }
  });
  gauge('feed_up', '1 while the feed is starting, live or lagging; 0 once stopped or failed', ['feed'], (metric, feeds) => {
    for (const feed of feeds) metric.set({ feed: feed.strategy }, ['starting', 'live', 'lagging'].includes(feed.health.state) ? 1 : 0);
  });
}

import { FfError } from '../src/errors.js';
import { startTopicFeed } from '../src/feeds/topic-feed.js';
import type { Runtime } from '../src/runtime/runtime.js';
import type { FeedChangeSink, FeedHandle, FeedStartOptions, FeedStrategy } from './feed.js';
import { KAFKA_TOPIC } from './names.js';

/**
 * Strategy B of the seed: the flag system's own topic, read through the investigation mapping
 * (strategies.kafkaTopic). Experimental: shadow mode by default.
 */
export const kafkaTopicStrategy: FeedStrategy = {
  kind: 'feed',
  name: KAFKA_TOPIC,
  experimental: true,

  start(runtime: Runtime, sink: FeedChangeSink, signal: AbortSignal, options: FeedStartOptions = {}): FeedHandle {
    const { config, logger, events } = runtime;
    const feed = config.strategies.kafkaTopic;
    if (!feed.mapping) throw new FfError('CONFIG_INVALID', 'strategies.kafkaTopic.mapping: the topic feed needs a mapping (run `ff-detector investigate kafka --format json` and copy its mapping)');
    if (config.kafka.brokers.length === 0) throw new FfError('CONFIG_INVALID', 'kafka.brokers: the topic feed needs brokers (kafka.brokers or KAFKA_BROKERS)');
    return startTopicFeed(
      { kafka: config.kafka, topic: feed.topic, groupId: feed.groupId, flag: config.flag, mapping: feed.mapping, fromBeginning: feed.fromBeginning, idPattern: runtime.idPattern, maxLagMessages: feed.maxLagMessages },
      sink,
      logger,
      events,
      signal,
      options,
    );
  },
};

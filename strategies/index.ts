import { FfError } from '../src/errors.js';
import { kafkaTopicStrategy } from './kafka-topic.js';
import { pollingStrategy } from './polling.js';
import { s3BucketStrategy } from './s3-bucket.js';
import { reconcileStrategy } from './reconcile.js';
import type { FeedStrategy, OneShotStrategy, Strategy } from './types.js';

export { KAFKA_TOPIC, POLLING, RECONCILE, S3_BUCKET } from './names.js';

/**
 * Every strategy the daemon and the CLI know. They take theirs from here by name
 * (daemon.strategy; POLLING for `detect`, RECONCILE for `reconcile` and its schedule) and import
 * no strategy module themselves.
 */
export const strategies: readonly Strategy[] = [pollingStrategy, reconcileStrategy, kafkaTopicStrategy, s3BucketStrategy];

export function findStrategy(name: string, registry: readonly Strategy[] = strategies): Strategy | undefined {
  return registry.find((strategy) => strategy.name === name);
}

/**
 * The one-shot strategy called `name`, for a command or a schedule that runs one. An unknown
 * name, or a feed's, is a configuration error (exit 2) naming `setting`, where the name came from.
 */
export function oneShotStrategy(name: string, setting: string, registry: readonly Strategy[] = strategies): OneShotStrategy {
  const strategy = findStrategy(name, registry);
  if (!strategy) {
    throw new FfError('CONFIG_INVALID', `${setting}: unknown strategy "${name}" (known: ${registry.map((known) => known.name).join(', ')})`);
  }
  if (strategy.kind !== 'one-shot') {
    throw new FfError('CONFIG_INVALID', `${setting}: strategy "${name}" is a feed, which is started rather than run; name a one-shot strategy (${oneShotNames(registry)})`);
  }
  return strategy;
}

/** The feed strategy called `name` (a configuration error naming `setting` otherwise). */
export function feedStrategy(name: string, setting: string, registry: readonly Strategy[] = strategies): FeedStrategy {
  const strategy = findStrategy(name, registry);
  if (!strategy || strategy.kind !== 'feed') throw new FfError('CONFIG_INVALID', `${setting}: no feed strategy "${name}"`);
  return strategy;
}

function oneShotNames(registry: readonly Strategy[]): string {
  return registry.filter((strategy) => strategy.kind === 'one-shot').map((strategy) => strategy.name).join(', ');
}

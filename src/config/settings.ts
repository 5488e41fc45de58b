import type { RetryPolicy } from '../send/sender.js';
import type { MessageSettings } from '../sink/message.js';
import { tmpdir } from 'node:os';
import type { Config } from './schema.js';

/** How every sender retries entries SQS failed with SenderFault=false (sqs.*). */
export function retryPolicyOf(config: Config): RetryPolicy {
  return { entryRetries: config.sqs.entryRetries, baseMs: config.sqs.retryBaseMs, maxMs: config.sqs.retryMaxMs };
}

/** The message contract of backfills (CLI and admin): backfill.* and the common priority. */
export function backfillMessageOf(config: Config): MessageSettings {
  const { backfill, enqueue } = config;
  return { reason: backfill.reason, requestIdPrefix: backfill.requestIdPrefix, lookbackDays: backfill.lookbackDays, priority: enqueue.priority };
}

/** Where a run keeps the users it will enqueue between its scan and its send (enqueue.*). */
export function pendingSettingsOf(config: Config): { maxInMemory: number; spillDir: string } {
  return { maxInMemory: config.enqueue.maxPendingInMemory, spillDir: config.enqueue.spillDir ?? tmpdir() };
}

/** The pipeline's settings every detection takes from the config, whatever started it (a run, a feed's drain). */
export function detectionSettingsOf(config: Config): {
  maxInFlightBatches: number;
  health: Config['safety'];
  pending: { maxInMemory: number; spillDir: string };
  sendConcurrency: number;
  message: MessageSettings;
  retry: RetryPolicy;
} {
  return { maxInFlightBatches: config.state.maxInFlightBatches, health: config.safety, pending: pendingSettingsOf(config), sendConcurrency: config.sqs.concurrency, message: config.enqueue, retry: retryPolicyOf(config) };
}

import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';

export interface NotificationTarget {
  queueUrl: string;
  bucket: string;
  prefix: string;
}

export interface NotificationCounts {
  received: number;
  relevant: number;
  malformed: number;
}

const RETRY_MS = 5000;
/** How often a follower checks whether it leads now (and should take the notifications). */
const FOLLOWER_RECHECK_MS = 1000;

/**
 * Reads S3 event notifications (delivered to SQS directly, or through SNS) and calls `onChange`
 * when one is about an object under the feed's prefix; the interval listing stays the safety
 * net, so every message is deleted once read — a malformed one too (counted and logged), since
 * it can never become readable. Receives only while `leading` says so. Runs until `signal` aborts.
 */
export async function followNotifications(client: SQSClient, target: NotificationTarget, onChange: () => void, logger: Logger, signal: AbortSignal, counts: NotificationCounts, leading: () => boolean = () => true): Promise<void> {
  while (!signal.aborted) {
    if (!leading()) {
      // A follower does not list: the notifications are left to the leader.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, FOLLOWER_RECHECK_MS);
        signal.addEventListener('abort', done, { once: true });
      });
      continue;
    }
    try {
      const { Messages: messages = [] } = await client.send(new ReceiveMessageCommand({ QueueUrl: target.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 }), { abortSignal: signal });
      let relevant = false;
      for (const message of messages) {
        counts.received += 1;
        const keys = eventKeys(message.Body ?? '', target.bucket);
        if (keys === null) {
          counts.malformed += 1;
          logger.warn({ queue: target.queueUrl, messageId: message.MessageId }, 'bucket notification is not an S3 event: deleted, ignored');
        } else if (keys.some((key) => key.startsWith(target.prefix))) {
          counts.relevant += 1;
          relevant = true;
        }
      }
      if (relevant) onChange();
      const entries = messages.filter((message) => message.ReceiptHandle).map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle as string }));
      if (entries.length > 0) await client.send(new DeleteMessageBatchCommand({ QueueUrl: target.queueUrl, Entries: entries }));
    } catch (error) {
      if (signal.aborted) return;
      logger.warn({ err: error, queue: target.queueUrl }, `cannot read bucket notifications (the interval listing goes on): ${errorMessage(error)}`);
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}

/**
 * The object keys an S3 event notification names for `bucket` (decoded: S3 URL-encodes them, a
 * space as +); [] for s3:TestEvent or other buckets; null when the body is not an S3 event.
 */
export function eventKeys(body: string, bucket: string): string[] | null {
  let event: unknown;
  try {
    event = JSON.parse(body);
    // Through SNS, the S3 event is the notification's Message, as a string.
    if (isRecord(event) && typeof event.Message === 'string' && event.Type === 'Notification') event = JSON.parse(event.Message);
  } catch {
    return null;
  }
  if (!isRecord(event)) return null;
  if (event.Event === 's3:TestEvent') return [];
  if (!Array.isArray(event.Records)) return null;
  const keys: string[] = [];
  for (const record of event.Records) {
    const s3 = isRecord(record) && isRecord(record.s3) ? record.s3 : null;
    const name = s3 && isRecord(s3.bucket) ? s3.bucket.name : undefined;
    const key = s3 && isRecord(s3.object) ? s3.object.key : undefined;
    if (typeof name !== 'string' || typeof key !== 'string') return null;
    if (name !== bucket) continue;
    try {
      keys.push(decodeURIComponent(key.replace(/\+/g, ' ')));
    } catch {
      keys.push(key);
    }
  }
  return keys;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Valkey } from 'iovalkey';

// What the feed benches (bench/feed.ts, bench/bucket.ts) share.

/** Every message of the queue (at least `expected`, waiting up to 30 s for them): its user and SentTimestamp. */
export async function receiveAll(sqs: SQSClient, queueUrl: string, expected: number): Promise<Array<{ user: string; at: number }>> {
  const all: Array<{ user: string; at: number }> = [];
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['SentTimestamp'] }));
    if (Messages.length === 0) {
      if (all.length >= expected || Date.now() > deadline) return all;
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    for (const message of Messages) all.push({ user: (JSON.parse(message.Body as string) as { user_id: string }).user_id, at: Number(message.Attributes?.SentTimestamp) });
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })) }));
  }
}

/** Nearest rank. */
/**
 * When each user's first message reached the queue, and how many came again; throws naming the
 * users that never arrived (a bench whose users were lost must not report a latency).
 */
export function firstArrivals(received: ReadonlyArray<{ user: string; at: number }>, users: readonly string[], bench: string): { sentAt: Map<string, number>; duplicates: number } {
  const sentAt = new Map<string, number>();
  let duplicates = 0;
  for (const { user, at } of received) {
    if (sentAt.has(user)) duplicates += 1;
    else sentAt.set(user, at);
  }
  const missing = users.filter((user) => !sentAt.has(user));
  if (missing.length > 0) throw new Error(`${bench}: ${missing.length} of ${users.length} users never reached SQS (e.g. ${missing.slice(0, 3).join(', ')})`);
  return { sentAt, duplicates };
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** UNLINK every key matching `pattern`, so large sets are freed off Valkey's main thread. */
export async function deleteKeys(valkey: Valkey, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await valkey.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) await valkey.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

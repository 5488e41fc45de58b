import { CreateQueueCommand, DeleteQueueCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BackfillJob } from '../src/backfill/job.js';
import { mapWithConcurrency } from '../src/concurrency.js';
import { silentLogger } from '../src/logger.js';
import { LocalRateLimiter } from '../src/send/rate-limiter.js';
import { buildUserLoadMessage } from '../src/sink/message.js';
import { SqsSink } from '../src/sink/sqs-sink.js';

const message = { reason: 'batch_backfill', lookbackDays: 365, priority: 'low', requestIdPrefix: 'backfill' };
const retry = { entryRetries: 0, baseMs: 10, maxMs: 10 };

function client(endpoint: string, onSend?: (count: number) => void): SQSClient {
  const sqs = new SQSClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  if (onSend) {
    sqs.middlewareStack.add(
      (next) => async (args) => {
        const entries = (args.input as { Entries?: unknown[] }).Entries;
        if (entries) onSend(entries.length); // SendMessageBatch only, not CreateQueue
        return next(args);
      },
      { step: 'initialize', name: 'countSends' },
    );
  }
  return sqs;
}

async function queue(sqs: SQSClient, name: string): Promise<string> {
  return (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-${Date.now()}` }))).QueueUrl as string;
}

/** Messages/s of the backfill sender (rate limit lifted) beside a plain SendMessageBatch loop. */
export async function benchBackfillThroughput(endpoint: string, users: number, concurrency: number): Promise<{ senderPerS: number; plainPerS: number }> {
  const sqs = client(endpoint);
  const ids = Array.from({ length: users }, (_, i) => `user-${i}`);
  try {
    const batches: string[][] = [];
    for (let i = 0; i < ids.length; i += 10) batches.push(ids.slice(i, i + 10));
    const plainLoop = async (): Promise<number> => {
      const plainQueue = await queue(sqs, 'bench-plain');
      const started = performance.now();
      await mapWithConcurrency(batches, concurrency, (batch) =>
        sqs.send(new SendMessageBatchCommand({ QueueUrl: plainQueue, Entries: batch.map((id, index) => ({ Id: String(index), MessageBody: buildUserLoadMessage(id, message).body })) })),
      );
      const perS = users / ((performance.now() - started) / 1000);
      await sqs.send(new DeleteQueueCommand({ QueueUrl: plainQueue }));
      return perS;
    };
    const senderJob = async (): Promise<number> => {
      const queueUrl = await queue(sqs, 'bench-sender');
      const sink = new SqsSink({ queueUrl, maxAttempts: 3, requestTimeoutMs: 10_000 }, sqs);
      const started = performance.now();
      const result = await new BackfillJob(ids, sink, new LocalRateLimiter(1_000_000), silentLogger(), { message, retry, concurrency, progressEvery: Number.POSITIVE_INFINITY }).run();
      if (result.status !== 'ok') throw new Error(`backfill bench: ${result.error}`);
      const perS = users / ((performance.now() - started) / 1000);
      await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
      return perS;
    };
    // Three rounds, alternating which goes first, each queue deleted after use; the best of each.
    const plain: number[] = [];
    const sender: number[] = [];
    for (let round = 0; round < 3; round++) {
      if (round % 2 === 0) {
        plain.push(await plainLoop());
        sender.push(await senderJob());
      } else {
        sender.push(await senderJob());
        plain.push(await plainLoop());
      }
    }
    return { senderPerS: Math.max(...sender), plainPerS: Math.max(...plain) };
  } finally {
    sqs.destroy();
  }
}

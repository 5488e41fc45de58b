import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateQueueCommand, DeleteMessageBatchCommand, DeleteQueueCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { ratePolicy } from '../src/send/rate-policy.js';
import { achievedRate, fullestWindow, windowRule, type TimedSend } from './rate-measure.js';

const LAUNCHER = fileURLToPath(new URL('../../bin/ff-detector', import.meta.url));

export interface RateFigures {
  rate: number;
  state: 'file' | 'valkey';
  /** Client side: when each request started (the sender's debug log). */
  achievedPerS: number;
  errorPercent: number;
  fullestClientWindow: number;
  /** The window rule: at most this many in any `windowMs` (README "Safety"). */
  windowCap: number;
  windowMs: number;
  /** Server side: SentTimestamp of every message. */
  fullestServerWindow: number;
  serverAchievedPerS: number;
  burst: number;
}

/**
 * `ff-detector backfill` at `rate` for `seconds` against the local SQS server, in its own
 * process, with file state (the in-process limiter) or Valkey state (the limit shared in
 * Valkey). Every run of one call goes at once, each to a queue of its own.
 */
export async function benchRateLimits(options: { endpoint: string; valkeyUrl: string; dir: string; seconds: number; cases: Array<{ rate: number; state: 'file' | 'valkey' }> }): Promise<RateFigures[]> {
  const sqs = new SQSClient({ region: 'us-east-1', endpoint: options.endpoint, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  try {
    return await Promise.all(options.cases.map((one, index) => measure(sqs, options, one, index)));
  } finally {
    sqs.destroy();
  }
}

async function measure(sqs: SQSClient, options: { endpoint: string; valkeyUrl: string; dir: string; seconds: number }, { rate, state }: { rate: number; state: 'file' | 'valkey' }, index: number): Promise<RateFigures> {
  const { burst } = ratePolicy(rate, 10);
  const users = Array.from({ length: burst + Math.ceil(rate * options.seconds) }, (_, i) => `rate-${index}-${i}`);
  const file = path.join(options.dir, `rate-${index}.txt`);
  writeFileSync(file, users.join('\n'));
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `bench-rate-${index}-${Date.now()}` }))).QueueUrl as string;
  // Nothing consumes these queues: the backlog gate would pause the 100/s run after 5,000.
  const config = path.join(options.dir, `rate-${index}.yaml`);
  writeFileSync(config, 'sqs:\n  maxBacklog: 0\n');
  const child = spawn(LAUNCHER, ['backfill', '--user-file', file, '--config', config, '--rate-limit', String(rate), '--log-level', 'debug'], {
    env: {
      ...process.env,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_ENDPOINT_URL_SQS: options.endpoint,
      SQS_QUEUE_URL: queueUrl,
      ...(state === 'valkey' ? { VALKEY_URL: options.valkeyUrl } : { VALKEY_URL: '' }),
    },
    cwd: options.dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`rate bench at ${rate}/s (${state}) exited ${code}: ${stderr.slice(-500)}`);
  const client: TimedSend[] = stderr
    .split('\n')
    .filter((line) => line.includes('"send started"'))
    .map((line) => JSON.parse(line) as { startedAt: number; count: number })
    .map((line) => ({ at: line.startedAt, count: line.count }));
  const server = (await drain(sqs, queueUrl)).map((message) => ({ at: Number(message.Attributes?.SentTimestamp), count: 1 }));
  await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
  if (server.length !== users.length) throw new Error(`rate bench at ${rate}/s: ${server.length} of ${users.length} messages arrived`);
  const { windowMs, cap } = windowRule(rate);
  const achievedPerS = achievedRate(client);
  return {
    rate,
    state,
    achievedPerS,
    errorPercent: ((achievedPerS - rate) / rate) * 100,
    fullestClientWindow: fullestWindow(client, windowMs),
    windowCap: cap,
    windowMs,
    fullestServerWindow: fullestWindow(server, windowMs),
    // Every message is its own entry here: leave the first batch out, as achievedRate does client-side.
    serverAchievedPerS: ((server.length - burst) * 1000) / (Math.max(...server.map((s) => s.at)) - Math.min(...server.map((s) => s.at))),
    burst,
  };
}

async function drain(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['SentTimestamp'] }));
    if (Messages.length === 0) return all;
    all.push(...Messages);
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })) }));
  }
}

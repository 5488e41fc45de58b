import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ratePolicy } from '../../src/send/rate-policy.js';
import { runCli, sendStarts } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { achievedRate, fullestWindow, windowRule, type TimedSend } from '../../bench/rate-measure.js';
import { awsEnv, createQueue, drainQueue, userIdsOf, valkeyUrl } from '../helpers/services.js';

// Each rate sends for about this long after its first batch.
const SECONDS = 6;
const RATES = [0.5, 1, 5, 9.5, 10, 100];
/** file: the in-process limiter (file-backed default); valkey: the limit shared in Valkey. */
type State = 'file' | 'valkey';
const CASES = (['file', 'valkey'] as const).flatMap((state) => RATES.map((rate) => [rate, state] as const));

/**
 * `ff-detector backfill` at `rate` against the real SQS server: what the process says it started
 * (debug log, one line per request) and what the server stamped (SentTimestamp).
 */
async function backfillAt(rate: number, state: State) {
  const { burst } = ratePolicy(rate, 10);
  const users = Array.from({ length: burst + Math.ceil(rate * SECONDS) }, (_, i) => `rate-${rate}-${i}`);
  const file = path.join(tempDir(), 'users.txt');
  writeFileSync(file, users.join('\n'));
  const queueUrl = await createQueue();
  const stateEnv: Record<string, string> = state === 'valkey' ? { VALKEY_URL: valkeyUrl() } : {};
  const result = await runCli(['backfill', '--user-file', file, '--rate-limit', String(rate), '--log-level', 'debug'], { env: { ...awsEnv(), ...stateEnv, SQS_QUEUE_URL: queueUrl } });
  const messages = await drainQueue(queueUrl);
  const server: TimedSend[] = messages.map((message) => ({ at: Number(message.Attributes?.SentTimestamp), count: 1 }));
  return { users, result, client: sendStarts(result.stderr), server, received: userIdsOf(messages) };
}

function checkRate(rate: number, run: Awaited<ReturnType<typeof backfillAt>>, minShare: number): void {
  const { burst, capacity } = ratePolicy(rate, 10);
  const { windowMs, cap } = windowRule(rate);
  expect(run.result.code, run.result.stderr).toBe(0);
  expect(run.received.sort()).toEqual([...run.users].sort());
  // Client side, when each request started: never above the window rule, never above the bucket.
  expect(run.client.reduce((sum, send) => sum + send.count, 0)).toBe(run.users.length);
  expect(Math.max(...run.client.map((send) => send.count))).toBeLessThanOrEqual(burst);
  expect(fullestWindow(run.client, windowMs)).toBeLessThanOrEqual(cap);
  const spanS = (Math.max(...run.client.map((s) => s.at)) - Math.min(...run.client.map((s) => s.at))) / 1000;
  expect(run.users.length).toBeLessThanOrEqual(capacity + rate * spanS);
  expect(achievedRate(run.client)).toBeGreaterThan(rate * minShare);
  // Server side: request latency varies, so a window may catch one batch more, never two.
  expect(fullestWindow(run.server, windowMs)).toBeLessThanOrEqual(cap + burst);
}

// The average is checked loosely here (a 6-second run has few windows); the benchmark measures it
// over a minute against the 1 % target.
describe.concurrent('rate limit, end to end on the real SQS server', () => {
  it.each(CASES)('%d msgs/s, %s state', async (rate, state) => {
    checkRate(rate, await backfillAt(rate, state), 0.98);
  });
});

describe.concurrent('rate limit while the CPU is busy', () => {
  const hogs: ChildProcess[] = [];
  beforeAll(() => {
    // One busy loop per core of this machine, besides the test's own work.
    for (let i = 0; i < 2; i++) hogs.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  });
  afterAll(() => {
    for (const hog of hogs) hog.kill('SIGKILL');
  });

  it.each(CASES)('%d msgs/s, %s state', async (rate, state) => {
    // The window and bucket rules hold exactly; the average may lose what late timers cost.
    checkRate(rate, await backfillAt(rate, state), 0.95);
  });
});

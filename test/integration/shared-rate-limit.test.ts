import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValkeyStateStore } from '../../src/state/valkey/index.js';
import { ValkeyRateLimiter } from '../../src/state/valkey/rate-limiter.js';
import { runCli, sendStarts } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { achievedRate, fullestWindow, type TimedSend } from '../../bench/rate-measure.js';
import { awsEnv, createQueue, drainQueue, uniqueName, userIdsOf, valkeyUrl, waitFor } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

function store(url = valkeyUrl()): ValkeyStateStore {
  const prefix = uniqueName('rl');
  return new ValkeyStateStore({ url, knownSetKey: `${prefix}:known`, loadedKeyPrefix: `${prefix}:loaded:`, detectorKeyPrefix: `${prefix}:d:`, connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
}

const queue = (name: string) => ({ region: 'us-east-1', account: '000000000000', name });

/** `senders` limiters of one queue, each taking grants as fast as allowed until `total` went. */
async function race(limiters: ValkeyRateLimiter[], total: number): Promise<TimedSend[]> {
  const sends: TimedSend[] = [];
  let sent = 0;
  await Promise.all(
    limiters.map(async (limiter) => {
      while (sent < total) {
        const grant = await limiter.acquire(10);
        const startedAt = performance.now();
        grant.started(startedAt);
        sends.push({ at: performance.timeOrigin + startedAt, count: grant.count });
        sent += grant.count;
      }
    }),
  );
  return sends;
}

describe('the rate limit shared in Valkey', () => {
  it('holds one limit for every sender of a queue, whatever each was configured with', async () => {
    const state = store();
    const name = uniqueName('queue');
    const limiters = [10, 10, 50].map((rate) => new ValkeyRateLimiter(state.connection, { prefix: 'p:', queue: queue(name), ratePerSecond: rate, maxBatch: 10 }));
    const sends = await race(limiters, 50);
    // The lowest limit (10/s) for all three together; the first batch goes at once.
    expect(fullestWindow(sends, 1000)).toBeLessThanOrEqual(10);
    expect(achievedRate(sends)).toBeLessThanOrEqual(10.5);
    expect(achievedRate(sends)).toBeGreaterThan(9.5);
    expect(limiters[2]?.effectiveRate).toBe(10);
    await state.close();
  });

  it('keeps other queues apart, and grants partial counts below 10/s', async () => {
    const state = store();
    const slow = new ValkeyRateLimiter(state.connection, { prefix: 'p:', queue: queue(uniqueName('a')), ratePerSecond: 2, maxBatch: 10 });
    const fast = new ValkeyRateLimiter(state.connection, { prefix: 'p:', queue: queue(uniqueName('b')), ratePerSecond: 100, maxBatch: 10 });
    expect((await slow.acquire(10)).count).toBe(2);
    expect((await fast.acquire(10)).count).toBe(10); // not held back by the other queue's limit
    await state.close();
  });

  it('a sender that stopped no longer lowers the limit once idle', async () => {
    const state = store();
    const name = uniqueName('queue');
    const options = { prefix: 'p:', queue: queue(name), maxBatch: 10, idleMs: 1500 };
    await new ValkeyRateLimiter(state.connection, { ...options, ratePerSecond: 1 }).acquire(1);
    const other = new ValkeyRateLimiter(state.connection, { ...options, ratePerSecond: 100 });
    await other.acquire(1); // waits out the 1/s window
    expect(other.effectiveRate).toBe(1);
    await waitFor(async () => (await other.acquire(1)) && other.effectiveRate === 100, 'the stopped sender to go idle', 5000);
    await state.close();
  });

  it('fails closed: with Valkey unreachable no grant is given', async () => {
    const proxy = await TcpProxy.start(valkeyUrl());
    const state = store(proxy.url(valkeyUrl()));
    const limiter = new ValkeyRateLimiter(state.connection, { prefix: 'p:', queue: queue(uniqueName('q')), ratePerSecond: 10, maxBatch: 10 });
    await limiter.acquire(10);
    proxy.cut();
    await expect(limiter.acquire(10)).rejects.toThrow(/Valkey rate limit failed/);
    await state.close();
    await proxy.close();
  });
});

describe('a polling run and a backfill in two processes share the queue limit', () => {
  it('never exceed it together, even with the backfill asking for 5× more', async () => {
    const prefix = uniqueName('shared');
    const queueUrl = await createQueue();
    const config = path.join(tempDir(), 'c.yaml');
    writeFileSync(config, `state:\n  knownSetKey: ${prefix}:known\n  detectorKeyPrefix: "${prefix}:d:"\nenqueue:\n  rateLimit: 10\n`);
    const candidates = path.join(tempDir(), 'candidates.txt');
    writeFileSync(candidates, Array.from({ length: 40 }, (_, i) => `user-${String(i).padStart(4, '0')}`).join('\n'));
    const rules = path.join(tempDir(), 'rules.yaml');
    writeFileSync(rules, 'flag: consumer_graph_ingestion\nenabled: true\npercentage: 100\n');
    const users = path.join(tempDir(), 'users.txt');
    writeFileSync(users, Array.from({ length: 40 }, (_, i) => `backfill-${i}`).join('\n'));
    const env = { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl };

    const [detect, backfill] = await Promise.all([
      runCli(['detect', '--config', config, '--candidates', candidates, '--flags', rules, '--log-level', 'debug'], { env }),
      runCli(['backfill', '--config', config, '--user-file', users, '--rate-limit', '50', '--log-level', 'debug'], { env }),
    ]);
    expect(detect.code, detect.stderr).toBe(0);
    expect(backfill.code, backfill.stderr).toBe(0);
    const messages = await drainQueue(queueUrl);
    expect(userIdsOf(messages)).toHaveLength(80);

    const client = [...sendStarts(detect.stderr), ...sendStarts(backfill.stderr)];
    const server = messages.map((message) => ({ at: Number(message.Attributes?.SentTimestamp), count: 1 }));
    // Together: 10/s on average, never two batches above it at the server; each process started
    // its requests as soon as Valkey granted them.
    expect(achievedRate(client)).toBeLessThanOrEqual(10.2);
    expect(fullestWindow(server, 1000)).toBeLessThanOrEqual(20);
    expect(fullestWindow(client, 1000)).toBeLessThanOrEqual(10);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEndpoint, awsEnv, createQueue, drainQueue, userIdsOf, valkeyClient, valkeyUrl, waitFor } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

// `ff-detector run` as real processes against real Valkey and SQS.

const daemons = daemonsForTests(afterEach);

const users = (n: number) => Array.from({ length: n }, (_, i) => `user-${i}`);

function configFor(fixture: PollingFixture, options: { candidates: string; rules: string; rateLimit: number; schedule?: string; ttlMs?: number; shutdownMs?: number }): string {
  return [
    `candidates:\n  path: ${options.candidates}`,
    `flags:\n  rules: ${options.rules}`,
    `state:\n  knownSetKey: ${fixture.knownKey}\n  loadedKeyPrefix: "${fixture.loadedPrefix}"\n  detectorKeyPrefix: "${fixture.prefix}:detector:"`,
    `enqueue:\n  rateLimit: ${options.rateLimit}\n  budget: 0`,
    `daemon:\n  schedule: "${options.schedule ?? '0 0 1 1 *'}"\n  leaderTtlMs: ${options.ttlMs ?? 30000}\n  shutdownTimeoutMs: ${options.shutdownMs ?? 20000}`,
    // No backlog reads: a stalled SQS must hang the SendMessageBatch itself, which a shutdown waits
    // for (a backlog read is abandoned at once on cancel).
    'sqs:\n  requestTimeoutMs: 30000\n  maxAttempts: 1\n  maxBacklog: 0',
  ].join('\n');
}

async function startDaemon(configYaml: string, queueUrl: string, sqsEndpoint = awsEndpoint()): Promise<DaemonProcess> {
  const daemon = await DaemonProcess.start(configYaml, { ...awsEnv(sqsEndpoint), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl });
  daemons.push(daemon);
  return daemon;
}

describe('ff-detector run', () => {
  it('elects one leader among two replicas; when the leader is killed, the other takes over within the TTL', async () => {
    const fixture = new PollingFixture();
    const config = configFor(fixture, { candidates: fixture.writeCandidates(users(5)), rules: fixture.writeRules([]), rateLimit: 100, ttlMs: 1500 });
    const queueUrl = await createQueue();
    const [a, b] = [await startDaemon(config, queueUrl), await startDaemon(config, queueUrl)] as [DaemonProcess, DaemonProcess];
    await waitFor(async () => [(await a.status()).role, (await b.status()).role].includes('leader'), 'a leader');
    const roles = [(await a.status()).role, (await b.status()).role].sort();
    expect(roles).toEqual(['follower', 'leader']);
    const [leader, follower] = (await a.status()).role === 'leader' ? [a, b] : [b, a];
    expect((await follower.post('/runs')).status).toBe(409);

    leader.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(async () => (await follower.status()).role === 'leader', 'the follower to take over', 10_000);
    expect(Date.now() - killedAt).toBeLessThan(1500 + 1500); // TTL + one retry interval + slack
  });

  it('on SIGTERM mid-run, marks every user SQS accepted and none it did not, then exits 0', async () => {
    const fixture = new PollingFixture();
    const enabled = users(300);
    const config = configFor(fixture, { candidates: fixture.writeCandidates(enabled), rules: fixture.writeRules(enabled), rateLimit: 40 });
    const queueUrl = await createQueue();
    const daemon = await startDaemon(config, queueUrl);
    await waitFor(async () => (await daemon.status()).role === 'leader', 'leadership');
    expect((await fetch(`${daemon.admin}/readyz`)).status).toBe(200);
    expect((await daemon.post('/runs')).status).toBe(202);
    expect((await daemon.post('/runs')).status).toBe(409); // one run at a time
    const valkey = valkeyClient();
    await waitFor(async () => (await valkey.scard(fixture.knownKey)) >= 40, '40 users marked');
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    const marked = (await valkey.smembers(fixture.knownKey)).sort();
    const accepted = userIdsOf(await drainQueue(queueUrl)).sort();
    expect(marked.length).toBeLessThan(enabled.length);
    expect(marked).toEqual(accepted);
    const history = (await valkey.lrange(`${fixture.prefix}:detector:runs`, 0, -1)).map((entry) => JSON.parse(entry) as { status: string; enqueued: number });
    expect(history[0]).toMatchObject({ status: 'cancelled', enqueued: marked.length });
    expect(await valkey.exists(`${fixture.prefix}:detector:leader`)).toBe(0); // released
    await valkey.quit();
  });

  it('skips and counts a scheduled tick that finds a run in progress', async () => {
    const fixture = new PollingFixture();
    const enabled = users(60);
    const config = configFor(fixture, { candidates: fixture.writeCandidates(enabled), rules: fixture.writeRules(enabled), rateLimit: 10, schedule: '* * * * * *' });
    const queueUrl = await createQueue();
    const daemon = await startDaemon(config, queueUrl);
    const skipped = async () => Number(/ff_detector_skipped_ticks_total\{reason="busy"\} (\d+)/.exec(await (await fetch(`${daemon.admin}/metrics`)).text())?.[1] ?? 0);
    await waitFor(async () => (await skipped()) >= 2, 'two ticks skipped while the first run sends', 15_000);
    expect(daemon.log).toContain('schedule skipped: a run is in progress');
    expect((await daemon.status()).currentRun).not.toBeNull();
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });
});

describe('ff-detector run: a shutdown that cannot finish', () => {
  async function hangingSend(shutdownMs: number): Promise<{ daemon: DaemonProcess; proxy: TcpProxy }> {
    const fixture = new PollingFixture();
    const enabled = users(50);
    const config = configFor(fixture, { candidates: fixture.writeCandidates(enabled), rules: fixture.writeRules(enabled), rateLimit: 1000, shutdownMs });
    const proxy = await TcpProxy.start(awsEndpoint());
    proxy.stall(); // SQS accepts connections and never answers: the send batch hangs
    const daemon = await startDaemon(config, await createQueue(), proxy.url(awsEndpoint()));
    await waitFor(async () => (await daemon.status()).role === 'leader', 'leadership');
    expect((await daemon.post('/runs')).status).toBe(202);
    await waitFor(() => proxy.stalledBytes > 0, 'a SendMessageBatch to hang');
    return { daemon, proxy };
  }

  it('exits at once on a second signal', async () => {
    const { daemon, proxy } = await hangingSend(60_000);
    daemon.kill('SIGTERM');
    await waitFor(() => daemon.log.includes('SIGTERM: shutting down'), 'the shutdown to begin');
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(130);
    expect(daemon.log).toContain('SIGTERM again: exiting now');
    await proxy.close();
  });

  it('exits 1 when the shutdown deadline passes', async () => {
    const { daemon, proxy } = await hangingSend(1500);
    const signalled = Date.now();
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(1);
    expect(Date.now() - signalled).toBeLessThan(10_000);
    expect(daemon.log).toContain('shutdown took longer than 1500 ms');
    await proxy.close();
  });
});

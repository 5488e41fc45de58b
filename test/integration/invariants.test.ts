import { afterAll, describe, expect, it } from 'vitest';
import { createQueue, drainQueue, sqsClient, userIdsOf, valkeyClient, valkeyUrl, waitFor, awsEndpoint, VALKEY_TARGETS } from '../helpers/services.js';
import { PollingFixture } from '../helpers/polling.js';
import { tempDir } from '../helpers/files.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

// design.md section 2: each invariant, against real Valkey — a single node and a cluster — and a
// real SQS-compatible server.

const users = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `user-${from + i}`);
const sorted = (ids: Iterable<string>) => [...ids].sort();

describe.each(VALKEY_TARGETS)('against $name', (target) => {
  const valkey = target.client();
  afterAll(() => valkey.quit());
  const where = { valkey: target.url(), cluster: target.cluster };

  describe('invariant 1: nothing lost', () => {
    it('SQS unreachable mid-run: nobody marked who was not sent; the rerun completes', async () => {
      const fixture = new PollingFixture();
      const enabled = users(200);
      const candidates = fixture.writeCandidates([...enabled, ...users(100, 1000)]);
      const rules = fixture.writeRules(enabled);
      const queueUrl = await createQueue();
      const proxy = await TcpProxy.start(awsEndpoint());
      const viaProxy = sqsClient(proxy.url(awsEndpoint()), 1);

      const run = fixture.run({ ...where, candidates, rules, queueUrl, rateLimit: 50, sqs: viaProxy });
      await waitFor(async () => (await valkey.scard(fixture.knownKey)) >= 40, '40 users marked');
      proxy.cut();
      const failed = await run;
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatch(/SQS SendMessageBatch/);

      const firstDelivery = userIdsOf(await drainQueue(queueUrl));
      const marked = await valkey.smembers(fixture.knownKey);
      expect(marked.length).toBeLessThan(enabled.length);
      for (const id of marked) expect(firstDelivery).toContain(id); // marked ⇒ accepted by SQS
      expect(firstDelivery.length - marked.length).toBeLessThanOrEqual(10); // at most the batch in flight

      proxy.restore();
      const rerun = await fixture.run({ ...where, candidates, rules, queueUrl, rateLimit: 1000, sqs: viaProxy });
      expect(rerun.status).toBe('ok');
      const secondDelivery = userIdsOf(await drainQueue(queueUrl));
      expect(sorted(new Set([...firstDelivery, ...secondDelivery]))).toEqual(sorted(enabled));
      expect(sorted(await valkey.smembers(fixture.knownKey))).toEqual(sorted(enabled));
      expect(secondDelivery.filter((id) => marked.includes(id))).toEqual([]); // no resend of marked users
      viaProxy.destroy();
      await proxy.close();
    });

    it('a send that fails for good leaves the user un-marked for the next run', async () => {
      const fixture = new PollingFixture();
      const candidates = fixture.writeCandidates(users(5));
      const rules = fixture.writeRules(users(5));
      const missingQueue = (await createQueue()).replace(/[^/]+$/, 'deleted-queue');
      const summary = await fixture.run({ ...where, candidates, rules, queueUrl: missingQueue });
      expect(summary.status).toBe('failed');
      expect(await valkey.scard(fixture.knownKey)).toBe(0);
    });
  });

  describe('invariant 2: no flood', () => {
    it('never exceeds the rate in any 1-second window, and the budget carries over', async () => {
      const fixture = new PollingFixture();
      const enabled = users(75);
      const candidates = fixture.writeCandidates(enabled);
      const rules = fixture.writeRules(enabled);
      const queueUrl = await createQueue();
      const client = sqsClient();
      const sendTimes: Array<{ at: number; count: number }> = [];
      client.middlewareStack.add(
        (next) => async (args) => {
          const input = args.input as { Entries?: unknown[] };
          sendTimes.push({ at: performance.now(), count: input.Entries?.length ?? 0 });
          return next(args);
        },
        { step: 'initialize', name: 'recordSendTimes' },
      );

      const first = await fixture.run({ ...where, candidates, rules, queueUrl, rateLimit: 20, budget: 50, sqs: client });
      expect(first).toMatchObject({ status: 'ok', enqueued: 50, deferred: 25, budget: 50 });
      for (const end of sendTimes) {
        const inWindow = sendTimes.filter((s) => s.at > end.at - 1000 && s.at <= end.at).reduce((sum, s) => sum + s.count, 0);
        expect(inWindow).toBeLessThanOrEqual(20);
      }
      expect(await valkey.scard(fixture.knownKey)).toBe(50);

      const second = await fixture.run({ ...where, candidates, rules, queueUrl, rateLimit: 1000, budget: 50, sqs: client });
      expect(second).toMatchObject({ enqueued: 25, deferred: 0, alreadyKnown: 50 });
      expect(sorted(userIdsOf(await drainQueue(queueUrl)))).toEqual(sorted(enabled));
      client.destroy();
    });
  });

  describe('invariant 3: no duplicate work', () => {
    it('skips known and loaded users, marks loaded ones without a send, and a second run sends nothing', async () => {
      const fixture = new PollingFixture();
      const enabled = users(40);
      const candidates = fixture.writeCandidates([...enabled, ...users(40, 500)]);
      const rules = fixture.writeRules(enabled);
      const queueUrl = await createQueue();
      await valkey.sadd(fixture.knownKey, 'user-0', 'user-1');
      await valkey.set(`${fixture.loadedPrefix}user-2`, '1', 'EX', 600);
      await valkey.set(`${fixture.loadedPrefix}user-3`, '1', 'EX', 600);

      const first = await fixture.run({ ...where, candidates, rules, queueUrl });
      expect(first).toMatchObject({ status: 'ok', enabled: 40, alreadyKnown: 2, alreadyLoaded: 2, enqueued: 36, disabled: 40 });
      const sent = userIdsOf(await drainQueue(queueUrl));
      expect(sorted(sent)).toEqual(sorted(enabled.slice(4)));
      expect(await valkey.sismember(fixture.knownKey, 'user-2')).toBe(1);

      const second = await fixture.run({ ...where, candidates, rules, queueUrl });
      expect(second).toMatchObject({ status: 'ok', enqueued: 0, alreadyKnown: 40 });
      expect(await drainQueue(queueUrl)).toEqual([]);
    });
  });

  describe('invariant 4: bounded memory', () => {
    it('streams candidates, keeping the users to send beyond the memory cap on disk; nothing is sent before the input ends', async () => {
      const fixture = new PollingFixture();
      const { mkfifoSync } = await import('../helpers/fifo.js');
      const fifo = mkfifoSync(fixture.dir, 'candidates.fifo');
      const rules = fixture.writeRules([], 'percentage: 100\n');
      const queueUrl = await createQueue();
      const { createWriteStream, readdirSync } = await import('node:fs');
      const spillDir = tempDir();
      const run = fixture.run({ ...where, candidates: fifo, rules, queueUrl, rateLimit: 20_000, enqueueConfig: { maxPendingInMemory: 1000, spillDir } });
      const writer = createWriteStream(fifo);
      writer.write(`${users(3000).join('\n')}\n`);
      // Read while still being written, and the users beyond the cap of 1,000 written to disk.
      await waitFor(() => readdirSync(spillDir).length > 0, 'users spilled to disk before the input ended');
      expect(await valkey.scard(fixture.knownKey)).toBe(0); // the scan ends before the first send
      writer.end(`${users(3000).join('\n')}\n${users(2000, 3000).join('\n')}\n`);
      const summary = await run;
      expect(summary.error).toBeNull();
      expect(summary).toMatchObject({ status: 'ok', candidates: 8000, duplicates: 3000, enqueued: 5000 });
      const sent = userIdsOf(await drainQueue(queueUrl));
      expect(sent).toHaveLength(5000);
      expect(new Set(sent).size).toBe(5000); // a user listed twice is enqueued once
      expect(readdirSync(spillDir)).toEqual([]); // the spill file is removed
    });
  });

  describe('invariant 5: no overlap', () => {
    it('runs one polling run at a time; a run that finds one in progress is skipped', async () => {
      const fixture = new PollingFixture();
      const enabled = users(30);
      const candidates = fixture.writeCandidates(enabled);
      const rules = fixture.writeRules(enabled);
      const queueUrl = await createQueue();
      const slow = fixture.run({ ...where, candidates, rules, queueUrl, rateLimit: 10 });
      await waitFor(async () => (await valkey.scard(fixture.knownKey)) > 0, 'the first run to send');
      const overlapping = await fixture.run({ ...where, candidates, rules, queueUrl });
      expect(overlapping.status).toBe('skipped');
      expect(overlapping.error).toContain('lock');
      expect((await slow).status).toBe('ok');
      expect((await fixture.run({ ...where, candidates, rules, queueUrl })).status).toBe('ok'); // released after the run
      expect(userIdsOf(await drainQueue(queueUrl))).toHaveLength(30);
    });
  });

  describe('invariant 6: re-enable is re-detected', () => {
    it('forgets a user who is disabled and enqueues them again when re-enabled', async () => {
      const fixture = new PollingFixture();
      const candidates = fixture.writeCandidates(users(10));
      const queueUrl = await createQueue();
      const on = fixture.writeRules(['user-1', 'user-2']);
      const off = fixture.writeRules(['user-2']);

      expect(await fixture.run({ ...where, candidates, rules: on, queueUrl })).toMatchObject({ enqueued: 2 });
      expect(await fixture.run({ ...where, candidates, rules: off, queueUrl })).toMatchObject({ enqueued: 0, forgotten: 1 });
      expect(await valkey.sismember(fixture.knownKey, 'user-1')).toBe(0);
      expect(await fixture.run({ ...where, candidates, rules: on, queueUrl })).toMatchObject({ enqueued: 1, alreadyKnown: 1 });
      expect(userIdsOf(await drainQueue(queueUrl)).filter((id) => id === 'user-1')).toHaveLength(2);
    });
  });
});

// A proxy cannot stand in front of a cluster (the client connects to each node it discovers): the
// cluster's loss of a node is tested by failover in valkey-cluster.test.ts.
describe('invariant 1 on a single node: Valkey lost mid-run', () => {
  const valkey = valkeyClient();
  afterAll(() => valkey.quit());
  it('Valkey lost mid-run: the run fails cleanly and nothing is marked that was not sent', async () => {
    const fixture = new PollingFixture();
    const enabled = users(300);
    const candidates = fixture.writeCandidates(enabled);
    const rules = fixture.writeRules(enabled);
    const queueUrl = await createQueue();
    const proxy = await TcpProxy.start(valkeyUrl());

    const run = fixture.run({ candidates, rules, queueUrl, rateLimit: 50, valkey: proxy.url(valkeyUrl()) });
    await waitFor(async () => (await valkey.scard(fixture.knownKey)) >= 30, '30 users marked');
    proxy.cut();
    const summary = await run;
    expect(summary.status).toBe('failed');
    expect(summary.error).toMatch(/Valkey/);
    const sent = userIdsOf(await drainQueue(queueUrl));
    for (const id of await valkey.smembers(fixture.knownKey)) expect(sent).toContain(id);
    await proxy.close();
  });
});

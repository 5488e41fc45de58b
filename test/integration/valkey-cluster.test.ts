import { afterEach, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/pipeline/summary.js';
import { PollingFixture } from '../helpers/polling.js';
import { PrivateCluster, tagInSlot } from '../helpers/private-cluster.js';
import { createQueue, drainQueue, uniqueName, userIdsOf, valkeyClusterClient, waitFor } from '../helpers/services.js';

// Faults of a Valkey cluster mid-run, each on a cluster of its own: the run completes or fails
// cleanly, the next run finishes the job, and no user is lost or marked without a message.
// Replication is asynchronous, so a failover may lose an acknowledged SADD: that user is sent
// again (a duplicate, counted and bounded), never lost.

const users = (n: number) => Array.from({ length: n }, (_, i) => `user-${i}`);

let cluster: PrivateCluster | undefined;
afterEach(() => cluster?.stop());

/** A detection run on the cluster; `fault` strikes once `strikeAt` users are marked. */
async function runThrough(fixture: PollingFixture, fault: () => Promise<void>, strikeAt: number): Promise<{ during: RunSummary; after: RunSummary; delivered: string[]; known: string[]; enabled: string[] }> {
  const seed = (cluster as PrivateCluster).url();
  const check = valkeyClusterClient(seed);
  const enabled = users(500);
  const candidates = fixture.writeCandidates(enabled);
  const rules = fixture.writeRules(enabled);
  const queueUrl = await createQueue();
  const where = { valkey: seed, cluster: true, candidates, rules, queueUrl };
  const running = fixture.run({ ...where, rateLimit: 100 });
  await waitFor(async () => (await check.scard(fixture.knownKey).catch(() => 0)) >= strikeAt, `${strikeAt} users marked`);
  await fault();
  const during = await running;
  await (cluster as PrivateCluster).waitUntilHealthy();
  // A run that failed with its primary may not have released its lock (replicated before the
  // failover): the next run goes once the lock expired, as the next scheduled one would.
  const lock = `${fixture.prefix}:detector:lock:polling`;
  await waitFor(async () => (await check.exists(lock).catch(() => 1)) === 0, 'the failed run\'s lock to expire', 45_000);
  const after = await fixture.run({ ...where, valkey: (cluster as PrivateCluster).url(), rateLimit: 1000 });
  const delivered = userIdsOf(await drainQueue(queueUrl));
  const known = await check.smembers(fixture.knownKey); // the client follows the cluster to the new primary
  check.disconnect();
  return { during, after, delivered, known, enabled };
}

function expectNothingLost(outcome: Awaited<ReturnType<typeof runThrough>>, duplicateBound: number): void {
  const { during, after, delivered, known, enabled } = outcome;
  expect(['ok', 'failed']).toContain(during.status); // completes, or fails cleanly
  expect(after.status).toBe('ok'); // the next run finishes the job
  const sent = new Set(delivered);
  expect(enabled.filter((id) => !sent.has(id))).toEqual([]); // lost: none
  expect(known.filter((id) => !sent.has(id))).toEqual([]); // marked without a message: none
  expect(new Set(known)).toEqual(new Set(enabled));
  expect(delivered.length - sent.size).toBeLessThanOrEqual(duplicateBound); // duplicates, bounded
}

describe('Valkey cluster: faults mid-run lose no user', () => {
  it('a failover: the primary holding the known set is killed and its replica promoted', async () => {
    cluster = await PrivateCluster.start(18101);
    // Slot 0 belongs to the first node, the run's seed: the killed primary is the seed itself.
    const fixture = new PollingFixture(tagInSlot(0, uniqueName('failover').replace(/-/g, '')));
    const outcome = await runThrough(
      fixture,
      async () => {
        const primary = await (cluster as PrivateCluster).primaryOf(fixture.knownKey);
        (cluster as PrivateCluster).kill(primary);
      },
      100,
    );
    // The batches in flight at the kill, and writes the replica had not received yet.
    expectNothingLost(outcome, 30);
  }, 120_000);

  it('a slot migration: the known set\'s slot moves to another primary while the run writes to it', async () => {
    cluster = await PrivateCluster.start(18111);
    // The tag's slot is the first of its primary's range, which a reshard moves first.
    const fixture = new PollingFixture(tagInSlot(0, 'reshard'));
    let movedTo = 0;
    const outcome = await runThrough(
      fixture,
      async () => {
        const from = await (cluster as PrivateCluster).primaryOf(fixture.knownKey);
        movedTo = (await (cluster as PrivateCluster).primaries()).find((port) => port !== from) as number;
        await (cluster as PrivateCluster).reshard(from, movedTo, 20);
      },
      100,
    );
    expect(await (cluster as PrivateCluster).primaryOf(fixture.knownKey)).toBe(movedTo);
    expectNothingLost(outcome, 10);
  }, 120_000);
});

import { afterEach, describe, expect, it } from 'vitest';
import { ValkeyFeedStore, isNewer, versionTag, type FeedStore, type LiveFlagState, type LiveVersion, type RunTrigger } from '../../src/feeds/live-state.js';
import { MemoryFeedStore } from '../../src/feeds/memory-feed-store.js';
import { ValkeyConnection } from '../../src/state/valkey/connection.js';
import { VALKEY_TARGETS, uniqueName } from '../helpers/services.js';

// Issue 15: what a feed keeps per flag — the live state (versioned, so an older message from
// another partition or a replay never overwrites a newer one), the pending users, the re-run flag
// and the shadow record — in Valkey on a single node and on a cluster, and in memory with the same
// semantics.

const FLAG = 'consumer_graph_ingestion';
/** Versions at production sizes: a millisecond timestamp, offsets × MAX_DOCUMENTS_PER_MESSAGE (beyond 2^32). */
const T0 = 1_760_000_000_000;
const OFFSET0 = 4_300_000_000_000;
const version = (at: number, partition: number, offset: number): LiveVersion => ({ at: T0 + at, partition, offset: OFFSET0 + offset });

const state = (v: LiveVersion, users: string[], extra: Partial<LiveFlagState> = {}): LiveFlagState => ({
  flag: FLAG,
  version: v,
  enabled: true,
  percentage: null,
  users,
  complete: true,
  removed: [],
  rulesDigest: 'rules-1',
  bucketingDigest: 'bucketing-1',
  updatedAt: new Date(v.at).toISOString(),
  ...extra,
});

const trigger = (reason: string, rebucketing = false): RunTrigger => ({ reason, rebucketing, at: new Date(T0).toISOString() });
const users = (count: number, prefix = 'user') => Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
const sorted = (values: readonly string[]) => [...values].sort();
const byUser = (a: { user: string }, b: { user: string }) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0);

describe('isNewer', () => {
  it('orders by time, then partition, then offset', () => {
    expect(isNewer({ at: 2, partition: 0, offset: 0 }, { at: 1, partition: 9, offset: 9 })).toBe(true);
    expect(isNewer({ at: 1, partition: 1, offset: 0 }, { at: 1, partition: 0, offset: 9 })).toBe(true);
    expect(isNewer({ at: 1, partition: 0, offset: 5 }, { at: 1, partition: 0, offset: 5 })).toBe(false);
    expect(isNewer({ at: 1, partition: 0, offset: 4 }, { at: 1, partition: 0, offset: 5 })).toBe(false);
  });

  it('tags a version without exponent or rounding at production sizes', () => {
    expect(versionTag(version(5, 3, 7))).toBe(`${T0 + 5}:3:${OFFSET0 + 7}`);
  });
});

/**
 * The semantics every FeedStore must have. `open` gives a store with nothing stored (a fresh
 * prefix or a fresh instance) for each test.
 */
function describeFeedStoreSemantics(open: () => Promise<FeedStore>): void {
  describe('commit: the version', () => {
    it('keeps the newest state: an older message from another partition or a replay is stale', async () => {
      const store = await open();
      expect(await store.read(FLAG)).toBeNull();
      const first = state(version(1000, 0, 10), ['user-1']);
      const second = state(version(2000, 1, 3), ['user-1', 'user-2'], { complete: false, removed: ['user-0'], rulesDigest: null, bucketingDigest: 'b-2', percentage: 25, enabled: null });
      expect(await store.commit(FLAG, { state: first, base: null, pending: ['user-1'], trigger: null })).toBe('applied');
      expect(await store.read(FLAG)).toEqual(first);
      expect(await store.commit(FLAG, { state: second, base: first.version, pending: ['user-2'], trigger: null })).toBe('applied');
      // Older, from another partition (even with the right base).
      expect(await store.commit(FLAG, { state: state(version(1500, 2, 99), ['user-9']), base: second.version, pending: ['user-9'], trigger: trigger('older') })).toBe('stale');
      // The same message again.
      expect(await store.commit(FLAG, { state: state(version(2000, 1, 3), ['user-7']), base: first.version, pending: ['user-7'], trigger: trigger('replay') })).toBe('stale');
      // Same time and partition, an earlier offset.
      expect(await store.commit(FLAG, { state: state(version(2000, 1, 2), ['user-8']), base: second.version, pending: ['user-8'], trigger: null })).toBe('stale');
      expect(await store.read(FLAG)).toEqual(second);
      expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['user-1', 'user-2']);
      expect(await store.peekTrigger(FLAG)).toBeNull();
    });

    it('orders versions of the same time by partition, then offset', async () => {
      const store = await open();
      const a = version(3000, 1, 50);
      const b = version(3000, 2, 0);
      const c = version(3000, 2, 1);
      expect(await store.commit(FLAG, { state: state(a, []), base: null, pending: [], trigger: null })).toBe('applied');
      expect(await store.commit(FLAG, { state: state(b, []), base: a, pending: [], trigger: null })).toBe('applied');
      expect(await store.commit(FLAG, { state: state(c, []), base: b, pending: [], trigger: null })).toBe('applied');
      expect(await store.commit(FLAG, { state: state(a, []), base: c, pending: [], trigger: null })).toBe('stale');
      expect((await store.read(FLAG))?.version).toEqual(c);
    });

    it('is a conflict when the base is not the stored version, or a base is given and nothing is stored', async () => {
      const store = await open();
      // A base, nothing stored.
      expect(await store.commit(FLAG, { state: state(version(1000, 0, 1), ['user-1']), base: version(900, 0, 0), pending: ['user-1'], trigger: trigger('ghost') })).toBe('conflict');
      expect(await store.read(FLAG)).toBeNull();
      expect(await store.pendingSize(FLAG)).toBe(0);
      expect(await store.peekTrigger(FLAG)).toBeNull();

      const stored = state(version(1000, 0, 1), ['user-1']);
      expect(await store.commit(FLAG, { state: stored, base: null, pending: [], trigger: null })).toBe('applied');
      // A newer change computed from another base: another writer got in between.
      expect(await store.commit(FLAG, { state: state(version(2000, 0, 2), ['user-2']), base: version(999, 0, 1), pending: ['user-2'], trigger: trigger('mismatch') })).toBe('conflict');
      // Another partition, the same time, the offset of the stored version: still not the stored version.
      expect(await store.commit(FLAG, { state: state(version(2000, 0, 2), ['user-2']), base: version(1000, 1, 1), pending: ['user-2'], trigger: null })).toBe('conflict');
      // Computed as if nothing were stored.
      expect(await store.commit(FLAG, { state: state(version(2000, 0, 2), ['user-3']), base: null, pending: ['user-3'], trigger: trigger('no base') })).toBe('conflict');
      expect(await store.read(FLAG)).toEqual(stored);
      expect(await store.pendingSize(FLAG)).toBe(0);
      expect(await store.peekTrigger(FLAG)).toBeNull();

      // Recomputed from the stored version, it applies.
      expect(await store.commit(FLAG, { state: state(version(2000, 0, 2), ['user-2']), base: stored.version, pending: ['user-2'], trigger: null })).toBe('applied');
      expect((await store.read(FLAG))?.users).toEqual(['user-2']);
    });
  });

  describe('commit: pending users and the re-run flag go with the state', () => {
    it('writes them with an applied commit and not with a stale or conflicting one', async () => {
      const store = await open();
      const first = state(version(1000, 0, 0), ['user-1', 'user-2']);
      expect(await store.commit(FLAG, { state: first, base: null, pending: ['user-1', 'user-2'], trigger: trigger('rules changed') })).toBe('applied');
      expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['user-1', 'user-2']);
      expect(await store.takeTrigger(FLAG)).toEqual(trigger('rules changed'));

      expect(await store.commit(FLAG, { state: state(version(500, 3, 0), ['user-3']), base: first.version, pending: ['user-3'], trigger: trigger('stale') })).toBe('stale');
      expect(await store.commit(FLAG, { state: state(version(2000, 0, 0), ['user-4']), base: version(1, 0, 0), pending: ['user-4'], trigger: trigger('conflict') })).toBe('conflict');
      expect(await store.pendingSize(FLAG)).toBe(2);
      expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['user-1', 'user-2']);
      expect(await store.peekTrigger(FLAG)).toBeNull();
      expect(await store.read(FLAG)).toEqual(first);

      // An applied commit adds to what is pending (a set: a user pending twice is once) and replaces the trigger.
      const second = state(version(2000, 0, 0), ['user-2', 'user-5']);
      expect(await store.commit(FLAG, { state: second, base: first.version, pending: ['user-2', 'user-5', 'user-5'], trigger: trigger('salt changed', true) })).toBe('applied');
      expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['user-1', 'user-2', 'user-5']);
      expect(await store.commit(FLAG, { state: state(version(3000, 0, 0), []), base: second.version, pending: [], trigger: trigger('seed changed', true) })).toBe('applied');
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('seed changed', true));
      // Without a trigger, the one set stays.
      expect(await store.commit(FLAG, { state: state(version(4000, 0, 0), []), base: version(3000, 0, 0), pending: [], trigger: null })).toBe('applied');
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('seed changed', true));
    });

    it('commits 20,000 pending users at once (in chunks)', async () => {
      const store = await open();
      const all = users(20_000);
      expect(await store.commit(FLAG, { state: state(version(1000, 0, 0), all), base: null, pending: all, trigger: trigger('big snapshot') })).toBe('applied');
      expect(await store.pendingSize(FLAG)).toBe(20_000);
      const peeked = await store.peekPending(FLAG, 20_000);
      expect(sorted(peeked)).toEqual(sorted(all));
      expect((await store.read(FLAG))?.users).toHaveLength(20_000);
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('big snapshot'));
      await store.settle(FLAG, all);
      expect(await store.pendingSize(FLAG)).toBe(0);
    });
  });

  describe('pending users', () => {
    it('peeks without removing; settle removes', async () => {
      const store = await open();
      const five = users(5);
      expect(await store.peekPending(FLAG, 10)).toEqual([]);
      expect(await store.pendingSize(FLAG)).toBe(0);
      expect(await store.commit(FLAG, { state: state(version(1000, 0, 0), five), base: null, pending: five, trigger: null })).toBe('applied');

      const peeked = await store.peekPending(FLAG, 3);
      expect(peeked).toHaveLength(3);
      expect(new Set(peeked).size).toBe(3);
      for (const user of peeked) expect(five).toContain(user);
      expect(await store.pendingSize(FLAG)).toBe(5);

      await store.settle(FLAG, peeked);
      expect(await store.pendingSize(FLAG)).toBe(2);
      expect(sorted(await store.peekPending(FLAG, 10))).toEqual(sorted(five.filter((user) => !peeked.includes(user))));
      await store.settle(FLAG, []);
      await store.settle(FLAG, ['never-pending']);
      expect(await store.pendingSize(FLAG)).toBe(2);
      await store.settle(FLAG, five);
      expect(await store.pendingSize(FLAG)).toBe(0);
      expect(await store.peekPending(FLAG, 10)).toEqual([]);
    });

    it('keeps each flag apart', async () => {
      const store = await open();
      const other = 'other_flag';
      expect(await store.commit(FLAG, { state: state(version(1000, 0, 0), ['user-1']), base: null, pending: ['user-1'], trigger: trigger('one') })).toBe('applied');
      expect(await store.read(other)).toBeNull();
      expect(await store.pendingSize(other)).toBe(0);
      expect(await store.takeTrigger(other)).toBeNull();
      expect(await store.commit(other, { state: { ...state(version(1000, 0, 0), ['user-2']), flag: other }, base: null, pending: ['user-2'], trigger: null })).toBe('applied');
      expect(await store.peekPending(FLAG, 10)).toEqual(['user-1']);
      expect(await store.peekPending(other, 10)).toEqual(['user-2']);
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('one'));
    });
  });

  describe('the re-run flag', () => {
    it('is taken once, then null', async () => {
      const store = await open();
      expect(await store.takeTrigger(FLAG)).toBeNull();
      expect(await store.commit(FLAG, { state: state(version(1000, 0, 0), []), base: null, pending: [], trigger: trigger('bucketing changed', true) })).toBe('applied');
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('bucketing changed', true));
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('bucketing changed', true));
      expect(await store.takeTrigger(FLAG)).toEqual(trigger('bucketing changed', true));
      expect(await store.takeTrigger(FLAG)).toBeNull();
      expect(await store.peekTrigger(FLAG)).toBeNull();
    });

    it('is restored when none is set, but a newer one is not overwritten', async () => {
      const store = await open();
      const first = state(version(1000, 0, 0), []);
      expect(await store.commit(FLAG, { state: first, base: null, pending: [], trigger: trigger('first') })).toBe('applied');
      const taken = await store.takeTrigger(FLAG);
      expect(taken).toEqual(trigger('first'));
      // No run could start: put it back.
      await store.restoreTrigger(FLAG, taken as RunTrigger);
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('first'));

      expect(await store.takeTrigger(FLAG)).toEqual(trigger('first'));
      // Meanwhile a newer change owes a run for its own reason.
      expect(await store.commit(FLAG, { state: state(version(2000, 0, 0), []), base: first.version, pending: [], trigger: trigger('second', true) })).toBe('applied');
      await store.restoreTrigger(FLAG, trigger('first'));
      expect(await store.takeTrigger(FLAG)).toEqual(trigger('second', true));
      expect(await store.takeTrigger(FLAG)).toBeNull();
    });
  });

  describe('the shadow record', () => {
    it('keeps the first time a user was recorded; takeShadow returns the times and removes them', async () => {
      const store = await open();
      expect(await store.shadowSize(FLAG)).toBe(0);
      expect(await store.takeShadow(FLAG, [])).toEqual([]);
      await store.recordShadow(FLAG, [], T0);
      await store.recordShadow(FLAG, ['user-a', 'user-b'], T0 + 1000);
      await store.recordShadow(FLAG, ['user-b', 'user-c'], T0 + 2000);
      expect(await store.shadowSize(FLAG)).toBe(3);

      expect(await store.takeShadow(FLAG, ['user-a', 'user-b', 'user-c', 'user-d'])).toEqual([T0 + 1000, T0 + 1000, T0 + 2000, null]);
      expect(await store.shadowSize(FLAG)).toBe(0);
      // Matched once: not again.
      expect(await store.takeShadow(FLAG, ['user-a', 'user-b', 'user-c'])).toEqual([null, null, null]);

      // Taken, a user is recorded afresh.
      await store.recordShadow(FLAG, ['user-a'], T0 + 3000);
      // A user named twice in one call gets its time twice (read, then removed).
      expect(await store.takeShadow(FLAG, ['user-a', 'user-a'])).toEqual([T0 + 3000, T0 + 3000]);
      expect(await store.shadowSize(FLAG)).toBe(0);
    });

    it('takes 20,000 users at once', async () => {
      const store = await open();
      const all = users(20_000);
      await store.recordShadow(FLAG, all, T0);
      expect(await store.shadowSize(FLAG)).toBe(20_000);
      const times = await store.takeShadow(FLAG, [...all, 'never-recorded']);
      expect(times).toHaveLength(20_001);
      expect(times.slice(0, 20_000).every((time) => time === T0)).toBe(true);
      expect(times[20_000]).toBeNull();
      expect(await store.shadowSize(FLAG)).toBe(0);
    });

    it('takeShadowBefore returns and removes only the entries older than the cut', async () => {
      const store = await open();
      expect(await store.takeShadowBefore(FLAG, T0)).toEqual([]);
      await store.recordShadow(FLAG, ['old-1', 'old-2'], T0 + 1000);
      await store.recordShadow(FLAG, ['new-1'], T0 + 5000);
      await store.recordShadow(FLAG, ['old-1'], T0 + 9000); // kept at its first time

      expect((await store.takeShadowBefore(FLAG, T0 + 5000)).sort(byUser)).toEqual([
        { user: 'old-1', atMs: T0 + 1000 },
        { user: 'old-2', atMs: T0 + 1000 },
      ]);
      expect(await store.shadowSize(FLAG)).toBe(1);
      expect(await store.takeShadowBefore(FLAG, T0 + 5000)).toEqual([]); // the cut itself is not before it
      expect(await store.takeShadow(FLAG, ['old-1', 'new-1'])).toEqual([null, T0 + 5000]);
    });

    it('takeShadowBefore over a large record (many scan pages) takes each older entry once', async () => {
      const store = await open();
      const old = users(3000, 'old');
      const recent = users(3000, 'new');
      await store.recordShadow(FLAG, old, T0 + 1000);
      await store.recordShadow(FLAG, recent, T0 + 2000);
      const taken = await store.takeShadowBefore(FLAG, T0 + 2000);
      expect(taken).toHaveLength(3000);
      expect(sorted(taken.map((entry) => entry.user))).toEqual(sorted(old));
      expect(taken.every((entry) => entry.atMs === T0 + 1000)).toBe(true);
      expect(await store.shadowSize(FLAG)).toBe(3000);
      expect(await store.takeShadowBefore(FLAG, T0 + 2001)).toHaveLength(3000);
      expect(await store.shadowSize(FLAG)).toBe(0);
    });
  });
}

describe('MemoryFeedStore (the same semantics in this process)', () => {
  describeFeedStoreSemantics(() => Promise.resolve(new MemoryFeedStore()));
});

describe.each(VALKEY_TARGETS)('ValkeyFeedStore on $name', (target) => {
  const connections: ValkeyConnection[] = [];
  afterEach(async () => {
    for (const connection of connections.splice(0)) await connection.close();
  });
  /** A new connection each time (a restart); the same prefix reads the same keys. */
  const open = async (prefix = `${uniqueName('feed')}:`) => {
    const connection = new ValkeyConnection({ url: target.url(), cluster: target.cluster, connectTimeoutMs: 2000 });
    connections.push(connection);
    await connection.call('PING', () => connection.client.ping());
    return new ValkeyFeedStore(connection, prefix);
  };

  describeFeedStoreSemantics(() => open());

  it('lets exactly one of 20 concurrent writers of the same version win, and only its users pend', async () => {
    const store = await open();
    const v = version(5000, 0, 7);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.commit(FLAG, { state: state(v, [`user-${i}`]), base: null, pending: [`user-${i}`], trigger: trigger(`writer-${i}`) })),
    );
    const winners = results.flatMap((result, i) => (result === 'applied' ? [i] : []));
    expect(winners).toHaveLength(1);
    expect(results.filter((result) => result === 'stale')).toHaveLength(19);
    const winner = winners[0] as number;
    expect((await store.read(FLAG))?.users).toEqual([`user-${winner}`]);
    expect(await store.peekPending(FLAG, 100)).toEqual([`user-${winner}`]);
    expect(await store.peekTrigger(FLAG)).toEqual(trigger(`writer-${winner}`));
  });

  it('lets exactly one of 20 concurrent writers from the same base win, the rest conflict or are stale', async () => {
    const store = await open();
    const base = version(1000, 0, 0);
    expect(await store.commit(FLAG, { state: state(base, []), base: null, pending: [], trigger: null })).toBe('applied');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.commit(FLAG, { state: state(version(2000, 0, i), [`user-${i}`]), base, pending: [`user-${i}`], trigger: null })),
    );
    const winners = results.flatMap((result, i) => (result === 'applied' ? [i] : []));
    expect(winners).toHaveLength(1);
    const winner = winners[0] as number;
    // Once the winner is stored, an older loser is stale and a newer one's base is gone.
    expect(results).toEqual(results.map((_, i) => (i < winner ? 'stale' : i === winner ? 'applied' : 'conflict')));
    expect((await store.read(FLAG))?.version).toEqual(version(2000, 0, winner));
    expect(await store.peekPending(FLAG, 100)).toEqual([`user-${winner}`]);
  });

  it('reads everything back after a restart (a new connection)', async () => {
    const prefix = `${uniqueName('feed')}:`;
    const before = await open(prefix);
    const stored = state(version(2000, 1, 3), ['user-1', 'user-2'], { complete: false, removed: ['user-0'] });
    expect(await before.commit(FLAG, { state: stored, base: null, pending: ['user-1', 'user-2'], trigger: trigger('rules changed') })).toBe('applied');
    await before.recordShadow(FLAG, ['user-1'], T0 + 1000);
    await (connections.pop() as ValkeyConnection).close();

    const after = await open(prefix);
    expect(await after.read(FLAG)).toEqual(stored);
    expect(sorted(await after.peekPending(FLAG, 10))).toEqual(['user-1', 'user-2']);
    expect(await after.peekTrigger(FLAG)).toEqual(trigger('rules changed'));
    expect(await after.takeShadow(FLAG, ['user-1'])).toEqual([T0 + 1000]);
    // Its version still guards: the same message replayed after the restart is stale.
    expect(await after.commit(FLAG, { state: stored, base: stored.version, pending: ['user-9'], trigger: null })).toBe('stale');
  });

  it('keeps its keys at <prefix>{feed:<flag>}:state|pending|rerun|shadow', async () => {
    const prefix = `${uniqueName('feed')}:`;
    const store = await open(prefix);
    const stored = state(version(1000, 0, 0), ['user-1']);
    expect(await store.commit(FLAG, { state: stored, base: null, pending: ['user-1'], trigger: trigger('why') })).toBe('applied');
    await store.recordShadow(FLAG, ['user-1'], T0);
    const client = target.client();
    try {
      const key = (part: string) => `${prefix}{feed:${FLAG}}:${part}`;
      expect(JSON.parse((await client.get(key('state'))) as string)).toEqual(stored);
      expect(await client.smembers(key('pending'))).toEqual(['user-1']);
      expect(JSON.parse((await client.get(key('rerun'))) as string)).toEqual(trigger('why'));
      expect(await client.hget(key('shadow'), 'user-1')).toBe(String(T0));
    } finally {
      client.disconnect();
    }
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import {
  isNewer,
  isStale,
  type CommitOutcome,
  type FeedStore,
  type LiveFlagState,
  type LiveStateCommit,
  type LiveVersion,
  type RunTrigger,
  type UsersChange,
} from '../../src/feeds/live-state.js';
import { ValkeyFeedStore } from '../../src/feeds/valkey-feed-store.js';
import { MemoryFeedStore } from '../../src/feeds/memory-feed-store.js';
import { ValkeyConnection } from '../../src/state/valkey/connection.js';
import { VALKEY_TARGETS, uniqueName } from '../helpers/services.js';

// Issue 15: what a feed keeps per flag — the live state (revisioned, so a commit planned from a
// state another writer has since replaced is a conflict), the explicit users and the users removed
// while the list is incomplete (sets beside it), the pending users, the re-run flag and the shadow
// record — in Valkey on a single node and on a cluster, and in memory with the same semantics.
// Staleness (replays, older snapshots) is the sink's decision (isStale), not the store's.

const FLAG = 'consumer_graph_ingestion';
/** Versions at production sizes: a millisecond timestamp, offsets × MAX_DOCUMENTS_PER_MESSAGE (beyond 2^32). */
const T0 = 1_760_000_000_000;
const OFFSET0 = 4_300_000_000_000;
const version = (at: number, partition: number, offset: number): LiveVersion => ({ at: T0 + at, partition, offset: OFFSET0 + offset });

/** The state at `revision` (what a commit from base `revision - 1` writes). */
const state = (revision: number, extra: Partial<LiveFlagState> = {}): LiveFlagState => {
  const v = extra.version ?? version(revision * 1000, 0, revision);
  return {
    flag: FLAG,
    revision,
    version: v,
    snapshotVersion: v,
    applied: { '0': v.offset },
    enabled: true,
    percentage: null,
    complete: true,
    rulesDigest: 'rules-1',
    bucketingDigest: 'bucketing-1',
    updatedAt: new Date(v.at).toISOString(),
    ...extra,
  };
};

const NONE: UsersChange = { kind: 'none' };
const replace = (list: readonly string[]): UsersChange => ({ kind: 'replace', users: list });
const staged = (stage: string, count: number): UsersChange => ({ kind: 'replace-staged', stage, count });
const STAGE_LOST = { result: 'stage-lost' };
const add = (list: readonly string[]): UsersChange => ({ kind: 'add', users: list });
const remove = (list: readonly string[], remember: boolean): UsersChange => ({ kind: 'remove', users: list, remember });

/** A commit from `base` writing the state at `base + 1`. */
const commitOf = (base: number, users: UsersChange, options: Partial<Omit<LiveStateCommit, 'base' | 'users'>> = {}): LiveStateCommit => ({
  state: state(base + 1),
  base,
  users,
  trigger: null,
  maxRemoved: null,
  ...options,
});

const applied = (added: number, removed: number): CommitOutcome => ({ result: 'applied', added, removed });
const held = (added: number, removed: number): CommitOutcome => ({ result: 'held', added, removed });
const CONFLICT: CommitOutcome = { result: 'conflict' };

const trigger = (reason: string, rebucketing = false): RunTrigger => ({ reason, rebucketing, at: new Date(T0).toISOString() });
const users = (count: number, prefix = 'user') => Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
const sorted = (values: readonly string[]) => [...values].sort();
const byUser = (a: { user: string }, b: { user: string }) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0);

/** The users of `universe` that are explicit and removed, sorted. */
async function members(store: FeedStore, universe: readonly string[], flag = FLAG): Promise<{ explicit: string[]; removed: string[] }> {
  const { explicit, removed } = await store.membership(flag, universe);
  return { explicit: sorted(universe.filter((_, i) => explicit[i])), removed: sorted(universe.filter((_, i) => removed[i])) };
}

/** Everything a commit may change, as seen through the store (users among `universe`). */
async function observe(store: FeedStore, universe: readonly string[]) {
  return {
    state: await store.read(FLAG),
    ...(await members(store, universe)),
    explicitCount: await store.explicitCount(FLAG),
    pending: sorted(await store.peekPending(FLAG, 100_000)),
    trigger: await store.peekTrigger(FLAG),
  };
}

describe('isNewer', () => {
  it('orders by time, then partition, then offset', () => {
    expect(isNewer({ at: 2, partition: 0, offset: 0 }, { at: 1, partition: 9, offset: 9 })).toBe(true);
    expect(isNewer({ at: 1, partition: 1, offset: 0 }, { at: 1, partition: 0, offset: 9 })).toBe(true);
    expect(isNewer({ at: 1, partition: 0, offset: 5 }, { at: 1, partition: 0, offset: 5 })).toBe(false);
    expect(isNewer({ at: 1, partition: 0, offset: 4 }, { at: 1, partition: 0, offset: 5 })).toBe(false);
  });

  it('orders versions at production sizes (offsets beyond 2^32)', () => {
    expect(isNewer(version(5, 3, 8), version(5, 3, 7))).toBe(true);
    expect(isNewer(version(5, 3, 7), version(5, 3, 8))).toBe(false);
    expect(isNewer(version(6, 0, 0), version(5, 3, 7))).toBe(true);
  });
});

describe('isStale', () => {
  // Partition 0 applied up to offset 100, partition 1 up to 50; the last snapshot came from partition 1.
  const stored = state(7, {
    version: version(3000, 0, 100),
    snapshotVersion: version(2000, 1, 50),
    applied: { '0': OFFSET0 + 100, '1': OFFSET0 + 50 },
  });

  it('is never stale with nothing stored', () => {
    expect(isStale(null, version(0, 0, 0), false)).toBe(false);
    expect(isStale(null, version(0, 0, 0), true)).toBe(false);
  });

  it('is stale at or below the offset applied on its own partition (a redelivery or a replay)', () => {
    expect(isStale(stored, version(3000, 0, 100), false)).toBe(true);
    expect(isStale(stored, version(9000, 0, 99), false)).toBe(true);
    expect(isStale(stored, version(9000, 1, 50), false)).toBe(true);
    expect(isStale(stored, version(9000, 0, 100), true)).toBe(true);
    expect(isStale(stored, version(3000, 0, 101), false)).toBe(false);
    expect(isStale(stored, version(2000, 1, 51), false)).toBe(false);
  });

  it('orders partitions independently: a delta on another partition is never stale, however old', () => {
    // Older than the stored version and than the last snapshot, with a lower offset than partition 0's.
    expect(isStale(stored, version(1, 2, 0), false)).toBe(false);
    expect(isStale(stored, version(1, 1, 51), false)).toBe(false);
    expect(isStale(stored, { at: T0, partition: 5, offset: 0 }, false)).toBe(false);
  });

  it('is stale for a snapshot not newer than the last snapshot, even on a partition with nothing applied', () => {
    // Older than the last snapshot, on a partition never seen.
    expect(isStale(stored, version(1999, 2, 0), true)).toBe(true);
    // The same time, a lower partition.
    expect(isStale(stored, version(2000, 0, 500), true)).toBe(true);
    // Newer than the last snapshot (though older than the stored version, a delta): applies.
    expect(isStale(stored, version(2500, 2, 0), true)).toBe(false);
    expect(isStale(stored, version(2000, 2, 0), true)).toBe(false);
    // The same snapshot time and partition, a later offset.
    expect(isStale(stored, version(2000, 1, 51), true)).toBe(false);
    // As a delta, the same older version is not stale.
    expect(isStale(stored, version(1999, 2, 0), false)).toBe(false);
  });

  it('with no snapshot applied yet, a snapshot is stale only by its own partition\'s offset', () => {
    const deltasOnly = { ...stored, snapshotVersion: null };
    expect(isStale(deltasOnly, version(1, 2, 0), true)).toBe(false);
    expect(isStale(deltasOnly, version(9000, 0, 100), true)).toBe(true);
    expect(isStale(deltasOnly, version(9000, 0, 101), true)).toBe(false);
  });
});

/**
 * The semantics every FeedStore must have. `open` gives a store with nothing stored (a fresh
 * prefix or a fresh instance) for each test.
 */
function describeFeedStoreSemantics(open: () => Promise<FeedStore>): void {
  describe('commit: the revision', () => {
    it('applies from base 0 when nothing is stored and reads the state back', async () => {
      const store = await open();
      expect(await store.read(FLAG)).toBeNull();
      expect(await store.explicitCount(FLAG)).toBe(0);
      const first = state(1, { complete: false, rulesDigest: null, percentage: 25, enabled: null, snapshotVersion: null, applied: { '0': OFFSET0 + 1, '3': OFFSET0 + 9 } });
      expect(await store.commit(FLAG, { ...commitOf(0, NONE), state: first })).toEqual(applied(0, 0));
      expect(await store.read(FLAG)).toEqual(first);
      // An empty record survives the round trip as an object.
      const second = state(2, { applied: {} });
      expect(await store.commit(FLAG, { ...commitOf(1, NONE), state: second })).toEqual(applied(0, 0));
      expect(await store.read(FLAG)).toEqual(second);
    });

    it('is a conflict unless the base is the stored revision (0: nothing stored), and a conflict writes nothing', async () => {
      const store = await open();
      const universe = users(4);
      // A base, nothing stored.
      expect(await store.commit(FLAG, commitOf(1, replace(['user-1']), { trigger: trigger('ghost') }))).toEqual(CONFLICT);
      expect(await observe(store, universe)).toEqual({ state: null, explicit: [], removed: [], explicitCount: 0, pending: [], trigger: null });

      expect(await store.commit(FLAG, commitOf(0, replace(['user-0', 'user-1'])))).toEqual(applied(2, 0));
      expect(await store.commit(FLAG, commitOf(1, remove(['user-1'], true)))).toEqual(applied(0, 1));
      await store.stage(FLAG, 'conflicted', ['user-3'], 60);
      const before = await observe(store, universe);
      expect(before.state?.revision).toBe(2);

      // Planned as if nothing were stored, from a revision since replaced, and from one never written —
      // with every kind of users change and a trigger.
      const changes = [replace(['user-2']), replace([]), staged('conflicted', 1), add(['user-2']), remove(['user-0'], true), remove(['user-0'], false), NONE];
      for (const base of [0, 1, 3]) {
        for (const change of changes) {
          expect(await store.commit(FLAG, commitOf(base, change, { trigger: trigger('conflict'), maxRemoved: 0 }))).toEqual(CONFLICT);
        }
      }
      expect(await observe(store, universe)).toEqual(before);

      // A conflicting replace-staged leaves its stage: the replan can still use it.
      expect(await store.commit(FLAG, commitOf(2, staged('conflicted', 1)))).toEqual(applied(1, 1));
      expect((await members(store, universe)).explicit).toEqual(['user-3']);
      expect((await store.read(FLAG))?.revision).toBe(3);
    });

    it('of 20 concurrent commits from the same base, exactly one applies, and only its users are written', async () => {
      const store = await open();
      expect(await store.commit(FLAG, commitOf(0, replace(['user-base'])))).toEqual(applied(1, 0));
      await store.settle(FLAG, ['user-base']);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.commit(FLAG, {
            ...commitOf(1, i % 2 === 0 ? replace([`user-${i}`]) : add([`user-${i}`]), { trigger: trigger(`writer-${i}`) }),
            state: state(2, { rulesDigest: `writer-${i}` }),
          }),
        ),
      );
      const winners = results.flatMap((result, i) => (result.result === 'applied' ? [i] : []));
      expect(winners).toHaveLength(1);
      expect(results.filter((result) => result.result === 'conflict')).toHaveLength(19);
      const winner = winners[0] as number;
      expect(await store.read(FLAG)).toEqual(state(2, { rulesDigest: `writer-${winner}` }));
      const universe = ['user-base', ...users(20)];
      const expected = winner % 2 === 0 ? [`user-${winner}`] : sorted(['user-base', `user-${winner}`]);
      expect((await members(store, universe)).explicit).toEqual(expected);
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(sorted(winner % 2 === 0 ? ['user-base', `user-${winner}`] : [`user-${winner}`]));
      expect(await store.peekTrigger(FLAG)).toEqual(trigger(`writer-${winner}`));
    });
  });

  describe('commit: replace', () => {
    it('pends exactly the users added and removed, and counts them', async () => {
      const store = await open();
      const universe = users(8);
      expect(await store.commit(FLAG, commitOf(0, replace(['user-0', 'user-1', 'user-2'])))).toEqual(applied(3, 0));
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(['user-0', 'user-1', 'user-2']);
      await store.settle(FLAG, ['user-0', 'user-1', 'user-2']);

      // Kept: 1, 2. Added: 3, 4 (4 named twice). Removed: 0.
      expect(await store.commit(FLAG, commitOf(1, replace(['user-1', 'user-2', 'user-3', 'user-4', 'user-4'])))).toEqual(applied(2, 1));
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(['user-0', 'user-3', 'user-4']);
      expect(await members(store, universe)).toEqual({ explicit: ['user-1', 'user-2', 'user-3', 'user-4'], removed: [] });
      expect(await store.explicitCount(FLAG)).toBe(4);

      // The same list again: nothing added or removed, nothing more pending.
      expect(await store.commit(FLAG, commitOf(2, replace(['user-4', 'user-3', 'user-2', 'user-1'])))).toEqual(applied(0, 0));
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(['user-0', 'user-3', 'user-4']);
      expect(await store.explicitCount(FLAG)).toBe(4);

      // A disjoint list: every old user removed, every new one added; pending is a set.
      expect(await store.commit(FLAG, commitOf(3, replace(['user-5', 'user-0'])))).toEqual(applied(2, 4));
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(['user-0', 'user-1', 'user-2', 'user-3', 'user-4', 'user-5']);
      expect(await members(store, universe)).toEqual({ explicit: ['user-0', 'user-5'], removed: [] });
      expect((await store.read(FLAG))?.revision).toBe(4);
    });

    it('an empty replace removes every user', async () => {
      const store = await open();
      const five = users(5);
      expect(await store.commit(FLAG, commitOf(0, replace(five)))).toEqual(applied(5, 0));
      await store.settle(FLAG, five);
      expect(await store.commit(FLAG, commitOf(1, replace([])))).toEqual(applied(0, 5));
      expect(await store.explicitCount(FLAG)).toBe(0);
      expect(await members(store, five)).toEqual({ explicit: [], removed: [] });
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(sorted(five));
      // Empty onto empty.
      expect(await store.commit(FLAG, commitOf(2, replace([])))).toEqual(applied(0, 0));
      expect(await store.explicitCount(FLAG)).toBe(0);
    });

    it('replaces and adds 20,000 users at once (in chunks)', async () => {
      const store = await open();
      const first = users(20_000);
      expect(await store.commit(FLAG, commitOf(0, replace(first), { trigger: trigger('big snapshot') }))).toEqual(applied(20_000, 0));
      expect(await store.explicitCount(FLAG)).toBe(20_000);
      expect(await store.pendingSize(FLAG)).toBe(20_000);
      expect(sorted(await store.peekPending(FLAG, 20_000))).toEqual(sorted(first));
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('big snapshot'));
      await store.settle(FLAG, first);
      expect(await store.pendingSize(FLAG)).toBe(0);

      // Half kept, 10,000 removed, 10,000 added.
      const second = [...first.slice(10_000), ...users(10_000, 'next')];
      expect(await store.commit(FLAG, commitOf(1, replace(second)))).toEqual(applied(10_000, 10_000));
      expect(await store.explicitCount(FLAG)).toBe(20_000);
      expect(sorted(await store.peekPending(FLAG, 30_000))).toEqual(sorted([...first.slice(0, 10_000), ...users(10_000, 'next')]));
      await store.settle(FLAG, [...first, ...second]);

      const more = users(20_000, 'more');
      expect(await store.commit(FLAG, commitOf(2, add(more)))).toEqual(applied(20_000, 0));
      expect(await store.explicitCount(FLAG)).toBe(40_000);
      expect(await store.pendingSize(FLAG)).toBe(20_000);
      const check = [...more.slice(0, 2500), ...first.slice(0, 2500)];
      const { explicit } = await store.membership(FLAG, check);
      expect(explicit).toEqual([...Array<boolean>(2500).fill(true), ...Array<boolean>(2500).fill(false)]);

      expect(await store.commit(FLAG, commitOf(3, remove(more, true)))).toEqual(applied(0, 20_000));
      expect(await store.explicitCount(FLAG)).toBe(20_000);
      expect((await store.membership(FLAG, more)).removed.every(Boolean)).toBe(true);
    });
  });

  describe('commit: replace-staged', () => {
    it('replaces with the staged users, counts and pends them, and consumes the stage', async () => {
      const store = await open();
      const universe = users(10);
      expect(await store.commit(FLAG, commitOf(0, replace(['user-0', 'user-1', 'user-2'])))).toEqual(applied(3, 0));
      await store.settle(FLAG, universe);

      // Staged in two loads (overlapping), then committed.
      await store.stage(FLAG, 'run-1', ['user-1', 'user-2', 'user-3'], 60);
      await store.stage(FLAG, 'run-1', ['user-3', 'user-4'], 60);
      expect(await store.commit(FLAG, commitOf(1, staged('run-1', 4), { trigger: trigger('staged') }))).toEqual(applied(2, 1));
      expect(await members(store, universe)).toEqual({ explicit: ['user-1', 'user-2', 'user-3', 'user-4'], removed: [] });
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(['user-0', 'user-3', 'user-4']);
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('staged'));

      // The stage is gone: the same stage again is refused (stage lost), and nothing changes.
      expect(await store.commit(FLAG, commitOf(2, staged('run-1', 4)))).toEqual(STAGE_LOST);
      expect(await store.explicitCount(FLAG)).toBe(4);
    });

    it('keeps stages apart and drops one on request', async () => {
      const store = await open();
      await store.stage(FLAG, 'a', ['user-a'], 60);
      await store.stage(FLAG, 'b', ['user-b'], 60);
      await store.dropStage(FLAG, 'a');
      await store.dropStage(FLAG, 'never-staged');
      // Dropped: lost (an empty stage of 0 users is an empty list).
      expect(await store.commit(FLAG, commitOf(0, staged('a', 1)))).toEqual(STAGE_LOST);
      expect(await store.commit(FLAG, commitOf(0, staged('a', 0)))).toEqual(applied(0, 0));
      expect(await store.commit(FLAG, commitOf(1, staged('b', 1)))).toEqual(applied(1, 0));
      expect(await members(store, ['user-a', 'user-b'])).toEqual({ explicit: ['user-b'], removed: [] });
    });

    it('replaces from a stage of 20,000 users', async () => {
      const store = await open();
      const all = users(20_000);
      for (let i = 0; i < all.length; i += 5000) await store.stage(FLAG, 'big', all.slice(i, i + 5000), 60);
      expect(await store.commit(FLAG, commitOf(0, staged('big', 20_000)))).toEqual(applied(20_000, 0));
      expect(await store.explicitCount(FLAG)).toBe(20_000);
      expect(await store.pendingSize(FLAG)).toBe(20_000);
    });
  });

  describe('commit: held (maxRemoved)', () => {
    it('holds a replace removing more than maxRemoved: counts returned, nothing changed', async () => {
      const store = await open();
      const universe = users(10);
      expect(await store.commit(FLAG, commitOf(0, replace(users(6)), { trigger: trigger('first') }))).toEqual(applied(6, 0));
      expect(await store.commit(FLAG, commitOf(1, remove(['user-5'], true)))).toEqual(applied(0, 1));
      await store.settle(FLAG, ['user-0', 'user-1']);
      const before = await observe(store, universe);
      expect(before.explicit).toEqual(users(5));
      expect(before.removed).toEqual(['user-5']);
      expect(before.pending).toEqual(['user-2', 'user-3', 'user-4', 'user-5']);

      // Removes 0, 1, 2 (3 > 2), adds 8, 9.
      expect(await store.commit(FLAG, commitOf(2, replace(['user-3', 'user-4', 'user-8', 'user-9']), { maxRemoved: 2, trigger: trigger('held') }))).toEqual(held(2, 3));
      await store.stage(FLAG, 'held', ['user-9'], 60);
      expect(await store.commit(FLAG, commitOf(2, staged('held', 1), { maxRemoved: 4, trigger: trigger('held') }))).toEqual(held(1, 5));
      expect(await store.commit(FLAG, commitOf(2, replace([]), { maxRemoved: 0 }))).toEqual(held(0, 5));
      expect(await observe(store, universe)).toEqual(before);
      // The held stage was deleted with it.
      expect(await store.commit(FLAG, commitOf(2, staged('held', 1), { maxRemoved: 0 }))).toEqual(STAGE_LOST);

      // At the limit it applies (and clears the removed set).
      expect(await store.commit(FLAG, commitOf(2, replace(['user-3', 'user-4', 'user-8', 'user-9']), { maxRemoved: 3 }))).toEqual(applied(2, 3));
      expect(await members(store, universe)).toEqual({ explicit: ['user-3', 'user-4', 'user-8', 'user-9'], removed: [] });
    });

    it('applies a replace that only adds under maxRemoved 0, and any removal without a limit', async () => {
      const store = await open();
      expect(await store.commit(FLAG, commitOf(0, replace(users(3)), { maxRemoved: 0 }))).toEqual(applied(3, 0));
      expect(await store.commit(FLAG, commitOf(1, replace(users(5)), { maxRemoved: 0 }))).toEqual(applied(2, 0));
      expect(await store.commit(FLAG, commitOf(2, replace([]), { maxRemoved: null }))).toEqual(applied(0, 5));
      // maxRemoved limits only a replace.
      expect(await store.commit(FLAG, commitOf(3, add(users(4)), { maxRemoved: 0 }))).toEqual(applied(4, 0));
      expect(await store.commit(FLAG, commitOf(4, remove(users(4), false), { maxRemoved: 0 }))).toEqual(applied(0, 4));
      expect(await store.explicitCount(FLAG)).toBe(0);
    });
  });

  describe('commit: add and remove', () => {
    it('add: users added, taken off the removed set, pended; remove with remember fills the removed set; a replace clears it', async () => {
      const store = await open();
      const universe = users(8);
      expect(await store.commit(FLAG, { ...commitOf(0, add(['user-0', 'user-1', 'user-2'])), state: state(1, { complete: false }) })).toEqual(applied(3, 0));
      expect(await members(store, universe)).toEqual({ explicit: ['user-0', 'user-1', 'user-2'], removed: [] });
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(['user-0', 'user-1', 'user-2']);
      await store.settle(FLAG, universe);

      // Removed while the list is incomplete: remembered (even a user never added).
      expect(await store.commit(FLAG, commitOf(1, remove(['user-1', 'user-7'], true)))).toEqual(applied(0, 2));
      expect(await members(store, universe)).toEqual({ explicit: ['user-0', 'user-2'], removed: ['user-1', 'user-7'] });
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(['user-1', 'user-7']);

      // Removed without remember: not in the removed set.
      expect(await store.commit(FLAG, commitOf(2, remove(['user-2'], false)))).toEqual(applied(0, 1));
      expect(await members(store, universe)).toEqual({ explicit: ['user-0'], removed: ['user-1', 'user-7'] });
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(['user-1', 'user-2', 'user-7']);

      // Added again: no longer removed.
      expect(await store.commit(FLAG, commitOf(3, add(['user-7'])))).toEqual(applied(1, 0));
      expect(await members(store, universe)).toEqual({ explicit: ['user-0', 'user-7'], removed: ['user-1'] });
      expect(await store.explicitCount(FLAG)).toBe(2);

      // Empty changes are fine.
      expect(await store.commit(FLAG, commitOf(4, add([])))).toEqual(applied(0, 0));
      expect(await store.commit(FLAG, commitOf(5, remove([], true)))).toEqual(applied(0, 0));

      // The whole list: the removed set goes.
      await store.settle(FLAG, universe);
      expect(await store.commit(FLAG, commitOf(6, replace(['user-0', 'user-7', 'user-3'])))).toEqual(applied(1, 0));
      expect(await members(store, universe)).toEqual({ explicit: ['user-0', 'user-3', 'user-7'], removed: [] });
      expect(sorted(await store.peekPending(FLAG, 100))).toEqual(['user-3']);
    });

    it('a replace-staged clears the removed set too', async () => {
      const store = await open();
      expect(await store.commit(FLAG, commitOf(0, remove(['user-1'], true)))).toEqual(applied(0, 1));
      await store.stage(FLAG, 'whole', ['user-2'], 60);
      expect(await store.commit(FLAG, commitOf(1, staged('whole', 1)))).toEqual(applied(1, 0));
      expect(await members(store, users(3))).toEqual({ explicit: ['user-2'], removed: [] });
    });
  });

  describe('membership', () => {
    it('answers for 5,000 users at once, in order', async () => {
      const store = await open();
      const all = users(5000);
      expect(await store.membership(FLAG, [])).toEqual({ explicit: [], removed: [] });
      // Even users explicit; every third one removed (remembered).
      expect(await store.commit(FLAG, commitOf(0, replace(all.filter((_, i) => i % 2 === 0))))).toEqual(applied(2500, 0));
      const gone = all.filter((_, i) => i % 3 === 0);
      expect(await store.commit(FLAG, commitOf(1, remove(gone, true)))).toEqual(applied(0, gone.length));
      const asked = [...all].reverse();
      const { explicit, removed } = await store.membership(FLAG, asked);
      expect(explicit).toHaveLength(5000);
      expect(removed).toHaveLength(5000);
      asked.forEach((user, j) => {
        const i = Number(user.slice('user-'.length));
        expect([explicit[j], removed[j]]).toEqual([i % 2 === 0 && i % 3 !== 0, i % 3 === 0]);
      });
      expect(await store.explicitCount(FLAG)).toBe(all.filter((_, i) => i % 2 === 0 && i % 3 !== 0).length);
      // Another flag knows none of them.
      const other = await store.membership('other_flag', all.slice(0, 10));
      expect(other).toEqual({ explicit: Array<boolean>(10).fill(false), removed: Array<boolean>(10).fill(false) });
    });
  });

  describe('pending users', () => {
    it('settles with tokens only the users not pended again since the tokens were read', async () => {
      const store = await open();
      expect(await store.commit(FLAG, commitOf(0, add(['user-1', 'user-2'])))).toEqual(applied(2, 0));
      const tokens = await store.pendingTokens(FLAG, ['user-1', 'user-2']);
      // user-1 is removed and added again while the pass sends: its token moves on.
      expect(await store.commit(FLAG, commitOf(1, remove(['user-1'], false)))).toEqual(applied(0, 1));
      expect(await store.commit(FLAG, commitOf(2, add(['user-1'])))).toEqual(applied(1, 0));
      expect(await store.settle(FLAG, ['user-1', 'user-2'], tokens)).toBe(1);
      expect(await store.peekPending(FLAG, 10)).toEqual(['user-1']);
      // A replace re-pends through its own token: earlier ones no longer match.
      const before = await store.pendingTokens(FLAG, ['user-1']);
      expect(await store.commit(FLAG, commitOf(3, replace(['user-1', 'user-3'])))).toEqual(applied(1, 1));
      expect(await store.settle(FLAG, ['user-1'], before)).toBe(0);
      const now = await store.pendingTokens(FLAG, ['user-1', 'user-2', 'user-3']);
      expect(await store.settle(FLAG, ['user-1', 'user-2', 'user-3'], now)).toBe(3);
      expect(await store.pendingSize(FLAG)).toBe(0);
    });

    it('peeks without removing; settle removes', async () => {
      const store = await open();
      const five = users(5);
      expect(await store.peekPending(FLAG, 10)).toEqual([]);
      expect(await store.pendingSize(FLAG)).toBe(0);
      expect(await store.commit(FLAG, commitOf(0, replace(five)))).toEqual(applied(5, 0));

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
      // Settled, they stay explicit users.
      expect(await store.explicitCount(FLAG)).toBe(5);
    });

    it('keeps each flag apart', async () => {
      const store = await open();
      const other = 'other_flag';
      expect(await store.commit(FLAG, commitOf(0, replace(['user-1']), { trigger: trigger('one') }))).toEqual(applied(1, 0));
      expect(await store.read(other)).toBeNull();
      expect(await store.pendingSize(other)).toBe(0);
      expect(await store.explicitCount(other)).toBe(0);
      expect(await store.takeTrigger(other)).toBeNull();
      // Its own revision: base 0 applies there.
      expect(await store.commit(other, { ...commitOf(0, add(['user-2'])), state: { ...state(1), flag: other } })).toEqual(applied(1, 0));
      expect(await store.peekPending(FLAG, 10)).toEqual(['user-1']);
      expect(await store.peekPending(other, 10)).toEqual(['user-2']);
      expect(await members(store, ['user-1', 'user-2'])).toEqual({ explicit: ['user-1'], removed: [] });
      expect(await members(store, ['user-1', 'user-2'], other)).toEqual({ explicit: ['user-2'], removed: [] });
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('one'));
    });
  });

  describe('the re-run flag', () => {
    it('is written with an applied commit only; one already owed keeps its reason and time (later changes do not postpone it)', async () => {
      const store = await open();
      expect(await store.commit(FLAG, commitOf(0, NONE, { trigger: trigger('rules changed') }))).toEqual(applied(0, 0));
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('rules changed'));
      expect(await store.commit(FLAG, commitOf(1, NONE, { trigger: trigger('salt changed', true) }))).toEqual(applied(0, 0));
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('rules changed'));
      expect(await store.commit(FLAG, commitOf(2, NONE))).toEqual(applied(0, 0));
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('rules changed'));
      expect(await store.takeTrigger(FLAG)).toEqual(trigger('rules changed'));
      expect(await store.commit(FLAG, commitOf(3, NONE, { trigger: trigger('salt changed', true) }))).toEqual(applied(0, 0));
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('salt changed', true));
      expect(await store.commit(FLAG, commitOf(0, NONE, { trigger: trigger('conflict') }))).toEqual(CONFLICT);
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('salt changed', true));
    });

    it('is taken once, then null', async () => {
      const store = await open();
      expect(await store.takeTrigger(FLAG)).toBeNull();
      expect(await store.commit(FLAG, commitOf(0, NONE, { trigger: trigger('bucketing changed', true) }))).toEqual(applied(0, 0));
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('bucketing changed', true));
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('bucketing changed', true));
      expect(await store.takeTrigger(FLAG)).toEqual(trigger('bucketing changed', true));
      expect(await store.takeTrigger(FLAG)).toBeNull();
      expect(await store.peekTrigger(FLAG)).toBeNull();
    });

    it('is restored when none is set, but a newer one is not overwritten', async () => {
      const store = await open();
      expect(await store.commit(FLAG, commitOf(0, NONE, { trigger: trigger('first') }))).toEqual(applied(0, 0));
      const taken = await store.takeTrigger(FLAG);
      expect(taken).toEqual(trigger('first'));
      // No run could start: put it back.
      await store.restoreTrigger(FLAG, taken as RunTrigger);
      expect(await store.peekTrigger(FLAG)).toEqual(trigger('first'));

      expect(await store.takeTrigger(FLAG)).toEqual(trigger('first'));
      // Meanwhile a newer change owes a run for its own reason.
      expect(await store.commit(FLAG, commitOf(1, NONE, { trigger: trigger('second', true) }))).toEqual(applied(0, 0));
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
  /** The raw client, to look at the keys themselves. */
  const withClient = async (check: (client: ReturnType<typeof target.client>) => Promise<void>) => {
    const client = target.client();
    try {
      await check(client);
    } finally {
      client.disconnect();
    }
  };
  const keyOf = (prefix: string) => (part: string) => `${prefix}{feed:${FLAG}}:${part}`;
  const TEMP_PARTS = ['incoming', 'added', 'gone'];

  describeFeedStoreSemantics(() => open());

  it('reads everything back after a restart (a new connection)', async () => {
    const prefix = `${uniqueName('feed')}:`;
    const before = await open(prefix);
    const stored = state(2, { complete: false, snapshotVersion: null, applied: { '1': OFFSET0 + 3, '4': OFFSET0 + 8 } });
    expect(await before.commit(FLAG, commitOf(0, add(['user-1', 'user-2'])))).toEqual(applied(2, 0));
    expect(await before.commit(FLAG, { ...commitOf(1, remove(['user-0'], true), { trigger: trigger('rules changed') }), state: stored })).toEqual(applied(0, 1));
    await before.recordShadow(FLAG, ['user-1'], T0 + 1000);
    await (connections.pop() as ValkeyConnection).close();

    const after = await open(prefix);
    expect(await after.read(FLAG)).toEqual(stored);
    expect(await members(after, users(3))).toEqual({ explicit: ['user-1', 'user-2'], removed: ['user-0'] });
    expect(await after.explicitCount(FLAG)).toBe(2);
    expect(sorted(await after.peekPending(FLAG, 10))).toEqual(['user-0', 'user-1', 'user-2']);
    expect(await after.peekTrigger(FLAG)).toEqual(trigger('rules changed'));
    expect(await after.takeShadow(FLAG, ['user-1'])).toEqual([T0 + 1000]);
    // Its revision still guards: a commit planned before the restart from an older revision conflicts.
    expect(await after.commit(FLAG, commitOf(1, add(['user-9'])))).toEqual(CONFLICT);
    expect(await after.commit(FLAG, commitOf(2, add(['user-9'])))).toEqual(applied(1, 0));
  });

  it('keeps its keys at <prefix>{feed:<flag>}:state|users|removed|pending|rerun|shadow, and no temporary key after a commit', async () => {
    const prefix = `${uniqueName('feed')}:`;
    const key = keyOf(prefix);
    const store = await open(prefix);
    expect(await store.commit(FLAG, commitOf(0, replace(['user-1', 'user-2'])))).toEqual(applied(2, 0));
    const stored = state(2);
    expect(await store.commit(FLAG, { ...commitOf(1, remove(['user-2'], true), { trigger: trigger('why') }), state: stored })).toEqual(applied(0, 1));
    await store.recordShadow(FLAG, ['user-1'], T0);
    await withClient(async (client) => {
      expect(JSON.parse((await client.get(key('state'))) as string)).toEqual(stored);
      expect(await client.smembers(key('users'))).toEqual(['user-1']);
      expect(await client.smembers(key('removed'))).toEqual(['user-2']);
      expect(sorted(await client.smembers(key('pending')))).toEqual(['user-1', 'user-2']);
      expect(JSON.parse((await client.get(key('rerun'))) as string)).toEqual(trigger('why'));
      expect(await client.hget(key('shadow'), 'user-1')).toBe(String(T0));
      for (const part of ['users', 'removed', 'pending', 'state', 'rerun']) expect(await client.ttl(key(part))).toBe(-1);
      for (const part of TEMP_PARTS) expect(await client.exists(key(part))).toBe(0);
    });
    // A replace clears the removed set and leaves no temporary key.
    expect(await store.commit(FLAG, commitOf(2, replace(['user-3'])))).toEqual(applied(1, 1));
    await withClient(async (client) => {
      expect(await client.smembers(key('users'))).toEqual(['user-3']);
      expect(await client.exists(key('removed'))).toBe(0);
      for (const part of TEMP_PARTS) expect(await client.exists(key(part))).toBe(0);
    });
  });

  it('replace-staged: the stage has a TTL, the users set it becomes has none, and the stage is gone', async () => {
    const prefix = `${uniqueName('feed')}:`;
    const key = keyOf(prefix);
    const store = await open(prefix);
    expect(await store.commit(FLAG, commitOf(0, replace(['user-0', 'user-1'])))).toEqual(applied(2, 0));
    await store.stage(FLAG, 'run-7', ['user-1', 'user-2'], 300);
    await store.stage(FLAG, 'run-7', ['user-3'], 300);
    await withClient(async (client) => {
      const ttl = await client.ttl(key('stage:run-7'));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
      expect(await client.ttl(key('users'))).toBe(-1);
    });
    expect(await store.commit(FLAG, commitOf(1, staged('run-7', 3)))).toEqual(applied(2, 1));
    await withClient(async (client) => {
      expect(sorted(await client.smembers(key('users')))).toEqual(['user-1', 'user-2', 'user-3']);
      expect(await client.ttl(key('users'))).toBe(-1);
      expect(await client.exists(key('stage:run-7'))).toBe(0);
      for (const part of TEMP_PARTS) expect(await client.exists(key(part))).toBe(0);
    });
    expect(await store.explicitCount(FLAG)).toBe(3);

    // dropStage deletes the key.
    await store.stage(FLAG, 'dropped', ['user-9'], 300);
    await store.dropStage(FLAG, 'dropped');
    await withClient(async (client) => {
      expect(await client.exists(key('stage:dropped'))).toBe(0);
    });
  });

  it('held: users, removed and pending untouched, and no temporary key or stage left', async () => {
    const prefix = `${uniqueName('feed')}:`;
    const key = keyOf(prefix);
    const store = await open(prefix);
    expect(await store.commit(FLAG, commitOf(0, replace(users(5)), { trigger: trigger('first') }))).toEqual(applied(5, 0));
    expect(await store.commit(FLAG, commitOf(1, remove(['user-4'], true)))).toEqual(applied(0, 1));
    const raw = async () => {
      let seen: unknown;
      await withClient(async (client) => {
        seen = {
          state: await client.get(key('state')),
          users: sorted(await client.smembers(key('users'))),
          removed: sorted(await client.smembers(key('removed'))),
          pending: sorted(await client.smembers(key('pending'))),
          rerun: await client.get(key('rerun')),
          usersTtl: await client.ttl(key('users')),
        };
      });
      return seen;
    };
    const before = await raw();

    expect(await store.commit(FLAG, commitOf(2, replace(['user-0', 'user-new']), { maxRemoved: 2, trigger: trigger('held') }))).toEqual(held(1, 3));
    await store.stage(FLAG, 'held', ['user-new'], 300);
    expect(await store.commit(FLAG, commitOf(2, staged('held', 1), { maxRemoved: 0, trigger: trigger('held') }))).toEqual(held(1, 4));
    expect(await raw()).toEqual(before);
    await withClient(async (client) => {
      for (const part of [...TEMP_PARTS, 'stage:held']) expect(await client.exists(key(part))).toBe(0);
    });
  });
});

// A large staged list is diffed a batch at a time before the commit script (SDIFFSTORE over
// millions of members would block Valkey for seconds): the same semantics, with every staged
// replace taking that path.
describe.each(VALKEY_TARGETS)('ValkeyFeedStore on $name, staged lists diffed outside the script', (target) => {
  const connections: ValkeyConnection[] = [];
  afterEach(async () => {
    for (const connection of connections.splice(0)) await connection.close();
  });
  describeFeedStoreSemantics(async () => {
    const connection = new ValkeyConnection({ url: target.url(), cluster: target.cluster, connectTimeoutMs: 2000 });
    connections.push(connection);
    await connection.call('PING', () => connection.client.ping());
    return new ValkeyFeedStore(connection, `${uniqueName('feed-diffed')}:`, 0);
  });
});

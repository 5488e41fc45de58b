import { describe, expect, it } from 'vitest';
import type { FeedChange, SnapshotChange } from '../../src/feeds/changes.js';
import { isStale, type CommitOutcome, type FeedStore, type LiveFlagState, type LiveStateCommit, type LiveVersion, type UsersChange } from '../../src/feeds/live-state.js';
import { LiveStateSink, type AppliedChange } from '../../src/feeds/live-state-sink.js';
import { MemoryFeedStore } from '../../src/feeds/memory-feed-store.js';
import { planChange } from '../../src/feeds/plan-change.js';
import { silentLogger } from '../../src/logger.js';
import { DetectorEventBus } from '../../src/observability/events.js';

// Issue 15, strategy B: how each change of the flag topic moves the live state, what it does to
// the explicit users and which full polling run it owes; then the store that commits it (the users
// live in sets beside the state) and the sink that reads, checks staleness, plans and commits.

const FLAG = 'consumer_graph_ingestion';
const NOW = new Date('2026-05-01T12:00:00.000Z');
const v = (at: number, partition = 0, offset = 0): LiveVersion => ({ at, partition, offset });

function snapshot(users: string[], extra: Partial<SnapshotChange> = {}, version?: LiveVersion): FeedChange {
  return { type: 'snapshot', flag: FLAG, position: null, users, enabled: true, percentage: 10, rulesDigest: 'rules-1', bucketingDigest: 'bucketing-1', ...extra, ...(version ? { version } : {}) };
}
const add = (users: string[], version?: LiveVersion): FeedChange => ({ type: 'add', flag: FLAG, position: null, users, ...(version ? { version } : {}) });
const remove = (users: string[], version?: LiveVersion): FeedChange => ({ type: 'remove', flag: FLAG, position: null, users, ...(version ? { version } : {}) });
const resync = (reason: string, version?: LiveVersion): FeedChange => ({ type: 'resync', flag: FLAG, position: null, reason, ...(version ? { version } : {}) });

/** A complete state as a whole snapshot leaves it (its users are in the store, not here). */
function complete(extra: Partial<LiveFlagState> = {}): LiveFlagState {
  return { flag: FLAG, revision: 4, version: v(1000), snapshotVersion: v(1000), applied: { '0': 0 }, enabled: true, percentage: 10, complete: true, rulesDigest: 'rules-1', bucketingDigest: 'bucketing-1', updatedAt: NOW.toISOString(), ...extra };
}

const sorted = (users: readonly string[]) => [...users].sort();

/** Whether each user is explicit, and removed while incomplete, as { user: [explicit, removed] }. */
async function membership(store: FeedStore, users: string[]): Promise<Record<string, [boolean, boolean]>> {
  const { explicit, removed } = await store.membership(FLAG, users);
  return Object.fromEntries(users.map((user, i) => [user, [explicit[i] === true, removed[i] === true]]));
}

describe('planChange: the first change', () => {
  it('a first snapshot: the whole list replaces the users, the state complete, a full run owed', () => {
    const plan = planChange(null, snapshot(['u2', 'u1', 'u1']), v(5, 3, 8), NOW);
    expect(plan.state).toEqual({
      flag: FLAG,
      revision: 1,
      version: v(5, 3, 8),
      snapshotVersion: v(5, 3, 8),
      applied: { '3': 8 },
      enabled: true,
      percentage: 10,
      complete: true,
      rulesDigest: 'rules-1',
      bucketingDigest: 'bucketing-1',
      updatedAt: NOW.toISOString(),
    });
    expect(plan.users).toEqual({ kind: 'replace', users: ['u2', 'u1'] });
    expect(plan.trigger).toMatchObject({ rebucketing: false, at: NOW.toISOString() });
    expect(plan.trigger?.reason).toContain('first change');
  });

  it('a first add: incomplete state, the users added (deduplicated), a full run owed', () => {
    const plan = planChange(null, add(['u1', 'u1']), v(5), NOW);
    expect(plan.state).toMatchObject({ revision: 1, complete: false, snapshotVersion: null, enabled: null, percentage: null, rulesDigest: null, bucketingDigest: null, applied: { '0': 0 } });
    expect(plan.users).toEqual({ kind: 'add', users: ['u1'] });
    expect(plan.trigger?.reason).toContain('first change');
  });

  it('a remove before any snapshot is remembered (it overrides the rules file); on a complete state it is not', () => {
    const first = planChange(null, remove(['u9', 'u3', 'u9']), v(5), NOW);
    expect(first.users).toEqual({ kind: 'remove', users: ['u9', 'u3'], remember: true });
    expect(first.state.complete).toBe(false);
    expect(first.trigger).not.toBeNull();
    const second = planChange(first.state, remove(['u4']), v(6, 0, 1), NOW);
    expect(second.users).toEqual({ kind: 'remove', users: ['u4'], remember: true });
    expect(second.trigger).toBeNull();
    expect(planChange(complete(), remove(['u4']), v(2000), NOW).users).toEqual({ kind: 'remove', users: ['u4'], remember: false });
  });

  it('a first resync owes its own run and changes no users', () => {
    const plan = planChange(null, resync('a gap in the topic'), v(5), NOW);
    expect(plan.trigger).toEqual({ reason: 'a gap in the topic', rebucketing: false, at: NOW.toISOString() });
    expect(plan.users).toEqual({ kind: 'none' });
    expect(plan.state).toMatchObject({ revision: 1, version: v(5), complete: false, snapshotVersion: null });
  });
});

describe('planChange: deltas on a known state', () => {
  it('an add: a new revision, the version and its partition\'s offset recorded, the others kept; no run owed', () => {
    const before = complete({ applied: { '0': 7, '1': 3 } });
    const plan = planChange(before, add(['u3', 'u2', 'u2']), v(900, 2, 9), NOW);
    expect(plan.users).toEqual({ kind: 'add', users: ['u3', 'u2'] });
    expect(plan.state).toEqual({ ...before, revision: 5, version: v(900, 2, 9), applied: { '0': 7, '1': 3, '2': 9 } });
    expect(plan.trigger).toBeNull();
  });

  it('a delta keeps the snapshot version; the applied offset of its partition moves up', () => {
    const plan = planChange(complete({ applied: { '0': 7 } }), remove(['u2']), v(2000, 0, 8), NOW);
    expect(plan.state).toMatchObject({ snapshotVersion: v(1000), version: v(2000, 0, 8), applied: { '0': 8 }, complete: true });
    expect(plan.users).toEqual({ kind: 'remove', users: ['u2'], remember: false });
  });

  it('a resync keeps the state and owes a run', () => {
    const before = complete();
    const plan = planChange(before, resync('unreadable message'), v(2000, 0, 1), NOW);
    expect(plan.state).toEqual({ ...before, revision: 5, version: v(2000, 0, 1), applied: { '0': 1 } });
    expect(plan.users).toEqual({ kind: 'none' });
    expect(plan.trigger?.reason).toBe('unreadable message');
  });
});

describe('planChange: snapshots on a known state', () => {
  it('the whole list replaces the users; nothing else changed, no run owed', () => {
    const plan = planChange(complete(), snapshot(['u2', 'u3']), v(2000, 1, 4), NOW);
    expect(plan.users).toEqual({ kind: 'replace', users: ['u2', 'u3'] });
    expect(plan.state).toMatchObject({ snapshotVersion: v(2000, 1, 4), version: v(2000, 1, 4), applied: { '0': 0, '1': 4 }, revision: 5 });
    expect(plan.trigger).toBeNull();
  });

  it('the first whole snapshot after deltas completes the state and owes a run', () => {
    const deltas = planChange(planChange(null, add(['u1', 'u2']), v(1), NOW).state, remove(['u2', 'u7']), v(2, 0, 1), NOW).state;
    expect(deltas).toMatchObject({ complete: false, revision: 2 });
    const plan = planChange(deltas, snapshot(['u1', 'u5']), v(3, 0, 2), NOW);
    expect(plan.state).toMatchObject({ complete: true, enabled: true, percentage: 10, revision: 3 });
    expect(plan.users).toEqual({ kind: 'replace', users: ['u1', 'u5'] });
    expect(plan.trigger?.reason).toContain('first whole snapshot');
  });

  it('switching on owes a run; switching off does not', () => {
    const on = planChange(complete({ enabled: false }), snapshot(['u1'], { enabled: true }), v(2000), NOW);
    expect(on.trigger?.reason).toBe('the flag was switched on');
    const off = planChange(complete({ enabled: true }), snapshot(['u1'], { enabled: false }), v(2000), NOW);
    expect(off.trigger).toBeNull();
    expect(off.state.enabled).toBe(false);
  });

  it('raising the percentage owes a run; lowering it does not', () => {
    const raised = planChange(complete({ percentage: 10 }), snapshot([], { percentage: 25 }), v(2000), NOW);
    expect(raised.trigger?.reason).toBe('the percentage rose from 10% to 25%');
    const lowered = planChange(complete({ percentage: 25 }), snapshot([], { percentage: 5 }), v(2000), NOW);
    expect(lowered.trigger).toBeNull();
    expect(lowered.state.percentage).toBe(5);
    const same = planChange(complete({ percentage: 25 }), snapshot([], { percentage: 25 }), v(2000), NOW);
    expect(same.trigger).toBeNull();
  });

  it('a snapshot that does not carry the switch or percentage keeps the known ones; a source without digests keeps the last', () => {
    const plan = planChange(complete({ enabled: true, percentage: 30 }), snapshot(['u1'], { enabled: null, percentage: null, rulesDigest: undefined, bucketingDigest: undefined }), v(2000), NOW);
    expect(plan.state).toMatchObject({ enabled: true, percentage: 30, rulesDigest: 'rules-1', bucketingDigest: 'bucketing-1' });
    expect(plan.trigger).toBeNull();
  });

  it('bucketing parameters that appear or disappear re-bucket too', () => {
    const gone = planChange(complete(), snapshot(['u1'], { bucketingDigest: null }), v(2000), NOW);
    expect(gone.trigger).toMatchObject({ rebucketing: true });
    expect(gone.state.bucketingDigest).toBeNull();
    const added = planChange(complete({ bucketingDigest: null }), snapshot(['u1'], { bucketingDigest: 'bucketing-1' }), v(2000), NOW);
    expect(added.trigger).toMatchObject({ rebucketing: true });
    const none = planChange(complete({ bucketingDigest: null }), snapshot(['u1'], { bucketingDigest: null }), v(2000), NOW);
    expect(none.trigger).toBeNull();
  });

  it('a new rules digest owes a run (segments, groups, rules), not a re-bucketing', () => {
    const plan = planChange(complete(), snapshot(['u1'], { rulesDigest: 'rules-2' }), v(2000), NOW);
    expect(plan.trigger).toMatchObject({ rebucketing: false });
    expect(plan.trigger?.reason).toContain('beyond its explicit users');
    expect(plan.state.rulesDigest).toBe('rules-2');
  });

  it('a new bucketing digest is a re-bucketing, even with the switch turned off at once', () => {
    const plan = planChange(complete(), snapshot(['u1'], { bucketingDigest: 'bucketing-2', enabled: false }), v(2000), NOW);
    expect(plan.trigger).toMatchObject({ rebucketing: true });
    expect(plan.trigger?.reason).toContain('bucketing parameters changed');
  });
});

describe('isStale', () => {
  const state = complete({ snapshotVersion: v(500, 1, 20), applied: { '0': 10, '1': 20 } });

  it('nothing stored: nothing is stale', () => {
    expect(isStale(null, v(0), false)).toBe(false);
    expect(isStale(null, v(0), true)).toBe(false);
  });

  it('a change at or below its own partition\'s applied offset is stale (a redelivery, a replay)', () => {
    expect(isStale(state, v(9999, 0, 10), false)).toBe(true);
    expect(isStale(state, v(9999, 0, 3), false)).toBe(true);
    expect(isStale(state, v(9999, 0, 10), true)).toBe(true);
    expect(isStale(state, v(9999, 0, 11), false)).toBe(false);
  });

  it('a delta is never stale because another partition is ahead', () => {
    expect(isStale(state, v(1, 0, 11), false)).toBe(false);
    expect(isStale(state, v(1, 7, 0), false)).toBe(false);
  });

  it('a snapshot not newer than the last snapshot is stale, from any partition', () => {
    expect(isStale(state, v(499, 2, 0), true)).toBe(true);
    expect(isStale(state, v(500, 0, 11), true)).toBe(true); // same time, lower partition
    expect(isStale(state, v(500, 2, 0), true)).toBe(false); // same time, higher partition
    expect(isStale(state, v(501, 0, 11), true)).toBe(false);
  });
});

/** Records what the sink reports. */
function sinkOn(store: FeedStore, clock: () => Date = () => NOW) {
  const events = new DetectorEventBus();
  const emitted: unknown[] = [];
  events.on('feed:applied', (change) => emitted.push(change));
  const applied: AppliedChange[] = [];
  const sink = new LiveStateSink(store, silentLogger(), events, (change) => applied.push(change), clock);
  return { sink, emitted, applied };
}

/** A MemoryFeedStore whose first `conflicts` commits answer 'conflict', as if another writer got there first. */
class ConflictingStore extends MemoryFeedStore {
  commits = 0;
  constructor(private conflicts: number) {
    super();
  }
  override commit(flag: string, commit: LiveStateCommit): Promise<CommitOutcome> {
    this.commits += 1;
    if (this.conflicts > 0) {
      this.conflicts -= 1;
      return Promise.resolve({ result: 'conflict' });
    }
    return super.commit(flag, commit);
  }
}

/** Every order of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('LiveStateSink over MemoryFeedStore', () => {
  it('commits the state, the users, the pending users and the trigger together', async () => {
    const store = new MemoryFeedStore();
    const { sink, emitted, applied } = sinkOn(store);
    await sink.apply(snapshot(['u1', 'u2'], {}, v(100, 0, 1)));
    expect(await store.read(FLAG)).toMatchObject({ revision: 1, complete: true, version: v(100, 0, 1), snapshotVersion: v(100, 0, 1), applied: { '0': 1 } });
    expect(await store.explicitCount(FLAG)).toBe(2);
    expect(await membership(store, ['u1', 'u2', 'u3'])).toEqual({ u1: [true, false], u2: [true, false], u3: [false, false] });
    expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['u1', 'u2']);
    expect((await store.takeTrigger(FLAG))?.reason).toContain('first change');
    expect(emitted).toEqual([{ flag: FLAG, type: 'snapshot', outcome: 'applied', added: 2, removed: 0, rebucketing: false }]);
    expect(applied).toEqual([expect.objectContaining({ outcome: 'applied', added: 2, removed: 0, trigger: expect.stringContaining('first change') })]);
  });

  it('adds on different partitions are all applied and all pending, whatever order they arrive in', async () => {
    const adds = [add(['a'], v(300, 0, 10)), add(['b'], v(100, 1, 5)), add(['c'], v(200, 2, 0))];
    for (const order of permutations(adds)) {
      const store = new MemoryFeedStore();
      const { sink, applied } = sinkOn(store);
      for (const change of order) await sink.apply(change);
      // The next message of partition 0, older than everything else by its timestamp.
      await sink.apply(add(['d'], v(50, 0, 11)));
      expect(applied.map((change) => change.outcome)).toEqual(['applied', 'applied', 'applied', 'applied']);
      expect(applied.map((change) => change.added)).toEqual([1, 1, 1, 1]);
      expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['a', 'b', 'c', 'd']);
      expect(await store.explicitCount(FLAG)).toBe(4);
      expect(await store.read(FLAG)).toMatchObject({ revision: 4, applied: { '0': 11, '1': 5, '2': 0 } });
    }
  });

  it('a redelivered message (same partition, same or lower offset) is stale: nothing changes, nothing pending', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied, emitted } = sinkOn(store);
    await sink.apply(snapshot(['u1'], {}, v(100, 0, 5)));
    await store.settle(FLAG, ['u1']);
    await store.takeTrigger(FLAG);

    await sink.apply(snapshot(['u1', 'x'], {}, v(100, 0, 5)));
    await sink.apply(add(['u2'], v(900, 0, 5)));
    await sink.apply(remove(['u1'], v(900, 0, 4)));
    await sink.apply(resync('again', v(900, 0, 1)));
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'stale', 'stale', 'stale', 'stale']);
    expect(applied.slice(1).every((change) => change.added === 0 && change.removed === 0 && change.trigger === null)).toBe(true);
    expect(emitted[1]).toEqual({ flag: FLAG, type: 'snapshot', outcome: 'stale', added: 0, removed: 0, rebucketing: false });
    expect(await store.read(FLAG)).toMatchObject({ revision: 1, version: v(100, 0, 5), applied: { '0': 5 } });
    expect(await membership(store, ['u1', 'u2', 'x'])).toEqual({ u1: [true, false], u2: [false, false], x: [false, false] });
    expect(await store.pendingSize(FLAG)).toBe(0);
    expect(await store.peekTrigger(FLAG)).toBeNull();
    // The next offset of the partition applies.
    await sink.apply(add(['u2'], v(90, 0, 6)));
    expect(applied.at(-1)).toMatchObject({ outcome: 'applied', added: 1 });
  });

  it('an older snapshot from another partition is stale; a newer one applies; deltas behind it still apply', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store);
    await sink.apply(snapshot(['u1'], {}, v(200, 1, 5)));
    await sink.apply(snapshot(['u2'], {}, v(150, 0, 9)));
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'stale']);
    expect(await membership(store, ['u1', 'u2'])).toEqual({ u1: [true, false], u2: [false, false] });
    // A delta on another partition, behind the snapshot in time, is not stale.
    await sink.apply(add(['u4'], v(100, 2, 1)));
    await sink.apply(snapshot(['u3'], {}, v(250, 0, 10)));
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'stale', 'applied', 'applied']);
    expect(await store.read(FLAG)).toMatchObject({ snapshotVersion: v(250, 0, 10), applied: { '0': 10, '1': 5, '2': 1 } });
    expect(await membership(store, ['u1', 'u3', 'u4'])).toEqual({ u1: [false, false], u3: [true, false], u4: [false, false] });
  });

  it('a replace snapshot pends exactly the users it added and removed, and reports their counts', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied, emitted } = sinkOn(store);
    await sink.apply(snapshot(['u1', 'u2', 'u3'], {}, v(100)));
    await store.settle(FLAG, await store.peekPending(FLAG, 10));
    await store.takeTrigger(FLAG);
    await sink.apply(snapshot(['u2', 'u3', 'u4', 'u5', 'u5'], {}, v(101, 0, 1)));
    expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['u1', 'u4', 'u5']);
    expect(applied[1]).toMatchObject({ outcome: 'applied', added: 2, removed: 1, trigger: null });
    expect(emitted[1]).toEqual({ flag: FLAG, type: 'snapshot', outcome: 'applied', added: 2, removed: 1, rebucketing: false });
    expect(await store.explicitCount(FLAG)).toBe(4);
    expect(await membership(store, ['u1', 'u4'])).toEqual({ u1: [false, false], u4: [true, false] });
  });

  it('a commit the store holds is reported held, with its counts, and changes nothing', async () => {
    /** A store that holds any replace removing more than one user (the sink itself sets no limit). */
    class GuardedStore extends MemoryFeedStore {
      override commit(flag: string, commit: LiveStateCommit): Promise<CommitOutcome> {
        return super.commit(flag, { ...commit, maxRemoved: 1 });
      }
    }
    const store = new GuardedStore();
    const { sink, applied, emitted } = sinkOn(store);
    await sink.apply(snapshot(['u1', 'u2', 'u3'], {}, v(100)));
    await store.settle(FLAG, await store.peekPending(FLAG, 10));
    await store.takeTrigger(FLAG);
    await sink.apply(snapshot(['u3', 'u4'], { bucketingDigest: 'bucketing-2' }, v(101, 0, 1)));
    expect(applied[1]).toMatchObject({ outcome: 'held', added: 1, removed: 2, trigger: null, rebucketing: false });
    expect(emitted[1]).toEqual({ flag: FLAG, type: 'snapshot', outcome: 'held', added: 1, removed: 2, rebucketing: false });
    expect(await store.read(FLAG)).toMatchObject({ revision: 1, version: v(100), bucketingDigest: 'bucketing-1' });
    expect(await store.explicitCount(FLAG)).toBe(3);
    expect(await store.pendingSize(FLAG)).toBe(0);
    expect(await store.peekTrigger(FLAG)).toBeNull();
  });

  it('a commit that meets a conflict reads again and retries', async () => {
    const store = new ConflictingStore(1);
    const { sink, applied } = sinkOn(store);
    await sink.apply(add(['u1'], v(100)));
    expect(store.commits).toBe(2);
    expect(applied).toEqual([expect.objectContaining({ outcome: 'applied', added: 1 })]);
    expect(await store.pendingSize(FLAG)).toBe(1);
  });

  it('a real concurrent write between read and commit (another revision) is a conflict, retried on the new state', async () => {
    // Another process commits right after this sink's first read: the sink's first commit conflicts.
    class RacingStore extends MemoryFeedStore {
      outcomes: CommitOutcome[] = [];
      armed = false;
      override async read(flag: string): Promise<LiveFlagState | null> {
        const state = await super.read(flag);
        if (this.armed) {
          this.armed = false;
          const other = planChange(state, add(['u2']), v(150, 1, 0), NOW);
          expect(await super.commit(flag, { state: other.state, base: state?.revision ?? 0, users: other.users, trigger: null, maxRemoved: null })).toEqual({ result: 'applied', added: 1, removed: 0 });
        }
        return state;
      }
      override async commit(flag: string, commit: LiveStateCommit): Promise<CommitOutcome> {
        const outcome = await super.commit(flag, commit);
        this.outcomes.push(outcome);
        return outcome;
      }
    }
    const store = new RacingStore();
    const { sink, applied } = sinkOn(store);
    await sink.apply(snapshot(['u1'], {}, v(100)));
    store.armed = true;
    await sink.apply(add(['u3'], v(200, 0, 1)));
    expect(store.outcomes.map((outcome) => outcome.result)).toEqual(['applied', 'conflict', 'applied']); // the snapshot, then the add's two attempts
    // Both writes survive: the retry planned from the state holding u2.
    expect(await store.read(FLAG)).toMatchObject({ revision: 3, applied: { '0': 1, '1': 0 } });
    expect(await membership(store, ['u1', 'u2', 'u3'])).toEqual({ u1: [true, false], u2: [true, false], u3: [true, false] });
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'applied']);
  });

  it('gives up, retryably, when every attempt conflicts', async () => {
    const store = new ConflictingStore(Number.POSITIVE_INFINITY);
    const { sink, applied } = sinkOn(store);
    await expect(sink.apply(add(['u1'], v(100)))).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE', retryable: true });
    expect(store.commits).toBe(20);
    expect(applied).toEqual([]);
    expect(await store.read(FLAG)).toBeNull();
  });

  it('switching off and lowering the percentage leave no trigger; raising it sets one', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store);
    await sink.apply(snapshot(['u1'], { enabled: true, percentage: 20 }, v(100)));
    await store.takeTrigger(FLAG);
    await sink.apply(snapshot(['u1'], { enabled: true, percentage: 5 }, v(101, 0, 1)));
    await sink.apply(snapshot(['u1'], { enabled: false, percentage: 5 }, v(102, 0, 2)));
    expect(await store.peekTrigger(FLAG)).toBeNull();
    expect(applied.slice(1).map((change) => [change.outcome, change.trigger])).toEqual([
      ['applied', null],
      ['applied', null],
    ]);
    await sink.apply(snapshot(['u1'], { enabled: false, percentage: 50 }, v(103, 0, 3)));
    expect(await store.peekTrigger(FLAG)).toMatchObject({ reason: 'the percentage rose from 5% to 50%', rebucketing: false });
  });

  it('a salt change reports a re-bucketing in the event and the trigger', async () => {
    const store = new MemoryFeedStore();
    const { sink, emitted } = sinkOn(store);
    await sink.apply(snapshot(['u1'], {}, v(100)));
    await store.takeTrigger(FLAG);
    await sink.apply(snapshot(['u1'], { bucketingDigest: 'bucketing-2' }, v(101, 0, 1)));
    expect(emitted[1]).toEqual({ flag: FLAG, type: 'snapshot', outcome: 'applied', added: 0, removed: 0, rebucketing: true });
    expect(await store.takeTrigger(FLAG)).toMatchObject({ rebucketing: true });
  });

  it('every user an add names is pending again, even one already explicit (the drain decides)', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store);
    await sink.apply(snapshot(['u1', 'u2'], {}, v(100)));
    await store.settle(FLAG, await store.peekPending(FLAG, 10));
    await sink.apply(add(['u2', 'u3', 'u3'], v(101, 0, 1)));
    expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['u2', 'u3']);
    expect(applied[1]).toMatchObject({ outcome: 'applied', added: 2, removed: 0 });
    expect(await store.explicitCount(FLAG)).toBe(3);
  });

  it('removes while incomplete are remembered until a whole snapshot; a later add takes one back out', async () => {
    const store = new MemoryFeedStore();
    const { sink } = sinkOn(store);
    await sink.apply(remove(['u5', 'u8'], v(100)));
    expect(await store.read(FLAG)).toMatchObject({ complete: false });
    expect(await membership(store, ['u5', 'u8'])).toEqual({ u5: [false, true], u8: [false, true] });
    await sink.apply(add(['u6', 'u8'], v(101, 0, 1)));
    expect(await membership(store, ['u6', 'u8'])).toEqual({ u6: [true, false], u8: [true, false] });
    await sink.apply(snapshot(['u6', 'u7'], {}, v(102, 0, 2)));
    expect(await store.read(FLAG)).toMatchObject({ complete: true });
    expect(await membership(store, ['u5', 'u6', 'u7', 'u8'])).toEqual({ u5: [false, false], u6: [true, false], u7: [true, false], u8: [false, false] });
    expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['u5', 'u6', 'u7', 'u8']);
    // The run owed since the first change keeps its reason and time (a later one does not postpone it).
    expect((await store.peekTrigger(FLAG))?.reason).toContain('the first change the feed applied');
    await store.takeTrigger(FLAG);
    await sink.apply(snapshot(['u6', 'u7'], { percentage: 50 }, v(102, 0, 3)));
    expect((await store.peekTrigger(FLAG))?.reason).toContain('percentage rose');
    // Complete now: a remove is not remembered.
    await sink.apply(remove(['u6'], v(103, 0, 4)));
    expect(await membership(store, ['u6'])).toEqual({ u6: [false, false] });
  });

  it('changes without a version are applied in arrival order (partition -1), even within one millisecond', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store, () => NOW); // a clock that does not move
    await sink.apply(add(['u1']));
    await sink.apply(add(['u2']));
    await sink.apply(remove(['u1']));
    await sink.apply(snapshot(['u2', 'u3']));
    await sink.apply(snapshot(['u4']));
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'applied', 'applied', 'applied', 'applied']);
    expect(await store.read(FLAG)).toMatchObject({ revision: 5, version: v(NOW.getTime(), -1, 5), snapshotVersion: v(NOW.getTime(), -1, 5), applied: { '-1': 5 } });
    expect(await membership(store, ['u1', 'u2', 'u3', 'u4'])).toEqual({ u1: [false, false], u2: [false, false], u3: [false, false], u4: [true, false] });
  });

  it('a change without a version applies after a stored version from a clock ahead of ours', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store, () => NOW);
    const ahead = NOW.getTime() + 60_000;
    await sink.apply(snapshot(['u1'], {}, v(ahead, 3, 7)));
    await sink.apply(remove(['u1']));
    await sink.apply(snapshot(['u2']));
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'applied', 'applied']);
    expect(await store.read(FLAG)).toMatchObject({ applied: { '3': 7, '-1': 2 }, version: { partition: -1, offset: 2 } });
    expect(await membership(store, ['u1', 'u2'])).toEqual({ u1: [false, false], u2: [true, false] });
  });
});

describe('MemoryFeedStore.commit', () => {
  const state = (revision: number) => complete({ revision });
  const commit = (base: number, users: UsersChange = { kind: 'none' }, extra: Partial<LiveStateCommit> = {}): LiveStateCommit => ({ state: state(base + 1), base, users, trigger: null, maxRemoved: null, ...extra });

  it('refuses a base that is not the stored revision (0 when nothing is stored), and writes nothing then', async () => {
    const store = new MemoryFeedStore();
    const trigger = { reason: 'r', rebucketing: false, at: '' };
    expect(await store.commit(FLAG, commit(3, { kind: 'add', users: ['x'] }, { trigger }))).toEqual({ result: 'conflict' });
    expect(await store.read(FLAG)).toBeNull();
    expect(await store.pendingSize(FLAG)).toBe(0);
    expect(await store.explicitCount(FLAG)).toBe(0);
    expect(await store.peekTrigger(FLAG)).toBeNull();
    expect(await store.commit(FLAG, commit(0, { kind: 'add', users: ['x'] }))).toEqual({ result: 'applied', added: 1, removed: 0 });
    expect(await store.commit(FLAG, commit(0))).toEqual({ result: 'conflict' });
    expect(await store.commit(FLAG, commit(2))).toEqual({ result: 'conflict' });
    expect(await store.commit(FLAG, commit(1))).toEqual({ result: 'applied', added: 0, removed: 0 });
    expect((await store.read(FLAG))?.revision).toBe(2);
  });

  it('a replace removing more than maxRemoved is held: nothing changed, the counts reported', async () => {
    const store = new MemoryFeedStore();
    await store.commit(FLAG, commit(0, { kind: 'replace', users: ['u1', 'u2', 'u3'] }));
    await store.settle(FLAG, ['u1', 'u2', 'u3']);
    const trigger = { reason: 'r', rebucketing: true, at: '' };
    expect(await store.commit(FLAG, commit(1, { kind: 'replace', users: ['u3', 'u4'] }, { maxRemoved: 1, trigger }))).toEqual({ result: 'held', added: 1, removed: 2 });
    expect((await store.read(FLAG))?.revision).toBe(1);
    expect(await membership(store, ['u1', 'u2', 'u3', 'u4'])).toEqual({ u1: [true, false], u2: [true, false], u3: [true, false], u4: [false, false] });
    expect(await store.pendingSize(FLAG)).toBe(0);
    expect(await store.peekTrigger(FLAG)).toBeNull();
    // At the limit it applies.
    expect(await store.commit(FLAG, commit(1, { kind: 'replace', users: ['u2', 'u3', 'u4'] }, { maxRemoved: 1 }))).toEqual({ result: 'applied', added: 1, removed: 1 });
    expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['u1', 'u4']);
  });

  it('replace-staged: the users staged (in several calls) become the explicit users, the stage is used up', async () => {
    const store: FeedStore = new MemoryFeedStore();
    await store.commit(FLAG, commit(0, { kind: 'add', users: ['u1', 'u2'] }));
    await store.commit(FLAG, commit(1, { kind: 'remove', users: ['u9'], remember: true }));
    await store.settle(FLAG, ['u1', 'u2', 'u9']);
    await store.stage(FLAG, 'load-1', ['u2', 'u3'], 60);
    await store.stage(FLAG, 'load-1', ['u4'], 60);
    await store.stage(FLAG, 'other', ['u7'], 60);
    expect(await store.commit(FLAG, commit(2, { kind: 'replace-staged', stage: 'load-1', count: 3 }))).toEqual({ result: 'applied', added: 2, removed: 1 });
    expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['u1', 'u3', 'u4']);
    expect(await membership(store, ['u1', 'u2', 'u3', 'u4', 'u7', 'u9'])).toEqual({ u1: [false, false], u2: [true, false], u3: [true, false], u4: [true, false], u7: [false, false], u9: [false, false] });
    // The stage is gone: replacing from it again is refused, not a replace with nothing.
    expect(await store.commit(FLAG, commit(3, { kind: 'replace-staged', stage: 'load-1', count: 3 }))).toEqual({ result: 'stage-lost' });
    expect(await store.explicitCount(FLAG)).toBe(3);
    // A dropped stage is gone too.
    await store.dropStage(FLAG, 'other');
    expect(await store.commit(FLAG, commit(3, { kind: 'replace-staged', stage: 'other', count: 1 }))).toEqual({ result: 'stage-lost' });
  });

  it('add takes users out of the removed set; remove remembers them only when asked', async () => {
    const store = new MemoryFeedStore();
    expect(await store.commit(FLAG, commit(0, { kind: 'remove', users: ['a', 'b'], remember: true }))).toEqual({ result: 'applied', added: 0, removed: 2 });
    expect(await store.commit(FLAG, commit(1, { kind: 'add', users: ['a', 'c'] }))).toEqual({ result: 'applied', added: 2, removed: 0 });
    expect(await store.commit(FLAG, commit(2, { kind: 'remove', users: ['c'], remember: false }))).toEqual({ result: 'applied', added: 0, removed: 1 });
    expect(await membership(store, ['a', 'b', 'c'])).toEqual({ a: [true, false], b: [false, true], c: [false, false] });
    expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['a', 'b', 'c']);
  });

  it('keeps a pending trigger when a later commit owes none; restoreTrigger never overwrites a newer one', async () => {
    const store = new MemoryFeedStore();
    const first = { reason: 'first', rebucketing: false, at: 'a' };
    await store.commit(FLAG, commit(0, { kind: 'none' }, { trigger: first }));
    await store.commit(FLAG, commit(1));
    expect(await store.takeTrigger(FLAG)).toEqual(first);
    expect(await store.takeTrigger(FLAG)).toBeNull();
    const second = { reason: 'second', rebucketing: true, at: 'b' };
    await store.commit(FLAG, commit(2, { kind: 'none' }, { trigger: second }));
    await store.restoreTrigger(FLAG, first);
    expect(await store.takeTrigger(FLAG)).toEqual(second);
  });

  it('hands out copies: changing what read returned changes nothing stored', async () => {
    const store = new MemoryFeedStore();
    const stored = state(1);
    await store.commit(FLAG, { ...commit(0), state: stored });
    stored.applied['9'] = 99;
    const read = (await store.read(FLAG)) as LiveFlagState;
    read.applied['7'] = 1;
    read.revision = 42;
    expect(await store.read(FLAG)).toMatchObject({ revision: 1, applied: { '0': 0 } });
    expect((await store.read(FLAG))?.applied).toEqual({ '0': 0 });
  });
});

describe('LiveStateSink: the forget guard on snapshots that set no limit of their own (the topic\'s)', () => {
  const users = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `user-${from + i}`);
  const guarded = (released: boolean) => {
    const store = new MemoryFeedStore();
    const outcomes: string[] = [];
    let asked = 0;
    const release = () => {
      asked += 1;
      return Promise.resolve(released);
    };
    const sink = new LiveStateSink(store, silentLogger(), new DetectorEventBus(), (applied) => outcomes.push(applied.outcome), () => NOW, { maxFraction: 0.1, floor: 10, released: release });
    return { store, sink, outcomes, asked: () => asked };
  };

  it('holds a snapshot removing more than max(floor, fraction of the explicit users); the last state stays', async () => {
    const { store, sink, outcomes, asked } = guarded(false);
    await sink.apply(snapshot(users(200), {}, v(1000, 0, 1)));
    await sink.apply(snapshot(users(50), {}, v(2000, 0, 2))); // removes 150 > max(10, 20)
    expect(outcomes).toEqual(['applied', 'held']);
    expect(asked()).toBe(1);
    expect(await store.explicitCount(FLAG)).toBe(200);
    await sink.apply(snapshot(users(185), {}, v(3000, 0, 3))); // removes 15 ≤ 20
    expect(outcomes.at(-1)).toBe('applied');
    expect(await store.explicitCount(FLAG)).toBe(185);
  });

  it('applies it when an operator released the guard', async () => {
    const { store, sink, outcomes } = guarded(true);
    await sink.apply(snapshot(users(200), {}, v(1000, 0, 1)));
    await sink.apply(snapshot([], {}, v(2000, 0, 2)));
    expect(outcomes).toEqual(['applied', 'applied']);
    expect(await store.explicitCount(FLAG)).toBe(0);
  });

  it('leaves a snapshot with its own limit (the bucket\'s) to that limit', async () => {
    const { sink, outcomes, asked } = guarded(true);
    await sink.apply(snapshot(users(200), {}, v(1000, 0, 1)));
    await sink.apply(snapshot([], { maxRemoved: 5 }, v(2000, 0, 2)));
    expect(outcomes).toEqual(['applied', 'held']);
    expect(asked()).toBe(0);
  });
});

describe('LiveStateSink: a topic snapshot held by the forget guard', () => {
  it('still applies its additions (its offset is committed: it is never read again); its removals stay held', async () => {
    const store = new MemoryFeedStore();
    const outcomes: string[] = [];
    const sink = new LiveStateSink(store, silentLogger(), new DetectorEventBus(), (applied) => outcomes.push(applied.outcome), () => NOW, { maxFraction: 0.1, floor: 10, released: () => Promise.resolve(false) });
    const many = Array.from({ length: 100 }, (_, i) => `user-${i}`);
    await sink.apply(snapshot(many, {}, v(1000, 0, 1)));
    await store.settle(FLAG, many);
    await sink.apply(snapshot(['user-0', 'new-1', 'new-2'], {}, v(2000, 0, 2))); // removes 99 > 10
    expect(outcomes).toEqual(['applied', 'held']);
    expect(await store.explicitCount(FLAG)).toBe(102);
    expect(sorted(await store.peekPending(FLAG, 10))).toEqual(['new-1', 'new-2', 'user-0']);
    // The message counts as applied: a redelivery of it is stale.
    await sink.apply(snapshot(['user-0', 'new-1', 'new-2'], {}, v(2000, 0, 2)));
    expect(outcomes.at(-1)).toBe('stale');
  });
});

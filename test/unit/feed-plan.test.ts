import { describe, expect, it } from 'vitest';
import type { FeedChange, SnapshotChange } from '../../src/feeds/changes.js';
import type { CommitResult, FeedStore, LiveFlagState, LiveStateCommit, LiveVersion } from '../../src/feeds/live-state.js';
import { LiveStateSink, type AppliedChange } from '../../src/feeds/live-state-sink.js';
import { MemoryFeedStore } from '../../src/feeds/memory-feed-store.js';
import { planChange } from '../../src/feeds/plan-change.js';
import { silentLogger } from '../../src/logger.js';
import { DetectorEventBus } from '../../src/observability/events.js';

// Issue 15, strategy B: how each change of the flag topic moves the live state, which users it
// leaves pending and which full polling run it owes; then the sink that commits it.

const FLAG = 'consumer_graph_ingestion';
const NOW = new Date('2026-05-01T12:00:00.000Z');
const v = (at: number, partition = 0, offset = 0): LiveVersion => ({ at, partition, offset });

function snapshot(users: string[], extra: Partial<SnapshotChange> = {}, version?: LiveVersion): FeedChange {
  return { type: 'snapshot', flag: FLAG, position: null, users, enabled: true, percentage: 10, rulesDigest: 'rules-1', bucketingDigest: 'bucketing-1', ...extra, ...(version ? { version } : {}) };
}
const add = (users: string[], version?: LiveVersion): FeedChange => ({ type: 'add', flag: FLAG, position: null, users, ...(version ? { version } : {}) });
const remove = (users: string[], version?: LiveVersion): FeedChange => ({ type: 'remove', flag: FLAG, position: null, users, ...(version ? { version } : {}) });

/** A complete state as a whole snapshot leaves it. */
function complete(users: string[], extra: Partial<LiveFlagState> = {}): LiveFlagState {
  return { flag: FLAG, version: v(1000), enabled: true, percentage: 10, users, complete: true, removed: [], rulesDigest: 'rules-1', bucketingDigest: 'bucketing-1', updatedAt: NOW.toISOString(), ...extra };
}

describe('planChange: the first change', () => {
  it('a first snapshot: every user pending, the state complete, a full run owed', () => {
    const plan = planChange(null, snapshot(['u2', 'u1', 'u1']), v(5), NOW);
    expect(plan.state).toEqual({ flag: FLAG, version: v(5), enabled: true, percentage: 10, users: ['u1', 'u2'], complete: true, removed: [], rulesDigest: 'rules-1', bucketingDigest: 'bucketing-1', updatedAt: NOW.toISOString() });
    expect([...plan.pending].sort()).toEqual(['u1', 'u2']);
    expect(plan).toMatchObject({ added: 2, removed: 0, trigger: { rebucketing: false, at: NOW.toISOString() } });
    expect(plan.trigger?.reason).toContain('first change');
  });

  it('a first add: incomplete state, the users pending, a full run owed', () => {
    const plan = planChange(null, add(['u1', 'u1']), v(5), NOW);
    expect(plan.state).toMatchObject({ users: ['u1'], complete: false, removed: [], enabled: null, percentage: null, rulesDigest: null, bucketingDigest: null });
    expect(plan.pending).toEqual(['u1']);
    expect(plan.trigger?.reason).toContain('first change');
  });

  it('a remove before any snapshot is remembered in `removed` (it overrides the rules file)', () => {
    const first = planChange(null, remove(['u9', 'u3']), v(5), NOW);
    expect(first.state).toMatchObject({ users: [], complete: false, removed: ['u3', 'u9'] });
    expect([...first.pending].sort()).toEqual(['u3', 'u9']);
    expect(first.removed).toBe(2);
    expect(first.trigger).not.toBeNull();
    // Further removes accumulate; a later add of one of them takes it back out.
    const second = planChange(first.state, remove(['u4', 'u3']), v(6), NOW);
    expect(second.state.removed).toEqual(['u3', 'u4', 'u9']);
    expect(second.trigger).toBeNull();
    const third = planChange(second.state, add(['u4']), v(7), NOW);
    expect(third.state).toMatchObject({ users: ['u4'], removed: ['u3', 'u9'], complete: false });
    expect(third.pending).toEqual(['u4']);
  });

  it('a first resync owes its own run and keeps nothing else', () => {
    const plan = planChange(null, { type: 'resync', flag: FLAG, position: null, reason: 'a gap in the topic' }, v(5), NOW);
    expect(plan.trigger).toEqual({ reason: 'a gap in the topic', rebucketing: false, at: NOW.toISOString() });
    expect(plan.pending).toEqual([]);
    expect(plan.state).toMatchObject({ version: v(5), users: [], complete: false });
  });
});

describe('planChange: deltas on a known state', () => {
  it('adds of users already present are not pending again; new ones are', () => {
    const plan = planChange(complete(['u1', 'u3']), add(['u3', 'u2', 'u2']), v(2000), NOW);
    expect(plan.pending).toEqual(['u2']);
    expect(plan.added).toBe(1);
    expect(plan.state.users).toEqual(['u1', 'u2', 'u3']);
    expect(plan.state.version).toEqual(v(2000));
    expect(plan.trigger).toBeNull();
  });

  it('an add of nothing new changes no users and leaves nothing pending', () => {
    const plan = planChange(complete(['u1']), add(['u1']), v(2000), NOW);
    expect(plan).toMatchObject({ pending: [], added: 0, trigger: null });
    expect(plan.state.users).toEqual(['u1']);
  });

  it('a remove on a complete state takes the users out without remembering them', () => {
    const plan = planChange(complete(['u1', 'u2', 'u3']), remove(['u2']), v(2000), NOW);
    expect(plan.state).toMatchObject({ users: ['u1', 'u3'], removed: [], complete: true });
    expect(plan.pending).toEqual(['u2']);
    expect(plan.trigger).toBeNull();
  });

  it('a resync keeps the state and owes a run', () => {
    const before = complete(['u1']);
    const plan = planChange(before, { type: 'resync', flag: FLAG, position: null, reason: 'unreadable message' }, v(2000), NOW);
    expect(plan.state).toEqual({ ...before, version: v(2000) });
    expect(plan.trigger?.reason).toBe('unreadable message');
  });
});

describe('planChange: snapshots on a known state', () => {
  it('users added and removed are pending; nothing else changed, no run owed', () => {
    const plan = planChange(complete(['u1', 'u2']), snapshot(['u2', 'u3']), v(2000), NOW);
    expect([...plan.pending].sort()).toEqual(['u1', 'u3']);
    expect(plan).toMatchObject({ added: 1, removed: 1, trigger: null });
    expect(plan.state.users).toEqual(['u2', 'u3']);
  });

  it('the first whole snapshot after deltas completes the state and owes a run', () => {
    const deltas = planChange(planChange(null, add(['u1', 'u2']), v(1), NOW).state, remove(['u2', 'u7']), v(2), NOW).state;
    expect(deltas).toMatchObject({ users: ['u1'], removed: ['u2', 'u7'], complete: false });
    const plan = planChange(deltas, snapshot(['u1', 'u5']), v(3), NOW);
    expect(plan.state).toMatchObject({ users: ['u1', 'u5'], removed: [], complete: true, enabled: true, percentage: 10 });
    expect(plan.pending).toEqual(['u5']);
    expect(plan.trigger?.reason).toContain('first whole snapshot');
  });

  it('switching on owes a run; switching off does not', () => {
    const on = planChange(complete(['u1'], { enabled: false }), snapshot(['u1'], { enabled: true }), v(2000), NOW);
    expect(on.trigger?.reason).toBe('the flag was switched on');
    const off = planChange(complete(['u1'], { enabled: true }), snapshot(['u1'], { enabled: false }), v(2000), NOW);
    expect(off.trigger).toBeNull();
    expect(off.state.enabled).toBe(false);
  });

  it('raising the percentage owes a run; lowering it does not', () => {
    const raised = planChange(complete([], { percentage: 10 }), snapshot([], { percentage: 25 }), v(2000), NOW);
    expect(raised.trigger?.reason).toBe('the percentage rose from 10% to 25%');
    const lowered = planChange(complete([], { percentage: 25 }), snapshot([], { percentage: 5 }), v(2000), NOW);
    expect(lowered.trigger).toBeNull();
    expect(lowered.state.percentage).toBe(5);
    const same = planChange(complete([], { percentage: 25 }), snapshot([], { percentage: 25 }), v(2000), NOW);
    expect(same.trigger).toBeNull();
  });

  it('a snapshot that does not carry the switch or percentage keeps the known ones; a source without digests keeps the last', () => {
    const plan = planChange(complete(['u1'], { enabled: true, percentage: 30 }), snapshot(['u1'], { enabled: null, percentage: null, rulesDigest: undefined, bucketingDigest: undefined }), v(2000), NOW);
    expect(plan.state).toMatchObject({ enabled: true, percentage: 30, rulesDigest: 'rules-1', bucketingDigest: 'bucketing-1' });
    expect(plan.trigger).toBeNull();
  });

  it('bucketing parameters that appear or disappear re-bucket too', () => {
    const gone = planChange(complete(['u1']), snapshot(['u1'], { bucketingDigest: null }), v(2000), NOW);
    expect(gone.trigger).toMatchObject({ rebucketing: true });
    expect(gone.state.bucketingDigest).toBeNull();
    const added = planChange(complete(['u1'], { bucketingDigest: null }), snapshot(['u1'], { bucketingDigest: 'bucketing-1' }), v(2000), NOW);
    expect(added.trigger).toMatchObject({ rebucketing: true });
    const none = planChange(complete(['u1'], { bucketingDigest: null }), snapshot(['u1'], { bucketingDigest: null }), v(2000), NOW);
    expect(none.trigger).toBeNull();
  });

  it('a new rules digest owes a run (segments, groups, rules), not a re-bucketing', () => {
    const plan = planChange(complete(['u1']), snapshot(['u1'], { rulesDigest: 'rules-2' }), v(2000), NOW);
    expect(plan.trigger).toMatchObject({ rebucketing: false });
    expect(plan.trigger?.reason).toContain('beyond its explicit users');
    expect(plan.state.rulesDigest).toBe('rules-2');
  });

  it('a new bucketing digest is a re-bucketing, even with the switch turned off at once', () => {
    const plan = planChange(complete(['u1']), snapshot(['u1'], { bucketingDigest: 'bucketing-2', enabled: false }), v(2000), NOW);
    expect(plan.trigger).toMatchObject({ rebucketing: true });
    expect(plan.trigger?.reason).toContain('bucketing parameters changed');
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
  override commit(flag: string, commit: LiveStateCommit): Promise<CommitResult> {
    this.commits += 1;
    if (this.conflicts > 0) {
      this.conflicts -= 1;
      return Promise.resolve('conflict');
    }
    return super.commit(flag, commit);
  }
}

describe('LiveStateSink over MemoryFeedStore', () => {
  it('commits the state, the pending users and the trigger together', async () => {
    const store = new MemoryFeedStore();
    const { sink, emitted, applied } = sinkOn(store);
    await sink.apply(snapshot(['u1', 'u2'], {}, v(100, 0, 1)));
    expect(await store.read(FLAG)).toMatchObject({ users: ['u1', 'u2'], complete: true, version: v(100, 0, 1) });
    expect((await store.peekPending(FLAG, 10)).sort()).toEqual(['u1', 'u2']);
    expect((await store.takeTrigger(FLAG))?.reason).toContain('first change');
    expect(emitted).toEqual([{ flag: FLAG, type: 'snapshot', outcome: 'applied', added: 2, removed: 0, rebucketing: false }]);
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({ outcome: 'applied', trigger: expect.stringContaining('first change') });
  });

  it('a replay of the same message, or an older one, is stale: nothing changes, nothing pending', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store);
    await sink.apply(snapshot(['u1'], {}, v(100, 0, 5)));
    await store.settle(FLAG, ['u1']);
    await store.takeTrigger(FLAG);

    await sink.apply(snapshot(['u1'], {}, v(100, 0, 5)));
    await sink.apply(add(['u2'], v(100, 0, 4)));
    await sink.apply(remove(['u1'], v(99, 3, 900)));
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'stale', 'stale', 'stale']);
    expect(applied.slice(1).every((change) => change.pending.length === 0 && change.trigger === null)).toBe(true);
    expect(await store.read(FLAG)).toMatchObject({ users: ['u1'], version: v(100, 0, 5) });
    expect(await store.pendingSize(FLAG)).toBe(0);
    expect(await store.peekTrigger(FLAG)).toBeNull();
  });

  it('orders by time, then partition, then offset', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store);
    await sink.apply(add(['a'], v(100, 1, 10)));
    await sink.apply(add(['b'], v(100, 1, 11))); // later offset: applied
    await sink.apply(add(['c'], v(100, 2, 0))); // higher partition, same time: applied
    await sink.apply(add(['d'], v(100, 0, 999))); // lower partition, same time: stale
    await sink.apply(add(['e'], v(101, 0, 0))); // later time: applied
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'applied', 'applied', 'stale', 'applied']);
    expect((await store.read(FLAG))?.users).toEqual(['a', 'b', 'c', 'e']);
  });

  it('a commit that meets a conflict reads again and retries', async () => {
    const store = new ConflictingStore(1);
    const { sink, applied } = sinkOn(store);
    await sink.apply(add(['u1'], v(100)));
    expect(store.commits).toBe(2);
    expect(applied).toEqual([expect.objectContaining({ outcome: 'applied', pending: ['u1'] })]);
    expect(await store.pendingSize(FLAG)).toBe(1);
  });

  it('a real concurrent write between read and commit is a conflict, retried on the new state', async () => {
    // Another process commits right after this sink's first read: the sink's first commit conflicts.
    class RacingStore extends MemoryFeedStore {
      private raced = false;
      override async read(flag: string): Promise<LiveFlagState | null> {
        const state = await super.read(flag);
        if (!this.raced) {
          this.raced = true;
          const other = planChange(state, add(['u2']), v(150), NOW);
          expect(await this.commit(flag, { state: other.state, base: state?.version ?? null, pending: other.pending, trigger: null })).toBe('applied');
        }
        return state;
      }
    }
    const store = new RacingStore();
    await store.commit(FLAG, { state: complete(['u1'], { version: v(100) }), base: null, pending: [], trigger: null });
    const { sink, applied } = sinkOn(store);
    await sink.apply(add(['u3'], v(200)));
    // Both writes survive: the retry planned from the state holding u2.
    expect((await store.read(FLAG))?.users).toEqual(['u1', 'u2', 'u3']);
    expect(applied).toEqual([expect.objectContaining({ outcome: 'applied', pending: ['u3'] })]);
  });

  it('gives up, retryably, when every attempt conflicts', async () => {
    const store = new ConflictingStore(Number.POSITIVE_INFINITY);
    const { sink, applied } = sinkOn(store);
    await expect(sink.apply(add(['u1'], v(100)))).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE', retryable: true });
    expect(store.commits).toBe(20);
    expect(applied).toEqual([]);
  });

  it('switching off and lowering the percentage leave no trigger; raising it sets one', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store);
    await sink.apply(snapshot(['u1'], { enabled: true, percentage: 20 }, v(100)));
    await store.takeTrigger(FLAG);
    await sink.apply(snapshot(['u1'], { enabled: true, percentage: 5 }, v(101)));
    await sink.apply(snapshot(['u1'], { enabled: false, percentage: 5 }, v(102)));
    expect(await store.peekTrigger(FLAG)).toBeNull();
    expect(applied.slice(1).map((change) => change.trigger)).toEqual([null, null]);
    await sink.apply(snapshot(['u1'], { enabled: false, percentage: 50 }, v(103)));
    expect(await store.peekTrigger(FLAG)).toMatchObject({ reason: 'the percentage rose from 5% to 50%', rebucketing: false });
  });

  it('a salt change reports a re-bucketing in the event and the trigger', async () => {
    const store = new MemoryFeedStore();
    const { sink, emitted } = sinkOn(store);
    await sink.apply(snapshot(['u1'], {}, v(100)));
    await store.takeTrigger(FLAG);
    await sink.apply(snapshot(['u1'], { bucketingDigest: 'bucketing-2' }, v(101)));
    expect(emitted[1]).toEqual({ flag: FLAG, type: 'snapshot', outcome: 'applied', added: 0, removed: 0, rebucketing: true });
    expect(await store.takeTrigger(FLAG)).toMatchObject({ rebucketing: true });
  });

  it('adds of users already present leave nothing pending after the drain settled them', async () => {
    const store = new MemoryFeedStore();
    const { sink } = sinkOn(store);
    await sink.apply(snapshot(['u1', 'u2'], {}, v(100)));
    await store.settle(FLAG, await store.peekPending(FLAG, 10));
    await sink.apply(add(['u2', 'u1'], v(101)));
    expect(await store.pendingSize(FLAG)).toBe(0);
    await sink.apply(add(['u2', 'u3'], v(102)));
    expect(await store.peekPending(FLAG, 10)).toEqual(['u3']);
  });

  it('a snapshot after deltas: the removes remembered until then, the state complete after', async () => {
    const store = new MemoryFeedStore();
    const { sink } = sinkOn(store);
    await sink.apply(remove(['u5'], v(100)));
    expect(await store.read(FLAG)).toMatchObject({ complete: false, removed: ['u5'], users: [] });
    await sink.apply(add(['u6'], v(101)));
    await sink.apply(snapshot(['u6', 'u7'], {}, v(102)));
    expect(await store.read(FLAG)).toMatchObject({ complete: true, removed: [], users: ['u6', 'u7'] });
    expect((await store.peekPending(FLAG, 10)).sort()).toEqual(['u5', 'u6', 'u7']);
    expect((await store.peekTrigger(FLAG))?.reason).toContain('first whole snapshot');
  });

  it('changes without a version are ordered by arrival, even within one millisecond', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store, () => NOW); // a clock that does not move
    await sink.apply(add(['u1']));
    await sink.apply(add(['u2']));
    await sink.apply(remove(['u1']));
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'applied', 'applied']);
    expect((await store.read(FLAG))?.users).toEqual(['u2']);
  });

  it('a change without a version applies after a stored version from a clock ahead of ours', async () => {
    const store = new MemoryFeedStore();
    const { sink, applied } = sinkOn(store, () => NOW);
    await sink.apply(add(['u1'], v(NOW.getTime() + 60_000, 3, 7)));
    await sink.apply(remove(['u1']));
    expect(applied.map((change) => change.outcome)).toEqual(['applied', 'applied']);
    expect(await store.read(FLAG)).toMatchObject({ users: [], version: v(NOW.getTime() + 60_000, 3, 8) });
  });
});

describe('MemoryFeedStore.commit', () => {
  const state = (version: LiveVersion) => complete([], { version });

  it('refuses a base that is not the stored version, and a base when nothing is stored', async () => {
    const store = new MemoryFeedStore();
    expect(await store.commit(FLAG, { state: state(v(100)), base: v(50), pending: [], trigger: null })).toBe('conflict');
    expect(await store.commit(FLAG, { state: state(v(100)), base: null, pending: ['x'], trigger: null })).toBe('applied');
    expect(await store.commit(FLAG, { state: state(v(200)), base: null, pending: [], trigger: null })).toBe('conflict');
    expect(await store.commit(FLAG, { state: state(v(200)), base: v(100, 0, 1), pending: [], trigger: null })).toBe('conflict');
    expect(await store.commit(FLAG, { state: state(v(200)), base: v(100), pending: [], trigger: null })).toBe('applied');
  });

  it('says stale before conflict, and writes nothing either way', async () => {
    const store = new MemoryFeedStore();
    await store.commit(FLAG, { state: state(v(100)), base: null, pending: [], trigger: null });
    expect(await store.commit(FLAG, { state: state(v(100)), base: v(1), pending: ['x'], trigger: { reason: 'r', rebucketing: false, at: '' } })).toBe('stale');
    expect(await store.pendingSize(FLAG)).toBe(0);
    expect(await store.peekTrigger(FLAG)).toBeNull();
  });

  it('keeps a pending trigger when a later commit owes none; restoreTrigger never overwrites a newer one', async () => {
    const store = new MemoryFeedStore();
    const first = { reason: 'first', rebucketing: false, at: 'a' };
    await store.commit(FLAG, { state: state(v(100)), base: null, pending: [], trigger: first });
    await store.commit(FLAG, { state: state(v(101)), base: v(100), pending: [], trigger: null });
    expect(await store.takeTrigger(FLAG)).toEqual(first);
    expect(await store.takeTrigger(FLAG)).toBeNull();
    const second = { reason: 'second', rebucketing: true, at: 'b' };
    await store.commit(FLAG, { state: state(v(102)), base: v(101), pending: [], trigger: second });
    await store.restoreTrigger(FLAG, first);
    expect(await store.takeTrigger(FLAG)).toEqual(second);
  });

  it('hands out copies: changing what read returned changes nothing stored', async () => {
    const store = new MemoryFeedStore();
    await store.commit(FLAG, { state: state(v(100)), base: null, pending: [], trigger: null });
    const read = (await store.read(FLAG)) as LiveFlagState;
    read.users.push('intruder');
    expect((await store.read(FLAG))?.users).toEqual([]);
  });
});

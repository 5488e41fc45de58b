import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FeedChange } from '../../src/feeds/changes.js';
import { liveStateChecker } from '../../src/feeds/live-checker.js';
import type { FeedStore, LiveFlagState } from '../../src/feeds/live-state.js';
import { LiveStateSink } from '../../src/feeds/live-state-sink.js';
import { MemoryFeedStore } from '../../src/feeds/memory-feed-store.js';
import { flipperBucket } from '../../src/flags/bucketing.js';
import { ReloadingRulesChecker } from '../../src/flags/reloading-checker.js';
import { FlagSnapshot, type FlagSnapshotInput } from '../../src/flags/snapshot.js';
import type { FlagChecker, FlagResult } from '../../src/flags/types.js';
import { silentLogger } from '../../src/logger.js';
import { DetectorEventBus } from '../../src/observability/events.js';
import { checkerOf } from '../helpers/fakes.js';

// Issue 15: polling evaluates with the flag as the feed last saw it, over the rules file.

const FLAG = 'consumer_graph_ingestion';

function rules(overrides: Partial<FlagSnapshotInput> = {}): FlagSnapshot {
  return new FlagSnapshot({
    flag: FLAG,
    enabled: true,
    users: ['file-1', 'file-2'],
    excludedUsers: ['banned'],
    segments: new Map([['beta', ['seg-1', 'seg-2']]]),
    percentage: 0,
    bucketing: { algorithm: 'flipper' },
    unevaluableRules: [],
    ...overrides,
  });
}

/** A loaded rules checker, as the daemon holds it (no sources: nothing to stat). */
async function rulesChecker(snapshot = rules()): Promise<ReloadingRulesChecker> {
  const checker = new ReloadingRulesChecker(() => Promise.resolve(snapshot), {}, silentLogger());
  await checker.refresh();
  return checker;
}

function live(overrides: Partial<LiveFlagState> = {}): LiveFlagState {
  const version = { at: Date.UTC(2026, 4, 1), partition: 2, offset: 17 };
  return { flag: FLAG, revision: 3, version, snapshotVersion: version, applied: { '2': 17 }, enabled: null, percentage: null, complete: true, rulesDigest: null, bucketingDigest: null, updatedAt: '2026-05-01T00:00:00.000Z', ...overrides };
}

/** A feed store holding `users` as the explicit users and `removed` as removed while incomplete. */
async function storeOf(users: string[] = [], removed: string[] = []): Promise<MemoryFeedStore> {
  const store = new MemoryFeedStore();
  const state = live();
  expect(await store.commit(FLAG, { state: { ...state, revision: 1 }, base: 0, users: { kind: 'add', users }, trigger: null, maxRemoved: null })).toMatchObject({ result: 'applied' });
  expect(await store.commit(FLAG, { state: { ...state, revision: 2 }, base: 1, users: { kind: 'remove', users: removed, remember: true }, trigger: null, maxRemoved: null })).toMatchObject({ result: 'applied' });
  return store;
}

/** A feed store that counts the membership look-ups. */
class CountingStore extends MemoryFeedStore {
  lookups: string[][] = [];
  override membership(flag: string, users: readonly string[]): Promise<{ explicit: boolean[]; removed: boolean[] }> {
    this.lookups.push([...users]);
    return super.membership(flag, users);
  }
}

async function results(checker: FlagChecker, ids: string[]): Promise<Record<string, FlagResult>> {
  const answers = await checker.check(ids);
  return Object.fromEntries(ids.map((id, i) => [id, answers[i] as FlagResult]));
}

describe('FlagSnapshot: explicit users, segment members and exclusions apart', () => {
  it('answers each question on its own set, and evaluates with them in order', () => {
    const snapshot = rules({ users: ['file-1', 'banned'] });
    expect([snapshot.isExplicit('file-1'), snapshot.isExplicit('seg-1'), snapshot.isExplicit('nobody')]).toEqual([true, false, false]);
    expect([snapshot.inSegment('seg-2'), snapshot.inSegment('file-1')]).toEqual([true, false]);
    expect([snapshot.isExcluded('banned'), snapshot.isExcluded('file-1')]).toEqual([true, false]);
    expect(snapshot.evaluateBatch(['file-1', 'seg-1', 'banned', 'nobody'])).toEqual(['enabled', 'enabled', 'disabled', 'disabled']);
    expect(snapshot.describe()).toContain('4 allowed users incl. segments [beta(2)]');
  });

  it('describe() counts a user both explicit and in a segment once', () => {
    expect(rules({ users: ['file-1', 'seg-1'] }).describe()).toContain('3 allowed users incl. segments [beta(2)]');
  });

  it('empty sets answer false', () => {
    const empty = rules({ users: [], excludedUsers: [], segments: new Map() });
    expect([empty.isExplicit('a'), empty.inSegment('a'), empty.isExcluded('a')]).toEqual([false, false, false]);
  });
});

describe('liveStateChecker', () => {
  it('without a live state, the rules checker is used as it is', async () => {
    const base = await rulesChecker();
    expect(liveStateChecker(base, null, new MemoryFeedStore())).toBe(base);
  });

  it('a checker that is not the reloading rules checker (http, a fake) is used as it is', () => {
    const base = checkerOf(() => 'enabled');
    expect(liveStateChecker(base, live({ enabled: false }), new MemoryFeedStore())).toBe(base);
  });

  it('a rules checker that has not loaded yet is used as it is', () => {
    const base = new ReloadingRulesChecker(() => Promise.resolve(rules()), {}, silentLogger());
    expect(liveStateChecker(base, live(), new MemoryFeedStore())).toBe(base);
  });

  it('a complete live state replaces the file\'s explicit users', async () => {
    const checker = liveStateChecker(await rulesChecker(), live({ complete: true }), await storeOf(['live-1']));
    expect(await results(checker, ['live-1', 'file-1', 'file-2', 'nobody'])).toEqual({ 'live-1': 'enabled', 'file-1': 'disabled', 'file-2': 'disabled', nobody: 'disabled' });
  });

  it('an incomplete live state amends the file\'s users: adds on top, removes taken out', async () => {
    const checker = liveStateChecker(await rulesChecker(), live({ complete: false }), await storeOf(['live-1'], ['file-2']));
    expect(await results(checker, ['live-1', 'file-1', 'file-2', 'nobody'])).toEqual({ 'live-1': 'enabled', 'file-1': 'enabled', 'file-2': 'disabled', nobody: 'disabled' });
  });

  it('exclusions from the file still win over live users', async () => {
    for (const complete of [true, false]) {
      const checker = liveStateChecker(await rulesChecker(), live({ complete }), await storeOf(['banned', 'live-1']));
      expect(await results(checker, ['banned', 'live-1'])).toEqual({ banned: 'disabled', 'live-1': 'enabled' });
    }
  });

  it('segments are kept: their members stay enabled whatever the live users say', async () => {
    const completeState = liveStateChecker(await rulesChecker(), live({ complete: true }), await storeOf());
    expect(await results(completeState, ['seg-1', 'seg-2'])).toEqual({ 'seg-1': 'enabled', 'seg-2': 'enabled' });
    const removed = liveStateChecker(await rulesChecker(), live({ complete: false }), await storeOf([], ['seg-1']));
    expect(await results(removed, ['seg-1'])).toEqual({ 'seg-1': 'enabled' });
  });

  it('live enabled=false disables everyone; true switches on a file that is off; null keeps the file\'s', async () => {
    const off = liveStateChecker(await rulesChecker(), live({ enabled: false, percentage: 100 }), await storeOf(['live-1']));
    expect(Object.values(await results(off, ['live-1', 'seg-1', 'file-1', 'nobody']))).toEqual(['disabled', 'disabled', 'disabled', 'disabled']);
    const on = liveStateChecker(await rulesChecker(rules({ enabled: false })), live({ enabled: true }), await storeOf(['live-1']));
    expect(await results(on, ['live-1', 'seg-1'])).toEqual({ 'live-1': 'enabled', 'seg-1': 'enabled' });
    const unsaid = liveStateChecker(await rulesChecker(rules({ enabled: false })), live({ enabled: null }), await storeOf(['live-1']));
    expect(await results(unsaid, ['live-1'])).toEqual({ 'live-1': 'disabled' });
  });

  it('the live percentage replaces the file\'s, with the file\'s bucketing', async () => {
    const ids = Array.from({ length: 400 }, (_, i) => `user-${i}`);
    const inside = (percentage: number) => ids.filter((id) => flipperBucket(FLAG, id) < percentage * 1_000);
    const raised = liveStateChecker(await rulesChecker(rules({ percentage: 5 })), live({ percentage: 30 }), await storeOf());
    const answers = await raised.check(ids);
    const enabled = ids.filter((_, i) => answers[i] === 'enabled');
    expect(enabled).toEqual(inside(30));
    expect(enabled.length).toBeGreaterThan(inside(5).length);
    expect(enabled.length).toBeLessThan(ids.length);
    const lowered = liveStateChecker(await rulesChecker(rules({ percentage: 50 })), live({ percentage: 0 }), await storeOf());
    expect((await lowered.check(ids)).every((result) => result === 'disabled')).toBe(true);
    const kept = liveStateChecker(await rulesChecker(rules({ percentage: 30 })), live({ percentage: null }), await storeOf());
    expect(await kept.check(ids)).toEqual(answers);
  });

  it('rules that cannot be evaluated offline still make the rest unevaluable', async () => {
    const checker = liveStateChecker(await rulesChecker(rules({ unevaluableRules: ['groups: admins'] })), live(), await storeOf(['live-1']));
    expect(await results(checker, ['live-1', 'nobody', 'banned'])).toEqual({ 'live-1': 'enabled', nobody: 'unevaluable', banned: 'disabled' });
  });

  it('follows the rules checker\'s reloads (it reads the snapshot in use when built)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ffd-live-checker-'));
    try {
      const file = join(dir, 'rules.yaml');
      await writeFile(file, 'one');
      let members = ['seg-1'];
      const base = new ReloadingRulesChecker(() => Promise.resolve(rules({ segments: new Map([['beta', members]]), sources: [file] })), {}, silentLogger());
      const store = await storeOf();
      await base.refresh();
      expect(await results(liveStateChecker(base, live(), store), ['seg-1', 'seg-9'])).toEqual({ 'seg-1': 'enabled', 'seg-9': 'disabled' });
      members = ['seg-9'];
      await writeFile(file, 'two, longer'); // another size: a changed source
      expect(await base.refresh()).toBe(true);
      expect(await results(liveStateChecker(base, live(), store), ['seg-1', 'seg-9'])).toEqual({ 'seg-1': 'disabled', 'seg-9': 'enabled' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says it is the live state, at which message, over which rules', async () => {
    const checker = liveStateChecker(await rulesChecker(rules({ percentage: 7 })), live({ enabled: false }), await storeOf(['a', 'b']));
    expect(checker.description).toBe(`live state of ${FLAG} (revision 3, message of 2026-05-01T00:00:00.000Z, partition 2, offset 17: off, 7%) over ${rules({ percentage: 7 }).describe()}`);
    const amending = liveStateChecker(await rulesChecker(rules({ percentage: 7 })), live({ enabled: true, percentage: 12, complete: false }), await storeOf());
    expect(amending.description).toBe(`live state of ${FLAG} (revision 3, message of 2026-05-01T00:00:00.000Z, partition 2, offset 17: on, 12%, explicit users amending the file) over ${rules({ percentage: 7 }).describe()}`);
  });

  it('looks the explicit and removed users up in the store once per batch, for that flag', async () => {
    const store = new CountingStore();
    const checker = liveStateChecker(await rulesChecker(), live({ complete: false }), store);
    await checker.check(['a', 'file-1', 'b']);
    await checker.check(['c']);
    expect(store.lookups).toEqual([['a', 'file-1', 'b'], ['c']]);
    // Another flag's users are not this flag's.
    await store.commit('another_flag', { state: live({ flag: 'another_flag', revision: 1 }), base: 0, users: { kind: 'add', users: ['a'] }, trigger: null, maxRemoved: null });
    expect(await results(checker, ['a'])).toEqual({ a: 'disabled' });
  });

  it('a flag switched off answers without looking anyone up', async () => {
    const store = new CountingStore();
    const checker = liveStateChecker(await rulesChecker(), live({ enabled: false }), store);
    expect(await checker.check(['file-1', 'seg-1'])).toEqual(['disabled', 'disabled']);
    expect(store.lookups).toEqual([]);
  });

  it('follows the store: users the feed adds or removes after the checker was built count at once', async () => {
    const store = await storeOf(['live-1']);
    const checker = liveStateChecker(await rulesChecker(), live({ complete: true }), store);
    expect(await results(checker, ['live-1', 'live-2'])).toEqual({ 'live-1': 'enabled', 'live-2': 'disabled' });
    await store.commit(FLAG, { state: live({ revision: 3 }), base: 2, users: { kind: 'replace', users: ['live-2'] }, trigger: null, maxRemoved: null });
    expect(await results(checker, ['live-1', 'live-2'])).toEqual({ 'live-1': 'disabled', 'live-2': 'enabled' });
  });
});

describe('liveStateChecker over the feed: remembered removes while incomplete', () => {
  const change = (type: 'add' | 'remove', users: string[], offset: number): FeedChange => ({ type, flag: FLAG, position: null, users, version: { at: Date.UTC(2026, 4, 1), partition: 0, offset } });

  /** The checker as polling builds it: over the live state the store holds now. */
  async function checkerOver(store: FeedStore): Promise<FlagChecker> {
    return liveStateChecker(await rulesChecker(), await store.read(FLAG), store);
  }

  it('a remove (remembered) disables a user the rules file lists explicitly; a later add re-enables them', async () => {
    const store = new MemoryFeedStore();
    const sink = new LiveStateSink(store, silentLogger(), new DetectorEventBus());
    expect(await results(await checkerOver(store), ['file-1', 'file-2'])).toEqual({ 'file-1': 'enabled', 'file-2': 'enabled' });

    await sink.apply(change('remove', ['file-1'], 1));
    expect(await store.read(FLAG)).toMatchObject({ complete: false });
    expect(await results(await checkerOver(store), ['file-1', 'file-2', 'seg-1', 'nobody'])).toEqual({ 'file-1': 'disabled', 'file-2': 'enabled', 'seg-1': 'enabled', nobody: 'disabled' });

    await sink.apply(change('add', ['file-1', 'live-1'], 2));
    expect(await results(await checkerOver(store), ['file-1', 'file-2', 'live-1'])).toEqual({ 'file-1': 'enabled', 'file-2': 'enabled', 'live-1': 'enabled' });

    // Removed again, then a whole snapshot without them: the file's users no longer count at all.
    await sink.apply(change('remove', ['file-1'], 3));
    expect(await results(await checkerOver(store), ['file-1'])).toEqual({ 'file-1': 'disabled' });
    await sink.apply({ type: 'snapshot', flag: FLAG, position: null, users: ['live-1'], version: { at: Date.UTC(2026, 4, 1), partition: 0, offset: 4 } });
    expect(await results(await checkerOver(store), ['file-1', 'file-2', 'live-1'])).toEqual({ 'file-1': 'disabled', 'file-2': 'disabled', 'live-1': 'enabled' });
  });
});

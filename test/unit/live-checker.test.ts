import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { liveStateChecker } from '../../src/feeds/live-checker.js';
import type { LiveFlagState } from '../../src/feeds/live-state.js';
import { flipperBucket } from '../../src/flags/bucketing.js';
import { ReloadingRulesChecker } from '../../src/flags/reloading-checker.js';
import { FlagSnapshot, type FlagSnapshotInput } from '../../src/flags/snapshot.js';
import type { FlagChecker, FlagResult } from '../../src/flags/types.js';
import { silentLogger } from '../../src/logger.js';
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
  return { flag: FLAG, version: { at: Date.UTC(2026, 4, 1), partition: 2, offset: 17 }, enabled: null, percentage: null, users: [], complete: true, removed: [], rulesDigest: null, bucketingDigest: null, updatedAt: '2026-05-01T00:00:00.000Z', ...overrides };
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
    expect(liveStateChecker(base, null)).toBe(base);
  });

  it('a checker that is not the reloading rules checker (http, a fake) is used as it is', () => {
    const base = checkerOf(() => 'enabled');
    expect(liveStateChecker(base, live({ enabled: false }))).toBe(base);
  });

  it('a rules checker that has not loaded yet is used as it is', () => {
    const base = new ReloadingRulesChecker(() => Promise.resolve(rules()), {}, silentLogger());
    expect(liveStateChecker(base, live())).toBe(base);
  });

  it('a complete live state replaces the file\'s explicit users', async () => {
    const checker = liveStateChecker(await rulesChecker(), live({ users: ['live-1'], complete: true }));
    expect(await results(checker, ['live-1', 'file-1', 'file-2', 'nobody'])).toEqual({ 'live-1': 'enabled', 'file-1': 'disabled', 'file-2': 'disabled', nobody: 'disabled' });
  });

  it('an incomplete live state amends the file\'s users: adds on top, removes taken out', async () => {
    const checker = liveStateChecker(await rulesChecker(), live({ users: ['live-1'], removed: ['file-2'], complete: false }));
    expect(await results(checker, ['live-1', 'file-1', 'file-2', 'nobody'])).toEqual({ 'live-1': 'enabled', 'file-1': 'enabled', 'file-2': 'disabled', nobody: 'disabled' });
  });

  it('exclusions from the file still win over live users', async () => {
    for (const complete of [true, false]) {
      const checker = liveStateChecker(await rulesChecker(), live({ users: ['banned', 'live-1'], complete }));
      expect(await results(checker, ['banned', 'live-1'])).toEqual({ banned: 'disabled', 'live-1': 'enabled' });
    }
  });

  it('segments are kept: their members stay enabled whatever the live users say', async () => {
    const completeState = liveStateChecker(await rulesChecker(), live({ users: [], complete: true }));
    expect(await results(completeState, ['seg-1', 'seg-2'])).toEqual({ 'seg-1': 'enabled', 'seg-2': 'enabled' });
    const removed = liveStateChecker(await rulesChecker(), live({ complete: false, removed: ['seg-1'] }));
    expect(await results(removed, ['seg-1'])).toEqual({ 'seg-1': 'enabled' });
  });

  it('live enabled=false disables everyone; true switches on a file that is off; null keeps the file\'s', async () => {
    const off = liveStateChecker(await rulesChecker(), live({ enabled: false, users: ['live-1'], percentage: 100 }));
    expect(Object.values(await results(off, ['live-1', 'seg-1', 'file-1', 'nobody']))).toEqual(['disabled', 'disabled', 'disabled', 'disabled']);
    const on = liveStateChecker(await rulesChecker(rules({ enabled: false })), live({ enabled: true, users: ['live-1'] }));
    expect(await results(on, ['live-1', 'seg-1'])).toEqual({ 'live-1': 'enabled', 'seg-1': 'enabled' });
    const unsaid = liveStateChecker(await rulesChecker(rules({ enabled: false })), live({ enabled: null, users: ['live-1'] }));
    expect(await results(unsaid, ['live-1'])).toEqual({ 'live-1': 'disabled' });
  });

  it('the live percentage replaces the file\'s, with the file\'s bucketing', async () => {
    const ids = Array.from({ length: 400 }, (_, i) => `user-${i}`);
    const inside = (percentage: number) => ids.filter((id) => flipperBucket(FLAG, id) < percentage * 1_000);
    const raised = liveStateChecker(await rulesChecker(rules({ percentage: 5 })), live({ percentage: 30, users: [] }));
    const answers = await raised.check(ids);
    const enabled = ids.filter((_, i) => answers[i] === 'enabled');
    expect(enabled).toEqual(inside(30));
    expect(enabled.length).toBeGreaterThan(inside(5).length);
    expect(enabled.length).toBeLessThan(ids.length);
    const lowered = liveStateChecker(await rulesChecker(rules({ percentage: 50 })), live({ percentage: 0, users: [] }));
    expect((await lowered.check(ids)).every((result) => result === 'disabled')).toBe(true);
    const kept = liveStateChecker(await rulesChecker(rules({ percentage: 30 })), live({ percentage: null, users: [] }));
    expect(await kept.check(ids)).toEqual(answers);
  });

  it('rules that cannot be evaluated offline still make the rest unevaluable', async () => {
    const checker = liveStateChecker(await rulesChecker(rules({ unevaluableRules: ['groups: admins'] })), live({ users: ['live-1'] }));
    expect(await results(checker, ['live-1', 'nobody', 'banned'])).toEqual({ 'live-1': 'enabled', nobody: 'unevaluable', banned: 'disabled' });
  });

  it('follows the rules checker\'s reloads (it reads the snapshot in use when built)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ffd-live-checker-'));
    try {
      const file = join(dir, 'rules.yaml');
      await writeFile(file, 'one');
      let members = ['seg-1'];
      const base = new ReloadingRulesChecker(() => Promise.resolve(rules({ segments: new Map([['beta', members]]), sources: [file] })), {}, silentLogger());
      await base.refresh();
      expect(await results(liveStateChecker(base, live()), ['seg-1', 'seg-9'])).toEqual({ 'seg-1': 'enabled', 'seg-9': 'disabled' });
      members = ['seg-9'];
      await writeFile(file, 'two, longer'); // another size: a changed source
      expect(await base.refresh()).toBe(true);
      expect(await results(liveStateChecker(base, live()), ['seg-1', 'seg-9'])).toEqual({ 'seg-1': 'disabled', 'seg-9': 'enabled' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says it is the live state, at which message, over which rules', async () => {
    const checker = liveStateChecker(await rulesChecker(rules({ percentage: 7 })), live({ enabled: false, users: ['a', 'b'] }));
    expect(checker.description).toBe(`live state of ${FLAG} (message of 2026-05-01T00:00:00.000Z, partition 2, offset 17: off, 2 explicit users, 7%) over ${rules({ percentage: 7 }).describe()}`);
  });
});

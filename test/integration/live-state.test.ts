import { afterEach, describe, expect, it } from 'vitest';
import { ValkeyLiveStateStore, isNewer, type LiveFlagState } from '../../src/feeds/live-state.js';
import { ValkeyStateStore } from '../../src/state/valkey/index.js';
import { VALKEY_TARGETS, uniqueName } from '../helpers/services.js';

// Issue 15 groundwork: the flag's live state, versioned in Valkey so an older message (another
// partition, a replay) never overwrites a newer one — on a single node and on a cluster.

const FLAG = 'consumer_graph_ingestion';
const state = (at: number, partition: number, offset: number, users: string[]): LiveFlagState => ({
  flag: FLAG,
  version: { at, partition, offset },
  enabled: true,
  percentage: null,
  users,
  updatedAt: new Date(at).toISOString(),
});

describe('isNewer', () => {
  it('orders by time, then partition, then offset', () => {
    expect(isNewer({ at: 2, partition: 0, offset: 0 }, { at: 1, partition: 9, offset: 9 })).toBe(true);
    expect(isNewer({ at: 1, partition: 1, offset: 0 }, { at: 1, partition: 0, offset: 9 })).toBe(true);
    expect(isNewer({ at: 1, partition: 0, offset: 5 }, { at: 1, partition: 0, offset: 5 })).toBe(false);
  });
});

describe.each(VALKEY_TARGETS)('the live flag state on $name', (target) => {
  const stores: ValkeyStateStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });
  const open = async (prefix: string) => {
    const store = new ValkeyStateStore({ url: target.url(), cluster: target.cluster, knownSetKey: `${prefix}:known`, loadedKeyPrefix: `${prefix}:loaded:`, detectorKeyPrefix: `${prefix}:d:`, connectTimeoutMs: 2000 });
    stores.push(store);
    await store.ping();
    return new ValkeyLiveStateStore(store.connection, `${prefix}:`);
  };

  it('keeps the newest state: an older message from another partition or a replay is stale', async () => {
    const prefix = uniqueName('live');
    const live = await open(prefix);
    expect(await live.read(FLAG)).toBeNull();
    expect(await live.apply(state(1000, 0, 10, ['user-1']))).toBe('applied');
    expect(await live.apply(state(2000, 1, 3, ['user-1', 'user-2']))).toBe('applied');
    expect(await live.apply(state(1500, 2, 99, ['user-9']))).toBe('stale'); // older, another partition
    expect(await live.apply(state(2000, 1, 3, ['user-7']))).toBe('stale'); // the same message again
    expect((await live.read(FLAG))?.users).toEqual(['user-1', 'user-2']);
    // A restart reads it back through a new connection.
    expect((await (await open(prefix)).read(FLAG))?.version).toEqual({ at: 2000, partition: 1, offset: 3 });
  });

  it('lets exactly one of many concurrent writers of the same version win', async () => {
    const live = await open(uniqueName('live'));
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => live.apply(state(5000, 0, 7, [`user-${i}`]))));
    expect(results.filter((result) => result === 'applied')).toHaveLength(1);
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { ValkeyStateStore } from '../../src/state/valkey/index.js';
import { MemoryReplicaBoard } from '../../src/state/memory-replica-board.js';
import type { ReplicaBoard } from '../../src/state/types.js';
import { uniqueName, VALKEY_TARGETS, waitFor } from '../helpers/services.js';

// The replicas' board: the same behaviour in memory (file state), on a Valkey node and a cluster.

const stores: ValkeyStateStore[] = [];
afterAll(async () => {
  for (const store of stores) await store.close();
});

function valkeyBoard(target: (typeof VALKEY_TARGETS)[number]): () => ReplicaBoard {
  return () => {
    const prefix = uniqueName('board');
    const store = new ValkeyStateStore({ url: target.url(), cluster: target.cluster, knownSetKey: `${prefix}:known`, loadedKeyPrefix: `${prefix}:loaded:`, detectorKeyPrefix: `${prefix}:detector:`, connectTimeoutMs: 5000 });
    stores.push(store);
    return store.board;
  };
}

const boards: Array<[string, () => ReplicaBoard]> = [['in memory', () => new MemoryReplicaBoard()], ...VALKEY_TARGETS.map((target): [string, () => ReplicaBoard] => [target.name, valkeyBoard(target)])];

describe.each(boards)('the replicas\' board %s', (_name, create) => {
  it('lists the replicas heard within their TTL; one that stops beating drops off by itself', async () => {
    const board = create();
    await board.announce('a', '{"replicaId":"a"}', 60_000);
    await board.announce('b', '{"replicaId":"b"}', 1500);
    expect((await board.replicas()).sort()).toEqual(['{"replicaId":"a"}', '{"replicaId":"b"}']);
    await board.announce('a', '{"replicaId":"a","seen":2}', 60_000);
    await waitFor(async () => (await board.replicas()).length === 1, 'b to expire', 10_000);
    expect(await board.replicas()).toEqual(['{"replicaId":"a","seen":2}']);
    await board.withdraw('a');
    expect(await board.replicas()).toEqual([]);
  });

  it('keeps notes until replaced or removed, or for their TTL', async () => {
    const board = create();
    expect(await board.read('current-run')).toBeNull();
    await board.post('lag-gate', '{"lag":1}', null);
    await board.post('current-run', '{"enqueued":5}', 1500);
    expect(await board.read('current-run')).toBe('{"enqueued":5}');
    await board.post('current-run', '{"enqueued":6}', 60_000);
    expect(await board.read('current-run')).toBe('{"enqueued":6}');
    await board.post('current-run', null, null);
    expect(await board.read('current-run')).toBeNull();
    await board.post('current-run', '{"enqueued":7}', 1500);
    await waitFor(async () => (await board.read('current-run')) === null, 'the note to expire', 10_000);
    expect(await board.read('lag-gate')).toBe('{"lag":1}');
  });
});

describe.each(VALKEY_TARGETS)('the replicas\' board on $name', (target) => {
  it('drops a field it did not write (no deadline) instead of listing it', async () => {
    const prefix = uniqueName('board');
    const store = new ValkeyStateStore({ url: target.url(), cluster: target.cluster, knownSetKey: `${prefix}:known`, loadedKeyPrefix: `${prefix}:loaded:`, detectorKeyPrefix: `${prefix}:detector:`, connectTimeoutMs: 5000 });
    stores.push(store);
    const client = target.client();
    await client.hset(`${prefix}:detector:replicas`, 'stray', 'not a heartbeat');
    await store.board.announce('a', '{"replicaId":"a"}', 60_000);
    expect(await store.board.replicas()).toEqual(['{"replicaId":"a"}']);
    expect(await client.hkeys(`${prefix}:detector:replicas`)).toEqual(['a']);
    await client.quit();
  });
});

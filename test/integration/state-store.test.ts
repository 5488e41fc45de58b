import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStateStore } from '../../src/state/file-store.js';
import type { StateStore } from '../../src/state/types.js';
import { ValkeyStateStore } from '../../src/state/valkey-store.js';
import { RunLease } from '../../src/state/run-lease.js';
import { silentLogger } from '../../src/logger.js';
import { tempDir } from '../helpers/files.js';
import { uniqueName, valkeyClient, valkeyUrl, waitFor } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const valkey = valkeyClient();
afterAll(() => valkey.quit());

interface Adapter {
  name: string;
  open(): { store: StateStore; markLoaded?: (id: string) => Promise<void> };
}

const adapters: Adapter[] = [
  {
    name: 'ValkeyStateStore (real Valkey)',
    open() {
      const prefix = uniqueName('conf');
      const store = new ValkeyStateStore({ url: valkeyUrl(), knownSetKey: `${prefix}:known`, loadedKeyPrefix: `${prefix}:loaded:`, historyKey: `${prefix}:runs`, connectTimeoutMs: 2000 });
      return { store, markLoaded: async (id) => void (await valkey.set(`${prefix}:loaded:${id}`, '1', 'EX', 60)) };
    },
  },
  {
    name: 'FileStateStore (journal file)',
    open: () => ({ store: new FileStateStore(path.join(tempDir(), 'state', 'journal')) }),
  },
];

// Every adapter of the StateStore port passes the same suite.
describe.each(adapters)('$name conformance', (adapter) => {
  it('marks, answers in order and forgets', async () => {
    const { store } = adapter.open();
    await store.ping();
    expect(await store.areKnown(['a', 'b', 'c'])).toEqual([false, false, false]);
    await store.markKnown(['a', 'c']);
    expect(await store.areKnown(['a', 'b', 'c'])).toEqual([true, false, true]);
    await store.forget(['a', 'x']);
    expect(await store.areKnown(['a', 'b', 'c'])).toEqual([false, false, true]);
    expect(await store.areKnown([])).toEqual([]);
    await store.markKnown([]);
    await store.close();
  });

  it('answers 1,000-ID batches', async () => {
    const { store } = adapter.open();
    const ids = Array.from({ length: 1000 }, (_, i) => `u${i}`);
    await store.markKnown(ids.filter((_, i) => i % 3 === 0));
    expect(await store.areKnown(ids)).toEqual(ids.map((_, i) => i % 3 === 0));
    await store.close();
  });

  it('reports loaded users where the store knows them', async () => {
    const { store, markLoaded } = adapter.open();
    if (markLoaded) await markLoaded('l1');
    expect(await store.areLoaded(['l1', 'l2'])).toEqual([Boolean(markLoaded), false]);
    await store.close();
  });

  it('locks: one holder, renew and release by the owner only', async () => {
    const { store } = adapter.open();
    const key = uniqueName('lock');
    expect(await store.tryLock(key, 'A', 10_000)).toBe(true);
    expect(await store.tryLock(key, 'B', 10_000)).toBe(false);
    expect(await store.renewLock(key, 'B', 10_000)).toBe(false);
    expect(await store.renewLock(key, 'A', 10_000)).toBe(true);
    await store.unlock(key, 'B');
    expect(await store.tryLock(key, 'B', 10_000)).toBe(false);
    await store.unlock(key, 'A');
    expect(await store.tryLock(key, 'B', 10_000)).toBe(true);
    await store.close();
  });

  it('lets an expired lock be taken over', async () => {
    const { store } = adapter.open();
    const key = uniqueName('lock');
    expect(await store.tryLock(key, 'A', 50)).toBe(true);
    const deadline = Date.now() + 5000;
    let taken = false;
    while (!taken && Date.now() < deadline) taken = await store.tryLock(key, 'B', 10_000);
    expect(taken).toBe(true);
    expect(await store.renewLock(key, 'A', 10_000)).toBe(false);
    await store.close();
  });

  it('keeps the newest run summaries, newest first', async () => {
    const { store } = adapter.open();
    expect(await store.readHistory(5)).toEqual([]);
    for (let i = 1; i <= 4; i++) await store.pushHistory(JSON.stringify({ run: i }), 3);
    expect((await store.readHistory(10)).map((entry) => JSON.parse(entry) as { run: number })).toEqual([{ run: 4 }, { run: 3 }, { run: 2 }]);
    expect(await store.readHistory(1)).toEqual([JSON.stringify({ run: 4 })]);
    await store.close();
  });

  it('RunLease: a second lease waits for the first to be released', async () => {
    const { store } = adapter.open();
    const key = uniqueName('lease');
    const first = await RunLease.acquire(store, key, silentLogger());
    expect(first).toBeDefined();
    expect(await RunLease.acquire(store, key, silentLogger())).toBeUndefined();
    await first?.release();
    const second = await RunLease.acquire(store, key, silentLogger());
    expect(second).toBeDefined();
    await second?.release();
    await store.close();
  });
});

describe('FileStateStore persistence', () => {
  it('survives a restart and compacts a long journal', async () => {
    const file = path.join(tempDir(), 'journal');
    const first = new FileStateStore(file);
    for (let i = 0; i < 30; i++) {
      await first.markKnown(Array.from({ length: 100 }, (_, j) => `u${j}`));
      await first.forget(Array.from({ length: 100 }, (_, j) => `u${j}`));
    }
    await first.markKnown(['keep']);
    await first.close();
    const second = new FileStateStore(file);
    expect(await second.areKnown(['keep', 'u1'])).toEqual([true, false]);
    await second.close();
    const { readFile } = await import('node:fs/promises');
    expect((await readFile(file, 'utf8')).trim()).toBe('+keep');
  });
});

describe('ValkeyStateStore failures', () => {
  it('says clearly when Valkey cannot be reached', async () => {
    const store = new ValkeyStateStore({ url: 'redis://127.0.0.1:1', knownSetKey: 'k', loadedKeyPrefix: 'l:', connectTimeoutMs: 1000 });
    await expect(store.ping()).rejects.toThrow(/Valkey connect failed at redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED/);
    await store.close();
  });

  it('recovers when Valkey comes back after the client gave up reconnecting', async () => {
    const proxy = await TcpProxy.start(valkeyUrl());
    const prefix = uniqueName('recover');
    const store = new ValkeyStateStore({ url: proxy.url(valkeyUrl()), knownSetKey: `${prefix}:known`, loadedKeyPrefix: `${prefix}:loaded:`, connectTimeoutMs: 500, commandTimeoutMs: 1000 });
    await store.markKnown(['a']);
    proxy.cut();
    await expect(store.areKnown(['a'])).rejects.toThrow(/Valkey/);
    await waitFor(() => store.connectionState === 'end', 'the client to give up reconnecting', 10_000);
    proxy.restore();
    expect(await store.areKnown(['a'])).toEqual([true]);
    await store.close();
    await proxy.close();
  });

  it('keeps passwords out of its description and errors', () => {
    const store = new ValkeyStateStore({ url: 'redis://:s3cret@127.0.0.1:1', knownSetKey: 'k', loadedKeyPrefix: 'l:', connectTimeoutMs: 1000 });
    expect(store.description).not.toContain('s3cret');
  });
});

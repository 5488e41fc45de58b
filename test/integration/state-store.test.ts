import { appendFileSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { FileStateStore } from '../../src/state/file/index.js';
import { RunLease } from '../../src/state/run-lease.js';
import type { StateStore } from '../../src/state/types.js';
import { ValkeyStateStore } from '../../src/state/valkey/index.js';
import { tempDir } from '../helpers/files.js';
import { uniqueName, valkeyClient, valkeyClusterClient, valkeyClusterUrl, valkeyUrl, waitFor } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const valkey = valkeyClient();
afterAll(() => valkey.quit());

interface Adapter {
  name: string;
  open(): { store: StateStore; markLoaded?: (id: string) => Promise<void> };
}

const message = { reason: 'r', lookbackDays: 365, priority: 'low', requestIdPrefix: 'p' };

function valkeyStore(prefix = uniqueName('conf'), url = valkeyUrl(), cluster = false): ValkeyStateStore {
  return new ValkeyStateStore({ url, cluster, knownSetKey: `${prefix}:known`, loadedKeyPrefix: `${prefix}:loaded:`, detectorKeyPrefix: `${prefix}:d:`, connectTimeoutMs: 2000 });
}

const cluster = valkeyClusterClient();
afterAll(() => cluster.quit());

const adapters: Adapter[] = [
  {
    name: 'ValkeyStateStore (real Valkey)',
    open() {
      const prefix = uniqueName('conf');
      return { store: valkeyStore(prefix), markLoaded: async (id) => void (await valkey.set(`${prefix}:loaded:${id}`, '1', 'EX', 60)) };
    },
  },
  {
    name: 'ValkeyStateStore (real cluster: three primaries, three replicas)',
    open() {
      const prefix = uniqueName('conf');
      return { store: valkeyStore(prefix, valkeyClusterUrl(), true), markLoaded: async (id) => void (await cluster.set(`${prefix}:loaded:${id}`, '1', 'EX', 60)) };
    },
  },
  {
    name: 'FileStateStore (journal file)',
    open: () => ({ store: new FileStateStore(path.join(tempDir(), 'state', 'journal')) }),
  },
];

// Every adapter of the state ports passes the same suite.
describe.each(adapters)('$name conformance', (adapter) => {
  it('marks, answers in order and forgets', async () => {
    const { store } = adapter.open();
    const { known } = store;
    await store.ping();
    expect(await known.areKnown(['a', 'b', 'c'])).toEqual([false, false, false]);
    await known.markKnown(['a', 'c']);
    expect(await known.areKnown(['a', 'b', 'c'])).toEqual([true, false, true]);
    await known.forget(['a', 'x']);
    expect(await known.areKnown(['a', 'b', 'c'])).toEqual([false, false, true]);
    expect(await known.areKnown([])).toEqual([]);
    await known.markKnown([]);
    await store.close();
  });

  it('answers 1,000-ID batches', async () => {
    const { store } = adapter.open();
    const ids = Array.from({ length: 1000 }, (_, i) => `u${i}`);
    await store.known.markKnown(ids.filter((_, i) => i % 3 === 0));
    expect(await store.known.areKnown(ids)).toEqual(ids.map((_, i) => i % 3 === 0));
    await store.close();
  });

  it('reports loaded users where the store knows them', async () => {
    const { store, markLoaded } = adapter.open();
    if (markLoaded) await markLoaded('l1');
    expect(await store.known.areLoaded(['l1', 'l2'])).toEqual([Boolean(markLoaded), false]);
    await store.close();
  });

  it('answers loaded_users for 1,000 IDs spread over every slot, in order', async () => {
    const { store, markLoaded } = adapter.open();
    const ids = Array.from({ length: 1000 }, (_, i) => `spread-${i}`);
    if (markLoaded) for (const id of ids.filter((_, i) => i % 7 === 0)) await markLoaded(id);
    expect(await store.known.areLoaded(ids)).toEqual(ids.map((_, i) => Boolean(markLoaded) && i % 7 === 0));
    await store.close();
  });

  it('locks: one holder, renew and release by the owner only', async () => {
    const { store } = adapter.open();
    const { locks } = store;
    const key = uniqueName('lock');
    expect(await locks.tryLock(key, 'A', 10_000)).toBe(true);
    expect(await locks.tryLock(key, 'B', 10_000)).toBe(false);
    expect(await locks.renewLock(key, 'B', 10_000)).toBe(false);
    expect(await locks.renewLock(key, 'A', 10_000)).toBe(true);
    await locks.unlock(key, 'B');
    expect(await locks.tryLock(key, 'B', 10_000)).toBe(false);
    await locks.unlock(key, 'A');
    expect(await locks.tryLock(key, 'B', 10_000)).toBe(true);
    await store.close();
  });

  it('lets an expired lock be taken over, by exactly one of many contenders', async () => {
    const { store } = adapter.open();
    const key = uniqueName('lock');
    const expiresAt = Date.now() + 50;
    expect(await store.locks.tryLock(key, 'A', 50)).toBe(true);
    await waitFor(() => Date.now() > expiresAt + 10, 'the lock to expire');
    // Twenty contenders at once on the expired lock: one wins.
    const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => store.locks.tryLock(key, `c${i}`, 10_000)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await store.locks.renewLock(key, 'A', 10_000)).toBe(false);
    await store.close();
  });

  it('permits: granted once, taken once, gone when expired', async () => {
    const { store } = adapter.open();
    const key = uniqueName('permit');
    expect(await store.permits.take(key)).toBe(false);
    await store.permits.grant(key, 10_000);
    const takers = await Promise.all([store.permits.take(key), store.permits.take(key)]);
    expect(takers.filter(Boolean)).toHaveLength(1);
    expect(await store.permits.take(key)).toBe(false);
    const expiresAt = Date.now() + 50;
    await store.permits.grant(key, 50);
    await waitFor(() => Date.now() > expiresAt + 10, 'the permit to expire');
    expect(await store.permits.take(key)).toBe(false);
    await store.close();
  });

  it('keeps the newest run summaries, newest first', async () => {
    const { store } = adapter.open();
    expect(await store.history.read(5)).toEqual([]);
    for (let i = 1; i <= 4; i++) await store.history.push(JSON.stringify({ run: i }), 3);
    expect((await store.history.read(10)).map((entry) => JSON.parse(entry) as { run: number })).toEqual([{ run: 4 }, { run: 3 }, { run: 2 }]);
    expect(await store.history.read(1)).toEqual([JSON.stringify({ run: 4 })]);
    await store.history.push(JSON.stringify({ run: 5 }), 1);
    expect(await store.history.read(10)).toEqual([JSON.stringify({ run: 5 })]);
    await store.close();
  });

  it('RunLease: a second lease waits for the first to be released', async () => {
    const { store } = adapter.open();
    const key = uniqueName('lease');
    const first = await RunLease.acquire(store.locks, key, silentLogger());
    expect(first).toBeDefined();
    expect(await RunLease.acquire(store.locks, key, silentLogger())).toBeUndefined();
    await first?.release();
    const second = await RunLease.acquire(store.locks, key, silentLogger());
    expect(second).toBeDefined();
    await second?.release();
    await store.close();
  });

  it('backfill job: created, filled, sent and failed users recorded once, remaining kept', async () => {
    const { store } = adapter.open();
    const jobs = store.backfillJobs;
    expect(await jobs.current()).toBeNull();
    await jobs.create({ jobId: 'j1', origin: 'user_ids', message, owner: 'host:1' });
    expect(await jobs.current()).toMatchObject({ jobId: 'j1', status: 'preparing', total: 0, remaining: 0, message });
    const users = Array.from({ length: 25_000 }, (_, i) => `u${i}`);
    await jobs.fill('j1', users, { invalid: 2, duplicates: 3 });
    expect(await jobs.current()).toMatchObject({ status: 'running', total: 25_000, remaining: 25_000, invalid: 2, duplicates: 3 });
    expect(await jobs.recordSent('j1', ['u0', 'u1', 'u2'])).toBe(3);
    expect(await jobs.recordSent('j1', ['u1', 'u3'])).toBe(1); // u1 again: counted once
    expect(await jobs.recordFailed('j1', ['u4'])).toBe(1);
    await jobs.update('j1', { status: 'interrupted', owner: null });
    expect(await jobs.current()).toMatchObject({ status: 'interrupted', sent: 4, failed: 1, remaining: 24_995, owner: null });
    const remaining = await jobs.remaining('j1');
    expect(remaining).toHaveLength(24_995);
    expect(remaining).not.toContain('u0');
    expect(remaining).not.toContain('u4');
    await store.close();
  });

  it('backfill job: a replaced job ignores writes naming the old one', async () => {
    const { store } = adapter.open();
    const jobs = store.backfillJobs;
    await jobs.create({ jobId: 'old', origin: 'user_ids', message, owner: null });
    await jobs.fill('old', ['a', 'b'], { invalid: 0, duplicates: 0 });
    await jobs.create({ jobId: 'new', origin: 's3://b/k', message, owner: null });
    await jobs.fill('new', ['c'], { invalid: 0, duplicates: 0 });
    expect(await jobs.recordSent('old', ['a'])).toBe(0);
    await jobs.update('old', { status: 'failed' });
    await jobs.fill('old', ['x'], { invalid: 0, duplicates: 0 });
    expect(await jobs.current()).toMatchObject({ jobId: 'new', status: 'running', total: 1, sent: 0, remaining: 1 });
    expect(await jobs.remaining('new')).toEqual(['c']);
    expect(await jobs.remaining('old')).toEqual([]);
    await store.close();
  });
});

describe('FileStateStore journal', () => {
  const journal = (): string => path.join(tempDir(), 'state', 'journal');

  it('survives a restart; a writer compacts a long journal', async () => {
    const file = journal();
    const first = new FileStateStore(file);
    for (let i = 0; i < 30; i++) {
      await first.known.markKnown(Array.from({ length: 100 }, (_, j) => `u${j}`));
      await first.known.forget(Array.from({ length: 100 }, (_, j) => `u${j}`));
    }
    await first.known.markKnown(['keep']);
    await first.close();
    const second = new FileStateStore(file);
    expect(await second.known.areKnown(['keep', 'u1'])).toEqual([true, false]);
    expect(readFileSync(file, 'utf8').split('\n').length).toBeGreaterThan(1000); // reading never compacts
    await second.known.markKnown(['more']);
    expect(readFileSync(file, 'utf8')).toBe('+keep\n+more\n');
    await second.close();
  });

  it('ignores a torn last line, and the next writer cuts it off', async () => {
    const file = journal();
    const store = new FileStateStore(file);
    await store.known.markKnown(['user-1']);
    await store.close();
    appendFileSync(file, '+user-12'); // "+user-123\n" cut short by a crash
    const reader = new FileStateStore(file);
    expect(await reader.known.areKnown(['user-1', 'user-12', 'user-123'])).toEqual([true, false, false]);
    await reader.known.markKnown(['user-2']);
    expect(readFileSync(file, 'utf8')).toBe('+user-1\n+user-2\n');
    await reader.close();
  });

  it('sees what another process appended, and follows a journal replaced by compaction', async () => {
    const file = journal();
    const daemon = new FileStateStore(file);
    const cli = new FileStateStore(file);
    await daemon.known.markKnown(['a']);
    await cli.known.markKnown(['b']);
    expect(await daemon.known.areKnown(['a', 'b'])).toEqual([true, true]);
    // The CLI compacts (a long journal), replacing the file the daemon has open.
    for (let i = 0; i < 12; i++) await cli.known.forget(Array.from({ length: 100 }, (_, j) => `gone${i}-${j}`));
    const before = statSync(file).ino;
    const fresh = new FileStateStore(file);
    await fresh.known.markKnown(['c']);
    expect(statSync(file).ino).not.toBe(before);
    await daemon.known.markKnown(['d']); // written to the new file, not the replaced one
    const reader = new FileStateStore(file);
    expect(await reader.known.areKnown(['a', 'b', 'c', 'd'])).toEqual([true, true, true, true]);
    for (const store of [daemon, cli, fresh, reader]) await store.close();
  });

  it('lock files are whole when they appear: a contender never reads an empty owner', async () => {
    const file = journal();
    for (let round = 0; round < 20; round++) {
      const stores = Array.from({ length: 8 }, () => new FileStateStore(file));
      const wins = await Promise.all(stores.map((store, i) => store.locks.tryLock(`round-${round}`, `t${i}`, 10_000)));
      expect(wins.filter(Boolean)).toHaveLength(1);
    }
  });
});

describe('ValkeyStateStore failures', () => {
  it('says clearly when Valkey cannot be reached', async () => {
    const store = valkeyStore('k', 'redis://127.0.0.1:1');
    await expect(store.ping()).rejects.toThrow(/Valkey connect failed at redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED/);
    await store.close();
  });

  it('refuses a database the server does not have instead of using database 0', async () => {
    const store = valkeyStore(uniqueName('db'), `${valkeyUrl()}/99`);
    await expect(store.ping()).rejects.toThrow(/has no database 99/);
    await store.close();
    const three = valkeyStore(uniqueName('db'), `${valkeyUrl()}/3`);
    await three.known.markKnown(['in-db-3']);
    await three.close();
  });

  it('recovers when Valkey comes back after the client gave up reconnecting', async () => {
    const proxy = await TcpProxy.start(valkeyUrl());
    const prefix = uniqueName('recover');
    const store = new ValkeyStateStore({
      url: proxy.url(valkeyUrl()),
      knownSetKey: `${prefix}:known`,
      loadedKeyPrefix: `${prefix}:loaded:`,
      detectorKeyPrefix: `${prefix}:d:`,
      connectTimeoutMs: 500,
      commandTimeoutMs: 1000,
    });
    await store.known.markKnown(['a']);
    proxy.cut();
    await expect(store.known.areKnown(['a'])).rejects.toThrow(/Valkey/);
    await waitFor(() => store.connection.state === 'end', 'the client to give up reconnecting', 10_000);
    proxy.restore();
    expect(await store.known.areKnown(['a'])).toEqual([true]);
    await store.close();
    await proxy.close();
  });

  it('keeps passwords out of its description and errors', () => {
    const store = valkeyStore('k', 'redis://:s3cret@127.0.0.1:1');
    expect(store.description).not.toContain('s3cret');
  });
});

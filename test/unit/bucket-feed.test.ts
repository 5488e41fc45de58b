import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FfError } from '../../src/errors.js';
import { startBucketFeed, type BucketFeedHandle, type BucketFeedSettings } from '../../src/feeds/bucket-feed.js';
import { eventKeys } from '../../src/feeds/bucket-notifications.js';
import { keyPatternMatcher } from '../../src/feeds/key-pattern.js';
import { LiveStateSink } from '../../src/feeds/live-state-sink.js';
import { MemoryFeedStore } from '../../src/feeds/memory-feed-store.js';
import type { ObjectInfo, ObjectStore, S3Location } from '../../src/inputs/object-store.js';
import type { MappingConfig } from '../../src/investigate/mapping.js';
import { silentLogger } from '../../src/logger.js';
import { DetectorEventBus } from '../../src/observability/events.js';

// Issue 16: Strategy C's bucket feed, one listing cycle at a time (`once`), against a bucket in
// memory and the in-memory feed store.

const FLAG = 'consumer_graph_ingestion';
const BUCKET = 'flag-bucket';
const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
const users = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `user-${from + i}`);

interface StoredObject {
  body: Buffer;
  etag: string;
  lastModified: Date;
}

/** A bucket in memory: open() yields the body in small Buffers and counts its calls. */
class FakeObjectStore implements ObjectStore {
  readonly objects = new Map<string, StoredObject>();
  readonly opened: string[] = [];
  /** Keys listed but gone by the time they are opened (deleted between the listing and the read). */
  readonly deletedAfterListing = new Set<string>();
  private version = 0;

  constructor(private readonly chunkSize = 7) {}

  put(key: string, body: string | Buffer, lastModified = new Date(Date.UTC(2024, 0, 1) + this.version * 60_000)): void {
    this.version += 1;
    this.objects.set(key, { body: Buffer.isBuffer(body) ? body : Buffer.from(body), etag: `"etag-${this.version}"`, lastModified });
  }

  delete(key: string): void {
    this.objects.delete(key);
  }

  open(location: S3Location): Promise<AsyncIterable<Buffer>> {
    this.opened.push(location.key);
    const object = location.bucket === BUCKET && !this.deletedAfterListing.has(location.key) ? this.objects.get(location.key) : undefined;
    if (!object) return Promise.reject(new FfError('INPUT_UNREADABLE', `cannot read s3://${location.bucket}/${location.key}: object does not exist`));
    const { body } = object;
    const size = this.chunkSize;
    return Promise.resolve(
      (async function* () {
        for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
      })(),
    );
  }

  etag(location: S3Location): Promise<string> {
    return Promise.resolve(this.objects.get(location.key)?.etag ?? '');
  }

  list(bucket: string, prefix: string, max: number): Promise<ObjectInfo[]> {
    if (bucket !== BUCKET) return Promise.resolve([]);
    const keys = [...this.objects.keys()].filter((key) => key.startsWith(prefix)).sort();
    return Promise.resolve(keys.slice(0, max).map((key) => {
      const object = this.objects.get(key) as StoredObject;
      return { key, size: object.body.length, lastModified: object.lastModified, etag: object.etag };
    }));
  }

  openedCount(key: string): number {
    return this.opened.filter((opened) => opened === key).length;
  }
}

/** Documents `{ "name": flag, "enabled": …, "users": [...] }`. */
const documentMapping: MappingConfig = { kind: 'snapshot', flagNamePath: '$.name', usersPath: '$.users[*]', usersSeparator: null, percentagePath: null, enabledPath: '$.enabled', operationPath: null, addValues: [], removeValues: [], filters: [] };
const documentOf = (ids: string[], name = FLAG): string => JSON.stringify({ name, enabled: true, users: ids });
/** Objects that are the list itself, linked to the flag by their key. */
const listMapping: MappingConfig = { kind: 'snapshot', flagNamePath: null, usersPath: null, usersSeparator: null, percentagePath: null, enabledPath: null, operationPath: null, addValues: [], removeValues: [], filters: [] };
const listOf = (ids: string[]): string => `${ids.join('\n')}\n`;

interface Harness {
  objects: FakeObjectStore;
  store: MemoryFeedStore;
  sink: LiveStateSink;
  released: ReturnType<typeof vi.fn<() => Promise<boolean>>>;
  settings: BucketFeedSettings;
  /** One listing cycle (a fresh feed each time, as `watch s3 --once` or a restart would). */
  cycle(): Promise<BucketFeedHandle>;
  explicit(): Promise<string[]>;
  marks(): Promise<Record<string, { etag: string; outcome: string; heldBy?: string; detail: string | null }>>;
}

function harness(objects: BucketFeedSettings['mapping']['objects'], mapping: MappingConfig = documentMapping, overrides: Partial<BucketFeedSettings> = {}): Harness {
  const fake = new FakeObjectStore();
  const store = new MemoryFeedStore();
  const sink = new LiveStateSink(store, silentLogger(), new DetectorEventBus());
  const released = vi.fn<() => Promise<boolean>>(() => Promise.resolve(false));
  const settings: BucketFeedSettings = {
    bucket: BUCKET,
    prefix: 'flags/',
    flag: FLAG,
    mapping: { ...mapping, objects },
    intervalMs: 60_000,
    maxObjects: 1000,
    maxDocumentBytes: 1024 * 1024,
    idPattern,
    guard: { maxFraction: 0.5, floor: 2, released },
    ...overrides,
  };
  const every = users(1000);
  return {
    objects: fake,
    store,
    sink,
    released,
    settings,
    async cycle() {
      const handle = startBucketFeed(settings, { objects: fake, store, logger: silentLogger(), events: new DetectorEventBus() }, sink, new AbortController().signal, { once: true });
      await handle.ended;
      expect(handle.health()).toMatchObject({ state: 'stopped', error: null });
      return handle;
    },
    async explicit() {
      const { explicit } = await store.membership(FLAG, every);
      return every.filter((_, i) => explicit[i]);
    },
    async marks() {
      return Object.fromEntries([...(await store.objectMarks(FLAG))].map(([key, { etag, outcome, heldBy, detail }]) => [key, { etag, outcome, ...(heldBy ? { heldBy } : {}), detail }]));
    },
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('bucket feed: which objects it reads', () => {
  it('only keys of the key pattern', async () => {
    const h = harness({ keyPattern: 'flags/{name}.json', newest: false, linkedByKey: false });
    h.objects.put('flags/main.json', documentOf(users(3)));
    h.objects.put('flags/nested/other.json', documentOf(users(5)));
    h.objects.put('flags/main.json.bak', documentOf(users(7)));
    h.objects.put('flags/readme.txt', 'hello');
    await h.cycle();
    expect(h.objects.opened).toEqual(['flags/main.json']);
    expect(await h.explicit()).toEqual(users(3));
  });

  it('linkedByKey: only keys naming the flag as a whole word', async () => {
    const h = harness({ keyPattern: 'flags/{name}.txt', newest: false, linkedByKey: true }, listMapping);
    h.objects.put(`flags/${FLAG}.txt`, listOf(users(2)));
    h.objects.put(`flags/${FLAG}_v2.txt`, listOf(users(5, 100)));
    h.objects.put(`flags/pre${FLAG}.txt`, listOf(users(5, 200)));
    h.objects.put('flags/dark_mode.txt', listOf(users(5, 300)));
    await h.cycle();
    expect(h.objects.opened).toEqual([`flags/${FLAG}.txt`]);
    expect(await h.explicit()).toEqual(users(2));
  });

  it('newest: the latest lastModified wins, whatever the key order', async () => {
    const h = harness({ keyPattern: 'flags/snapshot-{n}.json', newest: true, linkedByKey: false });
    h.objects.put('flags/snapshot-3.json', documentOf(users(3)), new Date('2024-01-01T00:00:00Z'));
    h.objects.put('flags/snapshot-1.json', documentOf(users(1)), new Date('2024-03-01T00:00:00Z'));
    h.objects.put('flags/snapshot-2.json', documentOf(users(2)), new Date('2024-02-01T00:00:00Z'));
    await h.cycle();
    expect(h.objects.opened).toEqual(['flags/snapshot-1.json']);
    expect(await h.explicit()).toEqual(users(1));
  });

  it('newest: the marks of dated snapshots retention removed are dropped from the checkpoint', async () => {
    const h = harness({ keyPattern: 'flags/snapshot-{n}.json', newest: true, linkedByKey: false });
    h.objects.put('flags/snapshot-1.json', documentOf(users(1)), new Date('2024-01-01T00:00:00Z'));
    await h.cycle();
    h.objects.put('flags/snapshot-2.json', documentOf(users(2)), new Date('2024-02-01T00:00:00Z'));
    await h.cycle();
    expect(Object.keys(await h.marks()).sort()).toEqual(['flags/snapshot-1.json', 'flags/snapshot-2.json']);
    h.objects.delete('flags/snapshot-1.json');
    await h.cycle();
    expect(Object.keys(await h.marks())).toEqual(['flags/snapshot-2.json']);
    expect(await h.explicit()).toEqual(users(2));
  });

  it('newest: the greatest key breaks a tie of lastModified', async () => {
    const h = harness({ keyPattern: 'flags/snapshot-{n}.json', newest: true, linkedByKey: false });
    const at = new Date('2024-01-01T00:00:00Z');
    h.objects.put('flags/snapshot-20.json', documentOf(users(2)), at);
    h.objects.put('flags/snapshot-30.json', documentOf(users(3)), at);
    h.objects.put('flags/snapshot-10.json', documentOf(users(1)), at);
    await h.cycle();
    expect(h.objects.opened).toEqual(['flags/snapshot-30.json']);
  });
});

describe('bucket feed: ETags', () => {
  it('an unchanged ETag is not opened again; a changed one is read and applied', async () => {
    const h = harness({ keyPattern: `flags/${FLAG}.json`, newest: false, linkedByKey: false });
    h.objects.put(`flags/${FLAG}.json`, documentOf(users(4)));
    await h.cycle();
    const first = await h.marks();
    expect(first[`flags/${FLAG}.json`]).toMatchObject({ outcome: 'applied', etag: '"etag-1"' });
    const again = await h.cycle();
    expect(h.objects.openedCount(`flags/${FLAG}.json`)).toBe(1);
    expect(again.details().lastListing).toMatchObject({ listed: 1, matched: 1, read: 0 });

    h.objects.put(`flags/${FLAG}.json`, documentOf(users(5)));
    const changed = await h.cycle();
    expect(h.objects.openedCount(`flags/${FLAG}.json`)).toBe(2);
    expect(changed.details().lastListing).toMatchObject({ read: 1 });
    expect(await h.explicit()).toEqual(users(5));
    expect((await h.marks())[`flags/${FLAG}.json`]).toMatchObject({ outcome: 'applied', etag: '"etag-2"' });
  });

  it('a document about another flag is marked unrelated and not read again', async () => {
    const h = harness({ keyPattern: 'flags/{name}.json', newest: false, linkedByKey: false });
    h.objects.put('flags/other.json', documentOf(users(3), 'dark_mode'));
    await h.cycle();
    await h.cycle();
    expect(h.objects.openedCount('flags/other.json')).toBe(1);
    expect(await h.marks()).toMatchObject({ 'flags/other.json': { outcome: 'unrelated' } });
    expect(await h.store.read(FLAG)).toBeNull();
  });
});

describe('bucket feed: documents', () => {
  it('reads a document through the mapping: users, switch, first snapshot owes a run', async () => {
    const h = harness({ keyPattern: 'flags/{name}.json', newest: false, linkedByKey: false });
    h.objects.put('flags/all.json', JSON.stringify({ name: FLAG, enabled: true, users: [...users(3), 'not valid!'] }));
    const handle = await h.cycle();
    expect(await h.explicit()).toEqual(users(3));
    const state = await h.store.read(FLAG);
    expect(state).toMatchObject({ enabled: true, complete: true, version: { partition: -2 } });
    expect(await h.store.peekTrigger(FLAG)).not.toBeNull();
    expect(handle.details()).toMatchObject({ objectsRead: 1, held: [] });
    expect(handle.health().lastChangeAt).not.toBeNull();
  });

  it('a gzipped document is decompressed', async () => {
    const h = harness({ keyPattern: 'flags/{name}.json.gz', newest: false, linkedByKey: false });
    h.objects.put('flags/all.json.gz', gzipSync(documentOf(users(6))));
    await h.cycle();
    expect(await h.explicit()).toEqual(users(6));
  });

  it('a document larger than maxDocumentBytes is held, the last good state stays', async () => {
    const h = harness({ keyPattern: 'flags/{name}.json', newest: false, linkedByKey: false }, documentMapping, { maxDocumentBytes: 200 });
    h.objects.put('flags/all.json', documentOf(users(3)));
    await h.cycle();
    h.objects.put('flags/all.json', documentOf(users(50)));
    const handle = await h.cycle();
    expect(await h.explicit()).toEqual(users(3));
    expect((await h.marks())['flags/all.json']).toMatchObject({ outcome: 'held', heldBy: 'unreadable', etag: '"etag-2"' });
    expect(handle.details().held).toEqual([expect.objectContaining({ key: 'flags/all.json', detail: expect.stringContaining('maxDocumentBytes (200)') as unknown })]);
    // Held until its ETag changes: not read again.
    await h.cycle();
    expect(h.objects.openedCount('flags/all.json')).toBe(2);
  });

  it('broken JSON is held, the last good state stays', async () => {
    const h = harness({ keyPattern: 'flags/{name}.json', newest: false, linkedByKey: false });
    h.objects.put('flags/all.json', documentOf(users(3)));
    await h.cycle();
    h.objects.put('flags/all.json', documentOf(users(4)).slice(0, -10));
    await h.cycle();
    expect(await h.explicit()).toEqual(users(3));
    expect((await h.marks())['flags/all.json']).toMatchObject({ outcome: 'held', heldBy: 'unreadable', detail: expect.stringContaining('not valid JSON') as unknown });
  });

  it('a truncated gzip is held (not a failed cycle), the last good state stays', async () => {
    const h = harness({ keyPattern: 'flags/{name}.json.gz', newest: false, linkedByKey: false });
    h.objects.put('flags/all.json.gz', gzipSync(documentOf(users(3))));
    await h.cycle();
    const whole = gzipSync(documentOf(users(40)));
    h.objects.put('flags/all.json.gz', whole.subarray(0, Math.floor(whole.length / 2)));
    await h.cycle();
    expect(await h.explicit()).toEqual(users(3));
    expect((await h.marks())['flags/all.json.gz']).toMatchObject({ outcome: 'held', heldBy: 'unreadable', detail: expect.stringContaining('truncated gzip') as unknown });
  });

  it('a truncated gzip list is held and its stage dropped', async () => {
    const h = harness({ keyPattern: 'flags/{name}.txt.gz', newest: false, linkedByKey: true }, listMapping);
    const key = `flags/${FLAG}.txt.gz`;
    h.objects.put(key, gzipSync(listOf(users(3))));
    await h.cycle();
    const whole = gzipSync(listOf(users(500, 1000)));
    h.objects.put(key, whole.subarray(0, whole.length - 20));
    const drop = vi.spyOn(h.store, 'dropStage');
    await h.cycle();
    expect(drop).toHaveBeenCalledTimes(1);
    expect(await h.explicit()).toEqual(users(3));
    expect((await h.marks())[key]).toMatchObject({ outcome: 'held', heldBy: 'unreadable' });
    expect(await h.store.pendingSize(FLAG)).toBe(3);
  });

  it('an object deleted between the listing and the read is held, not a failed cycle', async () => {
    const h = harness({ keyPattern: 'flags/{name}.json', newest: false, linkedByKey: false });
    h.objects.put('flags/all.json', documentOf(users(3)));
    h.objects.deletedAfterListing.add('flags/all.json');
    await h.cycle();
    expect((await h.marks())['flags/all.json']).toMatchObject({ outcome: 'held', heldBy: 'unreadable', detail: expect.stringContaining('does not exist') as unknown });
  });

  it('two snapshots of the flag in one cycle, within one millisecond: the last read is the live state', async () => {
    vi.spyOn(Date, 'now').mockReturnValue(Date.UTC(2024, 5, 1));
    const h = harness({ keyPattern: 'flags/{name}.json', newest: false, linkedByKey: false });
    h.objects.put('flags/a.json', documentOf(users(3)));
    h.objects.put('flags/b.json', documentOf(users(5)));
    await h.cycle();
    // Each object marked applied must really have been applied.
    expect(await h.marks()).toMatchObject({ 'flags/a.json': { outcome: 'applied' }, 'flags/b.json': { outcome: 'applied' } });
    expect(await h.explicit()).toEqual(users(5));
  });

  it('a clock stepped back does not make a changed object look stale', async () => {
    const now = vi.spyOn(Date, 'now').mockReturnValue(Date.UTC(2024, 5, 1));
    const h = harness({ keyPattern: 'flags/{name}.json', newest: false, linkedByKey: false });
    h.objects.put('flags/all.json', documentOf(users(3)));
    await h.cycle();
    now.mockReturnValue(Date.UTC(2024, 4, 1)); // a month back (another replica's clock, an NTP step)
    h.objects.put('flags/all.json', documentOf(users(4)));
    await h.cycle();
    expect(await h.explicit()).toEqual(users(4));
    expect((await h.marks())['flags/all.json']).toMatchObject({ outcome: 'applied', etag: '"etag-2"' });
  });
});

describe('bucket feed: lists staged in the store', () => {
  it('stages a list object: its users become the explicit set, pending exactly what was added and removed', async () => {
    const h = harness({ keyPattern: 'flags/{name}.csv', newest: false, linkedByKey: true }, { ...listMapping, usersPath: '$.user_id' });
    const key = `flags/${FLAG}.csv`;
    const csv = (ids: string[]): string => `plan,user_id\n${ids.map((id) => `pro,${id}`).join('\n')}\n`;
    h.objects.put(key, csv(users(5)));
    const stage = vi.spyOn(h.store, 'stage');
    await h.cycle();
    expect(stage).toHaveBeenCalled();
    expect(await h.explicit()).toEqual(users(5));
    expect(await h.store.peekPending(FLAG, 100)).toEqual(expect.arrayContaining(users(5)));
    expect(await h.store.pendingSize(FLAG)).toBe(5);
    await h.store.settle(FLAG, users(5));

    h.objects.put(key, csv([...users(3, 2), 'bad id', ...users(2, 5)]));
    await h.cycle();
    expect(await h.explicit()).toEqual(users(5, 2));
    const pending = await h.store.peekPending(FLAG, 100);
    expect(pending.sort()).toEqual(['user-0', 'user-1', 'user-5', 'user-6'].sort());
    expect((await h.marks())[key]).toMatchObject({ outcome: 'applied' });
  });

  it('counts the bytes read (decompressed) and stages from a gzip', async () => {
    const h = harness({ keyPattern: 'flags/{name}.txt.gz', newest: false, linkedByKey: true }, listMapping);
    const text = listOf(users(300));
    h.objects.put(`flags/${FLAG}.txt.gz`, gzipSync(text));
    const handle = await h.cycle();
    expect(await h.explicit()).toEqual(users(300));
    expect(handle.details()).toMatchObject({ objectsRead: 1, bytesRead: Buffer.byteLength(text) });
  });
});

describe('bucket feed: the forget guard', () => {
  it('holds a mass removal until released() says it may go, then applies it once', async () => {
    const h = harness({ keyPattern: `flags/${FLAG}.json`, newest: false, linkedByKey: false });
    const key = `flags/${FLAG}.json`;
    h.objects.put(key, documentOf(users(10)));
    await h.cycle();
    expect(h.released).not.toHaveBeenCalled();

    // 10 → 2: removes 8, more than max(floor 2, 50% of 10).
    h.objects.put(key, documentOf(users(2)));
    const held = await h.cycle();
    expect(await h.explicit()).toEqual(users(10));
    expect((await h.marks())[key]).toMatchObject({ outcome: 'held', heldBy: 'forget-guard', etag: '"etag-2"' });
    expect(held.details().held).toHaveLength(1);

    // Not released: not read again.
    await h.cycle();
    expect(h.released).toHaveBeenCalledTimes(1);
    expect(h.objects.openedCount(key)).toBe(2);
    expect(await h.explicit()).toEqual(users(10));

    // Released: read again and applied, whatever it removes.
    h.released.mockResolvedValueOnce(true);
    await h.cycle();
    expect(h.released).toHaveBeenCalledTimes(2);
    expect(h.objects.openedCount(key)).toBe(3);
    expect(await h.explicit()).toEqual(users(2));
    expect((await h.marks())[key]).toMatchObject({ outcome: 'applied', etag: '"etag-2"' });

    // Nothing held any more: released() is not asked.
    await h.cycle();
    expect(h.released).toHaveBeenCalledTimes(2);
  });

  it('lets a removal within the guard through', async () => {
    const h = harness({ keyPattern: `flags/${FLAG}.json`, newest: false, linkedByKey: false });
    const key = `flags/${FLAG}.json`;
    h.objects.put(key, documentOf(users(10)));
    await h.cycle();
    h.objects.put(key, documentOf(users(5))); // removes 5 = 50% of 10
    await h.cycle();
    expect(await h.explicit()).toEqual(users(5));
    expect((await h.marks())[key]).toMatchObject({ outcome: 'applied' });
  });

  it('the floor lets small lists shrink', async () => {
    const h = harness({ keyPattern: `flags/${FLAG}.json`, newest: false, linkedByKey: false }, documentMapping, { guard: { maxFraction: 0.1, floor: 3, released: () => Promise.resolve(false) } });
    const key = `flags/${FLAG}.json`;
    h.objects.put(key, documentOf(users(4)));
    await h.cycle();
    h.objects.put(key, documentOf(users(1)));
    await h.cycle();
    expect(await h.explicit()).toEqual(users(1));
  });

  it('holds an emptied staged list', async () => {
    const h = harness({ keyPattern: 'flags/{name}.txt', newest: false, linkedByKey: true }, listMapping);
    const key = `flags/${FLAG}.txt`;
    h.objects.put(key, listOf(users(10)));
    await h.cycle();
    h.objects.put(key, '');
    await h.cycle();
    expect(await h.explicit()).toEqual(users(10));
    expect((await h.marks())[key]).toMatchObject({ outcome: 'held', heldBy: 'forget-guard' });
  });
});

describe('bucket feed: vanished objects', () => {
  it('an applied object that disappears is held and reported, its snapshot stays', async () => {
    const h = harness({ keyPattern: `flags/${FLAG}.json`, newest: false, linkedByKey: false });
    const key = `flags/${FLAG}.json`;
    h.objects.put(key, documentOf(users(4)));
    await h.cycle();
    h.objects.delete(key);
    const handle = await h.cycle();
    expect(await h.explicit()).toEqual(users(4));
    expect((await h.marks())[key]).toMatchObject({ outcome: 'held', heldBy: 'vanished', etag: '"etag-1"' });
    expect(handle.details().held).toEqual([expect.objectContaining({ key, detail: expect.stringContaining('disappeared') as unknown })]);
  });

  it('a vanished object that comes back (same ETag) is read again and no longer held', async () => {
    const h = harness({ keyPattern: `flags/${FLAG}.json`, newest: false, linkedByKey: false });
    const key = `flags/${FLAG}.json`;
    h.objects.put(key, documentOf(users(4)));
    const [{ body, etag, lastModified }] = [h.objects.objects.get(key) as StoredObject];
    await h.cycle();
    h.objects.delete(key);
    await h.cycle();
    h.objects.objects.set(key, { body, etag, lastModified }); // restored (S3 versioning)
    const handle = await h.cycle();
    expect(h.objects.openedCount(key)).toBe(2);
    expect((await h.marks())[key]).toMatchObject({ outcome: 'applied', etag: '"etag-1"' });
    expect(handle.details().held).toEqual([]);
    expect(await h.explicit()).toEqual(users(4));
  });

  it('newest: an older snapshot removed while a newer one exists is retention, not loss', async () => {
    const h = harness({ keyPattern: 'flags/snapshot-{n}.json', newest: true, linkedByKey: false });
    h.objects.put('flags/snapshot-1.json', documentOf(users(3)), new Date('2024-01-01T00:00:00Z'));
    await h.cycle();
    h.objects.put('flags/snapshot-2.json', documentOf(users(4)), new Date('2024-01-02T00:00:00Z'));
    await h.cycle();
    h.objects.delete('flags/snapshot-1.json');
    const handle = await h.cycle();
    expect(handle.details().held).toEqual([]);
    // Its mark leaves the checkpoint; the newer one stays applied.
    expect(await h.marks()).toEqual({ 'flags/snapshot-2.json': expect.objectContaining({ outcome: 'applied' }) });
    expect(await h.explicit()).toEqual(users(4));
  });

  it('newest: an emptied prefix is loss', async () => {
    const h = harness({ keyPattern: 'flags/snapshot-{n}.json', newest: true, linkedByKey: false });
    h.objects.put('flags/snapshot-1.json', documentOf(users(3)));
    await h.cycle();
    h.objects.delete('flags/snapshot-1.json');
    await h.cycle();
    expect((await h.marks())['flags/snapshot-1.json']).toMatchObject({ outcome: 'held', heldBy: 'vanished' });
    expect(await h.explicit()).toEqual(users(3));
  });
});

describe('keyPatternMatcher', () => {
  it.each([
    ['flags/{name}.json', 'flags/consumer_graph_ingestion.json', true],
    ['flags/{name}.json', 'flags/a-b.json', true],
    ['flags/{name}.json', 'flags/nested/a.json', false],
    ['flags/{name}.json', 'flags/a.json.bak', false],
    ['flags/{name}.json', 'flags/.json', false],
    ['flags/{name}.json', 'xflags/a.json', false],
    ['snapshots/{n}.json', 'snapshots/20240101.json', true],
    ['snapshots/{n}.json', 'snapshots/2024-01-01.json', false],
    ['snapshots/{n}-{n}-{n}.json', 'snapshots/2024-01-01.json', true],
    ['exports/{uuid}.csv', 'exports/123e4567-e89b-12d3-a456-426614174000.csv', true],
    ['exports/{uuid}.csv', 'exports/123E4567-E89B-12D3-A456-426614174000.csv', true],
    ['exports/{uuid}.csv', 'exports/123e4567-e89b-12d3-a456.csv', false],
    ['dumps/{hex}.ndjson', 'dumps/0123456789abcdef.ndjson', true],
    ['dumps/{hex}.ndjson', 'dumps/0123456789abcde.ndjson', false],
    ['dumps/{hex}.ndjson', 'dumps/0123456789abcdefg.ndjson', false],
    // The rest is literal: regex characters in keys mean themselves.
    ['flags/a.json', 'flags/aXjson', false],
    ['flags/(v{n})+.json', 'flags/(v2)+.json', true],
    ['flags/(v{n})+.json', 'flags/v2v2.json', false],
    ['flags/[x]*.json', 'flags/[x]*.json', true],
    ['flags/[x]*.json', 'flags/xx.json', false],
    ['flags/{other}.json', 'flags/{other}.json', true],
    ['flags/$^|?.json', 'flags/$^|?.json', true],
    ['flags/a\\b.json', 'flags/a\\b.json', true],
  ])('%s matches %s: %s', (pattern, key, expected) => {
    expect(keyPatternMatcher(pattern).test(key)).toBe(expected);
  });
});

describe('eventKeys', () => {
  const record = (bucket: string, key: string, eventName = 'ObjectCreated:Put') => ({ eventVersion: '2.1', eventSource: 'aws:s3', eventName, s3: { bucket: { name: bucket }, object: { key, size: 10, eTag: 'abc' } } });
  const event = (...records: unknown[]): string => JSON.stringify({ Records: records });

  it('reads the keys of a direct S3 event, decoded (+ is a space, %2B a plus)', () => {
    expect(eventKeys(event(record(BUCKET, 'flags/my+flag%2Bv2.json'), record(BUCKET, 'flags/caf%C3%A9.json', 'ObjectRemoved:Delete')), BUCKET)).toEqual(['flags/my flag+v2.json', 'flags/café.json']);
  });

  it('unwraps an SNS notification', () => {
    const sns = JSON.stringify({ Type: 'Notification', MessageId: 'm-1', TopicArn: 'arn:aws:sns:eu-west-1:1:t', Message: event(record(BUCKET, 'flags/a%20b.json')) });
    expect(eventKeys(sns, BUCKET)).toEqual(['flags/a b.json']);
  });

  it('s3:TestEvent, direct or through SNS, names no keys', () => {
    const test = JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: '2024-01-01T00:00:00.000Z', Bucket: BUCKET });
    expect(eventKeys(test, BUCKET)).toEqual([]);
    expect(eventKeys(JSON.stringify({ Type: 'Notification', Message: test }), BUCKET)).toEqual([]);
  });

  it('skips records of other buckets', () => {
    expect(eventKeys(event(record('other-bucket', 'flags/a.json')), BUCKET)).toEqual([]);
    expect(eventKeys(event(record('other-bucket', 'flags/a.json'), record(BUCKET, 'flags/b.json')), BUCKET)).toEqual(['flags/b.json']);
  });

  it('keeps a key that is not valid percent-encoding as it is', () => {
    expect(eventKeys(event(record(BUCKET, 'flags/100%.json')), BUCKET)).toEqual(['flags/100%.json']);
  });

  it.each([
    ['not JSON', 'hello'],
    ['a JSON string', '"Records"'],
    ['an array', '[]'],
    ['null', 'null'],
    ['no Records', JSON.stringify({ foo: 1 })],
    ['Records not a list', JSON.stringify({ Records: {} })],
    ['a record without s3', event({ eventSource: 'aws:s3' })],
    ['a record without a key', event({ s3: { bucket: { name: BUCKET }, object: {} } })],
    ['a record with a numeric key', event({ s3: { bucket: { name: BUCKET }, object: { key: 5 } } })],
    ['SNS with a broken Message', JSON.stringify({ Type: 'Notification', Message: '{"Records": [' })],
    ['SNS with a Message that is not an S3 event', JSON.stringify({ Type: 'Notification', Message: '"hi"' })],
  ])('%s is malformed (null)', (_name, body) => {
    expect(eventKeys(body, BUCKET)).toBeNull();
  });
});

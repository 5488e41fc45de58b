import { existsSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FfError } from '../../src/errors.js';
import pino from 'pino';
import { silentLogger } from '../../src/logger.js';
import type { RateLimiter } from '../../src/send/rate-limiter.js';
import { runDetection } from '../../src/pipeline/detection.js';
import { PendingUsers } from '../../src/pipeline/pending-users.js';
import type { CandidateBatch, CandidateSource } from '../../src/candidates/types.js';
import { detectionOptions } from '../helpers/detection.js';
import { checkerOf, MemoryKnownUsers, RecordingSink } from '../helpers/fakes.js';
import { tempDir } from '../helpers/files.js';

const users = (n: number) => Array.from({ length: n }, (_, i) => `u-${i}`);

async function collect(pending: PendingUsers, size: number): Promise<string[][]> {
  const batches: string[][] = [];
  for await (const batch of pending.batches(size)) batches.push(batch);
  return batches;
}

describe('PendingUsers', () => {
  it('keeps users in memory up to the cap and spills the rest to a private file, given back in order', async () => {
    const dir = tempDir();
    const pending = new PendingUsers(3, dir);
    // IDs the file format must carry unchanged: quotes, backslashes, non-ASCII.
    const ids = [...users(5), 'a"b', 'c\\d', 'é-ü', ...users(2000).slice(1000)];
    for (const id of ids) await pending.add(id);
    expect(pending.size).toBe(ids.length);
    expect(pending.spilledCount).toBe(ids.length - 3);
    const batches = await collect(pending, 10);
    expect(batches.flat()).toEqual(ids);
    expect(batches.every((batch) => batch.length <= 10)).toBe(true);
    expect(readdirSync(dir)).toHaveLength(1);
    await pending.dispose();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('gives back a spill smaller than one write chunk', async () => {
    const pending = new PendingUsers(2, tempDir());
    for (const id of users(5)) await pending.add(id);
    expect((await collect(pending, 10)).flat()).toEqual(users(5));
    await pending.dispose();
  });

  it('writes nothing to disk while everything fits in memory', async () => {
    const dir = tempDir();
    const pending = new PendingUsers(100, dir);
    for (const id of users(100)) await pending.add(id);
    expect((await collect(pending, 7)).flat()).toEqual(users(100));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('fails with SPILL_FAILED, naming the directory, when the spill file cannot be created', async () => {
    const notADir = path.join(tempDir(), 'file');
    writeFileSync(notADir, '');
    const pending = new PendingUsers(0, notADir);
    const error = await (async () => {
      for (const id of users(1000)) await pending.add(id);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FfError);
    expect((error as FfError).code).toBe('SPILL_FAILED');
    expect((error as FfError).message).toContain(`cannot create a spill file in ${notADir} (enqueue.spillDir)`);
    await pending.dispose();
  });
});

/** A source that says when its last batch was read (the generator finished). */
function trackedSource(ids: string[]): CandidateSource & { closed: boolean } {
  const source = {
    description: 'tracked',
    closed: false,
    async *batches(): AsyncGenerator<CandidateBatch> {
      try {
        for (let start = 0; start < ids.length; start += 100) {
          const slice = ids.slice(start, start + 100);
          yield { origin: 'tracked', ids: slice, positions: Uint32Array.from(slice, (_, i) => start + i + 1), rejected: [] };
        }
      } finally {
        source.closed = true;
      }
    },
  };
  return source;
}

describe('a detection run: scan to the end, then send', () => {
  it('has read and closed the source before its first send, and sends users spilled beyond the memory cap', async () => {
    const dir = tempDir();
    const source = trackedSource(users(2500));
    const closedAtSend: boolean[] = [];
    const sink = new RecordingSink(() => {
      closedAtSend.push(source.closed);
      return { ok: true };
    });
    const known = new MemoryKnownUsers();
    const summary = await runDetection(
      { source, checker: checkerOf(() => 'enabled'), known, sink, limiter: undefined, logger: silentLogger() },
      detectionOptions({ pending: { maxInMemory: 100, spillDir: dir }, sendConcurrency: 3 }),
    );
    expect(summary).toMatchObject({ status: 'ok', enqueued: 2500 });
    expect(closedAtSend.every(Boolean)).toBe(true);
    expect(new Set(sink.sent.map((m) => m.userId)).size).toBe(2500);
    expect(known.known.size).toBe(2500);
    expect(existsSync(dir) && readdirSync(dir)).toEqual([]);
  });

  it('sends nothing when the source fails part-way: the run fails and the next one finds the same users', async () => {
    const sink = new RecordingSink();
    const known = new MemoryKnownUsers();
    const failing: CandidateSource = {
      description: 'failing',
      async *batches(): AsyncGenerator<CandidateBatch> {
        yield { origin: 'failing', ids: users(50), positions: Uint32Array.from(users(50), (_, i) => i + 1), rejected: [] };
        throw new FfError('SOURCE_UNAVAILABLE', 'connection reset');
      },
    };
    const summary = await runDetection({ source: failing, checker: checkerOf(() => 'enabled'), known, sink, limiter: undefined, logger: silentLogger() }, detectionOptions());
    expect(summary).toMatchObject({ status: 'failed', enqueued: 0, error: 'connection reset' });
    expect(sink.calls).toEqual([]);
    expect(known.known.size).toBe(0);
  });

  it('says, once the source is closed, how many users it will enqueue and how long that takes at the rate', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const limiter: RateLimiter = { ratePerSecond: 2, maxGrant: 2, description: 'fake', acquire: (wanted) => Promise.resolve({ count: Math.min(wanted, 2), started: () => undefined }) };
    const summary = await runDetection(
      { source: trackedSource(users(7)), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter, logger },
      detectionOptions({ budget: 36_000 }),
    );
    expect(summary.enqueued).toBe(7);
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain('detection run started');
    expect(messages).toContain('candidate scan done, source closed: 7 users to enqueue; at 2/s sending takes about 3s');
  });

  it('closes and removes the spill file when sending stops part-way (no descriptor left open)', async () => {
    const dir = tempDir();
    const openSpills = () => readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).includes(dir);
      } catch {
        return false; // closed between the listing and the read
      }
    });
    let calls = 0;
    const sink = new RecordingSink(() => {
      if (++calls > 15) throw new Error('queue gone');
      return { ok: true };
    });
    const summary = await runDetection(
      { source: trackedSource(users(3000)), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink, limiter: undefined, logger: silentLogger() },
      detectionOptions({ pending: { maxInMemory: 10, spillDir: dir } }),
    );
    expect(summary.status).toBe('failed');
    expect(openSpills()).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });
});

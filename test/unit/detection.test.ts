import { getEventListeners } from 'node:events';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LocalRateLimiter } from '../../src/send/rate-limiter.js';
import { silentLogger } from '../../src/logger.js';
import { runDetection } from '../../src/pipeline/detection.js';
import { detectionOptions } from '../helpers/detection.js';
import type { FlagResult } from '../../src/flags/types.js';
import { checkerOf, MemoryKnownUsers, RecordingSink, sourceOf } from '../helpers/fakes.js';

const options = detectionOptions;

const evenEnabled = (id: string): FlagResult => (Number(id.split('-')[1]) % 2 === 0 ? 'enabled' : 'disabled');
const users = (n: number) => Array.from({ length: n }, (_, i) => `u-${i}`);

describe('runDetection (fakes)', () => {
  it('enqueues newly enabled users once and marks exactly those', async () => {
    const store = new MemoryKnownUsers();
    const sink = new RecordingSink();
    const summary = await runDetection(
      { source: sourceOf(users(100), 7), checker: checkerOf(evenEnabled), known: store, sink, limiter: undefined, logger: silentLogger() },
      options(),
    );
    expect(summary).toMatchObject({ status: 'ok', candidates: 100, evaluated: 100, enabled: 50, disabled: 50, enqueued: 50, alreadyKnown: 0 });
    expect(sink.sent.map((m) => m.userId).sort()).toEqual(users(100).filter((id) => evenEnabled(id) === 'enabled').sort());
    expect([...store.known].sort()).toEqual(sink.sent.map((m) => m.userId).sort());
    expect(sink.calls.every((call) => call.length <= 10)).toBe(true);
  });

  it('skips known users, marks loaded ones without a send, forgets known users now disabled', async () => {
    const store = new MemoryKnownUsers();
    store.known.add('u-0').add('u-1');
    store.loaded.add('u-2');
    const sink = new RecordingSink();
    const summary = await runDetection(
      { source: sourceOf(users(6)), checker: checkerOf(evenEnabled), known: store, sink, limiter: undefined, logger: silentLogger() },
      options(),
    );
    expect(summary).toMatchObject({ alreadyKnown: 1, alreadyLoaded: 1, enqueued: 1, forgotten: 1 });
    expect(sink.sent.map((m) => m.userId)).toEqual(['u-4']);
    expect([...store.known].sort()).toEqual(['u-0', 'u-2', 'u-4']);
  });

  it('keeps known disabled users when forgetDisabled is off', async () => {
    const store = new MemoryKnownUsers();
    store.known.add('u-1');
    const summary = await runDetection(
      { source: sourceOf(users(2)), checker: checkerOf(evenEnabled), known: store, sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      options({ forgetDisabled: false }),
    );
    expect(summary.forgotten).toBe(0);
    expect(store.known.has('u-1')).toBe(true);
  });

  it('processes a repeated user once and counts the repeats', async () => {
    const store = new MemoryKnownUsers();
    const sink = new RecordingSink();
    const ids = [...users(10), ...users(10), 'u-2'];
    const summary = await runDetection(
      { source: sourceOf(ids, 3), checker: checkerOf(() => 'enabled'), known: store, sink, limiter: undefined, logger: silentLogger() },
      options(),
    );
    expect(summary).toMatchObject({ candidates: 21, duplicates: 11, evaluated: 10, enqueued: 10 });
    expect(sink.sent).toHaveLength(10);
  });

  it('counts invalid IDs with their line numbers and never sends them', async () => {
    const sink = new RecordingSink();
    const summary = await runDetection(
      { source: sourceOf(['u-1', 'BAD ID', 'u-2', 'bad\uFFFDbytes']), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink, limiter: undefined, logger: silentLogger() },
      options(),
    );
    expect(summary.invalid).toBe(2);
    expect(summary.invalidExamples).toEqual([
      { origin: 'test', line: 2, reason: 'does not match idPattern', value: 'BAD ID' },
      { origin: 'test', line: 4, reason: 'not valid UTF-8', value: 'bad\uFFFDbytes' },
    ]);
    expect(sink.sent.map((m) => m.userId)).toEqual(['u-1', 'u-2']);
  });

  it('never enqueues or marks unevaluable users', async () => {
    const store = new MemoryKnownUsers();
    const sink = new RecordingSink();
    const summary = await runDetection(
      { source: sourceOf(users(5)), checker: checkerOf(() => 'unevaluable'), known: store, sink, limiter: undefined, logger: silentLogger() },
      options(),
    );
    expect(summary).toMatchObject({ unevaluable: 5, enqueued: 0 });
    expect(store.known.size).toBe(0);
    expect(sink.calls).toHaveLength(0);
  });

  it('stops at the budget and leaves the overflow un-marked for the next run', async () => {
    const store = new MemoryKnownUsers();
    const deps = { source: sourceOf(users(30)), checker: checkerOf(() => 'enabled' as const), known: store, limiter: undefined, logger: silentLogger() };
    const first = await runDetection({ ...deps, sink: new RecordingSink() }, options({ budget: 12 }));
    expect(first).toMatchObject({ enqueued: 12, deferred: 18, budget: 12 });
    expect(store.known.size).toBe(12);
    const second = await runDetection({ ...deps, sink: new RecordingSink() }, options({ budget: 12 }));
    expect(second).toMatchObject({ alreadyKnown: 12, enqueued: 12, deferred: 6 });
    const third = await runDetection({ ...deps, sink: new RecordingSink() }, options({ budget: 12 }));
    expect(third).toMatchObject({ enqueued: 6, deferred: 0 });
    expect(store.known.size).toBe(30);
  });

  it('changes no state in a dry run', async () => {
    const store = new MemoryKnownUsers();
    store.known.add('u-1');
    store.loaded.add('u-2');
    const sink = new RecordingSink();
    const summary = await runDetection(
      { source: sourceOf(users(6)), checker: checkerOf(evenEnabled), known: store, sink, limiter: undefined, logger: silentLogger() },
      options({ dryRun: true }),
    );
    expect(summary).toMatchObject({ dryRun: true, enqueued: 2, forgotten: 1, alreadyLoaded: 1 });
    expect([...store.known]).toEqual(['u-1']);
  });

  it('fails the run when the sink fails, marking only what was accepted before', async () => {
    const store = new MemoryKnownUsers();
    const sink = new RecordingSink();
    const send = sink.send.bind(sink);
    sink.send = (messages) => (sink.calls.length >= 3 ? Promise.reject(new Error('queue unreachable')) : send(messages));
    const summary = await runDetection(
      { source: sourceOf(users(100)), checker: checkerOf(() => 'enabled'), known: store, sink, limiter: undefined, logger: silentLogger() },
      options(),
    );
    expect(summary.status).toBe('failed');
    expect(summary.error).toContain('queue unreachable');
    expect(summary.enqueued).toBe(30);
    expect([...store.known].sort()).toEqual(sink.sent.map((m) => m.userId).sort());
  });

  it('fails cleanly when the state store fails mid-run', async () => {
    const store = new MemoryKnownUsers();
    let calls = 0;
    const areKnown = store.areKnown.bind(store);
    store.areKnown = (ids) => (++calls > 2 ? Promise.reject(new Error('valkey gone')) : areKnown(ids));
    const sink = new RecordingSink();
    const summary = await runDetection(
      { source: sourceOf(users(100), 10), checker: checkerOf(() => 'enabled'), known: store, sink, limiter: undefined, logger: silentLogger() },
      options({ maxInFlightBatches: 1 }),
    );
    expect(summary.status).toBe('failed');
    expect(summary.error).toContain('valkey gone');
    for (const id of store.known) expect(sink.sent.map((m) => m.userId)).toContain(id);
  });

  it('reports partial when some sends fail for good, leaving them un-marked', async () => {
    const store = new MemoryKnownUsers();
    const sink = new RecordingSink((message) => (message.userId === 'u-3' ? { ok: false, code: 'Bad', message: 'x', senderFault: true } : { ok: true }));
    const summary = await runDetection(
      { source: sourceOf(users(5)), checker: checkerOf(() => 'enabled'), known: store, sink, limiter: undefined, logger: silentLogger() },
      options(),
    );
    expect(summary).toMatchObject({ status: 'partial', enqueued: 4, failed: 1 });
    expect(store.known.has('u-3')).toBe(false);
  });

  it('stops when cancelled and says so', async () => {
    const controller = new AbortController();
    controller.abort();
    const summary = await runDetection(
      { source: sourceOf(users(5)), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      options({ signal: controller.signal }),
    );
    expect(summary.status).toBe('cancelled');
    expect(summary.enqueued).toBe(0);
  });

  it('leaves no listener on a long-lived signal: a feed runs one detection per drain pass under one signal', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 3; i++) {
      await runDetection(
        { source: sourceOf(users(5)), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
        options({ signal: controller.signal }),
      );
    }
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('runDetection when a part fails', () => {
  it('waits for the batches being classified when the source throws: nothing is written after the summary', async () => {
    const store = new MemoryKnownUsers();
    store.loaded.add('u-1');
    let releaseMark: () => void = () => undefined;
    const markKnown = store.markKnown.bind(store);
    const writes: string[][] = [];
    store.markKnown = async (ids) => {
      if (ids.length > 0) await new Promise<void>((resolve) => (releaseMark = resolve));
      writes.push([...ids]);
      return markKnown(ids);
    };
    const source = {
      description: 'failing',
      async *batches() {
        yield* sourceOf(users(3)).batches();
        throw new Error('connection reset by the source');
      },
    };
    let finished = false;
    const run = runDetection(
      { source, checker: checkerOf(() => 'enabled'), known: store, sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      options(),
    ).then((summary) => {
      finished = true;
      return summary;
    });
    // u-1 is loaded: its batch is marking it, held until released.
    await new Promise((resolve) => setImmediate(resolve));
    expect(finished).toBe(false);
    releaseMark();
    const summary = await run;
    expect(summary.status).toBe('failed');
    expect(summary.error).toContain('connection reset by the source');
    const writesAtSummary = writes.length;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(writes.length).toBe(writesAtSummary);
  });

  it('counts users the queue accepted but who could not be marked (sentUnmarked)', async () => {
    const store = new MemoryKnownUsers();
    store.markKnown = (ids) => (ids.length === 0 ? Promise.resolve() : Promise.reject(new Error('valkey gone')));
    const sink = new RecordingSink();
    const summary = await runDetection(
      { source: sourceOf(users(5)), checker: checkerOf(() => 'enabled'), known: store, sink, limiter: undefined, logger: silentLogger() },
      options(),
    );
    expect(summary.status).toBe('failed');
    expect(summary.sentUnmarked).toBe(sink.sent.length);
    expect(summary.sentUnmarked).toBeGreaterThan(0);
    expect(summary.enqueued).toBe(0);
  });
});

describe('runDetection progress', () => {
  it('logs the seed’s progress line every 1,000 users sent, out of the users the scan found', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const summary = await runDetection(
      { source: sourceOf(users(2500)), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: new LocalRateLimiter(100_000), logger },
      options({ budget: 3000 }),
    );
    expect(summary.enqueued).toBe(2500);
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain('candidate scan done, source closed: 2500 users to enqueue; at 100000/s sending takes about 0s');
    const progress = messages.filter((message) => message.startsWith('Sent '));
    expect(progress).toHaveLength(2);
    expect(progress[0]).toMatch(/^Sent 1000\/2500 \(40\.0%\), elapsed: \d+s$/);
    expect(progress[1]).toMatch(/^Sent 2000\//);
  });
});

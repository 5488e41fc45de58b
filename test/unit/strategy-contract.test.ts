import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { errorMessage, EXIT_USAGE, FfError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { findStrategy, oneShotStrategy, POLLING, RECONCILE, strategies } from '../../strategies/index.js';
import type { FeedChange, FeedChangeSink, FeedHandle, FeedHealth, FeedPosition, FeedStrategy, Strategy } from '../../strategies/types.js';

/** Resolves each waiter once its condition holds, checked at every change: waiting without sleeping. */
class Conditions {
  private waiters: Array<{ holds: () => boolean; resolve: () => void }> = [];

  when(holds: () => boolean): Promise<void> {
    if (holds()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ holds, resolve }));
  }

  changed(): void {
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.holds()) return true;
      waiter.resolve();
      return false;
    });
  }
}

interface TopicEntry {
  type: 'snapshot' | 'add' | 'remove';
  users: readonly string[];
}

/** The flag system's topic, in memory: the test appends, the feed reads by offset. */
class MemoryTopic {
  readonly entries: TopicEntry[] = [];
  /** The offset a reader is blocked at, having read everything before it. */
  private waitingAt: number | null = null;
  private readonly conditions = new Conditions();

  append(...entries: TopicEntry[]): void {
    this.entries.push(...entries);
    this.conditions.changed();
  }

  /** The entry at `offset`, once there is one; undefined when `signal` aborts first. */
  async read(offset: number, signal: AbortSignal): Promise<TopicEntry | undefined> {
    if (offset >= this.entries.length && !signal.aborted) {
      let onAbort = (): void => undefined;
      const aborted = new Promise<void>((resolve) => (onAbort = resolve));
      signal.addEventListener('abort', onAbort, { once: true });
      this.waitingAt = offset;
      this.conditions.changed();
      await Promise.race([this.conditions.when(() => offset < this.entries.length), aborted]);
      signal.removeEventListener('abort', onAbort);
      this.waitingAt = null;
    }
    return signal.aborted ? undefined : this.entries[offset];
  }

  /** Resolves when a reader has caught up to `offset` and waits for more. */
  readerWaitingAt(offset: number): Promise<void> {
    return this.conditions.when(() => this.waitingAt === offset);
  }
}

interface MemoryFeedHandle extends FeedHandle {
  /** Settles once the feed has stopped or failed: for the tests only, the contract needs none. */
  readonly ended: Promise<void>;
}

/**
 * The smallest feed that keeps the contract: follows a MemoryTopic from the sink's stored
 * position (a resync first when there is none), one change at a time, `lagging` when more than
 * `maxLag` entries behind after having caught up once.
 */
function memoryFeed(topic: MemoryTopic, flag: string, maxLag: number): FeedStrategy {
  return {
    kind: 'feed',
    name: 'memory-topic',
    experimental: true,
    start: (_runtime: Runtime, sink: FeedChangeSink, signal: AbortSignal): FeedHandle => startMemoryFeed(topic, flag, maxLag, sink, signal),
  };
}

function startMemoryFeed(topic: MemoryTopic, flag: string, maxLag: number, sink: FeedChangeSink, signal: AbortSignal): MemoryFeedHandle {
  const stopper = new AbortController();
  const reading = AbortSignal.any([signal, stopper.signal]);
  let health: FeedHealth = { state: 'starting', position: null, lastChangeAt: null, error: null };
  const emit = async (change: FeedChange): Promise<void> => {
    await sink.apply(change); // the sink stores the position; the feed only reports it
    health = { ...health, position: change.position, lastChangeAt: new Date().toISOString() };
  };
  const follow = async (): Promise<void> => {
    const stored = await sink.position();
    let offset = typeof stored === 'number' ? stored : topic.entries.length;
    if (typeof stored !== 'number') await emit({ type: 'resync', flag, position: offset, reason: 'no stored position: what the topic held before is unknown' });
    for (;;) {
      const behind = topic.entries.length - offset;
      const state = behind === 0 ? 'live' : health.state === 'starting' ? 'starting' : behind > maxLag ? 'lagging' : 'live';
      health = { ...health, state };
      const entry = await topic.read(offset, reading);
      if (!entry) return;
      offset += 1;
      await emit({ ...entry, flag, position: offset });
    }
  };
  const ended = follow().then(
    () => void (health = { ...health, state: 'stopped' }),
    (error: unknown) => void (health = { ...health, state: 'failed', error: errorMessage(error) }),
  );
  return {
    ended,
    health: () => health,
    stop: async () => {
      stopper.abort();
      await ended;
    },
  };
}

/** A consumer that records what it is given; it can hold applies (one token each) or fail them. */
class RecordingSink implements FeedChangeSink {
  readonly changes: FeedChange[] = [];
  calls = 0;
  failure: Error | undefined;
  private holding = false;
  private tokens = 0;
  private readonly conditions = new Conditions();

  constructor(private stored: FeedPosition | null = null) {}

  position(): Promise<FeedPosition | null> {
    return Promise.resolve(this.stored);
  }

  async apply(change: FeedChange): Promise<void> {
    this.calls += 1;
    this.conditions.changed();
    if (this.holding) {
      await this.conditions.when(() => this.tokens > 0);
      this.tokens -= 1;
    }
    if (this.failure) throw this.failure;
    this.changes.push(change);
    this.stored = change.position;
    this.conditions.changed();
  }

  /** From now on each apply waits for a token. */
  hold(): void {
    this.holding = true;
  }

  pass(count: number): void {
    this.tokens += count;
    this.conditions.changed();
  }

  called(count: number): Promise<void> {
    return this.conditions.when(() => this.calls >= count);
  }
}

/** What a consumer makes of the changes: the users enabled, and how many polling runs it owes. */
function replay(changes: readonly FeedChange[]): { enabled: string[]; pollingRunsOwed: number } {
  let enabled = new Set<string>();
  let pollingRunsOwed = 0;
  for (const change of changes) {
    switch (change.type) {
      case 'snapshot':
        enabled = new Set(change.users);
        break;
      case 'add':
        for (const user of change.users) enabled.add(user);
        break;
      case 'remove':
        for (const user of change.users) enabled.delete(user);
        break;
      case 'resync':
        pollingRunsOwed += 1;
        break;
      default:
        return change satisfies never;
    }
  }
  return { enabled: [...enabled].sort(), pollingRunsOwed };
}

const runtime = new Runtime(loadConfig({ env: {} }), silentLogger());
afterAll(() => runtime.close());

describe('the feed contract, with an in-memory feed', () => {
  it('resyncs without a stored position, then emits the changes in order with their positions, live once caught up', async () => {
    const topic = new MemoryTopic();
    topic.append({ type: 'add', users: ['before-start'] }); // before the feed: only a polling run can find it
    const sink = new RecordingSink();
    const handle = memoryFeed(topic, 'consumer_graph_ingestion', 10).start(runtime, sink, new AbortController().signal);
    expect(handle.health()).toEqual({ state: 'starting', position: null, lastChangeAt: null, error: null });

    await topic.readerWaitingAt(1);
    expect(handle.health()).toMatchObject({ state: 'live', position: 1, error: null });
    expect(sink.changes).toEqual([{ type: 'resync', flag: 'consumer_graph_ingestion', position: 1, reason: expect.any(String) }]);

    topic.append({ type: 'snapshot', users: ['a', 'b', 'c'] }, { type: 'add', users: ['d'] }, { type: 'remove', users: ['a'] });
    await topic.readerWaitingAt(4);
    expect(sink.changes.map(({ type, position }) => [type, position])).toEqual([['resync', 1], ['snapshot', 2], ['add', 3], ['remove', 4]]);
    expect(replay(sink.changes)).toEqual({ enabled: ['b', 'c', 'd'], pollingRunsOwed: 1 });
    expect(handle.health()).toMatchObject({ state: 'live', position: 4 });
    expect(Date.parse(handle.health().lastChangeAt ?? '')).not.toBeNaN();

    await handle.stop();
    expect(handle.health().state).toBe('stopped');
    topic.append({ type: 'add', users: ['after-stop'] });
    await handle.stop(); // twice is fine
    expect(sink.changes).toHaveLength(4);
  });

  it('resumes after the position the sink stored, without a resync', async () => {
    const topic = new MemoryTopic();
    topic.append({ type: 'add', users: ['a'] }, { type: 'add', users: ['b'] }, { type: 'remove', users: ['a'] });
    const sink = new RecordingSink(2);
    const handle = memoryFeed(topic, 'f', 10).start(runtime, sink, new AbortController().signal);
    await topic.readerWaitingAt(3);
    expect(sink.changes).toEqual([{ type: 'remove', flag: 'f', position: 3, users: ['a'] }]);
    await handle.stop();
  });

  it('reports lagging while a slow consumer holds it back, and live again once caught up', async () => {
    const topic = new MemoryTopic();
    const sink = new RecordingSink(0);
    const handle = memoryFeed(topic, 'f', 2).start(runtime, sink, new AbortController().signal);
    await topic.readerWaitingAt(0);
    expect(handle.health().state).toBe('live');

    sink.hold();
    topic.append(...['u1', 'u2', 'u3', 'u4'].map((user): TopicEntry => ({ type: 'add', users: [user] })));
    await sink.called(1); // the first change waits in the consumer; the feed emits nothing else meanwhile
    expect(sink.calls).toBe(1);
    sink.pass(1);
    await sink.called(2); // 3 entries behind after the first, more than maxLag 2
    expect(handle.health()).toMatchObject({ state: 'lagging', position: 1 });

    sink.pass(3);
    await topic.readerWaitingAt(4);
    expect(handle.health()).toMatchObject({ state: 'live', position: 4 });
    expect(replay(sink.changes).enabled).toEqual(['u1', 'u2', 'u3', 'u4']);
    await handle.stop();
  });

  it('stops when its signal aborts (the daemon losing leadership)', async () => {
    const topic = new MemoryTopic();
    const leading = new AbortController();
    const sink = new RecordingSink(0);
    const handle = startMemoryFeed(topic, 'f', 2, sink, leading.signal);
    await topic.readerWaitingAt(0);
    leading.abort();
    await handle.ended; // without stop()
    expect(handle.health().state).toBe('stopped');
    topic.append({ type: 'add', users: ['late'] });
    await handle.stop();
    expect(sink.changes).toEqual([]);
  });

  it('fails, naming why, when the consumer cannot apply a change; stop leaves it failed', async () => {
    const topic = new MemoryTopic();
    const sink = new RecordingSink(0);
    sink.failure = new Error('state store unavailable');
    const handle = memoryFeed(topic, 'f', 2).start(runtime, sink, new AbortController().signal);
    topic.append({ type: 'add', users: ['u1'] }, { type: 'add', users: ['u2'] });
    await sink.called(1);
    await handle.stop();
    expect(handle.health()).toEqual({ state: 'failed', position: null, lastChangeAt: null, error: 'state store unavailable' });
    expect(sink.calls).toBe(1); // never skipped to the next change
  });
});

describe('the strategy registry', () => {
  it('names each strategy once; the CLI and the daemon find theirs there', () => {
    const names = strategies.map((strategy) => strategy.name);
    expect(new Set(names).size).toBe(names.length);
    expect(oneShotStrategy(POLLING, 'test').name).toBe('polling');
    expect(oneShotStrategy(RECONCILE, 'test').name).toBe('reconcile');
    expect(oneShotStrategy(loadConfig({ env: {} }).daemon.strategy, 'daemon.strategy')).toBe(findStrategy(POLLING));
  });

  it('refuses an unknown name, or a feed where a run is wanted, as a configuration error (exit 2)', () => {
    const refusal = (name: string, registry?: readonly Strategy[]): FfError => {
      try {
        oneShotStrategy(name, 'daemon.strategy', registry);
      } catch (error) {
        if (error instanceof FfError) return error;
        throw error;
      }
      throw new Error(`${name} was accepted`);
    };
    const unknown = refusal('carrier-pigeon');
    expect(unknown.exitCode).toBe(EXIT_USAGE);
    expect(unknown.message).toBe('daemon.strategy: unknown strategy "carrier-pigeon" (known: polling, reconcile, kafka-topic, s3-bucket)');
    // The feeds are registered, and are started (strategies.*.enabled), not run.
    expect(refusal('kafka-topic').message).toMatch(/^daemon\.strategy: strategy "kafka-topic" is a feed/);
    expect(refusal('s3-bucket').message).toMatch(/^daemon\.strategy: strategy "s3-bucket" is a feed/);
    const feed = refusal('memory-topic', [...strategies, memoryFeed(new MemoryTopic(), 'f', 1)]);
    expect(feed.exitCode).toBe(EXIT_USAGE);
    expect(feed.message).toMatch(/^daemon\.strategy: strategy "memory-topic" is a feed/);
  });
});

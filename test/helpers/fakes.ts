import type { CandidateBatch, CandidateSource } from '../../src/candidates/types.js';
import type { FlagChecker, FlagResult } from '../../src/flags/types.js';
import type { OutgoingMessage } from '../../src/sink/message.js';
import type { EntryOutcome, MessageSink } from '../../src/sink/types.js';
import type { KnownUsers } from '../../src/state/types.js';
import type { Clock } from '../../src/time.js';

/** Virtual time: sleeping advances the clock at once, so rate tests run instantly and exactly. */
export class ManualClock implements Clock {
  constructor(public time = 0) {}
  now(): number {
    return this.time;
  }
  epochMs(at: number): number {
    return at;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.time += ms;
    return Promise.resolve();
  }
  sleepUntil(at: number, signal?: AbortSignal): Promise<void> {
    return this.sleep(Math.max(0, at - this.time), signal);
  }
}

export function sourceOf(ids: string[], batchSize = 1000, origin = 'test'): CandidateSource {
  return {
    description: origin,
    async *batches(): AsyncGenerator<CandidateBatch> {
      for (let start = 0; start < ids.length; start += batchSize) {
        const slice = ids.slice(start, start + batchSize);
        yield { origin, ids: slice, positions: Uint32Array.from(slice, (_, i) => start + i + 1), rejected: [] };
      }
    },
  };
}

export function checkerOf(decide: (id: string) => FlagResult): FlagChecker {
  return { description: 'fake', check: (ids) => Promise.resolve(ids.map(decide)) };
}

/** An in-memory known set (unit tests only; integration tests use Valkey and the file store). */
export class MemoryKnownUsers implements KnownUsers {
  readonly known = new Set<string>();
  readonly loaded = new Set<string>();
  areKnown(ids: readonly string[]): Promise<boolean[]> {
    return Promise.resolve(ids.map((id) => this.known.has(id)));
  }
  areLoaded(ids: readonly string[]): Promise<boolean[]> {
    return Promise.resolve(ids.map((id) => this.loaded.has(id)));
  }
  markKnown(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.known.add(id);
    return Promise.resolve();
  }
  forget(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.known.delete(id);
    return Promise.resolve();
  }
  count(): Promise<number> {
    return Promise.resolve(this.known.size);
  }
  async *scan(batchSize: number): AsyncIterable<string[]> {
    const members = [...this.known];
    for (let i = 0; i < members.length; i += batchSize) yield await Promise.resolve(members.slice(i, i + batchSize));
  }
}

/** Records every call; `respond` decides each entry's outcome (default: accepted). */
export class RecordingSink implements MessageSink {
  readonly description = 'recording';
  readonly maxBatchSize = 10;
  readonly calls: OutgoingMessage[][] = [];
  constructor(private readonly respond: (message: OutgoingMessage, call: number) => EntryOutcome = () => ({ ok: true })) {}
  send(messages: readonly OutgoingMessage[]): Promise<EntryOutcome[]> {
    this.calls.push([...messages]);
    const call = this.calls.length;
    return Promise.resolve(messages.map((message) => this.respond(message, call)));
  }
  get sent(): OutgoingMessage[] {
    return this.calls.flat();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

// Fakes that fail on a schedule, for the pipeline's property tests
// (test/unit/properties/pipeline.properties.test.ts). Each records what really happened — what
// the queue accepted, which state writes took effect — so a property can compare the run's
// summary and the known set with the truth.
import { FfError } from '../../src/errors.js';
import type { OutgoingMessage } from '../../src/sink/message.js';
import type { EntryOutcome, MessageSink } from '../../src/sink/types.js';
import type { KnownUsers } from '../../src/state/types.js';
import type { ManualClock, MemoryKnownUsers } from './fakes.js';

/** What SQS says about one entry: accepted, Failed with SenderFault=false (retried), or true (final). */
export type EntryFault = 'ok' | 'retryable' | 'fatal';

/**
 * One SendMessageBatch call: the whole call fails (the SDK gave up: nothing accepted), or each
 * entry gets its outcome in order (entries beyond the list are accepted).
 */
export type SinkCallPlan = { kind: 'throw' } | { kind: 'answer'; entries: readonly EntryFault[] };

export interface ScheduledSinkOptions {
  /** Call n (from 0) follows plan[n]; calls past the plan are accepted. */
  plan?: readonly SinkCallPlan[];
  /** With a manual clock: call n takes latencyMs[n] (0 past the list) before it answers. */
  clock?: ManualClock;
  latencyMs?: readonly number[];
}

/** A send as it reached the queue: when the call started (the clock's time) and its users. */
export interface SinkCall {
  at: number;
  userIds: string[];
}

/** A queue that fails on a schedule and records, per user, every outcome it gave. */
export class ScheduledSink implements MessageSink {
  readonly description = 'scheduled';
  readonly maxBatchSize = 10;
  readonly calls: SinkCall[] = [];
  /** Users whose message the queue accepted, in order (a user twice = accepted twice). */
  readonly accepted: string[] = [];
  /** Every outcome each user got (a whole-call failure gives none). */
  readonly outcomes = new Map<string, EntryFault[]>();
  /** Whole-call failures that happened (scheduled ones past the last call never do). */
  thrown = 0;

  constructor(private readonly options: ScheduledSinkOptions = {}) {}

  async send(messages: readonly OutgoingMessage[]): Promise<EntryOutcome[]> {
    const index = this.calls.length;
    const { clock } = this.options;
    this.calls.push({ at: clock?.now() ?? index, userIds: messages.map((message) => message.userId) });
    const latency = this.options.latencyMs?.[index] ?? 0;
    if (clock && latency > 0) {
      // Yield first: the caller reads the clock right after issuing the call (Grant.started), and
      // must read the time the request started, not the time it was answered.
      await Promise.resolve();
      await clock.sleep(latency);
    }
    const plan = this.options.plan?.[index];
    if (plan?.kind === 'throw') {
      this.thrown++;
      throw new FfError('SINK_UNAVAILABLE', `scheduled failure of call ${index}`, { retryable: true });
    }
    return messages.map((message, i) => {
      const fault = plan?.entries[i] ?? 'ok';
      const seen = this.outcomes.get(message.userId) ?? [];
      seen.push(fault);
      this.outcomes.set(message.userId, seen);
      if (fault === 'ok') {
        this.accepted.push(message.userId);
        return { ok: true };
      }
      return { ok: false, code: fault === 'fatal' ? 'InvalidParameterValue' : 'InternalError', message: 'scheduled', senderFault: fault === 'fatal' };
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * How a markKnown call fails: before writing (nothing marked), or after (the SADD took effect but
 * its reply was lost — Valkey failing over).
 */
export type MarkFault = 'before-write' | 'after-write';

export interface StoreFaults {
  /** Calls (from 0) of areKnown that throw. */
  areKnown?: readonly number[];
  /** Calls of areLoaded that throw. */
  areLoaded?: readonly number[];
  /** Calls of markKnown that throw, and how. */
  markKnown?: ReadonlyMap<number, MarkFault>;
}

/** One markKnown call: its users and whether the caller was told it succeeded. */
export interface MarkCall {
  userIds: string[];
  reportedOk: boolean;
}

/** A state store over a MemoryKnownUsers whose calls fail on a schedule. */
export class ScheduledKnownUsers implements KnownUsers {
  readonly markCalls: MarkCall[] = [];
  /** Scheduled failures that happened. */
  thrown = 0;
  private areKnownCalls = 0;
  private areLoadedCalls = 0;

  constructor(
    readonly store: MemoryKnownUsers,
    private readonly faults: StoreFaults = {},
  ) {}

  areKnown(ids: readonly string[]): Promise<boolean[]> {
    if (this.faults.areKnown?.includes(this.areKnownCalls++)) return this.fail('areKnown');
    return this.store.areKnown(ids);
  }

  areLoaded(ids: readonly string[]): Promise<boolean[]> {
    if (this.faults.areLoaded?.includes(this.areLoadedCalls++)) return this.fail('areLoaded');
    return this.store.areLoaded(ids);
  }

  async markKnown(ids: readonly string[]): Promise<void> {
    const fault = this.faults.markKnown?.get(this.markCalls.length);
    const call: MarkCall = { userIds: [...ids], reportedOk: fault === undefined };
    this.markCalls.push(call);
    if (fault !== 'before-write') await this.store.markKnown(ids);
    if (fault !== undefined) await this.fail('markKnown');
  }

  forget(ids: readonly string[]): Promise<void> {
    return this.store.forget(ids);
  }

  scan(batchSize: number): AsyncIterable<string[]> {
    return this.store.scan(batchSize);
  }

  count(): Promise<number> {
    return this.store.count();
  }

  private fail(call: string): Promise<never> {
    this.thrown++;
    return Promise.reject(new FfError('STATE_UNAVAILABLE', `scheduled failure of ${call}`, { retryable: true }));
  }
}

// Property-based tests of the detection pipeline (src/pipeline/detection.ts, runDetection) with
// fakes that fail on a schedule: README "Safety" — nobody is marked who was not sent, nobody
// enabled is lost — and the run budget. Deterministic: every fc.assert names its seed and runs.
import { tmpdir } from 'node:os';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fullestWindow, windowRule } from '../../../bench/rate-measure.js';
import type { FlagResult } from '../../../src/flags/types.js';
import { silentLogger } from '../../../src/logger.js';
import { runDetection, type DetectionDeps } from '../../../src/pipeline/detection.js';
import type { RunSummary } from '../../../src/pipeline/summary.js';
import { LocalRateLimiter } from '../../../src/send/rate-limiter.js';
import { detectionOptions } from '../../helpers/detection.js';
import { checkerOf, ManualClock, MemoryKnownUsers, RecordingSink, sourceOf } from '../../helpers/fakes.js';
import { ScheduledKnownUsers, ScheduledSink, type EntryFault, type MarkFault, type SinkCallPlan, type StoreFaults } from '../../helpers/faulty-fakes.js';

const SEED = 0x0b5e_55ed;

// ---------------------------------------------------------------------------------------------
// Generators

/** Who the candidates are and what the flag and the state say about each of them. */
interface World {
  /** Candidate lines in order, repeats included (IDs `u-0` … of a small pool, so they repeat). */
  candidates: string[];
  verdicts: ReadonlyMap<string, FlagResult>;
  /** In the known set before the run (marked by earlier runs). */
  initiallyKnown: ReadonlySet<string>;
  /** `loaded_users:{id}` exists: the worker loaded them recently. */
  loaded: ReadonlySet<string>;
}

/** One pool user: the flag's verdict, and whether an earlier run marked them or the worker loaded them. */
const userStateArb = fc.record({
  verdict: fc.constantFrom<FlagResult>('enabled', 'enabled', 'disabled', 'unevaluable'),
  known: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 4, arbitrary: fc.constant(false) }),
  loaded: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 4, arbitrary: fc.constant(false) }),
});

const worldArb: fc.Arbitrary<World> = fc.integer({ min: 1, max: 40 }).chain((size) => {
  const pool = Array.from({ length: size }, (_, i) => `u-${i}`);
  return fc
    .record({
      candidates: fc.array(fc.constantFrom(...pool), { maxLength: 60, size: 'medium' }),
      users: fc.array(userStateArb, { minLength: size, maxLength: size }),
    })
    .map(({ candidates, users }) => ({
      candidates,
      verdicts: new Map(pool.map((id, i) => [id, users[i]?.verdict ?? 'disabled'])),
      initiallyKnown: new Set(pool.filter((_, i) => users[i]?.known)),
      loaded: new Set(pool.filter((_, i) => users[i]?.loaded)),
    }));
});

/** How a run is shaped: batching, concurrency, the rate limit (none, or a manual-clock limiter), retries, spilling. */
interface RunShape {
  batchSize: number;
  maxInFlightBatches: number;
  sendConcurrency: number;
  rate: number | undefined;
  entryRetries: number;
  maxInMemory: number;
}

const rateArb = fc.constantFrom(0.5, 1, 3, 7.5, 9.5, 10, 50);
const runShapeArb: fc.Arbitrary<RunShape> = fc.record({
  batchSize: fc.integer({ min: 1, max: 8 }),
  maxInFlightBatches: fc.integer({ min: 1, max: 4 }),
  sendConcurrency: fc.integer({ min: 1, max: 3 }),
  rate: fc.option(rateArb, { nil: undefined }),
  entryRetries: fc.integer({ min: 0, max: 3 }),
  // 1 and 4 make the run spill users to a file; 1,000,000 keeps them in memory.
  maxInMemory: fc.constantFrom(1, 4, 1_000_000),
});

const entryFaultArb = fc.constantFrom<EntryFault>('ok', 'ok', 'retryable', 'fatal');

/** Per SendMessageBatch call: mostly per-entry outcomes, sometimes a whole-call failure. */
const sinkPlanArb: fc.Arbitrary<SinkCallPlan[]> = fc.array(
  fc.oneof(
    { weight: 1, arbitrary: fc.constant<SinkCallPlan>({ kind: 'throw' }) },
    { weight: 4, arbitrary: fc.array(entryFaultArb, { maxLength: 10 }).map((entries): SinkCallPlan => ({ kind: 'answer', entries })) },
  ),
  { maxLength: 20 },
);

/** Which store calls throw; indexes past the run's last call never fire, so many runs see none. */
const callIndexesArb = fc.uniqueArray(fc.integer({ min: 0, max: 12 }), { maxLength: 2 });
const storeFaultsArb: fc.Arbitrary<StoreFaults> = fc.record({
  areKnown: callIndexesArb,
  areLoaded: callIndexesArb,
  markKnown: fc.array(fc.tuple(fc.integer({ min: 0, max: 15 }), fc.constantFrom<MarkFault>('before-write', 'after-write')), { maxLength: 2 }).map((entries) => new Map(entries)),
});

/** A failure schedule; one run in four has none at all. */
const faultsArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ sink: [] as SinkCallPlan[], store: {} as StoreFaults }) },
  { weight: 3, arbitrary: fc.record({ sink: sinkPlanArb, store: storeFaultsArb }) },
);

// ---------------------------------------------------------------------------------------------
// Running

interface Harness {
  store: MemoryKnownUsers;
  clock: ManualClock;
  world: World;
}

function harness(world: World): Harness {
  const store = new MemoryKnownUsers();
  for (const id of world.initiallyKnown) store.known.add(id);
  for (const id of world.loaded) store.loaded.add(id);
  return { store, clock: new ManualClock(), world };
}

function run(h: Harness, parts: Pick<DetectionDeps, 'known' | 'sink' | 'limiter'>, shape: Partial<RunShape> & { budget?: number } = {}): Promise<RunSummary> {
  return runDetection(
    { source: sourceOf(h.world.candidates, shape.batchSize ?? 1000), checker: checkerOf((id) => h.world.verdicts.get(id) ?? 'disabled'), logger: silentLogger(), clock: h.clock, ...parts },
    detectionOptions({
      budget: shape.budget ?? 0,
      maxInFlightBatches: shape.maxInFlightBatches ?? 4,
      sendConcurrency: shape.sendConcurrency ?? 1,
      retry: { entryRetries: shape.entryRetries ?? 2, baseMs: 1, maxMs: 2 },
      pending: { maxInMemory: shape.maxInMemory ?? 1_000_000, spillDir: tmpdir() },
    }),
  );
}

const enabledCandidates = (world: World): Set<string> => new Set(world.candidates.filter((id) => world.verdicts.get(id) === 'enabled'));

/** The users a run may send: enabled candidates neither known nor loaded before it. */
function eligible(world: World, known: ReadonlySet<string>): Set<string> {
  return new Set([...enabledCandidates(world)].filter((id) => !known.has(id) && !world.loaded.has(id)));
}

/**
 * Users the sender gave up on: a final SenderFault=true, or SenderFault=false on every one of
 * the 1 + entryRetries attempts. A user whose retry was cut short by a whole-call failure is not
 * among them (interrupted, not failed).
 */
function failedForGood(outcomes: ReadonlyMap<string, EntryFault[]>, entryRetries: number): number {
  let failed = 0;
  for (const seen of outcomes.values()) {
    const last = seen.at(-1);
    if (last === 'fatal' || (last === 'retryable' && seen.length === entryRetries + 1)) failed++;
  }
  return failed;
}

const count = (ids: Iterable<string>, inSet: ReadonlySet<string>): number => [...ids].filter((id) => inSet.has(id)).length;

// ---------------------------------------------------------------------------------------------
// Properties

describe('detection under arbitrary failure schedules (property)', () => {
  // After any run, whatever its status:
  // - every user newly in the known set had a message the queue accepted, or was enabled and
  //   found loaded (marked without a send, by design) — catches marking before the send, marking
  //   a whole batch when only some entries were accepted, marking on a failed or interrupted call;
  // - only eligible users were sent, each accepted at most once — catches sending known, loaded,
  //   disabled or unevaluable users, or sending a user twice in a run;
  // - the summary agrees with what happened: enqueued = accepted users whose marking succeeded,
  //   sentUnmarked = accepted users whose marking failed, failed = users given up on; and the run
  //   is `failed` exactly when a whole call to the queue or the store failed (no error swallowed).
  // Then a run with no faults leaves every enabled candidate known, sends exactly the eligible
  // users the first run did not mark, and every eligible user got a message: nobody lost.
  it('keeps known ⊆ accepted ∪ loaded, counts what happened, and loses nobody', async () => {
    await fc.assert(
      fc.asyncProperty(worldArb, runShapeArb, faultsArb, async (world, shape, faults) => {
        const h = harness(world);
        const known = new ScheduledKnownUsers(h.store, faults.store);
        const sink = new ScheduledSink({ plan: faults.sink });
        const limiter = shape.rate === undefined ? undefined : new LocalRateLimiter(shape.rate, h.clock);
        const first = await run(h, { known, sink, limiter }, shape);

        const mayBeSent = eligible(world, world.initiallyKnown);
        const accepted = new Set(sink.accepted);
        const enabled = enabledCandidates(world);
        for (const id of h.store.known) {
          if (world.initiallyKnown.has(id)) continue;
          expect(accepted.has(id) || (world.loaded.has(id) && enabled.has(id)), `${id} is known without an accepted message (${first.status})`).toBe(true);
        }
        for (const call of sink.calls) for (const id of call.userIds) expect(mayBeSent.has(id), `${id} was sent but is not eligible`).toBe(true);
        expect(sink.accepted).toHaveLength(accepted.size);

        const markedOk = new Set(known.markCalls.filter((call) => call.reportedOk).flatMap((call) => call.userIds));
        const markFailed = new Set(known.markCalls.filter((call) => !call.reportedOk).flatMap((call) => call.userIds));
        expect(first.enqueued, 'enqueued').toBe(count(accepted, markedOk));
        expect(first.sentUnmarked, 'sentUnmarked').toBe(count(accepted, markFailed));
        expect(first.enqueued + first.sentUnmarked, 'every accepted user is enqueued or sentUnmarked').toBe(accepted.size);
        expect(first.failed, 'failed').toBe(failedForGood(sink.outcomes, shape.entryRetries));
        const faultsFired = sink.thrown + known.thrown;
        expect(first.status === 'failed', `status ${first.status} with ${faultsFired} faults fired: ${first.error}`).toBe(faultsFired > 0);
        if (faultsFired === 0 && first.failed > 0) expect(first.status).toBe('partial');

        // The follow-up run, no faults.
        const knownAfterFirst = new Set(h.store.known);
        const sink2 = new RecordingSink();
        const second = await run(h, { known: h.store, sink: sink2, limiter: undefined });
        expect(['ok', 'held', 'degraded'], `follow-up run: ${second.error}`).toContain(second.status);
        for (const id of enabled) expect(h.store.known.has(id), `${id} is enabled but not known after the follow-up run`).toBe(true);
        const sentSecond = sink2.sent.map((message) => message.userId);
        expect(new Set(sentSecond)).toEqual(eligible(world, knownAfterFirst));
        expect(sentSecond).toHaveLength(new Set(sentSecond).size);
        for (const id of mayBeSent) expect(accepted.has(id) || sentSecond.includes(id), `${id} was never sent`).toBe(true);
      }),
      { seed: SEED, numRuns: 250 },
    );
  });
});

/** 0 (no limit), a budget most runs exceed, or any. */
const budgetArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 45 }));

describe('detection budget under arbitrary timing (property)', () => {
  // For any budget, candidates, enabled set, rate, batching, concurrency and queue latency on a
  // manual clock: a run reserves min(budget, eligible) users — each ends enqueued or failed — and
  // defers exactly the rest; it never sends to more users than the budget; the request start
  // times obey README's window rule. Runs that follow (no faults) each take the next budget's
  // worth until everyone is sent. Catches a budget counted per batch or per loop, an off-by-one
  // at the budget, deferred users counted twice or dropped, failed sends counted as deferred,
  // a pipeline that bypasses the limiter or sends a grant's worth more than granted.
  it('never enqueues more than the budget, defers exactly the rest, and the next runs send them', async () => {
    await fc.assert(
      fc.asyncProperty(
        worldArb,
        runShapeArb,
        budgetArb,
        rateArb,
        fc.array(fc.integer({ min: 0, max: 3_000 }), { maxLength: 30 }),
        fc.array(fc.array(fc.constantFrom<EntryFault>('ok', 'ok', 'ok', 'fatal'), { maxLength: 10 }), { maxLength: 10 }),
        async (world, shape, budget, rate, latencyMs, entryPlans) => {
          const h = harness(world);
          const sink = new ScheduledSink({ clock: h.clock, latencyMs, plan: entryPlans.map((entries): SinkCallPlan => ({ kind: 'answer', entries })) });
          const first = await run(h, { known: h.store, sink, limiter: new LocalRateLimiter(rate, h.clock) }, { ...shape, budget });

          let remaining = eligible(world, world.initiallyKnown).size;
          const reserved = budget === 0 ? remaining : Math.min(budget, remaining);
          expect(['ok', 'partial', 'held', 'degraded'], `${first.error}`).toContain(first.status);
          expect(first.enqueued + first.failed, 'reserved users end enqueued or failed').toBe(reserved);
          expect(first.deferred, 'deferred').toBe(remaining - reserved);
          const usersSent = new Set(sink.calls.flatMap((call) => call.userIds));
          if (budget > 0) expect(usersSent.size).toBeLessThanOrEqual(budget);
          const { windowMs, cap } = windowRule(rate);
          expect(fullestWindow(sink.calls.map((call) => ({ at: call.at, count: call.userIds.length })), windowMs), `at ${rate}/s`).toBeLessThanOrEqual(cap);

          // Later runs, no faults: each enqueues the next budget's worth and defers the rest.
          remaining -= first.enqueued;
          const runsNeeded = budget === 0 ? Math.min(1, remaining) : Math.ceil(remaining / budget);
          for (let runs = 0; runs < runsNeeded; runs++) {
            const next = await run(h, { known: h.store, sink: new RecordingSink(), limiter: undefined }, { budget });
            const take = budget === 0 ? remaining : Math.min(budget, remaining);
            expect([next.enqueued, next.deferred]).toEqual([take, remaining - take]);
            remaining -= take;
          }
          expect(remaining).toBe(0);
          for (const id of enabledCandidates(world)) expect(h.store.known.has(id), `${id} is enabled but not known`).toBe(true);
        },
      ),
      { seed: SEED + 1, numRuns: 300 },
    );
  });
});

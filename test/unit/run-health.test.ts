import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { CandidateSource } from '../../src/candidates/types.js';
import { splitLines } from '../../src/candidates/line-source.js';
import { loadConfig } from '../../src/config/load.js';
import type { FlagResult } from '../../src/flags/types.js';
import { silentLogger } from '../../src/logger.js';
import { DetectorEventBus } from '../../src/observability/events.js';
import { bindMetrics } from '../../src/observability/metrics.js';
import { runDetection } from '../../src/pipeline/detection.js';
import { DEFAULT_RUN_HEALTH, degradedReason, emptyCounts, type RunCounts, type RunHealthPolicy } from '../../src/pipeline/summary.js';
import { detectionOptions } from '../helpers/detection.js';
import { checkerOf, MemoryKnownUsers, RecordingSink, sourceOf } from '../helpers/fakes.js';

const counts = (overrides: Partial<RunCounts>): RunCounts => ({ ...emptyCounts(), ...overrides });
const users = (n: number, prefix = 'u'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Candidates read from raw bytes the way a candidate file is (the line source). */
function sourceOfBytes(bytes: Buffer): CandidateSource {
  return {
    description: 'bytes',
    batches: () =>
      splitLines(
        (async function* () {
          yield bytes;
        })(),
        'candidates.txt',
        1000,
      ),
  };
}

function capturingLogger(): { logger: pino.Logger; lines: () => Array<{ level: number; msg: string }> } {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines: () => lines.map((line) => JSON.parse(line) as { level: number; msg: string }) };
}

describe('degradedReason: when a finished run does not count as a success', () => {
  const policy = DEFAULT_RUN_HEALTH;

  it('is null for a healthy run and for an empty one', () => {
    expect(degradedReason(counts({ candidates: 62, invalid: 1, evaluated: 60, unevaluable: 0 }), policy)).toBeNull();
    expect(degradedReason(counts({}), policy)).toBeNull();
  });

  it('names the share of invalid lines above the limit, and what to check', () => {
    expect(degradedReason(counts({ candidates: 1000, invalid: 620, evaluated: 380 }), policy)).toBe(
      'run degraded: 620 of 1000 candidates (62 %) are invalid, above safety.maxInvalidFraction (50 %): check the candidate list\'s encoding (UTF-8) and line endings (LF or CRLF); invalidExamples names the first lines',
    );
  });

  it('measures unevaluable users against the users checked, not the lines read', () => {
    // 600 invalid lines (not over the limit) and every one of the 400 valid users unevaluable.
    const reason = degradedReason(counts({ candidates: 1000, invalid: 400, evaluated: 600, unevaluable: 600 }), policy);
    expect(reason).toBe(
      'run degraded: 600 of 600 users checked (100 %) are unevaluable, above safety.maxUnevaluableFraction (50 %): the flag checker could not decide them (flag service down or failing, or rules that cannot be evaluated offline); they are retried next run',
    );
  });

  it('gives both reasons when both limits are passed', () => {
    const reason = degradedReason(counts({ candidates: 100, invalid: 60, evaluated: 40, unevaluable: 40 }), policy);
    expect(reason).toMatch(/^run degraded: 60 of 100 candidates .* invalid.*; 40 of 40 users checked .* unevaluable/);
  });

  it('needs more than the share: exactly half is not degraded', () => {
    expect(degradedReason(counts({ candidates: 100, invalid: 50, evaluated: 50 }), policy)).toBeNull();
    expect(degradedReason(counts({ candidates: 100, invalid: 51, evaluated: 49 }), policy)).not.toBeNull();
  });

  it('leaves a short list with a few bad lines alone (under the floor), but not a wholly unusable one', () => {
    expect(degradedReason(counts({ candidates: 5, invalid: 3, evaluated: 2 }), policy)).toBeNull();
    expect(degradedReason(counts({ candidates: 5, evaluated: 5, unevaluable: 4 }), policy)).toBeNull();
    // A CR-only file is one long line: 1 invalid of 1 — the whole input, so it alerts.
    expect(degradedReason(counts({ candidates: 1, invalid: 1 }), policy)).toMatch(/^run degraded: 1 of 1 candidates \(100 %\) are invalid/);
    expect(degradedReason(counts({ candidates: 3, evaluated: 3, unevaluable: 3 }), policy)).toMatch(/3 of 3 users checked/);
    expect(degradedReason(counts({ candidates: 20, invalid: 11, evaluated: 9 }), policy)).not.toBeNull();
  });

  it('is switched off by a fraction of 1', () => {
    const off: RunHealthPolicy = { maxInvalidFraction: 1, maxUnevaluableFraction: 1, degradedFloor: 1 };
    expect(degradedReason(counts({ candidates: 10, invalid: 10 }), off)).toBeNull();
  });
});

describe('a detection run that is degraded', () => {
  it('ends degraded when the flag checker cannot decide most users, and still processes the ones it could', async () => {
    const store = new MemoryKnownUsers();
    const sink = new RecordingSink();
    const log = capturingLogger();
    // The flag service answers for 20 of 100 users: those are sent and marked as usual.
    const decide = (id: string): FlagResult => (Number(id.split('-')[1]) < 20 ? 'enabled' : 'unevaluable');
    const summary = await runDetection(
      { source: sourceOf(users(100)), checker: checkerOf(decide), known: store, sink, limiter: undefined, logger: log.logger },
      detectionOptions(),
    );
    expect(summary).toMatchObject({ status: 'degraded', evaluated: 100, enabled: 20, unevaluable: 80, enqueued: 20 });
    expect(summary.error).toMatch(/^run degraded: 80 of 100 users checked \(80 %\) are unevaluable/);
    expect(sink.sent).toHaveLength(20);
    expect(store.known.size).toBe(20);
    const errors = log.lines().filter((line) => line.level === 50);
    expect(errors.map((line) => line.msg)).toEqual([summary.error, 'detection run degraded']);
  });

  it('ends degraded on a UTF-16 candidate file: every line is invalid', async () => {
    const utf16 = Buffer.from(`\uFEFF${users(30).join('\n')}\n`, 'utf16le');
    const summary = await runDetection(
      { source: sourceOfBytes(utf16), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      detectionOptions(),
    );
    // Read as UTF-8 each line carries NUL bytes; the NUL after the last newline is a 31st line.
    expect(summary).toMatchObject({ status: 'degraded', candidates: 31, invalid: 31, evaluated: 0, enqueued: 0 });
  });

  it('ends degraded on a CR-only candidate file: one line holding every ID', async () => {
    const crOnly = Buffer.from(`${users(30).join('\r')}\r`);
    const summary = await runDetection(
      { source: sourceOfBytes(crOnly), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      detectionOptions(),
    );
    expect(summary).toMatchObject({ status: 'degraded', candidates: 1, invalid: 1 });
    expect(summary.error).toMatch(/^run degraded: 1 of 1 candidates \(100 %\) are invalid/);
  });

  it('is ok for an empty candidate list', async () => {
    const summary = await runDetection(
      { source: sourceOf([]), checker: checkerOf(() => 'unevaluable'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      detectionOptions(),
    );
    expect(summary).toMatchObject({ status: 'ok', candidates: 0, error: null });
  });

  it('follows the policy it is given', async () => {
    const run = (health: RunHealthPolicy) =>
      runDetection(
        { source: sourceOf(users(40)), checker: checkerOf((id) => (id.endsWith('0') ? 'enabled' : 'unevaluable')), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
        detectionOptions({ health }),
      );
    expect((await run({ maxInvalidFraction: 0.5, maxUnevaluableFraction: 0.95, degradedFloor: 10 })).status).toBe('ok'); // 36 of 40 = 90 %
    expect((await run({ maxInvalidFraction: 0.5, maxUnevaluableFraction: 0.8, degradedFloor: 10 })).status).toBe('degraded');
    expect((await run({ maxInvalidFraction: 0.5, maxUnevaluableFraction: 0.8, degradedFloor: 37 })).status).toBe('ok');
  });

  it('leaves a failed or partial run as it is: those already alert, and say why', async () => {
    const unevaluableBut = (first: string) => checkerOf((id) => (id === first ? 'enabled' : 'unevaluable'));
    const brokenSource: CandidateSource = {
      description: 'breaks after one batch',
      async *batches() {
        yield* sourceOf(users(30)).batches();
        throw new Error('source gone');
      },
    };
    const failed = await runDetection(
      { source: brokenSource, checker: unevaluableBut('u-0'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      detectionOptions(),
    );
    expect(failed).toMatchObject({ status: 'failed', error: 'source gone', unevaluable: 29 });

    // A partial run that is also degraded stays partial (its sends failed), and its error says
    // why it is degraded as well.
    const refusing = new RecordingSink(() => ({ ok: false, code: 'Bad', message: 'x', senderFault: true }));
    const partial = await runDetection(
      { source: sourceOf(users(30)), checker: unevaluableBut('u-0'), known: new MemoryKnownUsers(), sink: refusing, limiter: undefined, logger: silentLogger() },
      detectionOptions(),
    );
    expect(partial).toMatchObject({ status: 'partial', failed: 1, unevaluable: 29 });
    expect(partial.error).toMatch(/^run degraded: 29 of 30 users checked/);
  });

  it('is also judged in a dry run, where an operator tries a new candidate list', async () => {
    const summary = await runDetection(
      { source: sourceOf(['BAD ID', 'ALSO BAD', 'u-1']), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      detectionOptions({ dryRun: true }),
    );
    expect(summary).toMatchObject({ status: 'ok', invalid: 2, enqueued: 1 }); // 2 of 3: under the floor, not all
    const allBad = await runDetection(
      { source: sourceOf(['BAD ID', 'ALSO BAD']), checker: checkerOf(() => 'enabled'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      detectionOptions({ dryRun: true }),
    );
    expect(allBad.status).toBe('degraded');
  });
});

describe('degraded runs in the metrics', () => {
  it('are labelled in ff_detector_run_duration_seconds and never count as the last success', async () => {
    const events = new DetectorEventBus();
    const registry = bindMetrics(events);
    const summary = await runDetection(
      { source: sourceOf(users(20)), checker: checkerOf(() => 'unevaluable'), known: new MemoryKnownUsers(), sink: new RecordingSink(), limiter: undefined, logger: silentLogger(), events },
      detectionOptions({ strategy: 'polling' }),
    );
    events.emit('run:finished', summary);
    const text = await registry.metrics();
    expect(text).toContain('ff_detector_run_duration_seconds_count{strategy="polling",status="degraded"} 1');
    expect(text).toContain('ff_detector_evaluations_total{strategy="polling",result="unevaluable"} 20');
    expect(text).not.toMatch(/ff_detector_last_success_timestamp_seconds\{/);
  });
});

describe('safety.* run health settings', () => {
  it('default to half, with a floor of 10', () => {
    const { safety } = loadConfig({ env: {} });
    expect({ maxInvalidFraction: safety.maxInvalidFraction, maxUnevaluableFraction: safety.maxUnevaluableFraction, degradedFloor: safety.degradedFloor }).toEqual({
      maxInvalidFraction: 0.5,
      maxUnevaluableFraction: 0.5,
      degradedFloor: 10,
    });
  });

  it('refuse shares outside 0…1 and a floor below 1, naming each', () => {
    expect(() => loadConfig({ env: {}, overrides: { safety: { maxInvalidFraction: 1.5, maxUnevaluableFraction: -0.1, degradedFloor: 0 } } })).toThrow(
      /safety\.maxInvalidFraction[\s\S]*safety\.maxUnevaluableFraction[\s\S]*safety\.degradedFloor/,
    );
  });
});

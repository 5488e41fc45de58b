import type { EvaluationContext, JsonValue, Provider, ResolutionDetails } from '@openfeature/server-sdk';
import { ErrorCode } from '@openfeature/server-sdk';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CIRCUIT_OPEN } from '../../src/flags/circuit-breaker.js';
import { OpenFeatureFlagChecker, type BooleanFlagClient } from '../../src/flags/openfeature-checker.js';
import { openOpenFeatureChecker, type OpenedOpenFeatureChecker } from '../../src/flags/openfeature-provider.js';
import { openFeatureSchema, type OpenFeatureSettings } from '../../src/flags/openfeature-schema.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { ManualClock } from '../helpers/fakes.js';

/**
 * A fake OpenFeature provider, run through the real @openfeature/server-sdk. The user ID says what
 * it does: `on-`/`off-` answer true/false; `missing-` answers FLAG_NOT_FOUND; `boom-` throws;
 * `text-` answers a string; `hang-` never answers; `held-` waits for release().
 */
class FakeProvider implements Provider {
  readonly metadata = { name: 'fake' };
  readonly runsOn = 'server' as const;
  readonly contexts: EvaluationContext[] = [];
  readonly flagKeys: string[] = [];
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  closed = 0;
  private readonly held: Array<() => void> = [];

  constructor(private readonly options: { failStart?: boolean } = {}) {}

  initialize(): Promise<void> {
    return this.options.failStart ? Promise.reject(new Error('cannot reach the flag service')) : Promise.resolve();
  }

  onClose(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }

  release(): void {
    for (const resolve of this.held.splice(0)) resolve();
  }

  get waiting(): number {
    return this.held.length;
  }

  async resolveBooleanEvaluation(flagKey: string, _default: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>> {
    this.calls++;
    this.flagKeys.push(flagKey);
    this.contexts.push(context);
    const id = String(context.targetingKey);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (id.startsWith('held-')) await new Promise<void>((resolve) => this.held.push(resolve));
      if (id.startsWith('hang-')) await new Promise<never>(() => undefined);
      if (id.startsWith('boom-')) throw new Error('connection reset');
      if (id.startsWith('missing-')) return { value: false, errorCode: ErrorCode.FLAG_NOT_FOUND, errorMessage: 'no such flag', reason: 'ERROR' };
      if (id.startsWith('text-')) return { value: 'yes' as unknown as boolean };
      return { value: !id.startsWith('off-'), reason: 'TARGETING_MATCH' };
    } finally {
      this.inFlight--;
    }
  }

  resolveStringEvaluation(): Promise<ResolutionDetails<string>> {
    return Promise.reject(new Error('not used'));
  }
  resolveNumberEvaluation(): Promise<ResolutionDetails<number>> {
    return Promise.reject(new Error('not used'));
  }
  resolveObjectEvaluation<T extends JsonValue>(): Promise<ResolutionDetails<T>> {
    return Promise.reject(new Error('not used'));
  }
}

const opened: OpenedOpenFeatureChecker[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((checker) => checker.close()));
});

async function open(provider: FakeProvider, settings: Partial<OpenFeatureSettings> = {}): Promise<OpenedOpenFeatureChecker> {
  const parsed = openFeatureSchema.parse({ package: 'fake-openfeature-provider', ...settings });
  const result = await openOpenFeatureChecker(parsed, 'consumer_graph_ingestion', silentLogger(), { load: () => Promise.resolve({ FakeProvider: function () { return provider; } }) });
  opened.push(result);
  return result;
}

describe('OpenFeature checker through the server SDK', () => {
  it('asks with targetingKey = the user ID and the configured context, and maps the answers; failures are unevaluable, never enabled', async () => {
    const provider = new FakeProvider();
    const { checker } = await open(provider, { context: { kind: 'user', plan: 'pro' }, flagKey: 'graph-ingestion' });
    const results = await checker.check(['on-1', 'off-2', 'missing-3', 'boom-4', 'text-5']);
    expect(results).toEqual(['enabled', 'disabled', 'unevaluable', 'unevaluable', 'unevaluable']);
    expect(provider.contexts[0]).toMatchObject({ targetingKey: 'on-1', kind: 'user', plan: 'pro' });
    expect(new Set(provider.flagKeys)).toEqual(new Set(['graph-ingestion']));
  });

  it('evaluates the top-level flag when no flagKey is set', async () => {
    const provider = new FakeProvider();
    const { checker } = await open(provider);
    await checker.check(['on-1']);
    expect(provider.flagKeys).toEqual(['consumer_graph_ingestion']);
  });

  it('an evaluation that outlives timeoutMs is unevaluable and the check goes on', async () => {
    const provider = new FakeProvider();
    const { checker } = await open(provider, { timeoutMs: 50 });
    expect(await checker.check(['hang-1', 'on-2'])).toEqual(['unevaluable', 'enabled']);
  });

  it('a provider that failed to start makes every user unevaluable', async () => {
    const provider = new FakeProvider({ failStart: true });
    const { checker } = await open(provider, { breakerThreshold: 0 });
    expect(await checker.check(['on-1', 'on-2'])).toEqual(['unevaluable', 'unevaluable']);
    expect(provider.calls).toBe(0);
  });

  it('keeps at most `concurrency` evaluations in flight, across concurrent batches', async () => {
    const provider = new FakeProvider();
    const { checker } = await open(provider, { concurrency: 4 });
    const ids = (batch: string) => Array.from({ length: 20 }, (_, i) => `held-${batch}-${i}`);
    const checks = Promise.all([checker.check(ids('a')), checker.check(ids('b'))]);
    let done = false;
    void checks.then(() => (done = true));
    // Let each round of held evaluations go once the next has filled every slot it may.
    while (!done) {
      await vi.waitFor(() => expect(provider.waiting > 0 || done).toBe(true));
      provider.release();
    }
    const [a, b] = await checks;
    expect([...(a ?? []), ...(b ?? [])].every((result) => result === 'enabled')).toBe(true);
    expect(provider.maxInFlight).toBe(4);
  });

  it('closes the provider once, however often close() is called', async () => {
    const provider = new FakeProvider();
    const result = await open(provider);
    await Promise.all([result.close(), result.close()]);
    expect(provider.closed).toBe(1);
  });
});

/** A client whose answers the test scripts, with the breaker on a manual clock. */
function scriptedChecker(answer: (userId: string) => Promise<{ value: boolean; errorCode?: ErrorCode; errorMessage?: string; reason?: string }>, clock = new ManualClock(1000), logger: Logger = silentLogger()) {
  let calls = 0;
  const client: BooleanFlagClient = {
    providerStatus: 'READY',
    getBooleanDetails: async (flagKey, _default, context) => {
      calls++;
      return { flagKey, flagMetadata: {}, ...(await answer(String(context.targetingKey))) };
    },
  };
  const checker = new OpenFeatureFlagChecker(client, { flagKey: 'f', concurrency: 1, timeoutMs: 1000, breakerThreshold: 3, breakerCooldownMs: 30_000, description: 'scripted' }, logger, clock);
  return { checker, clock, calls: () => calls };
}

describe('OpenFeature checker circuit breaker', () => {
  it('opens after consecutive provider failures and stops asking until the cool-down ends', async () => {
    let down = true;
    const { checker, clock, calls } = scriptedChecker((id) =>
      Promise.resolve(down ? { value: false, errorCode: ErrorCode.GENERAL, reason: 'ERROR' } : { value: id.endsWith('1') }),
    );
    expect(await checker.check(['u1', 'u2', 'u3', 'u4', 'u5'])).toEqual(Array(5).fill('unevaluable'));
    expect(calls()).toBe(3);
    expect(checker.breaker.current).toBe('open');
    down = false;
    clock.time += 30_000;
    expect(await checker.check(['u1', 'u2'])).toEqual(['enabled', 'disabled']);
    expect(checker.breaker.current).toBe('closed');
  });

  it('answers about the flag (FLAG_NOT_FOUND) are unevaluable but do not open it', async () => {
    const { checker, calls } = scriptedChecker(() => Promise.resolve({ value: false, errorCode: ErrorCode.FLAG_NOT_FOUND, reason: 'ERROR' }));
    expect(await checker.check(['u1', 'u2', 'u3', 'u4', 'u5'])).toEqual(Array(5).fill('unevaluable'));
    expect(calls()).toBe(5);
    expect(checker.breaker.current).toBe('closed');
  });

  it('timeouts count as failures', async () => {
    const hanging = new OpenFeatureFlagChecker(
      { providerStatus: 'READY', getBooleanDetails: () => new Promise(() => undefined) },
      { flagKey: 'f', concurrency: 8, timeoutMs: 20, breakerThreshold: 2, breakerCooldownMs: 30_000, description: 'hanging' },
      silentLogger(),
    );
    expect(await hanging.check(['u1', 'u2'])).toEqual(['unevaluable', 'unevaluable']);
    expect(hanging.breaker.current).toBe('open');
  });

  it('a provider that is not READY (STALE: serving rules it can no longer refresh) is not asked', async () => {
    let calls = 0;
    const checker = new OpenFeatureFlagChecker(
      { providerStatus: 'STALE', getBooleanDetails: (flagKey) => Promise.resolve({ flagKey, flagMetadata: {}, value: ++calls > 0 }) },
      { flagKey: 'f', concurrency: 1, timeoutMs: 100, breakerThreshold: 0, breakerCooldownMs: 1, description: 'stale' },
      silentLogger(),
    );
    expect(await checker.check(['u1'])).toEqual(['unevaluable']);
    expect(calls).toBe(0);
  });

  it('says why users were unevaluable, the open breaker included', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const { checker } = scriptedChecker(() => Promise.resolve({ value: false, errorCode: ErrorCode.GENERAL, reason: 'ERROR' }), new ManualClock(1000), logger);
    await checker.check(['u1', 'u2', 'u3', 'u4']);
    const summary = lines.map((line) => JSON.parse(line) as { msg: string; failures?: unknown }).find((entry) => entry.failures !== undefined);
    expect(summary).toMatchObject({ failures: { GENERAL: 3, [CIRCUIT_OPEN]: 1 }, msg: 'the OpenFeature provider gave no usable answer for 4 users; counted as unevaluable' });
  });

  it('calls left running past their timeout keep their slot: a hung provider never has more than `concurrency` calls', async () => {
    let started = 0;
    const hanging = new OpenFeatureFlagChecker(
      { providerStatus: 'READY', getBooleanDetails: () => (started++, new Promise(() => undefined)) },
      { flagKey: 'f', concurrency: 2, timeoutMs: 20, breakerThreshold: 0, breakerCooldownMs: 1, description: 'hanging' },
      silentLogger(),
    );
    expect(await hanging.check(['u1', 'u2', 'u3', 'u4', 'u5', 'u6'])).toEqual(Array(6).fill('unevaluable'));
    expect(await hanging.check(['u7', 'u8'])).toEqual(['unevaluable', 'unevaluable']);
    expect(started).toBe(2);
  });

  it('keys failures by code, with one message as an example (messages may differ per call, or echo the user)', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const { checker } = scriptedChecker((userId) => Promise.resolve({ value: false, errorCode: ErrorCode.PARSE_ERROR, errorMessage: `bad context for ${userId}`, reason: 'ERROR' }), new ManualClock(1000), logger);
    await checker.check(['u1', 'u2', 'u3']);
    const summary = lines.map((line) => JSON.parse(line) as { failures?: unknown; examples?: unknown }).find((entry) => entry.failures !== undefined);
    expect(summary).toMatchObject({ failures: { PARSE_ERROR: 3 }, examples: { PARSE_ERROR: 'bad context for u1' } });
  });
});

import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { reconcileKnownUsers } from '../../src/pipeline/reconcile.js';
import { DEFAULT_RUN_HEALTH } from '../../src/pipeline/summary.js';
import type { FlagResult } from '../../src/flags/types.js';
import { checkerOf, MemoryKnownUsers } from '../helpers/fakes.js';

const released = (value: boolean) => ({ maxFraction: 0.1, floor: 100, released: () => Promise.resolve(value) });

describe('reconcileKnownUsers', () => {
  it('forgets known users now disabled, never one whose evaluation failed', async () => {
    const known = new MemoryKnownUsers();
    for (const id of ['on-1', 'off-1', 'unknown-1', 'on-2']) known.known.add(id);
    const decide = (id: string): FlagResult => (id.startsWith('on') ? 'enabled' : id.startsWith('off') ? 'disabled' : 'unevaluable');
    const summary = await reconcileKnownUsers({ known, checker: checkerOf(decide), logger: silentLogger() }, { dryRun: false, forgetPolicy: released(false), batchSize: 2, health: DEFAULT_RUN_HEALTH });
    expect(summary).toMatchObject({ strategy: 'reconcile', status: 'ok', evaluated: 4, enabled: 2, disabled: 1, unevaluable: 1, forgotten: 1 });
    expect([...known.known].sort()).toEqual(['on-1', 'on-2', 'unknown-1']);
  });

  it('holds a mass forget, and forgets nothing when the flag check fails', async () => {
    const known = new MemoryKnownUsers();
    for (let i = 0; i < 200; i++) known.known.add(`u-${i}`);
    const held = await reconcileKnownUsers({ known, checker: checkerOf(() => 'disabled'), logger: silentLogger() }, { dryRun: false, forgetPolicy: released(false), batchSize: 50, health: DEFAULT_RUN_HEALTH });
    expect(held).toMatchObject({ status: 'held', forgetHeld: 200, forgotten: 0 });
    const failing = { description: 'down', check: () => Promise.reject(new Error('flag service down')) };
    const failed = await reconcileKnownUsers({ known, checker: failing, logger: silentLogger() }, { dryRun: false, forgetPolicy: released(true), batchSize: 50, health: DEFAULT_RUN_HEALTH });
    expect(failed).toMatchObject({ status: 'failed', forgotten: 0, error: 'flag service down' });
    expect(known.known.size).toBe(200);
  });

  it('is degraded, forgetting nobody, when most known users cannot be evaluated (a dead flag service)', async () => {
    const known = new MemoryKnownUsers();
    for (let i = 0; i < 40; i++) known.known.add(`u-${i}`);
    const summary = await reconcileKnownUsers(
      { known, checker: checkerOf((id) => (id === 'u-0' ? 'disabled' : 'unevaluable')), logger: silentLogger() },
      { dryRun: false, forgetPolicy: released(true), batchSize: 10, health: DEFAULT_RUN_HEALTH },
    );
    expect(summary).toMatchObject({ status: 'degraded', unevaluable: 39, forgotten: 1 });
    expect(summary.error).toContain('safety.maxUnevaluableFraction');
    expect(known.known.size).toBe(39);
  });
});

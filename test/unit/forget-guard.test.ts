import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { ForgetGuard } from '../../src/pipeline/forget-guard.js';
import { runDetection } from '../../src/pipeline/detection.js';
import { detectionOptions } from '../helpers/detection.js';
import { checkerOf, MemoryKnownUsers, RecordingSink, sourceOf } from '../helpers/fakes.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `u-${i}`);
const policy = (released = false) => ({ maxFraction: 0.1, floor: 100, released: () => Promise.resolve(released) });

describe('ForgetGuard', () => {
  it('forgets a few, or many that are a small share of the known users met', async () => {
    const few = new ForgetGuard(policy());
    few.meet(100, ids(99));
    expect(await few.decide()).toEqual({ forget: ids(99) });
    const smallShare = new ForgetGuard(policy());
    smallShare.meet(5000, ids(400));
    expect(await smallShare.decide()).toEqual({ forget: ids(400) });
  });

  it('holds many that are a large share, naming how to release them', async () => {
    const guard = new ForgetGuard(policy());
    guard.meet(1000, ids(101));
    const decision = await guard.decide();
    expect(decision).toMatchObject({ held: 101 });
    expect('reason' in decision && decision.reason).toMatch(/101 of the 1000 known users .* --allow-mass-forget, or POST \/admin\/forget-hold\/release/);
  });

  it('forgets them when an operator released the hold', async () => {
    const guard = new ForgetGuard(policy(true));
    guard.meet(200, ids(200));
    expect(await guard.decide()).toEqual({ forget: ids(200) });
  });
});

describe('a run that finds the flag switched off for everyone it knew', () => {
  const run = (known: MemoryKnownUsers, released: boolean) =>
    runDetection(
      { source: sourceOf(ids(300)), checker: checkerOf(() => 'disabled'), known, sink: new RecordingSink(), limiter: undefined, logger: silentLogger() },
      detectionOptions({ forgetPolicy: policy(released) }),
    );

  it('forgets nobody, ends held (exit 1) and says why', async () => {
    const known = new MemoryKnownUsers();
    for (const id of ids(300)) known.known.add(id);
    const summary = await run(known, false);
    expect(summary).toMatchObject({ status: 'held', forgotten: 0, forgetHeld: 300 });
    expect(summary.error).toContain('forgetting held');
    expect(known.known.size).toBe(300);
  });

  it('forgets them all once released', async () => {
    const known = new MemoryKnownUsers();
    for (const id of ids(300)) known.known.add(id);
    expect(await run(known, true)).toMatchObject({ status: 'ok', forgotten: 300, forgetHeld: 0 });
    expect(known.known.size).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { BacklogGate } from '../../src/send/backlog-gate.js';
import { ManualClock } from '../helpers/fakes.js';

describe('BacklogGate', () => {
  it('passes below the limit, reading the backlog at most once per interval', async () => {
    let reads = 0;
    const clock = new ManualClock();
    const gate = new BacklogGate(() => Promise.resolve(++reads && 10), 100, silentLogger(), 5000, undefined, clock);
    await gate.waitBelow();
    await gate.waitBelow();
    expect(reads).toBe(1);
    clock.time += 5000;
    await gate.waitBelow();
    expect(reads).toBe(2);
  });

  it('pauses above the limit and resumes once the worker caught up, reporting each reading', async () => {
    const backlogs = [6000, 5500, 4000];
    const readings: Array<[number, boolean]> = [];
    const clock = new ManualClock();
    const gate = new BacklogGate(() => Promise.resolve(backlogs.shift() ?? 0), 5000, silentLogger(), 1000, (b, p) => readings.push([b, p]), clock);
    expect(await gate.waitBelow()).toBe(2000);
    expect(readings).toEqual([[6000, true], [5500, true], [4000, false]]);
  });

  it('fails closed when the backlog cannot be read, and stops waiting on abort', async () => {
    await expect(new BacklogGate(() => Promise.reject(new Error('AccessDenied')), 10, silentLogger(), 10).waitBelow()).rejects.toThrow('AccessDenied');
    const controller = new AbortController();
    const waiting = new BacklogGate(() => Promise.resolve(100), 10, silentLogger(), 60_000).waitBelow(controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
  });
});

import { describe, expect, it } from 'vitest';
import { FfError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { DetectorEventBus } from '../../src/observability/events.js';
import type { GroupLag, LagReader } from '../../src/safety/consumer-lag.js';
import { checkConsumerLag } from '../../src/safety/lag-gate.js';
import { backlogGate } from '../../src/send/backlog-gate.js';
import { AllGates, PausingGate, type GateReading } from '../../src/send/send-gate.js';
import { ManualClock } from '../helpers/fakes.js';

const open: GateReading = { open: true, description: 'fine' };
const closed: GateReading = { open: false, description: 'too much' };
const options = { name: 'queue_backlog' as const, recheckMs: 5000, pausedRecheckMs: 1000, maxPauseMs: 60_000 };

describe('PausingGate', () => {
  it('reads at most once per interval, once for all the senders waiting at the same time', async () => {
    let reads = 0;
    const clock = new ManualClock();
    const gate = new PausingGate(() => {
      reads++;
      return Promise.resolve(open);
    }, options, silentLogger(), undefined, clock);
    await Promise.all([gate.waitOpen(), gate.waitOpen(), gate.waitOpen()]);
    await gate.waitOpen();
    expect(reads).toBe(1);
    clock.time += 5000;
    await gate.waitOpen();
    expect(reads).toBe(2);
  });

  it('pauses while closed, re-reading at the paused interval, and reports each change of state', async () => {
    const readings = [closed, closed, closed, open];
    const changes: boolean[] = [];
    const clock = new ManualClock();
    const gate = new PausingGate(() => Promise.resolve(readings.shift() ?? open), options, silentLogger(), (_, paused) => changes.push(paused), clock);
    expect(await gate.waitOpen()).toBe(3000);
    expect(changes).toEqual([true, false]);
  });

  it('gives up with SENDING_HELD once a pause lasts maxPauseMs, whichever sender is waiting', async () => {
    const clock = new ManualClock();
    const changes: boolean[] = [];
    const gate = new PausingGate(() => Promise.resolve(closed), { ...options, maxPauseMs: 10_000 }, silentLogger(), (_, paused) => changes.push(paused), clock);
    const error = await gate.waitOpen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FfError);
    expect((error as FfError).code).toBe('SENDING_HELD');
    expect((error as FfError).message).toBe('sending gave up after a pause of 10s (safety.maxPauseMinutes): too much; users not sent are left unmarked for a later run');
    expect(clock.time).toBe(10_000);
    // The pause clock is the gate's: a sender arriving later gives up at once.
    await expect(gate.waitOpen()).rejects.toThrow('sending gave up');
    // Given up, sending is stopped rather than paused: the metric and /status say so.
    expect(changes).toEqual([true, false]);
  });

  it('takes one last look before giving up: a worker that caught up just in time is not given up on', async () => {
    const clock = new ManualClock();
    const gate = new PausingGate(() => Promise.resolve(clock.time >= 10_000 ? open : closed), { ...options, pausedRecheckMs: 4000, maxPauseMs: 10_000 }, silentLogger(), undefined, clock);
    // Readings at 0, 4000 and 8000 are closed; the pause runs out at 10,000, before the next
    // scheduled reading: the last look at 10,000 finds the gate open.
    expect(await gate.waitOpen()).toBe(10_000);
  });

  it('does not wait for a slow reading once the run is cancelled', async () => {
    const controller = new AbortController();
    const gate = new PausingGate(() => new Promise<GateReading>(() => undefined), options, silentLogger());
    const waiting = gate.waitOpen(controller.signal);
    controller.abort(new Error('shutting down'));
    await expect(waiting).rejects.toThrow('shutting down');
  });

  it('fails closed when the value cannot be read, and stops waiting on abort', async () => {
    await expect(new PausingGate(() => Promise.reject(new Error('AccessDenied')), options, silentLogger()).waitOpen()).rejects.toThrow('AccessDenied');
    const controller = new AbortController();
    const changes: boolean[] = [];
    const clock = new ManualClock();
    const gate = new PausingGate(() => Promise.resolve(closed), options, silentLogger(), (_, paused) => changes.push(paused), {
      ...clock,
      now: () => clock.now(),
      epochMs: (at) => at,
      sleep: () => {
        controller.abort(new Error('stop'));
        return Promise.reject(new Error('stop'));
      },
      sleepUntil: () => Promise.resolve(),
    });
    await expect(gate.waitOpen(controller.signal)).rejects.toThrow('stop');
    expect(changes).toEqual([true, false]);
  });

  it('AllGates waits for each gate', async () => {
    const clock = new ManualClock();
    const first = new PausingGate(() => Promise.resolve(clock.time < 2000 ? closed : open), options, silentLogger(), undefined, clock);
    const second = new PausingGate(() => Promise.resolve(clock.time < 4000 ? closed : open), { ...options, name: 'consumer_lag' }, silentLogger(), undefined, clock);
    expect(await AllGates.of([first, undefined, second])?.waitOpen()).toBe(4000);
    expect(AllGates.of([undefined])).toBeUndefined();
  });
});

describe('backlogGate', () => {
  it('closes above sqs.maxBacklog and emits every reading and change for the metrics', async () => {
    const backlogs = [6000, 5500, 4000];
    const events = new DetectorEventBus();
    const seen: unknown[] = [];
    events.on('send:backlog', (backlog) => seen.push(backlog));
    events.on('send:paused', (change) => seen.push(change));
    const clock = new ManualClock();
    const gate = backlogGate(() => Promise.resolve(backlogs.shift() ?? 0), { maxBacklog: 5000, recheckMs: 1000, maxPauseMs: 60_000 }, silentLogger(), events, clock);
    expect(await gate.waitOpen()).toBe(2000);
    expect(seen).toEqual([
      6000,
      { gate: 'queue_backlog', paused: true, reason: 'queue backlog 6000 is above sqs.maxBacklog 5000; waiting for the worker to catch up' },
      5500,
      4000,
      { gate: 'queue_backlog', paused: false, reason: 'queue backlog 4000 is within sqs.maxBacklog 5000' },
    ]);
  });
});

/** A reader answering from fixed per-partition state: committed offset, high watermark, and the first offset at or after each time. */
function readerOf(partitions: Array<{ committed: number; high: number; firstAfter: (time: number) => number }>): LagReader & { asked: Array<number | null> } {
  const asked: Array<number | null> = [];
  return {
    asked,
    lag: (group, topic, behindBefore): Promise<GroupLag> => {
      asked.push(behindBefore);
      const parts = partitions.map((p, partition) => ({ partition, lag: p.high - p.committed, behind: behindBefore !== null && p.committed < p.firstAfter(behindBefore) }));
      return Promise.resolve({ group, topic, lag: parts.reduce((sum, p) => sum + p.lag, 0), partitions: parts });
    },
    close: () => Promise.resolve(),
  };
}

describe('checkConsumerLag', () => {
  const groups = [{ group: 'worker', topic: 'receipts' }];
  const now = 1_000_000;

  it('passes a busy group that is caught up: messages unconsumed, all of them recent', async () => {
    // Offsets 0..999 written one per second up to `now`; the group has consumed up to 990.
    const reader = readerOf([{ committed: 990, high: 1000, firstAfter: (time) => Math.max(0, Math.ceil(1000 - (now - time) / 1000)) }]);
    const verdict = await checkConsumerLag(reader, groups, { maxLagSeconds: 60, maxLag: null }, now);
    expect(verdict).toMatchObject({ ok: true, reason: null });
    expect(reader.asked).toEqual([now - 60_000]);
  });

  it('holds a group whose oldest unconsumed message is older than maxLagSeconds, naming partitions', async () => {
    const reader = readerOf([
      { committed: 100, high: 100, firstAfter: () => 100 },
      { committed: 10, high: 500, firstAfter: () => 400 },
    ]);
    const verdict = await checkConsumerLag(reader, groups, { maxLagSeconds: 60, maxLag: null }, now);
    expect(verdict.reason).toBe('consumer group worker is more than 60 s behind on receipts (partition 1; 490 messages unconsumed)');
  });

  it('counts messages only when maxLag is set, and measures no time when maxLagSeconds is null', async () => {
    const reader = readerOf([{ committed: 0, high: 7, firstAfter: () => 0 }]);
    expect(await checkConsumerLag(reader, groups, { maxLagSeconds: 60, maxLag: 7 }, now)).toMatchObject({ ok: true });
    const verdict = await checkConsumerLag(reader, groups, { maxLagSeconds: null, maxLag: 6 }, now);
    expect(verdict.reason).toBe('consumer group worker lags 7 messages on receipts (limit 6)');
    expect(reader.asked.at(-1)).toBeNull();
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReplicaPresence, type LocalRun } from '../../src/daemon/replica-presence.js';
import { DetectorEventBus } from '../../src/observability/events.js';
import { silentLogger } from '../../src/logger.js';
import { MemoryReplicaBoard } from '../../src/state/memory-replica-board.js';
import type { Permits } from '../../src/state/types.js';
import { waitFor } from '../helpers/services.js';

class MemoryPermits implements Permits {
  readonly granted = new Set<string>();
  grant(key: string): Promise<void> {
    this.granted.add(key);
    return Promise.resolve();
  }
  take(key: string): Promise<boolean> {
    return Promise.resolve(this.granted.delete(key));
  }
}

function replicas(role: 'leader' | 'follower', run: () => LocalRun | undefined, shared = { board: new MemoryReplicaBoard(), permits: new MemoryPermits() }, lagGateEnabled = true) {
  const events = new DetectorEventBus();
  const logger = silentLogger();
  const presence = new ReplicaPresence({ ...shared, keyPrefix: 'p:', version: '1.2.3', rateLimit: 3, lagGateEnabled, role: () => role, localRun: run, events, logger });
  return { presence, events, shared, logger };
}

const runOf = (cancel: (reason: string) => void, progress: Partial<LocalRun> = {}): LocalRun => ({ runId: 'run-1', trigger: 'admin', startedAt: new Date(), enqueued: 0, queued: 100, elapsedMs: 0, cancel, ...progress });

describe('ReplicaPresence', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a follower sees the leader\'s run from its start, then its progress, and a cancel it asks for reaches the leader before the first batch', async () => {
    let cancelled: string | undefined;
    let local: LocalRun | undefined = runOf((reason) => (cancelled = reason));
    const leader = replicas('leader', () => local);
    const follower = replicas('follower', () => undefined, leader.shared);
    leader.presence.start();
    follower.presence.start();
    await waitFor(async () => (await follower.presence.replicas()).length === 2, 'both heartbeats');
    expect((await follower.presence.replicas()).map((entry) => entry.role).sort()).toEqual(['follower', 'leader']);

    leader.presence.runStarted();
    await waitFor(async () => (await follower.presence.currentRun()) !== null, 'the run on the board');
    // Nothing sent yet: the ETA is the rate limit's (100 users at 3/s).
    expect(await follower.presence.currentRun()).toMatchObject({ replicaId: leader.presence.replicaId, runId: 'run-1', enqueued: 0, rate: 0, etaSeconds: 34 });
    expect(await follower.presence.askLeaderToCancel()).toBe(true);
    await waitFor(() => cancelled !== undefined, 'the leader to cancel');
    expect(cancelled).toContain('another replica');

    // Measured: 40 users in 4 s is 10/s, so the 60 left take 6 s.
    local = { ...local, enqueued: 40, elapsedMs: 4000 };
    leader.events.emit('run:progress', { runId: 'run-1', strategy: 'polling', enqueued: 40, queued: 100, elapsedMs: 4000 });
    await waitFor(async () => (await follower.presence.currentRun())?.enqueued === 40, 'the progress on the board');
    expect(await follower.presence.currentRun()).toMatchObject({ rate: 10, etaSeconds: 6 });

    local = undefined;
    leader.events.emit('run:finished', {} as never);
    await waitFor(async () => (await follower.presence.currentRun()) === null, 'the run off the board');
    expect(await follower.presence.askLeaderToCancel()).toBe(false);
    await leader.presence.stop();
    await follower.presence.stop();
    expect(await leader.shared.board.replicas()).toEqual([]);
    expect(leader.events.listenerCount('run:progress') + leader.events.listenerCount('safety:lag')).toBe(0);
  });

  it('keeps the lag gate\'s last reading for every replica; a replica started with the gate off removes it', async () => {
    const { presence, events, shared } = replicas('leader', () => undefined);
    expect(await presence.lagReading()).toBeNull();
    events.emit('safety:lag', [{ group: 'g', topic: 't', lag: 12, partitions: [{ partition: 0, lag: 12, behind: true }] }]);
    await waitFor(async () => (await presence.lagReading()) !== null, 'the reading');
    expect(await presence.lagReading()).toMatchObject({ replicaId: presence.replicaId, groups: [{ group: 'g', topic: 't', lag: 12, behind: true }] });

    const restarted = replicas('leader', () => undefined, shared, false);
    restarted.presence.start();
    await waitFor(async () => (await restarted.presence.lagReading()) === null, 'the old reading removed');
    await restarted.presence.stop();
  });

  it('a failed write is logged once, and the next heartbeat writes again; a board that hangs gets no pile of writes', async () => {
    vi.useFakeTimers();
    const board = new MemoryReplicaBoard();
    const pending: Array<() => void> = [];
    let calls = 0;
    board.announce = () => {
      calls++;
      if (calls === 1) return Promise.reject(new Error('valkey down'));
      return new Promise<void>((resolve) => pending.push(resolve));
    };
    const { presence, logger } = replicas('leader', () => undefined, { board, permits: new MemoryPermits() });
    const warn = vi.spyOn(logger, 'warn');
    presence.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(warn).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(2); // retried at the next heartbeat; this one hangs
    await vi.advanceTimersByTimeAsync(30_000);
    expect(calls).toBe(2); // six heartbeats skipped while it hangs
    for (const resolve of pending.splice(0)) resolve();
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(3);
    for (const resolve of pending.splice(0)) resolve();
    await presence.stop();
    expect(warn).toHaveBeenCalledTimes(1);
  });
});

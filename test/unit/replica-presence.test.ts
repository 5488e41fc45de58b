import { describe, expect, it } from 'vitest';
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

function replicas(role: 'leader' | 'follower', run: () => LocalRun | undefined, shared = { board: new MemoryReplicaBoard(), permits: new MemoryPermits() }) {
  const events = new DetectorEventBus();
  const presence = new ReplicaPresence({ ...shared, keyPrefix: 'p:', version: '1.2.3', rateLimit: 10, role: () => role, localRun: run, events, logger: silentLogger() });
  return { presence, events, shared };
}

describe('ReplicaPresence', () => {
  it('a follower sees the leader\'s run as the leader posts it, and a cancel it asks for reaches the leader', async () => {
    let cancelled: string | undefined;
    let local: LocalRun | undefined = { runId: 'run-1', trigger: 'admin', startedAt: new Date(Date.now() - 10_000), enqueued: 0, queued: 100, elapsedMs: 0, cancel: (reason) => (cancelled = reason) };
    const leader = replicas('leader', () => local);
    const follower = replicas('follower', () => undefined, leader.shared);
    leader.presence.start();
    follower.presence.start();
    await waitFor(async () => (await follower.presence.replicas()).length === 2, 'both heartbeats');
    expect((await follower.presence.replicas()).map((entry) => entry.role).sort()).toEqual(['follower', 'leader']);

    local = { ...local, enqueued: 40, elapsedMs: 4000 };
    leader.events.emit('run:progress', { runId: 'run-1', strategy: 'polling', enqueued: 40, queued: 100, elapsedMs: 4000 });
    await waitFor(async () => (await follower.presence.currentRun())?.enqueued === 40, 'the progress on the board');
    expect(await follower.presence.currentRun()).toMatchObject({ replicaId: leader.presence.replicaId, runId: 'run-1', queued: 100, rate: 10, etaSeconds: 6 });

    expect(await follower.presence.askLeaderToCancel()).toBe(true);
    await waitFor(() => cancelled !== undefined, 'the leader to cancel');
    expect(cancelled).toContain('another replica');

    local = undefined;
    leader.events.emit('run:finished', {} as never);
    await waitFor(async () => (await follower.presence.currentRun()) === null, 'the run off the board');
    expect(await follower.presence.askLeaderToCancel()).toBe(false);
    await leader.presence.stop();
    await follower.presence.stop();
    expect(await leader.shared.board.replicas()).toEqual([]);
  });

  it('keeps the lag gate\'s last reading for every replica', async () => {
    const { presence, events } = replicas('leader', () => undefined);
    expect(await presence.lagReading()).toBeNull();
    events.emit('safety:lag', [{ group: 'g', topic: 't', lag: 12, partitions: [{ partition: 0, lag: 12, behind: true }] }]);
    await waitFor(async () => (await presence.lagReading()) !== null, 'the reading');
    expect(await presence.lagReading()).toMatchObject({ replicaId: presence.replicaId, groups: [{ group: 'g', topic: 't', lag: 12, behind: true }] });
  });

  it('a board that cannot be written is logged, never thrown: this replica still lists itself', async () => {
    const board = new MemoryReplicaBoard();
    board.announce = () => Promise.reject(new Error('valkey down'));
    board.replicas = () => Promise.resolve([]);
    const { presence } = replicas('leader', () => undefined, { board, permits: new MemoryPermits() });
    presence.start();
    expect((await presence.replicas()).map((entry) => entry.replicaId)).toEqual([presence.replicaId]);
    await presence.stop();
  });
});

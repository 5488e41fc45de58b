import type { ReplicaBoard } from './types.js';

/**
 * The file store's board: file-backed state serves one process, which is the only replica, so
 * its board lives in memory (nothing to share, nothing to keep across restarts).
 */
export class MemoryReplicaBoard implements ReplicaBoard {
  private readonly heartbeats = new Map<string, { expiresAt: number; entry: string }>();
  private readonly notes = new Map<string, { expiresAt: number; entry: string }>();

  announce(replicaId: string, entry: string, ttlMs: number): Promise<void> {
    this.heartbeats.set(replicaId, { expiresAt: Date.now() + ttlMs, entry });
    return Promise.resolve();
  }

  replicas(): Promise<string[]> {
    return Promise.resolve(live(this.heartbeats).map(([, entry]) => entry));
  }

  withdraw(replicaId: string): Promise<void> {
    this.heartbeats.delete(replicaId);
    return Promise.resolve();
  }

  post(name: string, entry: string | null, ttlMs: number | null): Promise<void> {
    if (entry === null) this.notes.delete(name);
    else this.notes.set(name, { expiresAt: ttlMs === null ? Number.POSITIVE_INFINITY : Date.now() + ttlMs, entry });
    return Promise.resolve();
  }

  read(name: string): Promise<string | null> {
    return Promise.resolve(live(this.notes).find(([key]) => key === name)?.[1] ?? null);
  }
}

function live(entries: Map<string, { expiresAt: number; entry: string }>): Array<[string, string]> {
  const now = Date.now();
  for (const [key, { expiresAt }] of entries) if (expiresAt <= now) entries.delete(key);
  return [...entries].map(([key, { entry }]) => [key, entry]);
}

import { isNewer, versionTag, type CommitResult, type FeedStore, type LiveFlagState, type LiveStateCommit, type RunTrigger } from './live-state.js';

interface FlagEntry {
  state: LiveFlagState | null;
  pending: Set<string>;
  trigger: RunTrigger | null;
  shadow: Map<string, number>;
}

/**
 * The feed's state in this process only: `watch kafka --dry-run` (which must change nothing
 * shared) and unit tests. Same semantics as ValkeyFeedStore.
 */
export class MemoryFeedStore implements FeedStore {
  readonly description = 'memory (this process only)';
  private readonly flags = new Map<string, FlagEntry>();

  read(flag: string): Promise<LiveFlagState | null> {
    return Promise.resolve(structuredClone(this.entry(flag).state));
  }

  commit(flag: string, { state, base, pending, trigger }: LiveStateCommit): Promise<CommitResult> {
    const entry = this.entry(flag);
    const stored = entry.state;
    if (stored && !isNewer(state.version, stored.version)) return Promise.resolve('stale');
    if ((stored ? versionTag(stored.version) : '') !== (base ? versionTag(base) : '')) return Promise.resolve('conflict');
    entry.state = structuredClone(state);
    for (const user of pending) entry.pending.add(user);
    if (trigger) entry.trigger = trigger;
    return Promise.resolve('applied');
  }

  peekPending(flag: string, max: number): Promise<string[]> {
    return Promise.resolve([...this.entry(flag).pending].slice(0, max));
  }

  settle(flag: string, users: readonly string[]): Promise<void> {
    const { pending } = this.entry(flag);
    for (const user of users) pending.delete(user);
    return Promise.resolve();
  }

  pendingSize(flag: string): Promise<number> {
    return Promise.resolve(this.entry(flag).pending.size);
  }

  takeTrigger(flag: string): Promise<RunTrigger | null> {
    const entry = this.entry(flag);
    const { trigger } = entry;
    entry.trigger = null;
    return Promise.resolve(trigger);
  }

  peekTrigger(flag: string): Promise<RunTrigger | null> {
    return Promise.resolve(this.entry(flag).trigger);
  }

  restoreTrigger(flag: string, trigger: RunTrigger): Promise<void> {
    const entry = this.entry(flag);
    entry.trigger ??= trigger;
    return Promise.resolve();
  }

  recordShadow(flag: string, users: readonly string[], atMs: number): Promise<void> {
    const { shadow } = this.entry(flag);
    for (const user of users) if (!shadow.has(user)) shadow.set(user, atMs);
    return Promise.resolve();
  }

  takeShadow(flag: string, users: readonly string[]): Promise<Array<number | null>> {
    const { shadow } = this.entry(flag);
    // All read, then all removed (as ValkeyFeedStore's HMGET then HDEL): a user named twice gets its time twice.
    const taken = users.map((user) => shadow.get(user) ?? null);
    for (const user of users) shadow.delete(user);
    return Promise.resolve(taken);
  }

  takeShadowBefore(flag: string, beforeMs: number): Promise<Array<{ user: string; atMs: number }>> {
    const { shadow } = this.entry(flag);
    const taken = [...shadow].filter(([, atMs]) => atMs < beforeMs).map(([user, atMs]) => ({ user, atMs }));
    for (const { user } of taken) shadow.delete(user);
    return Promise.resolve(taken);
  }

  shadowSize(flag: string): Promise<number> {
    return Promise.resolve(this.entry(flag).shadow.size);
  }

  private entry(flag: string): FlagEntry {
    let entry = this.flags.get(flag);
    if (!entry) {
      entry = { state: null, pending: new Set(), trigger: null, shadow: new Map() };
      this.flags.set(flag, entry);
    }
    return entry;
  }
}

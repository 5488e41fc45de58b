import type { CommitOutcome, FeedStore, LiveFlagState, LiveStateCommit, ObjectMark, RunTrigger } from './live-state.js';

interface FlagEntry {
  state: LiveFlagState | null;
  users: Set<string>;
  removed: Set<string>;
  pending: Set<string>;
  trigger: RunTrigger | null;
  shadow: Map<string, number>;
  stages: Map<string, Set<string>>;
  objects: Map<string, ObjectMark>;
  tokens: Map<string, string>;
  tokenBase: string;
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

  commit(flag: string, { state, base, users, trigger, maxRemoved }: LiveStateCommit): Promise<CommitOutcome> {
    const entry = this.entry(flag);
    if ((entry.state?.revision ?? 0) !== base) return Promise.resolve({ result: 'conflict' });
    if (users.kind === 'replace-staged' && (entry.stages.get(users.stage)?.size ?? 0) !== users.count) return Promise.resolve({ result: 'stage-lost' });
    let added = 0;
    let removed = 0;
    if (users.kind === 'replace' || users.kind === 'replace-staged') {
      const incoming = users.kind === 'replace' ? new Set(users.users) : (entry.stages.get(users.stage) ?? new Set<string>());
      if (users.kind === 'replace-staged') entry.stages.delete(users.stage);
      const fresh = [...incoming].filter((user) => !entry.users.has(user));
      const gone = [...entry.users].filter((user) => !incoming.has(user));
      if (maxRemoved !== null && maxRemoved >= 0 && gone.length > maxRemoved) return Promise.resolve({ result: 'held', added: fresh.length, removed: gone.length });
      for (const user of [...fresh, ...gone]) entry.pending.add(user);
      entry.tokens.clear();
      entry.tokenBase = String(base + 1);
      entry.users = incoming;
      entry.removed.clear();
      [added, removed] = [fresh.length, gone.length];
    } else if (users.kind === 'add') {
      for (const user of users.users) {
        entry.users.add(user);
        entry.removed.delete(user);
        entry.pending.add(user);
        entry.tokens.set(user, String(base + 1));
      }
      added = users.users.length;
    } else if (users.kind === 'remove') {
      for (const user of users.users) {
        entry.users.delete(user);
        if (users.remember) entry.removed.add(user);
        entry.pending.add(user);
        entry.tokens.set(user, String(base + 1));
      }
      removed = users.users.length;
    }
    entry.state = structuredClone(state);
    entry.trigger ??= trigger; // an owed run already set keeps its time
    return Promise.resolve({ result: 'applied', added, removed });
  }

  membership(flag: string, users: readonly string[]): Promise<{ explicit: boolean[]; removed: boolean[] }> {
    const entry = this.entry(flag);
    return Promise.resolve({ explicit: users.map((user) => entry.users.has(user)), removed: users.map((user) => entry.removed.has(user)) });
  }

  explicitCount(flag: string): Promise<number> {
    return Promise.resolve(this.entry(flag).users.size);
  }

  stage(flag: string, stage: string, users: readonly string[]): Promise<number> {
    const { stages } = this.entry(flag);
    const staged = stages.get(stage) ?? new Set<string>();
    for (const user of users) staged.add(user);
    if (staged.size > 0) stages.set(stage, staged);
    return Promise.resolve(staged.size);
  }

  dropStage(flag: string, stage: string): Promise<void> {
    this.entry(flag).stages.delete(stage);
    return Promise.resolve();
  }

  objectMarks(flag: string): Promise<Map<string, ObjectMark>> {
    return Promise.resolve(new Map(this.entry(flag).objects));
  }

  markObject(flag: string, key: string, mark: ObjectMark): Promise<void> {
    this.entry(flag).objects.set(key, { ...mark });
    return Promise.resolve();
  }

  unmarkObject(flag: string, key: string): Promise<void> {
    this.entry(flag).objects.delete(key);
    return Promise.resolve();
  }

  peekPending(flag: string, max: number): Promise<string[]> {
    return Promise.resolve([...this.entry(flag).pending].slice(0, max));
  }

  pendingTokens(flag: string, users: readonly string[]): Promise<string[]> {
    const entry = this.entry(flag);
    return Promise.resolve(users.map((user) => entry.tokens.get(user) ?? entry.tokenBase));
  }

  settle(flag: string, users: readonly string[], tokens?: readonly string[]): Promise<number> {
    const entry = this.entry(flag);
    let settled = 0;
    users.forEach((user, i) => {
      if (tokens && (entry.tokens.get(user) ?? entry.tokenBase) !== tokens[i]) return;
      entry.pending.delete(user);
      entry.tokens.delete(user);
      settled += 1;
    });
    return Promise.resolve(settled);
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
    // Read everything, then remove, as the Valkey script does (a user named twice answers twice).
    const times = users.map((user) => shadow.get(user) ?? null);
    for (const user of users) shadow.delete(user);
    return Promise.resolve(times);
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
      entry = { state: null, users: new Set(), removed: new Set(), pending: new Set(), trigger: null, shadow: new Map(), stages: new Map(), objects: new Map(), tokens: new Map(), tokenBase: '0' };
      this.flags.set(flag, entry);
    }
    return entry;
  }
}

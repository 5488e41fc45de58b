import { FfError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DetectorEventBus } from '../observability/events.js';
import type { FeedChange, FeedChangeSink, FeedPosition } from './changes.js';
import { isStale, type FeedStore, type LiveFlagState, type LiveVersion } from './live-state.js';
import { planChange } from './plan-change.js';

/** A commit that keeps meeting another writer's newer base gives up (the feed retries the change). */
const MAX_CONFLICTS = 20;

export interface AppliedChange {
  change: FeedChange;
  /** stale: a replay or a redelivery (already applied), or a snapshot older than the last. */
  outcome: 'applied' | 'stale' | 'held';
  /** Explicit users added and removed (each one pending). */
  added: number;
  removed: number;
  trigger: string | null;
  rebucketing: boolean;
}

/**
 * The consumer of every feed (topic and bucket): turns each change into the live state, the
 * pending users and the re-run flag, committed together (FeedStore.commit), so the feed may then
 * store its position — a crash before that replays the change, which the version makes harmless.
 * It sends nothing: the drain (strategies/feed-drain.ts) does, on the leader.
 */
export class LiveStateSink implements FeedChangeSink {
  constructor(
    private readonly store: FeedStore,
    private readonly logger: Logger,
    private readonly events: DetectorEventBus,
    /** Called after each applied change that left users pending or owes a run (wakes the drain). */
    private readonly onApplied: (applied: AppliedChange) => void = () => undefined,
    private readonly clock: () => Date = () => new Date(),
    /**
     * For snapshots that set no maxRemoved of their own (the topic's): one removing more explicit
     * users than the forget guard allows is held — the last state stays — unless an operator
     * released the guard (the permit is used up).
     */
    private readonly guard?: { maxFraction: number; floor: number; released: () => Promise<boolean> },
  ) {}

  /** The topic's consumer group keeps the positions. */
  position(): Promise<FeedPosition | null> {
    return Promise.resolve(null);
  }

  async apply(change: FeedChange): Promise<void> {
    for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
      const previous = await this.store.read(change.flag);
      const version: LiveVersion = change.version ? { ...change.version } : arrival(this.clock(), previous);
      if (isStale(previous, version, change.type === 'snapshot')) {
        this.done({ change, outcome: 'stale', added: 0, removed: 0, trigger: null, rebucketing: false });
        return;
      }
      const plan = planChange(previous, change, version, this.clock());
      const maxRemoved = change.type !== 'snapshot' ? null : change.maxRemoved !== undefined ? change.maxRemoved : await this.guardLimit(change.flag);
      const commit = { state: plan.state, base: previous?.revision ?? 0, users: plan.users, trigger: plan.trigger, maxRemoved };
      let outcome = await this.store.commit(change.flag, commit);
      if (outcome.result === 'held' && change.type === 'snapshot' && change.maxRemoved === undefined && this.guard) {
        if (await this.guard.released()) outcome = await this.store.commit(change.flag, { ...commit, maxRemoved: null });
        else if (!change.stage) {
          // A topic's snapshot is not read again once its offset is committed: its removals are held
          // (the last state keeps those users), its additions still apply.
          const adds = planChange(previous, { type: 'add', flag: change.flag, position: change.position, users: change.users, version }, version, this.clock());
          const kept = await this.store.commit(change.flag, { state: adds.state, base: previous?.revision ?? 0, users: adds.users, trigger: adds.trigger, maxRemoved: null });
          if (kept.result === 'conflict') continue;
          if (kept.result === 'applied') outcome = { result: 'held', added: kept.added, removed: outcome.removed };
        }
      }
      if (outcome.result === 'conflict') continue;
      if (outcome.result === 'stage-lost') throw new FfError('STATE_UNAVAILABLE', `the staged users of a ${change.type} for ${change.flag} are incomplete (expired or evicted): not applied`, { retryable: true });
      const { result, added, removed } = outcome;
      const applied = result === 'applied';
      this.done({ change, outcome: result, added, removed, trigger: applied ? (plan.trigger?.reason ?? null) : null, rebucketing: applied && (plan.trigger?.rebucketing ?? false) });
      return;
    }
    throw new FfError('STATE_UNAVAILABLE', `the live state of ${change.flag} kept changing under ${MAX_CONFLICTS} attempts to apply a ${change.type}`, { retryable: true });
  }

  private async guardLimit(flag: string): Promise<number | null> {
    if (!this.guard) return null;
    return Math.max(this.guard.floor, Math.floor((await this.store.explicitCount(flag)) * this.guard.maxFraction));
  }

  private done(applied: AppliedChange): void {
    this.report(applied);
    this.onApplied(applied);
  }

  private report(applied: AppliedChange): void {
    const { change, outcome } = applied;
    this.events.emit('feed:applied', { flag: change.flag, type: change.type, outcome, added: applied.added, removed: applied.removed, rebucketing: applied.rebucketing });
    if (outcome === 'stale') {
      this.logger.debug({ flag: change.flag, type: change.type, version: change.version }, 'feed change applied before (a replay or a redelivery), or a snapshot older than the last: skipped');
      return;
    }
    if (outcome === 'held') {
      this.logger.warn({ flag: change.flag, type: change.type, version: change.version, added: applied.added, removed: applied.removed }, 'feed snapshot held: it would remove too many explicit users at once; the last state stays');
      return;
    }
    const fields = { flag: change.flag, type: change.type, version: change.version, added: applied.added, removed: applied.removed };
    if (applied.rebucketing) this.logger.warn({ ...fields, trigger: applied.trigger }, `rollout re-bucketed: ${applied.trigger ?? ''}; a full run follows`);
    else if (applied.trigger) this.logger.info({ ...fields, trigger: applied.trigger }, `full run owed: ${applied.trigger}`);
    else this.logger.debug(fields, 'feed change applied');
  }
}

/**
 * The version of a change that carries none: its arrival, so after whatever is stored. The clock
 * alone would make a second change within the same millisecond (or behind a stored version from
 * a clock ahead of ours) look stale, and drop it.
 */
function arrival(now: Date, previous: LiveFlagState | null): LiveVersion {
  const last = previous?.applied[String(ARRIVAL_PARTITION)] ?? 0;
  const snapshot = previous?.snapshotVersion;
  // At the same time, a snapshot of a real partition (≥ 0) orders after partition -1: step past it.
  const afterSnapshot = snapshot ? snapshot.at + (snapshot.partition > ARRIVAL_PARTITION ? 1 : 0) : 0;
  const at = Math.max(now.getTime(), afterSnapshot, previous?.version.at ?? 0);
  return { at, partition: ARRIVAL_PARTITION, offset: last + 1 };
}

/** The partition of changes that carry no version: numbered in arrival order. */
const ARRIVAL_PARTITION = -1;

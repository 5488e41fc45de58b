import { FfError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DetectorEventBus } from '../observability/events.js';
import type { FeedChange, FeedChangeSink, FeedPosition } from './changes.js';
import { isNewer, type FeedStore, type LiveFlagState, type LiveVersion } from './live-state.js';
import { planChange } from './plan-change.js';

/** A commit that keeps meeting another writer's newer base gives up (the feed retries the change). */
const MAX_CONFLICTS = 20;

export interface AppliedChange {
  change: FeedChange;
  outcome: 'applied' | 'stale';
  added: number;
  removed: number;
  pending: readonly string[];
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
  ) {}

  /** The topic's consumer group keeps the positions. */
  position(): Promise<FeedPosition | null> {
    return Promise.resolve(null);
  }

  async apply(change: FeedChange): Promise<void> {
    for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
      const previous = await this.store.read(change.flag);
      const version: LiveVersion = change.version ? { ...change.version } : arrival(this.clock(), previous);
      const plan = planChange(previous, change, version, this.clock());
      const result = await this.store.commit(change.flag, { state: plan.state, base: previous?.version ?? null, pending: plan.pending, trigger: plan.trigger });
      if (result === 'conflict') continue;
      const applied: AppliedChange = {
        change,
        outcome: result,
        added: result === 'applied' ? plan.added : 0,
        removed: result === 'applied' ? plan.removed : 0,
        pending: result === 'applied' ? plan.pending : [],
        trigger: result === 'applied' ? (plan.trigger?.reason ?? null) : null,
        rebucketing: result === 'applied' && (plan.trigger?.rebucketing ?? false),
      };
      this.report(applied);
      this.onApplied(applied);
      return;
    }
    throw new FfError('STATE_UNAVAILABLE', `the live state of ${change.flag} kept changing under ${MAX_CONFLICTS} attempts to apply a ${change.type}`, { retryable: true });
  }

  private report(applied: AppliedChange): void {
    const { change, outcome } = applied;
    this.events.emit('feed:applied', { flag: change.flag, type: change.type, outcome, added: applied.added, removed: applied.removed, rebucketing: applied.rebucketing });
    if (outcome === 'stale') {
      this.logger.debug({ flag: change.flag, type: change.type, version: change.version }, 'feed change older than the live state: skipped (a replay or another partition behind)');
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
  const clock: LiveVersion = { at: now.getTime(), partition: 0, offset: 0 };
  return previous && !isNewer(clock, previous.version) ? { ...previous.version, offset: previous.version.offset + 1 } : clock;
}

import { createRolloutTest, type RolloutTest } from '../flags/bucketing.js';
import { ReloadingRulesChecker } from '../flags/reloading-checker.js';
import type { FlagSnapshot } from '../flags/snapshot.js';
import type { FlagChecker, FlagResult } from '../flags/types.js';
import type { FeedStore, LiveFlagState } from './live-state.js';

/**
 * The flag as the feed last saw it, over the rules file: the live switch, percentage and explicit
 * users replace the file's (which may be hours old); exclusions, segments, bucketing and rules
 * the topic does not carry still come from the file. Before the feed saw a whole snapshot, its
 * adds and removes amend the file's explicit users instead of replacing them. Explicit users are
 * looked up in the feed store, a batch at a time.
 *
 * With the http checker the flag service answers live already: it is used as it is. So is the
 * rules checker when there is no live state yet.
 */
export function liveStateChecker(base: FlagChecker, state: LiveFlagState | null, store: FeedStore): FlagChecker {
  if (!state || !(base instanceof ReloadingRulesChecker) || !base.snapshot) return base;
  return new LiveOverRules(base.snapshot, state, store);
}

class LiveOverRules implements FlagChecker {
  readonly description: string;
  private readonly enabled: boolean;
  private readonly inRollout: RolloutTest;

  constructor(
    private readonly rules: FlagSnapshot,
    private readonly state: LiveFlagState,
    private readonly store: FeedStore,
  ) {
    this.enabled = state.enabled ?? rules.enabled;
    const percentage = state.percentage ?? rules.percentage;
    this.inRollout = createRolloutTest(rules.flag, percentage, rules.bucketing);
    const { at, partition, offset } = state.version;
    this.description = `live state of ${state.flag} (revision ${state.revision}, message of ${new Date(at).toISOString()}, partition ${partition}, offset ${offset}: ${this.enabled ? 'on' : 'off'}, ${percentage}%${state.complete ? '' : ', explicit users amending the file'}) over ${rules.describe()}`;
  }

  async check(userIds: readonly string[]): Promise<FlagResult[]> {
    if (!this.enabled) return userIds.map(() => 'disabled');
    const { explicit, removed } = await this.store.membership(this.state.flag, userIds);
    return userIds.map((id, i) => {
      if (this.rules.isExcluded(id)) return 'disabled';
      const isExplicit = this.state.complete ? explicit[i] === true : explicit[i] === true || (this.rules.isExplicit(id) && removed[i] !== true);
      if (isExplicit || this.rules.inSegment(id) || this.inRollout(id)) return 'enabled';
      return this.rules.unevaluableRules.length > 0 ? 'unevaluable' : 'disabled';
    });
  }
}

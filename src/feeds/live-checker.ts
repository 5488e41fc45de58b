import { createRolloutTest, type RolloutTest } from '../flags/bucketing.js';
import { ReloadingRulesChecker } from '../flags/reloading-checker.js';
import type { FlagSnapshot } from '../flags/snapshot.js';
import type { FlagChecker, FlagResult } from '../flags/types.js';
import type { LiveFlagState } from './live-state.js';

/**
 * The flag as the feed last saw it, over the rules file: the live switch, percentage and explicit
 * users replace the file's (which may be hours old); exclusions, segments, bucketing and rules
 * the topic does not carry still come from the file. Before the feed saw a whole snapshot, its
 * adds and removes amend the file's explicit users instead of replacing them.
 *
 * With the http checker the flag service answers live already: it is used as it is. So is the
 * rules checker when there is no live state yet.
 */
export function liveStateChecker(base: FlagChecker, state: LiveFlagState | null): FlagChecker {
  if (!state || !(base instanceof ReloadingRulesChecker) || !base.snapshot) return base;
  return new LiveOverRules(base.snapshot, state);
}

class LiveOverRules implements FlagChecker {
  readonly description: string;
  private readonly enabled: boolean;
  private readonly users: ReadonlySet<string>;
  private readonly removed: ReadonlySet<string>;
  private readonly inRollout: RolloutTest;

  constructor(
    private readonly rules: FlagSnapshot,
    private readonly state: LiveFlagState,
  ) {
    this.enabled = state.enabled ?? rules.enabled;
    this.users = new Set(state.users);
    this.removed = new Set(state.removed);
    const percentage = state.percentage ?? rules.percentage;
    this.inRollout = createRolloutTest(rules.flag, percentage, rules.bucketing);
    const { at, partition, offset } = state.version;
    this.description = `live state of ${state.flag} (message of ${new Date(at).toISOString()}, partition ${partition}, offset ${offset}: ${this.enabled ? 'on' : 'off'}, ${state.users.length} explicit users, ${percentage}%) over ${rules.describe()}`;
  }

  check(userIds: readonly string[]): Promise<FlagResult[]> {
    return Promise.resolve(userIds.map((id) => this.evaluate(id)));
  }

  private evaluate(userId: string): FlagResult {
    if (!this.enabled || this.rules.isExcluded(userId)) return 'disabled';
    const explicit = this.state.complete ? this.users.has(userId) : this.users.has(userId) || (this.rules.isExplicit(userId) && !this.removed.has(userId));
    if (explicit || this.rules.inSegment(userId) || this.inRollout(userId)) return 'enabled';
    return this.rules.unevaluableRules.length > 0 ? 'unevaluable' : 'disabled';
  }
}

import { createRolloutTest, type BucketingConfig, type RolloutTest } from './bucketing.js';
import type { FlagResult } from './types.js';

export interface FlagSnapshotInput {
  flag: string;
  enabled: boolean;
  users: Iterable<string>;
  excludedUsers: Iterable<string>;
  segments: ReadonlyMap<string, Iterable<string>>;
  percentage: number;
  bucketing: BucketingConfig;
  /** Rules present in the source that cannot be decided offline (e.g. "groups: admins"). */
  unevaluableRules: readonly string[];
  /** Every file or object the snapshot was read from (the rules and each referenced list). */
  sources?: readonly string[];
}

/**
 * One flag's rules, evaluated in-process with set lookups. Precedence: switched off → disabled;
 * excluded → disabled; explicit user or segment member → enabled; else the percentage rollout;
 * a user the rollout leaves out is unevaluable when rules we cannot evaluate exist.
 */
export class FlagSnapshot {
  readonly flag: string;
  readonly enabled: boolean;
  readonly percentage: number;
  readonly bucketing: BucketingConfig;
  readonly unevaluableRules: readonly string[];
  readonly segmentSizes: ReadonlyMap<string, number>;
  readonly sources: readonly string[];
  // Explicit users and segment members apart: a live state (feeds/live-checker.ts) replaces the
  // first and keeps the second.
  private readonly explicit: ReadonlySet<string>;
  private readonly members = new Set<string>();
  private readonly excluded: ReadonlySet<string>;
  private readonly inRollout: RolloutTest;

  constructor(input: FlagSnapshotInput) {
    this.flag = input.flag;
    this.enabled = input.enabled;
    this.percentage = input.percentage;
    this.bucketing = input.bucketing;
    this.unevaluableRules = input.unevaluableRules;
    this.sources = input.sources ?? [];
    this.excluded = new Set(input.excludedUsers);
    this.explicit = new Set(input.users);
    const sizes = new Map<string, number>();
    for (const [name, members] of input.segments) {
      let count = 0;
      for (const id of members) {
        this.members.add(id);
        count++;
      }
      sizes.set(name, count);
    }
    this.segmentSizes = sizes;
    this.inRollout = createRolloutTest(input.flag, input.percentage, input.bucketing);
  }

  evaluate(userId: string): FlagResult {
    if (!this.enabled || this.isExcluded(userId)) return 'disabled';
    if (this.isExplicit(userId) || this.inSegment(userId) || this.inRollout(userId)) return 'enabled';
    return this.unevaluableRules.length > 0 ? 'unevaluable' : 'disabled';
  }

  isExcluded(userId: string): boolean {
    return this.excluded.size > 0 && this.excluded.has(userId);
  }

  isExplicit(userId: string): boolean {
    return this.explicit.size > 0 && this.explicit.has(userId);
  }

  inSegment(userId: string): boolean {
    return this.members.size > 0 && this.members.has(userId);
  }

  evaluateBatch(userIds: readonly string[]): FlagResult[] {
    const results = new Array<FlagResult>(userIds.length);
    for (let i = 0; i < userIds.length; i++) results[i] = this.evaluate(userIds[i] as string);
    return results;
  }

  describe(): string {
    const segments = [...this.segmentSizes].map(([name, size]) => `${name}(${size})`).join(', ') || 'none';
    // A user both explicit and in a segment is one allowed user.
    let allowed = this.members.size;
    for (const id of this.explicit) if (!this.members.has(id)) allowed++;
    return `flag ${this.flag}: ${this.enabled ? 'on' : 'off'}, ${allowed} allowed users incl. segments [${segments}], ${this.excluded.size} excluded, ${this.percentage}% by ${this.bucketing.algorithm}`;
  }
}

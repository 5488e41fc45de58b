import type { FlagSnapshot } from './snapshot.js';
import type { FlagChecker, FlagResult } from './types.js';

/** The embedded evaluator: a loaded FlagSnapshot, evaluated in-process. */
export class RulesFlagChecker implements FlagChecker {
  constructor(private readonly snapshot: FlagSnapshot) {}

  get description(): string {
    return this.snapshot.describe();
  }

  check(userIds: readonly string[]): Promise<FlagResult[]> {
    return Promise.resolve(this.snapshot.evaluateBatch(userIds));
  }
}

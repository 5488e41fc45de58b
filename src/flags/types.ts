export type FlagResult = 'enabled' | 'disabled' | 'unevaluable';

/** Answers whether the target flag is on for each user, in order; one call per batch. */
export interface FlagChecker {
  readonly description: string;
  check(userIds: readonly string[]): Promise<FlagResult[]>;
}

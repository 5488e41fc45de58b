import { createRequire } from 'node:module';
import type { z } from 'zod';
import type * as RedosDetector from 'redos-detector';

/** Matches an ID as the seed's systems write them; each character one way only (no backtracking). */
export const DEFAULT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$';

/** Valid, and safe to run per candidate: see idPatternProblem. */
export function checkIdPattern(pattern: string, context: z.RefinementCtx): void {
  const problem = idPatternProblem(pattern);
  if (problem) context.addIssue({ code: 'custom', message: problem });
}

/**
 * How long the ReDoS check may take. Patterns an ID needs take a few milliseconds; one it cannot
 * decide in this time is refused (fail closed), which only very ambiguous patterns reach.
 */
const REDOS_CHECK_TIMEOUT_MS = 1000;

/** The check runs once per pattern per process, however often the config is parsed. */
const patternProblems = new Map<string, string | null>();

/**
 * Why `pattern` cannot be the idPattern, or null. The built-in RegExp backtracks: `^(a+)+$`
 * against 35 characters runs for minutes, blocking the event loop (and so SIGTERM) — one bad line
 * would stall a run. redos-detector explores every way the pattern can match a prefix; a pattern
 * with more than a bounded number (its score) can backtrack super-linearly and is refused.
 */
export function idPatternProblem(pattern: string): string | null {
  let problem = patternProblems.get(pattern);
  if (problem !== undefined) return problem;
  problem = findIdPatternProblem(pattern);
  patternProblems.set(pattern, problem);
  return problem;
}

// Loaded only for a pattern other than the default: it adds ≈ 7 MB to every process's RSS.
const require = createRequire(import.meta.url);

function findIdPatternProblem(pattern: string): string | null {
  try {
    new RegExp(pattern);
  } catch {
    return 'is not a valid regular expression';
  }
  if (pattern === DEFAULT_ID_PATTERN) return null; // shown safe by test/unit/id-pattern.test.ts
  const { isSafePattern } = require('redos-detector') as typeof RedosDetector;
  let verdict: ReturnType<typeof isSafePattern>;
  try {
    verdict = isSafePattern(pattern, { timeout: REDOS_CHECK_TIMEOUT_MS });
  } catch (error) {
    return `cannot be checked for catastrophic backtracking (${error instanceof Error ? error.message : String(error)}); use a simpler pattern`;
  }
  if (verdict.safe) return null;
  const why =
    verdict.error === 'timedOut' || verdict.error === 'hitMaxSteps'
      ? `it could not be shown safe within the check's limits (${REDOS_CHECK_TIMEOUT_MS} ms)`
      : 'part of it can match the same text in many ways (a nested or overlapping repetition such as (a+)+, (a|a)*, \\d+\\d+, or an unanchored [a-z]+x)';
  return `can backtrack catastrophically: ${why}, so one bad candidate line could stall a run for minutes. Use a pattern where each character can match in only one way, e.g. ${DEFAULT_ID_PATTERN}`;
}

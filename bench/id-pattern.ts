import { randomUUID } from 'node:crypto';
import { RE2JS } from 're2js';
import { isSafePattern } from 'redos-detector';
import { DEFAULT_ID_PATTERN } from '../src/config/schema.js';

export interface IdPatternBenchResult {
  candidates: number;
  /** `RegExp.test`, the engine the pipeline uses, on the default pattern. */
  regexpPerS: number;
  /** RE2JS (linear-time, pure JS) on the same pattern and IDs: the alternative that was not taken. */
  re2jsPerS: number;
  /** The ReDoS check done once at config load, for the default pattern (first call, cold). */
  checkDefaultMs: number;
  /** The same check refusing the issue's `^(a+)+$`. */
  checkRefusedMs: number;
  /** What that pattern costs the built-in engine on one non-matching line of `attackLength` characters. */
  attackLength: number;
  attackRegexpMs: number;
  /** …and RE2JS on the 35 characters. */
  attackRe2jsMs: number;
}

/**
 * docs/decisions.md, idPattern: catastrophic backtracking is refused at config load (redos-detector)
 * rather than every candidate being matched with a linear-time engine. This measures both sides:
 * the per-candidate cost of each engine on the default pattern (best of five passes over the same
 * IDs: user-style, UUIDs and 2 % invalid lines), and the one-off cost of the check.
 */
export function benchIdPattern(candidates = 500_000): IdPatternBenchResult {
  const ids = Array.from({ length: candidates }, (_, i) => (i % 50 === 0 ? `not a valid id ${i}!` : i % 2 === 0 ? `user-${String(i).padStart(8, '0')}` : randomUUID()));
  const regexp = new RegExp(DEFAULT_ID_PATTERN);
  const re2 = RE2JS.compile(DEFAULT_ID_PATTERN);
  const regexpMatches = countMatches(ids, (id) => regexp.test(id));
  const re2Matches = countMatches(ids, (id) => re2.matcher(id).find());
  if (regexpMatches.matched !== re2Matches.matched) throw new Error(`the engines disagree: ${regexpMatches.matched} vs ${re2Matches.matched} matches`);

  const checkDefaultMs = timed(() => isSafePattern(DEFAULT_ID_PATTERN, { timeout: 1000 }).safe, true);
  const checkRefusedMs = timed(() => isSafePattern('^(a+)+$', { timeout: 1000 }).safe, false);
  // 2^n: 24 characters take a fraction of a second; the 35 would take minutes.
  const attackLength = 24;
  const attackRegexpMs = timed(() => new RegExp('^(a+)+$').test(`${'a'.repeat(attackLength)}!`), false);
  const attackRe2jsMs = timed(() => RE2JS.compile('^(a+)+$').matcher(`${'a'.repeat(35)}!`).find(), false);
  return {
    candidates,
    regexpPerS: candidates / (regexpMatches.seconds || Number.EPSILON),
    re2jsPerS: candidates / (re2Matches.seconds || Number.EPSILON),
    checkDefaultMs,
    checkRefusedMs,
    attackLength,
    attackRegexpMs,
    attackRe2jsMs,
  };
}

/** The best of five passes (the first warms the JIT), and how many IDs matched. */
function countMatches(ids: readonly string[], test: (id: string) => boolean): { seconds: number; matched: number } {
  let best = Number.POSITIVE_INFINITY;
  let matched = 0;
  for (let pass = 0; pass < 5; pass++) {
    const started = performance.now();
    matched = 0;
    for (const id of ids) if (test(id)) matched++;
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return { seconds: best, matched };
}

/** Milliseconds one call takes; checks its answer so the work cannot be skipped or be wrong. */
function timed(work: () => boolean, expected: boolean): number {
  const started = performance.now();
  const answer = work();
  const elapsed = performance.now() - started;
  if (answer !== expected) throw new Error(`id-pattern bench: expected ${expected}, got ${answer}`);
  return elapsed;
}

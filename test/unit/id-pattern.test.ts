import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { isSafePattern } from 'redos-detector';
import { DEFAULT_ID_PATTERN, idPatternProblem } from '../../src/config/id-pattern.js';
import { ValidationError } from '../../src/errors.js';

/** The config error for `idPattern`, or undefined when the pattern is accepted. */
function refusal(idPattern: string): ValidationError | undefined {
  try {
    loadConfig({ env: {}, overrides: { idPattern } });
    return undefined;
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
}

describe('idPattern: patterns that backtrack catastrophically are refused at load', () => {
  it('refuses the issue\'s ^(a+)+$ with CONFIG_INVALID (exit 2), naming the field and why', () => {
    const error = refusal('^(a+)+$');
    expect(error?.code).toBe('CONFIG_INVALID');
    expect(error?.exitCode).toBe(2);
    expect(error?.problems).toHaveLength(1);
    expect(error?.problems[0]).toMatch(/^idPattern( \([^)]*\))?: can backtrack catastrophically: .*nested or overlapping repetition/);
    expect(error?.problems[0]).toContain(DEFAULT_ID_PATTERN); // says what to use instead
  });

  it.each([
    ['^(a|a)*$', 'overlapping alternatives, exponential'],
    ['^(a|aa)+$', 'overlapping alternatives, exponential'],
    ['^([a-z]+-?)+$', 'nested quantifier behind an optional separator'],
    ['^(\\w+\\s?)*$', 'the classic word-list pattern'],
    ['^\\d+\\d+$', 'quadratic: two adjacent repetitions of the same class'],
    ['[a-z]+!', 'quadratic: unanchored, tried from every start position'],
  ])('refuses %s (%s)', (pattern) => {
    expect(idPatternProblem(pattern)).toMatch(/^can backtrack catastrophically/);
  });

  it.each([DEFAULT_ID_PATTERN, '^[a-z0-9-]+$', '^user-\\d{1,10}$', '^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$', '^[a-z]+(-[a-z]+)*$', '^[\\w.]+@[\\w.]+$'])(
    'accepts %s, which matches each character one way only',
    (pattern) => {
      expect(idPatternProblem(pattern)).toBeNull();
      expect(loadConfig({ env: {}, overrides: { idPattern: pattern } }).idPattern).toBe(pattern);
    },
  );

  it('the default pattern, which the config accepts without loading the checker, is safe by the checker too', () => {
    expect(isSafePattern(DEFAULT_ID_PATTERN).safe).toBe(true);
  });

  it('still reports a pattern that is not a regular expression as such', () => {
    expect(refusal('([')?.problems).toEqual(['idPattern: is not a valid regular expression']);
  });
});

import { InvalidArgumentError } from 'commander';
import { FfError } from '../errors.js';

/** Parses a numeric flag; a value that does not parse is an error, never silently dropped. */
export function numberOption(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new InvalidArgumentError(`"${value}" is not a number`);
  return parsed;
}

/**
 * A whole-number flag within [min, max]: `-1`, `0`, `2.5` or a count the store cannot answer is a
 * usage error (exit 2) naming the allowed range, never clamped or passed on.
 */
export function integerOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`"${value}" is not a whole number from ${min} to ${max}`);
    }
    return parsed;
  };
}

/**
 * --since: checked while the command line is parsed, so a value that is neither a duration nor a
 * timestamp is a usage error (exit 2) before anything connects; the command parses it again
 * against the time it starts reading.
 */
export function sinceOption(value: string): string {
  try {
    parseSince(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is neither a duration (15m, 2h, 7d) nor a timestamp`);
  }
  return value;
}

/** `15m`, `2h`, `7d` ago, or an ISO 8601 timestamp, or epoch milliseconds. */
export function parseSince(text: string, now = Date.now()): number {
  const relative = /^(\d+)(s|m|h|d)$/.exec(text);
  if (relative) return now - Number(relative[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 's' | 'm' | 'h' | 'd'];
  const absolute = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (Number.isNaN(absolute)) throw new FfError('CONFIG_INVALID', `--since "${text}" is neither a duration (15m, 2h, 7d) nor a timestamp`);
  return absolute;
}

type Layer = Record<string, unknown>;

/** Shapes CLI flags as a config layer, leaving out the ones not given. */
export function overridesFrom(flags: Record<string, unknown>): Layer {
  const layer: Layer = {};
  const set = (section: string, key: string, value: unknown): void => {
    if (value === undefined) return;
    layer[section] = { ...(layer[section] as Record<string, unknown> | undefined), [key]: value };
  };
  if (flags.sink !== undefined) layer.sink = flags.sink;
  set('candidates', 'path', flags.candidates);
  set('candidates', 'column', flags.column);
  set('flags', 'rules', flags.flags);
  set('enqueue', 'rateLimit', flags.rateLimit);
  set('enqueue', 'budget', flags.budget);
  set('state', 'file', flags.stateFile);
  return layer;
}

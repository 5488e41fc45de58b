import { InvalidArgumentError } from 'commander';

/** Parses a numeric flag; a value that does not parse is an error, never silently dropped. */
export function numberOption(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new InvalidArgumentError(`"${value}" is not a number`);
  return parsed;
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

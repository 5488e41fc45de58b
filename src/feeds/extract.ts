import type { MappingConfig } from '../investigate/mapping.js';
import { digestsOf } from './digest.js';
import { compilePath, locate, select, type PathStep } from './json-path.js';

/** What one document of the flag system says about the target flag, read through a mapping. */
export type Extracted =
  /** The flag's explicit users as a whole, with its switch and percentage when the document has them. */
  | { type: 'snapshot'; users: string[]; enabled: boolean | null; percentage: number | null; rulesDigest: string; bucketingDigest: string | null }
  | { type: 'add' | 'remove'; users: string[] }
  /** About the flag, but nothing a feed can act on user by user (an unknown operation, a switch). */
  | { type: 'other'; reason: string }
  /** Not about the flag. */
  | { type: 'unrelated' };

interface Compiled {
  mapping: MappingConfig;
  flagName: PathStep[] | null;
  filters: Array<{ steps: PathStep[]; equals: string }>;
  users: PathStep[] | null;
  enabled: PathStep[] | null;
  percentage: PathStep[] | null;
  operation: PathStep[] | null;
  /** Where the flag's own definition sits: the digests cover it alone (a map of flags holds others too). */
  scope: PathStep[];
}

/**
 * Reads documents through the mapping `investigate --format json` printed (or one edited by
 * hand): which documents are about the flag, and the users, switch and percentage they carry.
 * Paths are compiled once; a path outside the supported subset is refused here, at start.
 */
export class MappingReader {
  private readonly compiled: Compiled;

  /**
   * Without filters, a document is about `flag` when its flagNamePath holds the flag's name — or,
   * when the path ends in the name itself (a map of flags), when the path exists. Containing the
   * name is not enough: `…_v2` is another flag.
   */
  private readonly flagIsKey: boolean;

  constructor(
    mapping: MappingConfig,
    private readonly flag: string,
  ) {
    const compile = (path: string | null): PathStep[] | null => (path === null ? null : compilePath(path));
    this.compiled = {
      mapping,
      flagName: compile(mapping.flagNamePath),
      filters: mapping.filters.map((filter) => ({ steps: compilePath(filter.path), equals: filter.equals })),
      users: compile(mapping.usersPath),
      enabled: compile(mapping.enabledPath),
      percentage: compile(mapping.percentagePath),
      operation: compile(mapping.operationPath),
      scope: [],
    };
    this.compiled.scope = definitionScope([this.compiled.users, this.compiled.enabled, this.compiled.percentage]);
    const last = this.compiled.flagName?.at(-1);
    this.flagIsKey = last?.kind === 'field' && last.name === flag;
    this.element = elementScope(this.compiled, this.flagIsKey, flag);
  }

  private readonly element: { prefix: PathStep[]; filters: Array<{ rest: PathStep[]; equals: string }> } | null;

  read(document: unknown): Extracted {
    const { mapping, flagName, filters, users, enabled, percentage, operation } = this.compiled;
    const roots = this.flagRoots(document);
    let about: boolean;
    if (roots !== null) about = roots.length > 0;
    else {
      const names = flagName === null ? [] : select(document, flagName);
      about = filters.length > 0 ? filters.every((filter) => select(document, filter.steps).includes(filter.equals)) : this.flagIsKey ? names.length > 0 : names.includes(this.flag);
    }
    if (!about) return { type: 'unrelated' };
    const at = (steps: PathStep[] | null): unknown[] => this.valuesAt(document, roots, steps);
    const found = this.users(at(users));
    if (mapping.kind === 'snapshot') {
      // A snapshot without its users list at all is not "nobody": it would remove every explicit user.
      if (users !== null && at(users.at(-1)?.kind === 'all' ? users.slice(0, -1) : users).length === 0) return { type: 'other', reason: `the snapshot has no users list at ${mapping.usersPath ?? ''}` };
      // The rest of the definition (segments, rules, bucketing) is compared as digests: the values
      // read one by one here are left out of them.
      const read = [users, enabled, percentage].flatMap((steps) => (steps ? locate(document, steps) : []));
      const scoped = roots ?? select(document, this.compiled.scope);
      const digests = digestsOf(scoped.length === 1 ? scoped[0] : document, read);
      return { type: 'snapshot', users: found, enabled: firstBoolean(at(enabled)), percentage: firstPercentage(at(percentage)), rulesDigest: digests.rules, bucketingDigest: digests.bucketing };
    }
    const op = at(operation)[0];
    const value = op === undefined || op === null ? '' : String(op);
    if (mapping.addValues.includes(value)) return { type: 'add', users: found };
    if (mapping.removeValues.includes(value)) return { type: 'remove', users: found };
    return { type: 'other', reason: operation ? `operation "${value}" is neither an add (${mapping.addValues.join(', ')}) nor a remove (${mapping.removeValues.join(', ')})` : 'a delta mapping without operationPath' };
  }

  /**
   * A document holding several flags as elements of one array (`[{name, actors}, …]`, with the
   * filter `$[*].name == flag`): the elements that are the flag's, so only their users count.
   * Null when the paths share no such array (the document is one flag, or a map of flags).
   */
  private flagRoots(document: unknown): unknown[] | null {
    const { element } = this;
    if (!element) return null;
    return select(document, element.prefix).filter((candidate) => element.filters.every((filter) => select(candidate, filter.rest).includes(filter.equals)));
  }

  private valuesAt(document: unknown, roots: unknown[] | null, steps: PathStep[] | null): unknown[] {
    if (!steps) return [];
    const prefix = this.element?.prefix;
    if (roots && prefix && startsWith(steps, prefix)) return roots.flatMap((root) => select(root, steps.slice(prefix.length)));
    return select(document, steps);
  }

  /** Strings, split on the separator when the users are one joined string; others ignored. */
  private users(values: unknown[]): string[] {
    const separator = this.compiled.mapping.usersSeparator;
    // Whole numbers are IDs too (`"actors": [12345]`); other values are not users.
    const strings = values.flatMap((value) => (typeof value === 'string' ? [value] : Number.isSafeInteger(value) ? [String(value)] : []));
    const split = separator ? strings.flatMap((value) => value.split(separator)) : strings;
    return split.map((id) => id.trim()).filter((id) => id !== '');
  }
}

/**
 * The array whose elements are flags, when the users path and the paths naming the flag (its
 * filters, or flagNamePath holding the name) go through the same `[*]`: then each element is
 * judged on its own, or every flag's users would be read as this one's.
 */
function elementScope(compiled: Compiled, flagIsKey: boolean, flag: string): { prefix: PathStep[]; filters: Array<{ rest: PathStep[]; equals: string }> } | null {
  const naming = compiled.filters.length > 0 ? compiled.filters : compiled.flagName && !flagIsKey ? [{ steps: compiled.flagName, equals: flag }] : [];
  if (!compiled.users || naming.length === 0) return null;
  const paths = [compiled.users, ...naming.map((filter) => filter.steps)];
  let shared = 0;
  while (paths.every((steps) => shared < steps.length - 1 && sameAny(steps[shared] as PathStep, paths[0]?.[shared] as PathStep))) shared++;
  const lastAll = paths[0]?.slice(0, shared).map((step) => step.kind).lastIndexOf('all') ?? -1;
  if (lastAll < 0) return null;
  const prefix = compiled.users.slice(0, lastAll + 1);
  return { prefix, filters: naming.map((filter) => ({ rest: filter.steps.slice(prefix.length), equals: filter.equals })) };
}

function sameAny(a: PathStep, b: PathStep): boolean {
  if (a.kind === 'field' && b.kind === 'field') return a.name === b.name;
  if (a.kind === 'filter' && b.kind === 'filter') return a.field === b.field && a.equals === b.equals;
  return a.kind === 'all' && b.kind === 'all';
}

function startsWith(steps: readonly PathStep[], prefix: readonly PathStep[]): boolean {
  return prefix.length <= steps.length && prefix.every((step, i) => sameAny(step, steps[i] as PathStep));
}

/**
 * The deepest object holding every value the mapping reads: the longest run of plain field steps
 * the paths share, short of the values themselves (`$.flags.my_flag` for `$.flags.my_flag.users[*]`
 * and `$.flags.my_flag.on`; `$.gates` for Flipper's filtered gates; `$` when they share nothing).
 */
function definitionScope(paths: ReadonlyArray<PathStep[] | null>): PathStep[] {
  const prefixes = paths.filter((steps): steps is PathStep[] => steps !== null).map((steps) => {
    let fields = 0;
    while (fields < steps.length && steps[fields]?.kind === 'field') fields++;
    const reachesValue = fields === steps.length || (fields === steps.length - 1 && steps[fields]?.kind === 'all');
    return steps.slice(0, reachesValue ? Math.max(0, fields - 1) : fields);
  });
  if (prefixes.length === 0) return [];
  const first = prefixes[0] as PathStep[];
  let shared = 0;
  while (shared < first.length && prefixes.every((prefix) => prefix.length > shared && sameStep(prefix[shared] as PathStep, first[shared] as PathStep))) shared++;
  return first.slice(0, shared);
}

function sameStep(a: PathStep, b: PathStep): boolean {
  return a.kind === 'field' && b.kind === 'field' && a.name === b.name;
}

function firstBoolean(values: unknown[]): boolean | null {
  const value = values[0];
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'on' || value === 'ENABLED') return true;
  if (value === 'false' || value === 'off' || value === 'DISABLED') return false;
  return null;
}

function firstPercentage(values: unknown[]): number | null {
  const number = Number(values[0]);
  return values.length > 0 && values[0] !== null && values[0] !== '' && Number.isFinite(number) && number >= 0 && number <= 100 ? number : null;
}

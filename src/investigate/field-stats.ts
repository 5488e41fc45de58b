/** What one field path looked like over the documents analysed. */
export interface FieldSummary {
  path: string;
  /** Documents (or array elements, for `[*]` paths) in which the path is present, in %. */
  presencePercent: number;
  nullPercent: number;
  types: Record<string, number>;
  /** Distinct values seen, capped at MAX_DISTINCT ("1000+"). */
  distinct: number | string;
  examples: string[];
  /** Values shaped like user IDs: the ID pattern, a digit, and not a date, number, version or UUID. */
  idLike: number;
  /** Arrays at this path whose elements are mostly such IDs (a per-user list). */
  idArrays: number;
  /** Strings that are comma-separated lists of such IDs (Unleash's `userIds: "u1,u2"`). */
  csvIdLists: number;
  /** UUID values: user IDs only where the known set says so (event and request IDs are UUIDs too). */
  uuids: number;
  /** Numbers, or numeric strings, from 0 to 100 (a percentage as flag systems write it). */
  percentLike: number;
  /** Arrays or objects with something in them (an empty rule list is no evidence). */
  nonEmpty: number;
  /** Shortest and longest string value: user IDs have a stable length. */
  lengths: { min: number; max: number } | null;
  /** The values themselves, for a field of at most 8 (an operation, a state): never user IDs. */
  values?: string[];
}

const MAX_PATHS = 2000;
/** Levels of nesting looked into. */
export const MAX_DEPTH = 64;
const MAX_DISTINCT = 1000;
const MAX_EXAMPLES = 3;
const SECRET_KEY = /pass(word)?|secret|token|api[_-]?key|credential|auth/i;

interface Accumulator {
  present: number;
  nulls: number;
  types: Map<string, number>;
  distinct: Set<string>;
  examples: string[];
  idLike: number;
  idArrays: number;
  csvIdLists: number;
  uuids: number;
  percentLike: number;
  nonEmpty: number;
  minLength: number;
  maxLength: number;
}

/** Keys that name the entry of an array of `{key, value}` entries (Flipper gates, Unleash strategies…). */
const DISCRIMINATORS = ['key', 'name', 'type', 'kind'];
/** Distinct entry names per array path at most, so that the paths stay bounded. */
const MAX_ENTRY_NAMES = 20;

const DATE = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/;
const NUMBER = /^-?\d+(\.\d+)?$/;
const VERSION = /^v?\d+(\.\d+){1,3}([-+][\w.]+)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a string value is, by its shape alone. */
export function shapeOf(text: string): 'date' | 'number' | 'version' | 'uuid' | 'text' {
  if (NUMBER.test(text)) return 'number';
  if (DATE.test(text)) return 'date';
  if (VERSION.test(text)) return 'version';
  if (UUID.test(text)) return 'uuid';
  return 'text';
}

/**
 * Field statistics over many JSON-like documents, in bounded memory: at most 2,000 paths, 1,000
 * distinct values and 3 examples per path. Values that look like user IDs or secrets are redacted
 * in examples unless `showValues`.
 */
export class FieldStats {
  private readonly paths = new Map<string, Accumulator>();
  /** Up to 200 ID-like values per path, to look up in the known set (never reported). */
  readonly idValues = new Map<string, string[]>();
  documents = 0;
  truncated = false;
  /** Entry names seen per array path (elementPath). */
  private readonly entryNames = new Map<string, Set<string>>();

  constructor(
    private readonly idPattern: RegExp,
    private readonly showValues = false,
  ) {}

  /** Adds one document; `root` names where it sits when it is part of a larger one. */
  add(document: unknown, root = '$'): void {
    this.documents++;
    this.visit(root, document, '');
  }

  summaries(): FieldSummary[] {
    return [...this.paths].map(([path, acc]) => ({
      path,
      presencePercent: round((100 * acc.present) / Math.max(1, this.documents)),
      nullPercent: round((100 * acc.nulls) / Math.max(1, acc.present)),
      types: Object.fromEntries(acc.types),
      distinct: acc.distinct.size >= MAX_DISTINCT ? `${MAX_DISTINCT}+` : acc.distinct.size,
      examples: acc.examples,
      idLike: acc.idLike,
      idArrays: acc.idArrays,
      csvIdLists: acc.csvIdLists,
      uuids: acc.uuids,
      percentLike: acc.percentLike,
      nonEmpty: acc.nonEmpty,
      lengths: acc.maxLength < 0 ? null : { min: acc.minLength, max: acc.maxLength },
      ...(acc.distinct.size <= 8 && acc.idLike === 0 && acc.uuids === 0 && !SECRET_KEY.test(path) && [...acc.distinct].every(plainWord) ? { values: [...acc.distinct].sort() } : {}),
    }));
  }

  /** Like the ID pattern, with a digit, and not a date, number, version or UUID. */
  private isIdLike(value: unknown): value is string {
    return typeof value === 'string' && this.idPattern.test(value) && /\d/.test(value) && shapeOf(value) === 'text';
  }

  private visit(path: string, value: unknown, key: string, depth = 0): void {
    // Flag documents are a few levels deep; a thousand-level nesting is an attack or a bug.
    if (depth > MAX_DEPTH) {
      this.truncated = true;
      return;
    }
    const acc = this.accumulator(path);
    if (!acc) return;
    acc.present++;
    const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    acc.types.set(type, (acc.types.get(type) ?? 0) + 1);
    if (value === null) {
      acc.nulls++;
      return;
    }
    if (Array.isArray(value)) {
      if (value.length > 0) acc.nonEmpty++;
      const ids = value.filter((element) => this.isIdLike(element)).length;
      if (value.length > 0 && ids / value.length >= 0.8) acc.idArrays++;
      for (const element of value) this.visit(this.elementPath(path, element), element, key, depth + 1);
      return;
    }
    if (typeof value === 'object') {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length > 0) acc.nonEmpty++;
      for (const [name, child] of entries) this.visit(`${path}.${safeKey(name)}`, child, name, depth + 1);
      return;
    }
    const text = String(value);
    if (acc.distinct.size < MAX_DISTINCT) acc.distinct.add(text);
    if ((typeof value === 'number' || (typeof value === 'string' && NUMBER.test(value))) && Number(value) >= 0 && Number(value) <= 100) acc.percentLike++;
    if (typeof value === 'string' && text.includes(',')) {
      const parts = text.split(',').map((part) => part.trim());
      if (parts.length >= 2 && parts.filter((part) => this.isIdLike(part)).length / parts.length >= 0.8) acc.csvIdLists++;
    }
    if (typeof value === 'string') {
      acc.minLength = Math.min(acc.minLength, text.length);
      acc.maxLength = Math.max(acc.maxLength, text.length);
      if (UUID.test(text)) acc.uuids++;
    }
    const idLike = this.isIdLike(value);
    // UUIDs are sampled too: only the known set can tell user IDs from event IDs among them.
    if (idLike || (typeof value === 'string' && UUID.test(text))) {
      if (idLike) acc.idLike++;
      const values = this.idValues.get(path) ?? [];
      if (values.length < 200) this.idValues.set(path, [...values, text]);
    }
    if (acc.examples.length < MAX_EXAMPLES) {
      const shown = this.showValues ? text : redact(text, key, idLike);
      if (!acc.examples.includes(shown)) acc.examples.push(shown.length > 80 ? `${shown.slice(0, 80)}…` : shown);
    }
  }

  /**
   * The path of an array element: an entry of a `[{key: 'actors', value: [...]}, {key:
   * 'percentage_of_actors', value: '30'}]` array gets a filter of its own
   * (`[?(@.key=='actors')]`), so that the actors' list is never merged with its siblings.
   */
  private elementPath(path: string, element: unknown): string {
    if (typeof element !== 'object' || element === null || Array.isArray(element)) return `${path}[*]`;
    const entry = element as Record<string, unknown>;
    const discriminator = DISCRIMINATORS.find((name) => typeof entry[name] === 'string');
    if (!discriminator || !('value' in entry || 'values' in entry || 'parameters' in entry)) return `${path}[*]`;
    const name = entry[discriminator] as string;
    const names = this.entryNames.get(path) ?? new Set<string>();
    this.entryNames.set(path, names);
    // Entries named after users (`[{key: 'u1', value: true}, …]`) are no rule kinds: one path for all.
    if (!names.has(name) && names.size >= MAX_ENTRY_NAMES) return `${path}[*]`;
    names.add(name);
    return `${path}[?(@.${discriminator}=='${String(entry[discriminator]).replaceAll("'", "\\'")}')]`;
  }

  private accumulator(path: string): Accumulator | undefined {
    let acc = this.paths.get(path);
    if (!acc) {
      if (this.paths.size >= MAX_PATHS) {
        this.truncated = true;
        return undefined;
      }
      acc = { present: 0, nulls: 0, types: new Map(), distinct: new Set(), examples: [], idLike: 0, idArrays: 0, csvIdLists: 0, uuids: 0, percentLike: 0, nonEmpty: 0, minLength: Number.POSITIVE_INFINITY, maxLength: -1 };
      this.paths.set(path, acc);
    }
    return acc;
  }
}

/** A short word (an operation, a state), nothing that could be a secret or an identifier. */
function plainWord(text: string): boolean {
  return /^[A-Za-z_][A-Za-z_-]{0,30}$/.test(text);
}

function redact(text: string, key: string, idLike: boolean): string {
  if (SECRET_KEY.test(key) || /^[A-Za-z0-9+/=_-]{32,}$/.test(text)) return '<redacted: secret?>';
  if (idLike) return '<redacted: user id>';
  return text;
}

/** Keys that are not plain identifiers are quoted, as in JSONPath. */
function safeKey(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `['${name.replaceAll("'", "\\'")}']`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

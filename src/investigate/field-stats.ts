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
  /** Values that matched the ID pattern, and how many of them. */
  idLike: number;
  /** Arrays at this path whose elements are mostly IDs (a per-user list). */
  idArrays: number;
}

const MAX_PATHS = 2000;
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
    }));
  }

  private visit(path: string, value: unknown, key: string): void {
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
      const ids = value.filter((element) => typeof element === 'string' && this.idPattern.test(element)).length;
      if (value.length > 0 && ids / value.length >= 0.8) acc.idArrays++;
      for (const element of value) this.visit(`${path}[*]`, element, key);
      return;
    }
    if (typeof value === 'object') {
      for (const [name, child] of Object.entries(value as Record<string, unknown>)) this.visit(`${path}.${safeKey(name)}`, child, name);
      return;
    }
    const text = String(value);
    if (acc.distinct.size < MAX_DISTINCT) acc.distinct.add(text);
    const idLike = typeof value === 'string' && this.idPattern.test(value) && /\d/.test(value);
    if (idLike) {
      acc.idLike++;
      const values = this.idValues.get(path) ?? [];
      if (values.length < 200) this.idValues.set(path, [...values, text]);
    }
    if (acc.examples.length < MAX_EXAMPLES) {
      const shown = this.showValues ? text : redact(text, key, idLike);
      if (!acc.examples.includes(shown)) acc.examples.push(shown.length > 80 ? `${shown.slice(0, 80)}…` : shown);
    }
  }

  private accumulator(path: string): Accumulator | undefined {
    let acc = this.paths.get(path);
    if (!acc) {
      if (this.paths.size >= MAX_PATHS) {
        this.truncated = true;
        return undefined;
      }
      acc = { present: 0, nulls: 0, types: new Map(), distinct: new Set(), examples: [], idLike: 0, idArrays: 0 };
      this.paths.set(path, acc);
    }
    return acc;
  }
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

import { createSchema, extendSchema, type Schema } from 'genson-js';
import { classify, type Encoding } from './encodings.js';
import { FieldStats, type FieldSummary } from './field-stats.js';

export interface Sample {
  key: string | null;
  value: Buffer;
}

export type Feasibility = 'feasible' | 'not feasible' | 'unclear';

/** Where, in the messages about the target flag, each piece of a flag definition lives. */
export interface MappingConfig {
  flagNamePath: string | null;
  usersPath: string | null;
  percentagePath: string | null;
  enabledPath: string | null;
}

export interface KnownIdMatch {
  path: string;
  sampled: number;
  /** Of the sampled IDs, how many the known set or `loaded_users` already holds. */
  known: number;
  loaded: number;
}

export interface Report {
  source: string;
  flag: string;
  samples: number;
  encodings: Partial<Record<Encoding, number>>;
  schemaIds: number[];
  keys: { distinct: number; examples: string[] };
  /** Field statistics over every structured document. */
  fields: FieldSummary[];
  documents: number;
  /** Documents that mention the target flag (by value or by key). */
  flagDocuments: number;
  flagPaths: string[];
  userListPaths: Array<{ path: string; percentOfFlagDocuments: number }>;
  percentagePaths: string[];
  booleanPaths: string[];
  /** Rule, segment or targeting structures: users they enable cannot be listed from here. */
  rulePaths: string[];
  timestampPaths: string[];
  verdict: { result: Feasibility; evidence: string[] };
  mapping: MappingConfig | null;
  /** Filled by the CLI when a state store is configured: IDs recognised as real users. */
  knownIdMatches?: KnownIdMatch[];
  /** JSON Schema inferred (genson-js) from the documents about the flag, else from all of them. */
  schema: Schema | null;
}

/** Documents that feed the inferred schema at most: enough for its shape, bounded in time. */
const MAX_SCHEMA_DOCUMENTS = 1000;

/**
 * Infers what the flag system's messages or objects hold and whether they let strategy B/C
 * enumerate newly enabled users: encodings, field statistics, where the target flag and per-user
 * lists live, and a verdict with its evidence.
 */
export function analyze(
  samples: Iterable<Sample>,
  options: { source: string; flag: string; idPattern: RegExp; showValues?: boolean; idValues?: Map<string, string[]> },
): Report {
  const all = new FieldStats(options.idPattern, options.showValues);
  const aboutFlag = new FieldStats(options.idPattern, options.showValues);
  const encodings: Partial<Record<Encoding, number>> = {};
  const schemaIds = new Set<number>();
  const keys = new Set<string>();
  const flagPaths = new Set<string>();
  const schemas = { flag: undefined as Schema | undefined, all: undefined as Schema | undefined, flagDocs: 0, allDocs: 0 };
  const infer = (current: Schema | undefined, document: unknown): Schema => (current ? extendSchema(current, document) : createSchema(document));
  let count = 0;
  for (const sample of samples) {
    count++;
    if (sample.key !== null && keys.size < 10_000) keys.add(sample.key);
    const classified = classify(sample.value);
    const encoding = classified.inner ? (`gzip` as const) : classified.encoding;
    encodings[encoding] = (encodings[encoding] ?? 0) + 1;
    const inner = classified.inner ?? classified;
    if (inner.schemaId !== undefined) schemaIds.add(inner.schemaId);
    for (const document of classified.documents) {
      all.add(document);
      if (schemas.allDocs++ < MAX_SCHEMA_DOCUMENTS) schemas.all = infer(schemas.all, document);
      const found = findFlag(document, options.flag, '$');
      for (const path of found) flagPaths.add(path);
      // A flag that names a key (one big map of flags) is described by that key's subtree alone,
      // not by the other flags beside it.
      const keyed = found.find((path) => path.endsWith(`.${options.flag}`) || path.endsWith(`['${options.flag}']`));
      const about = keyed ? subtree(document, keyed) : found.length > 0 ? document : undefined;
      if (about === undefined) continue;
      aboutFlag.add(about, keyed ?? '$');
      if (schemas.flagDocs++ < MAX_SCHEMA_DOCUMENTS) schemas.flag = infer(schemas.flag, about);
    }
  }
  for (const [path, values] of aboutFlag.idValues) options.idValues?.set(path, values);
  const flagFields = aboutFlag.summaries();
  const allFields = all.summaries();
  const flagDocs = aboutFlag.documents;
  const percentOfFlagDocs = (n: number) => Math.round((1000 * n) / Math.max(1, flagDocs)) / 10;
  // Users named by a flag's documents: lists of IDs (a snapshot) or one ID per document (events).
  const userListPaths = [
    ...flagFields.filter((field) => field.idArrays > 0).map((field) => ({ path: `${field.path}[*]`, percentOfFlagDocuments: percentOfFlagDocs(field.idArrays) })),
    ...flagFields
      .filter((field) => field.idLike > 0 && !field.path.endsWith('[*]'))
      .map((field) => ({ path: field.path, percentOfFlagDocuments: percentOfFlagDocs(field.idLike) })),
  ].sort((a, b) => b.percentOfFlagDocuments - a.percentOfFlagDocuments);
  const leaf = (field: FieldSummary) => field.path.split(/[.[]/).pop() ?? '';
  const percentagePaths = flagFields.filter((f) => (f.types.number ?? 0) > 0 && /percent|rollout|pct/i.test(leaf(f))).map((f) => f.path);
  const booleanPaths = flagFields.filter((f) => (f.types.boolean ?? 0) > 0 && /enabled|active|on$|state|boolean/i.test(leaf(f))).map((f) => f.path);
  const rulePaths = flagFields
    .filter((f) => ((f.types.object ?? 0) > 0 || (f.types.array ?? 0) > 0) && /rule|segment|condition|clause|constraint|targeting|strateg/i.test(leaf(f)))
    .map((f) => f.path);
  const timestampPaths = allFields.filter((f) => /time|date|_at$|At$|updated|created/i.test(leaf(f))).map((f) => f.path);
  const report: Omit<Report, 'verdict' | 'mapping'> = {
    schema: schemas.flag ?? schemas.all ?? null,
    source: options.source,
    flag: options.flag,
    samples: count,
    encodings,
    schemaIds: [...schemaIds],
    keys: { distinct: keys.size, examples: [...keys].slice(0, 5) },
    fields: allFields,
    documents: all.documents,
    flagDocuments: flagDocs,
    flagPaths: [...flagPaths],
    userListPaths,
    percentagePaths,
    booleanPaths,
    rulePaths,
    timestampPaths,
  };
  return { ...report, ...judge(report) };
}

function judge(report: Omit<Report, 'verdict' | 'mapping'>): Pick<Report, 'verdict' | 'mapping'> {
  const evidence: string[] = [];
  const opaque = (report.encodings['confluent-framed'] ?? 0) + (report.encodings.protobuf ?? 0) + (report.encodings.binary ?? 0);
  if (report.samples === 0) return { verdict: { result: 'unclear', evidence: ['no messages or objects were sampled'] }, mapping: null };
  if (report.flagDocuments === 0) {
    if (opaque > 0) {
      evidence.push(`${opaque} of ${report.samples} samples are not self-describing (${describeOpaque(report)}); decode them with their schema before judging`);
      return { verdict: { result: 'unclear', evidence }, mapping: null };
    }
    evidence.push(`the flag "${report.flag}" appears in none of ${report.documents} structured documents (${report.samples} samples)`);
    return { verdict: { result: 'not feasible', evidence }, mapping: null };
  }
  evidence.push(`the flag "${report.flag}" appears in ${report.flagDocuments} of ${report.documents} documents, at ${report.flagPaths.join(', ')}`);
  const best = report.userListPaths[0];
  const mapping: MappingConfig = {
    flagNamePath: report.flagPaths[0] ?? null,
    usersPath: best?.path ?? null,
    percentagePath: report.percentagePaths[0] ?? null,
    enabledPath: report.booleanPaths[0] ?? null,
  };
  if (report.rulePaths.length > 0) evidence.push(`rule or segment structures at ${report.rulePaths.join(', ')}: users they enable can only be found by polling`);
  if (best && best.percentOfFlagDocuments >= 50) {
    const kind = best.path.endsWith('[*]') ? 'per-user lists' : 'one user per document (per-user events)';
    evidence.push(`${kind} present at ${best.path} in ${best.percentOfFlagDocuments}% of the documents for the target flag`);
    if (mapping.percentagePath) evidence.push(`percentage rollouts at ${mapping.percentagePath} cannot be enumerated: a change there must trigger a polling run`);
    return { verdict: { result: 'feasible', evidence }, mapping };
  }
  if (best) evidence.push(`per-user lists at ${best.path} in only ${best.percentOfFlagDocuments}% of the documents for the target flag`);
  else evidence.push('no per-user list accompanies the target flag');
  if (mapping.percentagePath || mapping.enabledPath) {
    evidence.push(`only ${[mapping.percentagePath, mapping.enabledPath].filter(Boolean).join(' and ')} change: usable to trigger polling, not to enumerate users`);
  }
  return { verdict: { result: 'unclear', evidence }, mapping };
}

function describeOpaque(report: Omit<Report, 'verdict' | 'mapping'>): string {
  const parts: string[] = [];
  if (report.encodings['confluent-framed']) parts.push(`Confluent-framed, schema ids ${report.schemaIds.join(', ')}`);
  if (report.encodings.protobuf) parts.push('protobuf wire format');
  if (report.encodings.binary) parts.push('binary');
  return parts.join('; ');
}

/** The value at a `$.a.b['c']` path (no wildcards). */
function subtree(document: unknown, path: string): unknown {
  let current = document;
  for (const part of path.slice(1).match(/\.([A-Za-z_][A-Za-z0-9_]*)|\['([^']*)'\]/g) ?? []) {
    const key = part.startsWith('.') ? part.slice(1) : part.slice(2, -2);
    current = (current as Record<string, unknown> | undefined)?.[key];
  }
  return current;
}

/** Paths where the flag name appears: as a string value, or as an object key. */
function findFlag(value: unknown, flag: string, path: string, found: string[] = []): string[] {
  if (found.length > 20) return found;
  if (value === flag) found.push(path);
  else if (Array.isArray(value)) value.forEach((element) => findFlag(element, flag, `${path}[*]`, found));
  else if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      const childPath = `${path}.${/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : `['${key}']`}`;
      if (key === flag) found.push(childPath);
      findFlag(child, flag, childPath, found);
    }
  }
  return [...new Set(found)];
}

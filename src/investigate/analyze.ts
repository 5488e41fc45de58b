import { createSchema, extendSchema, type Schema } from 'genson-js';
import { classify, type Encoding } from './encodings.js';
import { FieldStats, MAX_DEPTH, type FieldSummary } from './field-stats.js';
import { judgeUserIdField, mappingFor, type MappingConfig, type UserIdJudgement } from './mapping.js';
import { findFlag, subtree } from './subject.js';

export type { MappingConfig, UserIdJudgement } from './mapping.js';

export interface Sample {
  key: string | null;
  value: Buffer;
  /** Where it came from, for reports: `partition 2 offset 1234`, or an S3 key. */
  where?: string;
}

export type Feasibility = 'feasible' | 'not feasible' | 'unclear';

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
  /** `separator`: the users are one string of IDs joined by it (Unleash's `userIds`). */
  userListPaths: Array<{ path: string; percentOfFlagDocuments: number; separator?: string }>;
  /** The field judged to hold user IDs, by its values (never its position), and the runner-up. */
  userIdField: UserIdJudgement | null;
  /** Names that contain the flag's but are another flag (`…_v2`, `…_shadow`): not evidence. */
  nearMisses: string[];
  /** Samples that could not be decoded (broken JSON, not UTF-8, truncated gzip), the first few named. */
  malformed: { count: number; examples: Array<{ where: string; problem: string }> };
  /** Keys of the samples whose documents are about the flag (the flag is their subject). */
  flagSampleKeys: string[];
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
  const malformed: Report['malformed'] = { count: 0, examples: [] };
  const nearMisses = new Set<string>();
  const flagSampleKeys = new Set<string>();
  for (const sample of samples) {
    count++;
    if (sample.key !== null && keys.size < 10_000) keys.add(sample.key);
    const classified = classify(sample.value);
    const encoding = classified.inner ? (`gzip` as const) : classified.encoding;
    encodings[encoding] = (encodings[encoding] ?? 0) + 1;
    const inner = classified.inner ?? classified;
    if (inner.schemaId !== undefined) schemaIds.add(inner.schemaId);
    const problem = classified.problem ?? classified.inner?.problem;
    if (problem !== undefined) {
      malformed.count++;
      if (malformed.examples.length < 5) malformed.examples.push({ where: sample.where ?? sample.key ?? `sample ${count}`, problem });
    }
    for (const document of classified.documents) {
      // Depth beyond what any flag document has (an attack, a bug) is not analysed: malformed.
      if (depthOf(document) > MAX_DEPTH) {
        malformed.count++;
        if (malformed.examples.length < 5) malformed.examples.push({ where: sample.where ?? sample.key ?? `sample ${count}`, problem: `nested more than ${MAX_DEPTH} levels deep` });
        continue;
      }
      all.add(document);
      if (schemas.allDocs++ < MAX_SCHEMA_DOCUMENTS) schemas.all = infer(schemas.all, document);
      const found = findFlag(document, options.flag, '$', nearMisses);
      for (const path of found) flagPaths.add(path);
      if (found.length > 0 && sample.key !== null) flagSampleKeys.add(sample.key);
      // A flag that names a key (one big map of flags) is described by that key's subtree alone,
      // not by the other flags beside it.
      // (Not below an array: `$.items[*].flag` names no single subtree; the document is then read whole.)
      const keyed = found.find((path) => !path.includes('[*]') && (path.endsWith(`.${options.flag}`) || path.endsWith(`['${options.flag}']`)));
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
    ...flagFields.filter((field) => field.csvIdLists > 0).map((field) => ({ path: field.path, percentOfFlagDocuments: percentOfFlagDocs(field.csvIdLists), separator: ',' })),
  ]
    // By how often, then by name: never by the order of keys in the documents.
    .sort((a, b) => b.percentOfFlagDocuments - a.percentOfFlagDocuments || a.path.localeCompare(b.path));
  const userIdField = judgeUserIdField(flagFields, userListPaths);
  if (userIdField) {
    // The judged field leads the list; the others follow in their order.
    const lead = userListPaths.findIndex((entry) => entry.path === userIdField.path);
    if (lead > 0) userListPaths.unshift(...userListPaths.splice(lead, 1));
  }
  const leaf = (field: FieldSummary) => field.path.split(/[.[]/).pop() ?? '';
  // A percentage: numbers or numeric strings from 0 to 100, under a name that says so — the
  // field's own, or the entry's (`[?(@.key=='percentage_of_actors')].value`).
  const percentName = /percent|rollout|pct/i;
  const percentagePaths = flagFields.filter((f) => f.percentLike > 0 && f.percentLike === (f.types.number ?? 0) + (f.types.string ?? 0) && percentName.test(f.path)).map((f) => f.path);
  const booleanPaths = flagFields.filter((f) => (f.types.boolean ?? 0) > 0 && /enabled|active|on$|state|boolean/i.test(leaf(f))).map((f) => f.path);
  const rulePaths = flagFields
    .filter((f) => f.nonEmpty > 0 && ((f.types.object ?? 0) > 0 || (f.types.array ?? 0) > 0) && /rule|segment|condition|clause|constraint|targeting|strateg/i.test(leaf(f)))
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
    userIdField,
    nearMisses: [...nearMisses].slice(0, 10),
    malformed,
    flagSampleKeys: [...flagSampleKeys],
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
  const mapping = mappingFor(report, best ?? null);
  if (mapping.kind === 'delta' && mapping.operationPath) evidence.push(`each document changes one user: ${mapping.operationPath} says add (${mapping.addValues.join(', ')}) or remove (${mapping.removeValues.join(', ')})`);
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

/** How deeply a parsed document nests, counted without recursion (it may be hostile). */
function depthOf(document: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[document, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_DEPTH) return deepest;
    if (typeof value === 'object' && value !== null) for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return deepest;
}

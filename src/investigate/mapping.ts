import type { FieldSummary } from './field-stats.js';
import type { Report } from './analyze.js';

// The mapping investigation hands to a feed (kafka-topic, s3-bucket): what its documents hold and
// how to read the target flag's users from them.

/**
 * What a feed needs to run on the flag system's documents: which documents are about the flag,
 * where its users and switches are, and whether a document is the flag's whole state (snapshot)
 * or a change to it (delta: one user per document, with the operation that says add or remove).
 */
export interface MappingConfig {
  kind: 'snapshot' | 'delta';
  flagNamePath: string | null;
  usersPath: string | null;
  /** The users at usersPath are one string joined by this (`"u1,u2"`); null: a list or one ID. */
  usersSeparator: string | null;
  percentagePath: string | null;
  enabledPath: string | null;
  /** Deltas: the field saying what happened to the user, and its values meaning add and remove. */
  operationPath: string | null;
  addValues: string[];
  removeValues: string[];
  /** Documents about the flag: `flagNamePath == flag` (none when the flag is an object key). */
  filters: Array<{ path: string; equals: string }>;
  /**
   * Buckets: which objects to read — those matching `keyPattern`; only the newest when the keys
   * are dated snapshots; `linkedByKey` when the key names the flag and the content never does.
   */
  objects?: { keyPattern: string; newest: boolean; linkedByKey: boolean };
}

const ADD = /^(enable|enabled|add|added|grant|granted|on|insert|create|created|include|included|opt_?in|true)$/i;
const REMOVE = /^(disable|disabled|remove|removed|revoke|revoked|off|delete|deleted|exclude|excluded|opt_?out|false)$/i;

/**
 * The mapping a feed runs on: a list of users is a snapshot of the flag; one user per document is
 * a delta, read with the field whose few values say add or remove (`action: enable|disable`).
 */
export function mappingFor(report: Omit<Report, 'verdict' | 'mapping'>, users: Report['userListPaths'][number] | null): MappingConfig {
  const usersPath = users?.path ?? null;
  const flagNamePath = report.flagPaths[0] ?? null;
  const keyed = flagNamePath !== null && (flagNamePath.endsWith(`.${report.flag}`) || flagNamePath.endsWith(`['${report.flag}']`));
  const kind = usersPath !== null && !usersPath.endsWith('[*]') && users?.separator === undefined ? 'delta' : 'snapshot';
  const operation = kind === 'delta' ? findOperation(report.fields) : null;
  return {
    kind,
    flagNamePath,
    usersPath,
    usersSeparator: users?.separator ?? null,
    percentagePath: report.percentagePaths[0] ?? null,
    enabledPath: report.booleanPaths[0] ?? null,
    operationPath: operation?.path ?? null,
    addValues: operation?.add ?? [],
    removeValues: operation?.remove ?? [],
    filters: flagNamePath && !keyed ? [{ path: flagNamePath, equals: report.flag }] : [],
  };
}

/** A field of a few string values, some meaning add and some remove. */
function findOperation(fields: FieldSummary[]): { path: string; add: string[]; remove: string[] } | null {
  for (const field of [...fields].sort((a, b) => a.path.localeCompare(b.path))) {
    if (typeof field.distinct !== 'number' || field.distinct > 8 || (field.types.string ?? 0) + (field.types.boolean ?? 0) === 0) continue;
    const values = field.values ?? [];
    const add = values.filter((value) => ADD.test(value));
    const remove = values.filter((value) => REMOVE.test(value));
    if (add.length > 0 && remove.length > 0) return { path: field.path, add, remove };
  }
  return null;
}

export interface UserIdJudgement {
  path: string;
  confidence: 'high' | 'medium' | 'low';
  /** Why: the shape of its values (and, when Valkey is configured, known users among them). */
  reason: string;
  runnerUp: { path: string; reason: string } | null;
}


/**
 * Which field holds user IDs, judged by its values: many distinct values of a stable length
 * (IDs), over the documents about the flag. Dates, numbers, versions and UUIDs never count as
 * IDs here (FieldStats): event and request IDs are UUIDs too, so a UUID field is only a user-ID
 * field once the known set confirms it (matchKnownIds). The runner-up is reported beside it.
 */
export function judgeUserIdField(fields: FieldSummary[], candidates: Array<{ path: string; percentOfFlagDocuments: number }>): UserIdJudgement | null {
  const byPath = new Map(fields.map((field) => [field.path, field]));
  const scored = candidates
    .map((candidate) => {
      const field = byPath.get(candidate.path) ?? byPath.get(candidate.path.replace(/\[\*\]$/, ''));
      // Distinct values are counted up to 1,000: compare them with as many values, not all of them.
      const values = Math.min(field ? field.idLike || 1 : 1, 1000);
      const distinct = field ? (typeof field.distinct === 'number' ? field.distinct : 1000) : 0;
      const cardinality = Math.min(1, distinct / values);
      const lengths = field?.lengths;
      const stability = lengths ? lengths.min / Math.max(1, lengths.max) : 0;
      // Present in the documents, many distinct values (a constant is a salt or a tenant, not
      // users), of a stable length.
      const score = (candidate.percentOfFlagDocuments / 100) * Math.sqrt(cardinality) * (0.8 + 0.2 * stability);
      const reason = `${candidate.percentOfFlagDocuments}% of the documents about the flag; ${distinct === 1000 ? '1000+' : distinct} distinct values${lengths ? `, ${lengths.min}–${lengths.max} characters` : ''}`;
      return { path: candidate.path, score, reason };
    })
    .sort((a, b) => b.score - a.score || a.path.localeCompare(b.path));
  const [best, second] = scored;
  if (!best) return null;
  const margin = second ? (best.score - second.score) / Math.max(best.score, 1e-9) : 1;
  const confidence = margin >= 0.3 && best.score >= 0.5 ? 'high' : margin >= 0.1 ? 'medium' : 'low';
  return { path: best.path, confidence, reason: best.reason, runnerUp: second ? { path: second.path, reason: second.reason } : null };
}

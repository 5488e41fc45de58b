import { z } from 'zod';
import { BUCKETING_ALGORITHMS } from './bucketing.js';

/**
 * What a string must look like to be read as a list file: an s3:// URI, a path with a folder, or
 * a file name with an extension. Anything else (`users: user-0001`) is an ID where a list was
 * meant, not a file name: refused, instead of failing later on a file that does not exist.
 */
const LIST_FILE_REFERENCE = /^s3:\/\/|[/\\]|\.[A-Za-z][A-Za-z0-9]{0,9}$/;

/** An ID list inline, or by reference: a local path or s3:// URI of a newline-delimited file. */
const idList = z.union(
  [
    z.array(z.string({ error: 'must be a user ID (a string)' }).min(1, { error: 'must be a user ID, not empty' })),
    z.string().regex(LIST_FILE_REFERENCE, { error: (issue) => idListProblem(issue.input) }),
  ],
  { error: (issue) => idListProblem(issue.input) },
);

function idListProblem(input: unknown): string {
  if (Array.isArray(input)) return 'must be a list of user IDs (non-empty strings)';
  const reference = 'or the path of a list file (a name with an extension, ./name, or s3://…)';
  if (typeof input === 'string') return `must be a list (e.g. [${input || 'user-0001'}]), ${reference}; got the string ${JSON.stringify(input)}`;
  return `must be a list of user IDs, ${reference}`;
}

const bucketing = z.discriminatedUnion(
  'algorithm',
  [
    z.object({ algorithm: z.literal('flipper') }).strict(),
    z.object({ algorithm: z.literal('unleash'), groupId: z.string().optional(), seed: z.number().int().optional() }).strict(),
    z.object({ algorithm: z.literal('launchdarkly'), salt: z.string().optional(), seed: z.number().int().optional() }).strict(),
    z.object({ algorithm: z.literal('flagd') }).strict(),
  ],
  { error: () => `must be one of: ${BUCKETING_ALGORITHMS.join(', ')}` },
);

/**
 * The flag rules file (YAML or JSON). A key it does not know is an error — `excluded_users` for
 * `excludedUsers` would silently drop the exclusions — unless `allowUnknownKeys: true`, for a
 * snapshot exported from a flag system with extras of its own (load-rules.ts checks).
 */
export const flagRulesSchema = z
  .object({
    allowUnknownKeys: z.boolean().default(false),
    flag: z.string().min(1),
    enabled: z.boolean(),
    users: idList.default([]),
    excludedUsers: idList.default([]),
    segments: z.record(z.string(), idList).default({}),
    percentage: z.number().min(0).max(100).default(0),
    bucketing: bucketing.default({ algorithm: 'flipper' }),
    /** Flipper's percentage of time: random per check, so it cannot be evaluated offline. */
    percentageOfTime: z.number().min(0).max(100).default(0),
    /** Code-defined groups (Flipper `register`): membership is only known to the application. */
    groups: z.array(z.string(), { error: 'must be a list of group names' }).default([]),
  })
  .loose();

export type FlagRulesFile = z.infer<typeof flagRulesSchema>;

import { z } from 'zod';
import { BUCKETING_ALGORITHMS } from './bucketing.js';

/** An ID list inline, or by reference: a local path or s3:// URI of a newline-delimited file. */
const idList = z.union([z.array(z.string().min(1)), z.string().min(1)]);

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
    groups: z.array(z.string()).default([]),
  })
  .loose();

export type FlagRulesFile = z.infer<typeof flagRulesSchema>;

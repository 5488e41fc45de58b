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
 * The flag rules file (YAML or JSON). More fields are allowed and ignored, so a snapshot exported
 * from a flag system can carry its own extras.
 */
export const flagRulesSchema = z
  .object({
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

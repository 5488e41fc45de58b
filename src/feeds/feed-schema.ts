import { z } from 'zod';
import type { MappingConfig } from '../investigate/mapping.js';
import { compilePath } from './json-path.js';

/** A JSONPath of the subset MappingReader reads: refused at config load otherwise. */
const jsonPath = z.string().superRefine((path, context) => {
  try {
    compilePath(path);
  } catch (error) {
    context.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
  }
});

/** The `mapping` of `investigate kafka|s3 --format json`, accepted as it is printed. */
export const mappingSchema = z
  .object({
    kind: z.enum(['snapshot', 'delta']),
    flagNamePath: jsonPath.nullable(),
    usersPath: jsonPath.nullable(),
    usersSeparator: z.string().min(1).nullable().default(null),
    percentagePath: jsonPath.nullable().default(null),
    enabledPath: jsonPath.nullable().default(null),
    operationPath: jsonPath.nullable().default(null),
    addValues: z.array(z.string()).default([]),
    removeValues: z.array(z.string()).default([]),
    filters: z.array(z.object({ path: jsonPath, equals: z.string() }).strict()).default([]),
    objects: z.object({ keyPattern: z.string().min(1), newest: z.boolean(), linkedByKey: z.boolean() }).strict().optional(),
  })
  .strict()
  .refine((mapping) => mapping.flagNamePath !== null || mapping.filters.length > 0, { message: 'needs flagNamePath or filters: which documents are about the flag' })
  .refine((mapping) => mapping.kind === 'snapshot' || mapping.operationPath !== null, { message: 'a delta mapping needs operationPath, addValues and removeValues' }) satisfies z.ZodType<MappingConfig, unknown>;

/**
 * Strategy B, the flag topic (experimental): src/feeds/topic-feed.ts. Brokers and security come
 * from the `kafka` section (KAFKA_BROKERS).
 */
export const kafkaTopicSchema = z
  .object({
    enabled: z.boolean().default(false),
    topic: z.string().min(1).default('feature-flipper-flags'),
    /** The consumer group every replica shares (partitions spread across them). */
    groupId: z.string().min(1).default('ff-detector-feed'),
    /** Record what would be enqueued, send nothing (the default for experimental strategies). */
    shadow: z.boolean().default(true),
    mapping: mappingSchema.nullable().default(null),
    /** A group with no committed offset starts at the oldest message kept (the topic keeps ~7 days), or at new ones only. */
    fromBeginning: z.boolean().default(true),
    /** Behind the head by more than this many messages, the feed reports `lagging`. */
    maxLagMessages: z.number().int().positive().default(1000),
    /** A change the users cannot express starts a full polling run this long after the last such change. */
    debounceSeconds: z.number().min(0).max(3600).default(30),
    /** Scheduled and triggered polling runs evaluate with the live state over the rules file (feeds/live-checker.ts). */
    pollingUsesLiveState: z.boolean().default(false),
  })
  .strict()
  .refine((feed) => !feed.enabled || feed.mapping !== null, { message: 'enabled needs a mapping (run `ff-detector investigate kafka --format json` and copy its mapping)' });

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
  .refine((mapping) => mapping.flagNamePath !== null || mapping.filters.length > 0 || mapping.objects?.linkedByKey === true, { message: 'needs flagNamePath or filters: which documents are about the flag (or, for a bucket, objects.linkedByKey)' })
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
    /** A change the users cannot express starts a full polling run this long after the first such change (later ones join it). */
    debounceSeconds: z.number().min(0).max(3600).default(30),
    /** Scheduled and triggered polling runs evaluate with the live state over the rules file (feeds/live-checker.ts). */
    pollingUsesLiveState: z.boolean().default(false),
  })
  .strict()
  .refine((feed) => !feed.enabled || feed.mapping !== null, { message: 'enabled needs a mapping (run `ff-detector investigate kafka --format json` and copy its mapping)' });

/**
 * Strategy C, the flag bucket (experimental): src/feeds/bucket-feed.ts. The S3 client comes from
 * the environment like every S3 read (AWS_REGION, credentials), its endpoint from s3.endpoint.
 */
export const s3BucketSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** The flag system's bucket, `{env}-feature-flipper` in the seed: no default, it names an environment. */
    bucket: z.string().min(1).nullable().default(null),
    /** Only keys under it are listed. */
    prefix: z.string().default(''),
    /** How often the prefix is listed; notifications (below) wake it sooner. */
    intervalSeconds: z.number().min(1).max(86_400).default(60),
    /** Record what would be enqueued, send nothing (the default for experimental strategies). */
    shadow: z.boolean().default(true),
    /** The `mapping` of `investigate s3 --format json`, with its `objects` (keyPattern, newest, linkedByKey). */
    mapping: mappingSchema.nullable().default(null),
    /** S3 event notifications delivered to this SQS queue wake the listing at once (set up by the bucket's owner). */
    notificationQueueUrl: z.string().url().nullable().default(null),
    /** Keys listed at most per cycle. */
    maxObjects: z.number().int().positive().default(100_000),
    /** A JSON or YAML object is parsed whole up to this size (decompressed); a user list (linkedByKey) is streamed at any size. */
    maxDocumentBytes: z.number().int().positive().default(8 * 1024 * 1024),
    /** A change users cannot express starts a full polling run this long after the first one (later ones join it). */
    debounceSeconds: z.number().min(0).max(3600).default(30),
  })
  .strict()
  .refine((feed) => !feed.enabled || feed.mapping !== null, { message: 'enabled needs a mapping (run `ff-detector investigate s3 --format json` and copy its mapping)' })
  .refine((feed) => !feed.enabled || feed.bucket !== null, { message: 'enabled needs the bucket' })
  .refine((feed) => feed.mapping === null || feed.mapping.objects !== undefined, { message: 'the mapping needs its `objects` (keyPattern, newest, linkedByKey), as `investigate s3` prints it' });

import { z } from 'zod';
import { DEFAULT_BREAKER } from '../flags/circuit-breaker.js';
import { openFeatureSchema } from '../flags/openfeature-schema.js';
import { adminSchema, daemonSchema, safetySchema } from './daemon-schema.js';
import { kafkaTopicSchema, s3BucketSchema } from '../feeds/feed-schema.js';
import { checkIdPattern, DEFAULT_ID_PATTERN } from './id-pattern.js';
import { inheritKafkaBrokers, kafkaSchema } from './kafka-schema.js';

/**
 * The one typed configuration. Every option has its default here; README's configuration
 * reference lists the same names. Layers: these defaults → YAML file (--config) → environment →
 * CLI flags (see load.ts).
 */
const positiveInt = z.number().int().positive();

export { DEFAULT_ID_PATTERN } from './id-pattern.js';

const nullableString = z.string().min(1).nullable().default(null);

/**
 * `request_id` is `<prefix>-<uuid v4>`, and for FIFO queues it is the MessageDeduplicationId,
 * which SQS caps at 128 characters of a limited set: a prefix outside this would make every
 * entry fail.
 */
const requestIdPrefix = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, { message: 'must start with a letter or digit and hold only letters, digits, _ . : -' })
  .max(91, { message: 'must be at most 91 characters (request_id = prefix-uuid, at most 128 for SQS)' });

/** The worker's UserLoadEvent priorities. */
const priority = z.enum(['low', 'normal', 'high']);

/** Seed section 4, strategy A, step 1: distinct users with a receipt in the last `activeDays` days. */
export const DEFAULT_SNOWFLAKE_QUERY =
  'SELECT DISTINCT USER_ID_RAW AS USER_ID FROM RECEIPTS WHERE PURCHASE_DATE >= DATEADD(day, -:activeDays, CURRENT_DATE())';

const snowflakeSchema = z
  .object({
    account: nullableString,
    username: nullableString,
    /** Password authentication (env SNOWFLAKE_PASSWORD) … */
    password: nullableString,
    /** … or key pair: a PEM private key file, optionally encrypted. */
    privateKeyPath: nullableString,
    privateKeyPassphrase: nullableString,
    warehouse: nullableString,
    role: nullableString,
    database: z.string().min(1).default('FETCH_SERVICES_PROD'),
    schema: z.string().min(1).default('RECEIPT_SERVICE'),
    /** Overrides the account URL (private link; a local server in tests). */
    accessUrl: z.string().url().nullable().default(null),
    /** SQL with :name bind variables; values come from `binds` (plus activeDays). */
    query: z.string().min(1).default(DEFAULT_SNOWFLAKE_QUERY),
    binds: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).default({}),
    activeDays: positiveInt.max(3650).default(30),
    idColumn: z.string().min(1).default('USER_ID'),
    /** Table and columns checked before the query; null skips the check. */
    schemaGate: z
      .object({ table: z.string().min(1), columns: z.array(z.string().min(1)).min(1) })
      .strict()
      .nullable()
      .default({ table: 'RECEIPTS', columns: ['USER_ID_RAW', 'PURCHASE_DATE'] }),
    queryTimeoutSeconds: positiveInt.default(600),
    /** The driver's retries of a failed login, with backoff. */
    loginRetries: z.number().int().min(0).max(20).default(3),
  })
  .strict();

const httpCheckerSchema = z
  .object({
    /** Per-user URL with {flag} and {userId}, answered with JSON holding a boolean. */
    urlTemplate: z.string().url().refine((url) => url.includes('{userId}'), { message: 'must contain {userId}' }),
    /** Optional: POST {"flag", "userIds": [...]}, answered with a map userId → answer. */
    batchUrl: z.string().url().nullable().default(null),
    batchSize: positiveInt.max(10_000).default(100),
    /** Dot path to the boolean in an answer ("" = the answer itself). */
    responsePath: z.string().default('enabled'),
    /** Dot path to the userId → answer map in a batch response ("" = the body). */
    batchResponsePath: z.string().default(''),
    /** Request headers; `${NAME}` is replaced by the environment variable NAME. */
    headers: z.record(z.string(), z.string()).default({}),
    concurrency: positiveInt.max(256).default(16),
    timeoutMs: positiveInt.default(2000),
    retries: z.number().int().min(0).max(10).default(3),
    retryBaseMs: positiveInt.default(100),
    retryMaxMs: positiveInt.default(5000),
    /** Consecutive failed requests (network error, timeout, 5xx) that open the circuit breaker; 0: never. */
    breakerThreshold: z.number().int().min(0).max(1000).default(DEFAULT_BREAKER.threshold),
    /** An open breaker makes checks unevaluable at once for this long, then lets one probe through. */
    breakerCooldownMs: positiveInt.default(DEFAULT_BREAKER.cooldownMs),
  })
  .strict();

const configObject = z
  .object({
    /** The flag whose newly enabled users get a backfill. */
    flag: z.string().min(1).default('consumer_graph_ingestion'),
    /**
     * Candidate IDs that do not match are counted as `invalid` and never sent. Tested against every
     * candidate with the built-in (backtracking) engine, so a pattern that can backtrack
     * catastrophically is refused here (docs/decisions.md).
     */
    idPattern: z.string().default(DEFAULT_ID_PATTERN).superRefine(checkIdPattern),
    candidates: z
      .object({
        /** file: a maintained list (candidates.path); snowflake: a query (candidates.snowflake). */
        source: z.enum(['file', 'snowflake']).default('file'),
        /** Local path or s3://bucket/key; gzip is detected from the content. */
        path: z.string().min(1).default('config/sample-candidates.txt'),
        /** CSV column holding the ID; when unset the file has one ID per line. */
        column: z.string().min(1).nullable().default(null),
        batchSize: positiveInt.max(100_000).default(1000),
        snowflake: snowflakeSchema.prefault({}),
      })
      .strict()
      .refine((c) => c.source !== 'snowflake' || (c.snowflake.account !== null && c.snowflake.username !== null), {
        message: 'source "snowflake" needs account and username (SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER)',
        path: ['snowflake'],
      })
      .prefault({}),
    flags: z
      .object({
        /** rules: the embedded evaluator; http: ask the flag service (flags.http); openfeature: an OpenFeature provider (flags.openfeature). */
        checker: z.enum(['rules', 'http', 'openfeature']).default('rules'),
        /** Flag rules file (YAML or JSON): local path or s3:// URI. */
        rules: z.string().min(1).default('config/flag-rules.yaml'),
        http: httpCheckerSchema.nullable().default(null),
        openfeature: openFeatureSchema.nullable().default(null),
        /**
         * A referenced user list (segment, exclusions, users) with lines that are not IDs stops
         * the run (exit 2): an exclusion list read as garbage would widen the rollout. true: skip
         * those lines with a warning.
         */
        allowInvalidListEntries: z.boolean().default(false),
      })
      .strict()
      .refine((flags) => flags.checker !== 'http' || flags.http !== null, { message: 'checker "http" needs flags.http', path: ['http'] })
      .refine((flags) => flags.checker !== 'openfeature' || flags.openfeature !== null, {
        message: 'checker "openfeature" needs flags.openfeature (at least package: the provider\'s npm package)',
        path: ['openfeature'],
      })
      .prefault({}),
    state: z
      .object({
        /** Valkey URL (env VALKEY_URL). Unset: the embedded file-backed store. */
        valkeyUrl: z.string().nullable().default(null).superRefine(checkValkeyUrl),
        /** valkeyUrl is one seed node of a cluster (env VALKEY_CLUSTER=true); database 0 only. */
        valkeyCluster: z.boolean().default(false),
        /** File-backed store's journal, used when valkeyUrl is unset. */
        file: z.string().min(1).default('.ff-detector/state.journal'),
        knownSetKey: z.string().min(1).default('backfill:known_enabled_users'),
        loadedKeyPrefix: z.string().min(1).default('loaded_users:'),
        detectorKeyPrefix: z.string().min(1).default('backfill:detector:'),
        /** Remove known users who are now disabled, so a re-enable is detected again. */
        forgetDisabled: z.boolean().default(true),
        /** A run that would forget more than this share of the known users it met… */
        maxForgetFraction: z.number().min(0).max(1).default(0.1),
        /** …and at least this many, forgets nobody until an operator releases it. */
        maxForgetFloor: z.number().int().min(0).default(100),
        /** The run lock's TTL: a run that died (SIGKILL, a lost host) blocks the next one this long. Renewed every third. */
        runLockTtlMs: positiveInt.min(1000).default(30_000),
        /** Candidate batches classified concurrently (each is one SMISMEMBER round trip). */
        maxInFlightBatches: positiveInt.max(64).default(8),
        connectTimeoutMs: positiveInt.default(5000),
      })
      .strict()
      .refine((state) => !state.valkeyCluster || (state.valkeyUrl !== null && databaseOf(state.valkeyUrl) === 0), {
        message: 'valkeyCluster needs valkeyUrl (a seed node) with database 0: a cluster has no other',
        path: ['valkeyCluster'],
      })
      .prefault({}),
    /**
     * Where messages go. auto: SQS when sqs.queueUrl is set, else stdout — refused with Valkey
     * state, where one missing SQS_QUEUE_URL would mark users never sent (see sink-choice.ts).
     */
    sink: z.enum(['auto', 'sqs', 'stdout']).default('auto'),
    /** S3 (rules, candidate and user lists, the flag bucket). */
    s3: z
      .object({
        /** A custom S3 endpoint (env AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL), addressed path-style. */
        endpoint: z.string().url().nullable().default(null),
      })
      .strict()
      .prefault({}),
    sqs: z
      .object({
        /** Queue URL (env SQS_QUEUE_URL): https://host/<account>/<queue name>. */
        queueUrl: z.string().url().nullable().default(null).refine((url) => url === null || isQueueUrl(url), { message: 'must be https://host/<account>/<queue name>' }),
        /** The AWS region (env AWS_REGION); a queue URL naming its region wins for the rate limit's key. */
        region: z.string().min(1).nullable().default(null),
        /**
         * A custom SQS endpoint (env AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL): requests go there
         * whatever host the queue URL names (local SQS servers hand out URLs that need not resolve).
         */
        endpoint: z.string().url().nullable().default(null),
        /** Attempts the AWS SDK makes for one SendMessageBatch request before the run fails. */
        maxAttempts: positiveInt.max(20).default(3),
        /** Extra attempts for entries SQS reports Failed with SenderFault=false. */
        entryRetries: z.number().int().min(0).max(20).default(4),
        retryBaseMs: positiveInt.default(200),
        retryMaxMs: positiveInt.default(5000),
        requestTimeoutMs: positiveInt.default(10_000),
        /** SendMessageBatch calls in flight at once (each ≤ 10 messages). */
        concurrency: positiveInt.max(32).default(1),
        /** Sending pauses while the queue holds more (waiting + in flight); 0 = never check. */
        maxBacklog: z.number().int().min(0).default(5000),
        /** How often the backlog is read while sending. */
        backlogCheckMs: positiveInt.default(5000),
      })
      .strict()
      .prefault({}),
    enqueue: z
      .object({
        /** Messages per second, never exceeded in any 1-second window. */
        rateLimit: z.number().positive().max(100_000).default(10),
        /** Users enqueued at most per run (0 = no limit); the rest wait for the next run. */
        budget: z.number().int().min(0).default(36_000),
        /**
         * A run reads its candidates to the end before sending; the users it will enqueue are kept
         * in memory up to this many (packed, ≈ 20 bytes each), the rest in a file under spillDir.
         */
        maxPendingInMemory: positiveInt.default(100_000),
        /** Directory for that file (default: the OS temporary directory, TMPDIR). */
        spillDir: z.string().min(1).nullable().default(null),
        reason: z.string().min(1).default('feature_flag_enabled'),
        requestIdPrefix: requestIdPrefix.default('detector'),
        lookbackDays: positiveInt.default(365),
        priority: priority.default('low'),
      })
      .strict()
      .prefault({}),
    /** `ff-detector backfill` and POST /admin/backfill (seed sections 1 and 6). */
    backfill: z
      .object({
        reason: z.string().min(1).default('batch_backfill'),
        requestIdPrefix: requestIdPrefix.default('backfill'),
        lookbackDays: positiveInt.default(365),
        /** A job over this many distinct users is refused before anything is sent. */
        maxUsers: positiveInt.default(1_000_000),
        /** The admin job's lease: a replica that dies is replaced within it. Renewed every third. */
        leaseTtlMs: positiveInt.min(1000).default(30_000),
      })
      .strict()
      .prefault({}),
    /** `sample` and `investigate`: where the flag system keeps its topic and bucket. */
    investigate: z
      .object({
        /** host:port list (env KAFKA_BROKERS, comma-separated). */
        brokers: z.array(z.string().min(1)).default([]),
        topic: z.string().min(1).default('feature-flipper-flags'),
        bucket: z.string().min(1).nullable().default(null),
      })
      .strict()
      .prefault({}),
    daemon: daemonSchema.prefault({}),
    admin: adminSchema.prefault({}),
    safety: safetySchema.prefault({}),
    kafka: kafkaSchema.prefault({}),
    /** The experimental strategies' settings: the flag topic's feed (B) and the flag bucket's (C). */
    strategies: z.object({ kafkaTopic: kafkaTopicSchema.prefault({}), s3Bucket: s3BucketSchema.prefault({}) }).strict().prefault({}),
  })
  .strict();

export const configSchema = z.preprocess(inheritKafkaBrokers, configObject);

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** redis:// or rediss://, a host, and at most a database number as the path. */
function checkValkeyUrl(url: string | null, context: z.RefinementCtx): void {
  if (url === null) return;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    context.addIssue({ code: 'custom', message: 'is not a URL (redis://[user:password@]host:port[/db] or rediss://…)' });
    return;
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') context.addIssue({ code: 'custom', message: `scheme must be redis:// or rediss:// (TLS), not ${parsed.protocol}//` });
  if (!parsed.hostname) context.addIssue({ code: 'custom', message: 'has no host' });
  const database = parsed.pathname.replace(/^\//, '');
  if (database !== '' && !/^\d{1,9}$/.test(database)) context.addIssue({ code: 'custom', message: `database "${database}" is not a number (the path of the URL selects a database: /0, /1, …)` });
}

function isQueueUrl(url: string): boolean {
  if (!URL.canParse(url)) return false; // .url() says so already; this check must not throw
  const parsed = new URL(url);
  return /^https?:$/.test(parsed.protocol) && /^\/[^/]+\/[A-Za-z0-9_-]{1,80}(\.fifo)?\/?$/.test(parsed.pathname);
}

function databaseOf(url: string): number | null {
  try {
    const path = new URL(url).pathname.replace(/^\//, '');
    return path === '' ? 0 : Number(path);
  } catch {
    return null;
  }
}

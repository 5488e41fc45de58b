import cron from 'node-cron';
import { z } from 'zod';
import { DEFAULT_RUN_HEALTH } from '../pipeline/summary.js';

const positiveInt = z.number().int().positive();

/** `ff-detector run`: the schedule, leadership and shutdown of the long-running process. */
export const daemonSchema = z
  .object({
    /**
     * The one-shot strategy of the scheduled runs and POST /runs, by its name in
     * strategies/index.ts. Checked there (the config does not depend on strategies/): an unknown
     * name stops `ff-detector run` at start with exit 2.
     */
    strategy: z.string().min(1).default('polling'),
    /** node-cron expression (5 or 6 fields); default: at minute 0 of every hour. */
    schedule: z.string().default('0 * * * *').refine((expression) => cron.validate(expression), { message: 'is not a valid cron expression' }),
    timezone: z.string().default('UTC').refine(isTimeZone, { message: 'is not an IANA time zone' }),
    /** When the leader re-checks every known user (reconcile); null: never. Default: daily at 03:30. */
    reconcileSchedule: z
      .string()
      .nullable()
      .default('30 3 * * *')
      .refine((expression) => expression === null || cron.validate(expression), { message: 'is not a valid cron expression' }),
    /** Start a run as soon as this replica leads, besides the schedule. */
    runAtStart: z.boolean().default(false),
    /** The leader lock's TTL: a dead leader is replaced within it. Renewed every third. */
    leaderTtlMs: positiveInt.min(1000).default(30_000),
    /** How long a shutdown waits for the in-flight batch and the clients before exiting anyway. */
    shutdownTimeoutMs: positiveInt.default(30_000),
    /** Run summaries kept in Valkey for /status and `ff-detector status`. */
    historySize: positiveInt.max(1000).default(50),
  })
  .strict();

export const adminSchema = z
  .object({
    /** Bind address (env ADMIN_HOST). Mutating endpoints need a token unless this is loopback. */
    host: z.string().min(1).default('127.0.0.1'),
    /** env ADMIN_PORT; 0 picks a free port. */
    port: z.number().int().min(0).max(65_535).default(8080),
    /** Bearer token (env ADMIN_TOKEN): POST routes always; every non-public route beyond loopback. */
    token: z.string().min(16, { message: 'must be at least 16 characters' }).nullable().default(null),
    /** Routes that answer without the token when bound beyond loopback (probes, scrapers). */
    publicRoutes: z.array(z.string().startsWith('/')).default(['/healthz', '/readyz', '/metrics']),
    /** /status shows raw input lines of invalid candidates (user IDs, perhaps); off, they are redacted. */
    showInputs: z.boolean().default(false),
    bodyLimitBytes: positiveInt.default(1024 * 1024),
    /**
     * POST /admin/backfill bodies: the largest measured to be parsed within the default heap
     * (README "Security"); bigger lists go through s3_uri, which is streamed.
     */
    backfillBodyLimitBytes: positiveInt.max(64 * 1024 * 1024).default(16 * 1024 * 1024),
    /** A request must arrive whole within this. */
    requestTimeoutMs: positiveInt.default(30_000),
    /** The operator's console at / (README "Console"); off: / answers 404. */
    console: z.boolean().default(true),
  })
  .strict();

export const safetySchema = z
  .object({
    /** Seed runbook: do not backfill while the worker's Kafka consumers lag. */
    consumerLag: z
      .object({
        enabled: z.boolean().default(false),
        /** host:port list (env KAFKA_BROKERS, comma-separated). */
        brokers: z.array(z.string().min(1)).default([]),
        groups: z.array(z.object({ group: z.string().min(1), topic: z.string().min(1) }).strict()).default([]),
        /**
         * Sending waits while any group's oldest unconsumed message is older than this: a busy
         * group that is caught up passes, one replaying a backlog does not. null: not measured.
         */
        maxLagSeconds: positiveInt.nullable().default(60),
        /** Optional: sending also waits while a group has more unconsumed messages than this. */
        maxLag: z.number().int().min(0).nullable().default(null),
        /** How often the lag is read again while a run, backfill or feed is sending. */
        recheckMs: positiveInt.default(300_000),
        timeoutMs: positiveInt.default(10_000),
      })
      .strict()
      .refine((gate) => !gate.enabled || (gate.brokers.length > 0 && gate.groups.length > 0), {
        message: 'enabled needs brokers (KAFKA_BROKERS) and at least one group',
      })
      .refine((gate) => gate.maxLagSeconds !== null || gate.maxLag !== null, { message: 'needs maxLagSeconds or maxLag (or both)' })
      .prefault({}),
    /**
     * A send gate (queue backlog, consumer lag) closed this long makes the run or backfill give up:
     * what was not sent stays unmarked (runs) or in the resume file (backfills).
     */
    maxPauseMinutes: z.number().positive().max(24 * 60).default(60),
    /**
     * A finished run is `degraded` (exit 1, alerting) rather than `ok` when more than this share of
     * its candidates are invalid (a UTF-16 or CR-only file)… 1: never.
     */
    maxInvalidFraction: z.number().min(0).max(1).default(DEFAULT_RUN_HEALTH.maxInvalidFraction),
    /** …or more than this share of the users checked are unevaluable (the flag service down). 1: never. */
    maxUnevaluableFraction: z.number().min(0).max(1).default(DEFAULT_RUN_HEALTH.maxUnevaluableFraction),
    /** …and at least this many of them: a few typos in a short list do not page; an input wholly unusable always does. */
    degradedFloor: positiveInt.default(DEFAULT_RUN_HEALTH.degradedFloor),
  })
  .strict();

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

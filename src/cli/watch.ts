import { randomUUID } from 'node:crypto';
import { loadConfig } from '../config/load.js';
import { EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, errorMessage } from '../errors.js';
import type { FeedChange } from '../feeds/changes.js';
import { createLogger } from '../logger.js';
import { Runtime } from '../runtime/runtime.js';
import { feedStrategy, KAFKA_TOPIC, S3_BUCKET } from '../../strategies/index.js';
import { FeedRunner } from '../../strategies/feed-runner.js';
import { overridesFrom } from './options.js';
import { writeLine } from './output.js';

export interface WatchFlags {
  config?: string;
  flags?: string;
  stateFile?: string;
  logLevel?: string;
  dryRun?: boolean;
  /** kafka: stop at the end of what the topic held at start. */
  untilEnd?: boolean;
  /** s3: one listing cycle. */
  once?: boolean;
}

const SOURCES = {
  kafka: { strategy: KAFKA_TOPIC, setting: 'strategies.kafkaTopic', investigate: 'investigate kafka' },
  s3: { strategy: S3_BUCKET, setting: 'strategies.s3Bucket', investigate: 'investigate s3' },
} as const;

/** Users printed per change line at most (the count is always whole). */
const USERS_SHOWN = 100;

/**
 * `ff-detector watch kafka|s3`: a feed in the foreground, for trials. Stdout is NDJSON: one line
 * per change applied, one per user enqueued (or, in shadow mode and with --dry-run, that would
 * be), one per full run owed, and a summary line last. --dry-run changes nothing shared (kafka: a
 * consumer group of its own, no offset committed; both: the feed's state in this process).
 * kafka --until-end stops once the topic's content at start is applied; s3 --once after one
 * listing cycle; both once the pending users they made are drained.
 */
export async function watchCommand(source: keyof typeof SOURCES, flags: WatchFlags): Promise<number> {
  const logger = createLogger(flags.logLevel);
  const config = loadConfig({ configPath: flags.config ?? process.env.FF_DETECTOR_CONFIG, overrides: overridesFrom({ ...flags }) });
  const { strategy, setting, investigate } = SOURCES[source];
  const feed = source === 'kafka' ? config.strategies.kafkaTopic : config.strategies.s3Bucket;
  if (!feed.mapping || (source === 's3' && config.strategies.s3Bucket.bucket === null)) {
    process.stderr.write(`ff-detector watch ${source}: ${setting}.mapping${source === 's3' ? ' and .bucket are' : ' is'} not set (run \`ff-detector ${investigate} --format json\` and copy its mapping)\n`);
    return EXIT_USAGE;
  }
  const untilEnd = source === 'kafka' ? (flags.untilEnd ?? false) : (flags.once ?? false);
  const dryRun = flags.dryRun ?? false;
  if (!dryRun && config.state.valkeyUrl === null) {
    // The group's offsets would be committed while the pending users lived in this process only.
    process.stderr.write(`ff-detector watch ${source}: without --dry-run a feed keeps its live state and pending users in Valkey: set state.valkeyUrl (VALKEY_URL), or add --dry-run\n`);
    return EXIT_USAGE;
  }
  const runtime = new Runtime(config, logger);
  const out = process.stdout;
  const print = (line: object): void => void writeLine(out, JSON.stringify(line));
  const counts = { changes: 0, sent: 0, runsOwed: 0 };
  const startedAt = Date.now();
  const wouldOnly = dryRun || feed.shadow;
  const said = new Set<string>();
  const store = await runtime.openFeedStore(dryRun);
  const runner = new FeedRunner(runtime, feedStrategy(strategy, `watch ${source}`), store, {
    shadow: feed.shadow,
    dryRun,
    untilEnd,
    debounceMs: feed.debounceSeconds * 1000,
    onChange: (change, at) => {
      counts.changes += 1;
      print(changeLine(change, at));
    },
    onDrained: (pass) => {
      const at = new Date().toISOString();
      // Shadow and dry-run passes mark nobody known, so a user pended again is found again: said once.
      for (const user of pass.sent) {
        if (wouldOnly && said.has(user)) continue;
        if (wouldOnly) said.add(user);
        print({ type: wouldOnly ? 'would-enqueue' : 'enqueued', user, at });
        counts.sent += 1;
      }
    },
    onRunOwed: (trigger) => {
      counts.runsOwed += 1;
      print({ type: 'run-owed', reason: trigger.reason, rebucketing: trigger.rebucketing, at: trigger.at });
    },
  });
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let drained = true;
  let drainError: string | null = null;
  // Without --dry-run this process drains the deployment's pending set: it leads, or it does not run.
  const lease = dryRun ? null : await leadOrRefuse(runtime, interrupt);
  if (lease === 'refused') {
    await runtime.close();
    process.stderr.write(`ff-detector watch ${source}: a daemon leads this deployment (it drains the feed's pending users); stop it, or add --dry-run\n`);
    return EXIT_USAGE;
  }
  try {
    runner.start(interrupt.signal);
    runner.setLeading(true);
    if (untilEnd) {
      await Promise.race([runner.ended, new Promise((resolve) => interrupt.signal.addEventListener('abort', resolve, { once: true }))]);
      try {
        if (!interrupt.signal.aborted) drained = await runner.drainAll(interrupt.signal);
      } catch (error) {
        // Valkey or SQS gone at the end: the users stay pending (the next watch or the daemon sends them).
        drained = false;
        drainError = errorMessage(error);
      }
    } else {
      await new Promise((resolve) => interrupt.signal.addEventListener('abort', resolve, { once: true }));
    }
    const status = await runner.status();
    await runner.stop();
    // A full run owed and not yet due (debounced) when the watch ends: the daemon's leader starts it.
    if (status.runOwed) print({ type: 'run-owed', reason: status.runOwed.reason, rebucketing: status.runOwed.rebucketing, at: status.runOwed.at, pending: true });
    const failed = status.health.state === 'failed' || !drained;
    await writeLine(out, JSON.stringify({ type: 'summary', feed: strategy, dryRun, shadow: feed.shadow, state: status.health.state, error: drainError ?? status.health.error ?? status.error, ...counts, runOwed: status.runOwed?.reason ?? null, pendingLeft: status.pending, messages: (status.details as { messages?: unknown } | null)?.messages ?? null, details: status.details, durationMs: Date.now() - startedAt }));
    return failed ? EXIT_RUN_FAILED : EXIT_OK;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await runner.stop().catch(() => undefined); // safe twice; stops the feed when anything above threw
    await lease?.release();
    await runtime.close();
  }
}

function changeLine(change: FeedChange, at: { partition: number; offset: string }): object {
  const base = { type: 'change', change: change.type, partition: at.partition, offset: at.offset };
  if (change.type === 'resync') return { ...base, reason: change.reason };
  const users = change.users.slice(0, USERS_SHOWN);
  const extra = change.type === 'snapshot' ? { enabled: change.enabled ?? null, percentage: change.percentage ?? null } : {};
  const userCount = change.type === 'snapshot' && change.stage ? change.stage.count : change.users.length;
  return { ...base, ...extra, userCount, users, usersTruncated: userCount > users.length };
}

/**
 * Takes the daemon's leader lock for the watch's duration (renewed every third of its TTL), so no
 * daemon drains or starts owed runs meanwhile; a lost lock stops the watch. 'refused' when a
 * daemon holds it.
 */
async function leadOrRefuse(runtime: Runtime, interrupt: AbortController): Promise<{ release: () => Promise<void> } | 'refused'> {
  const { locks } = await runtime.openStore();
  const key = `${runtime.config.state.detectorKeyPrefix}leader`;
  const token = `watch-${randomUUID()}`;
  const ttl = runtime.config.daemon.leaderTtlMs;
  // A holder that died (a killed watch or daemon) lets its lease lapse within the TTL: wait that long.
  const deadline = Date.now() + ttl + 1000;
  while (!(await locks.tryLock(key, token, ttl))) {
    if (Date.now() > deadline || interrupt.signal.aborted) return 'refused';
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const renewal = setInterval(() => {
    locks.renewLock(key, token, ttl).then(
      (held) => held || interrupt.abort(new Error('lost the leader lock')),
      () => undefined, // Valkey blipped: the next renewal tries again within the TTL
    );
  }, ttl / 3);
  return {
    release: async () => {
      clearInterval(renewal);
      await locks.unlock(key, token).catch(() => undefined);
    },
  };
}

import { sourceOfIds } from '../src/candidates/memory-source.js';
import { detectionSettingsOf } from '../src/config/settings.js';
import { liveStateChecker } from '../src/feeds/live-checker.js';
import type { FeedStore } from '../src/feeds/live-state.js';
import { runDetection } from '../src/pipeline/detection.js';
import type { RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import type { OutgoingMessage } from '../src/sink/message.js';
import { ObservedSink } from '../src/sink/observed-sink.js';
import type { EntryOutcome, MessageSink } from '../src/sink/types.js';

/** Pending users handled per drain pass: one pipeline run each. */
export const DRAIN_BATCH = 1000;

/** How a feed's pending users are handled. */
export interface DrainMode {
  /** The strategy's name, for summaries and metrics. */
  strategy: string;
  /** Record what would be sent and when (FeedStore.recordShadow), send nothing. */
  shadow: boolean;
  /** Send nothing and record nothing shared (watch --dry-run). */
  dryRun: boolean;
}

export interface DrainPass {
  users: number;
  summary: RunSummary;
  /** The users the queue accepted (or, in shadow and dry-run, would have been sent). */
  sent: string[];
  /** False when the pass did not finish cleanly: its users stay pending for the next pass. */
  settled: boolean;
}

/**
 * One pass over (up to DRAIN_BATCH of) a feed's pending users, through the normal pipeline: each
 * is evaluated with the live state over the rules (an added but excluded user is not sent), known
 * and loaded users are skipped, the rest sent under the shared rate limit and the send gates and
 * marked once SQS accepted them; a pending user now disabled is forgotten, under the forget guard.
 * Only a pass without failures settles its users; otherwise they stay pending and the next pass
 * handles them again (those sent meanwhile are known by then). Returns null when none are pending.
 */
export async function drainPending(runtime: Runtime, feedStore: FeedStore, mode: DrainMode, signal?: AbortSignal): Promise<DrainPass | null> {
  const { config, logger } = runtime;
  const { flag } = config;
  const users = await feedStore.peekPending(flag, DRAIN_BATCH);
  if (users.length === 0) return null;
  // Read before the live state: a user pended again after this (a re-add while the pass sends) keeps
  // a newer token, and the settle below leaves it for the next pass.
  const tokens = await feedStore.pendingTokens(flag, users);
  const store = await runtime.openStore();
  const checker = liveStateChecker(await runtime.openChecker(), await feedStore.read(flag), feedStore);
  const recordOnly = mode.shadow || mode.dryRun;
  const sent: string[] = [];
  const sink = new ObservedSink(recordOnly ? new AcceptAll() : await runtime.openSink(false), (accepted) => void sent.push(...accepted));
  const summary = await runDetection(
    {
      source: sourceOfIds(users, `pending users of the ${mode.strategy} feed`),
      checker,
      known: store.known,
      stateDescription: store.description,
      sink,
      limiter: recordOnly ? undefined : await runtime.createLimiter(false, sink),
      gate: recordOnly ? undefined : await runtime.createSendGate(false, sink),
      logger,
      events: runtime.events,
    },
    {
      strategy: mode.strategy,
      idPattern: runtime.idPattern,
      dryRun: recordOnly,
      forgetDisabled: !recordOnly && config.state.forgetDisabled,
      // The mass-removal check belongs to the change, not to a pass of at most 1,000 pending users
      // (where every removed known user is "100 % of the known users met"): the bucket feed holds a
      // snapshot that would remove too many, and the topic feed's removals are the flag system's
      // own explicit edits. A pass forgets the pending users now disabled.
      forgetPolicy: { maxFraction: 1, floor: 0, released: () => Promise.resolve(false) },
      budget: 0,
      ...detectionSettingsOf(config),
      signal,
    },
  );
  if (mode.shadow && !mode.dryRun) await feedStore.recordShadow(flag, sent, Date.now());
  // Unevaluable users stay pending while the flag service answers (http checker: a timeout, an
  // open breaker); with the rules, unevaluable is final (rules no one can evaluate offline).
  const transient = config.flags.checker === 'http' && summary.unevaluable > 0;
  const settled = summary.failed === 0 && summary.sentUnmarked === 0 && ['ok', 'degraded'].includes(summary.status) && !transient;
  if (settled) await feedStore.settle(flag, users, tokens);
  else logger.warn({ status: summary.status, failed: summary.failed, error: summary.error }, `feed drain pass ${summary.status}: its ${users.length} users stay pending`);
  return { users: users.length, summary, sent, settled };
}

/** Shadow and dry-run drains: every message "accepted", nothing sent anywhere. */
class AcceptAll implements MessageSink {
  readonly description = 'nowhere (shadow mode: recorded, not sent)';
  readonly maxBatchSize = 10;

  send(messages: readonly OutgoingMessage[]): Promise<EntryOutcome[]> {
    return Promise.resolve(messages.map(() => ({ ok: true as const })));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

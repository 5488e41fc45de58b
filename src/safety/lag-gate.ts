import type { Logger } from '../logger.js';
import type { DetectorEventBus } from '../observability/events.js';
import { PausingGate, type GateReading } from '../send/send-gate.js';
import type { Clock } from '../time.js';
import type { LagReader, GroupLag } from './consumer-lag.js';

export interface LagLimits {
  /** How far behind the oldest unconsumed message may be; null: not measured. */
  maxLagSeconds: number | null;
  /** How many messages may be unconsumed per group and topic; null: not counted. */
  maxLag: number | null;
}

export interface LagVerdict {
  ok: boolean;
  lags: GroupLag[];
  /** Why enqueueing must wait, naming each group over a limit. */
  reason: string | null;
}

/**
 * Seed runbook: backfilling while the worker's consumers lag can double-count aggregates. "Lag 0"
 * there means consuming in real time, not replaying a backlog: a busy group that is caught up
 * always has a few messages it has not committed yet, all of them recent. So the main measure is
 * time — is any unconsumed message older than maxLagSeconds? — and a message count is optional.
 */
export async function checkConsumerLag(reader: LagReader, groups: ReadonlyArray<{ group: string; topic: string }>, limits: LagLimits, now = Date.now()): Promise<LagVerdict> {
  const behindBefore = limits.maxLagSeconds === null ? null : now - limits.maxLagSeconds * 1000;
  const lags = await Promise.all(groups.map(({ group, topic }) => reader.lag(group, topic, behindBefore)));
  const reasons: string[] = [];
  for (const entry of lags) {
    const behind = entry.partitions.filter((p) => p.behind).map((p) => p.partition);
    if (behind.length > 0) {
      reasons.push(`consumer group ${entry.group} is more than ${limits.maxLagSeconds} s behind on ${entry.topic} (partition ${behind.join(', ')}; ${entry.lag} messages unconsumed)`);
    } else if (limits.maxLag !== null && entry.lag > limits.maxLag) {
      reasons.push(`consumer group ${entry.group} lags ${entry.lag} messages on ${entry.topic} (limit ${limits.maxLag})`);
    }
  }
  return { ok: reasons.length === 0, lags, reason: reasons.length === 0 ? null : reasons.join('; ') };
}

export interface LagGateSettings {
  groups: ReadonlyArray<{ group: string; topic: string }>;
  limits: LagLimits;
  /** How often the lag is read again while sending (safety.consumerLag.recheckMs). */
  recheckMs: number;
  /** safety.maxPauseMinutes, in ms. */
  maxPauseMs: number;
}

/** While paused, the lag is read this often at most, so sending resumes soon after it clears. */
const PAUSED_RECHECK_MS = 30_000;

/**
 * The consumer-lag gate in front of every send (polling runs, CLI and admin backfills, feeds):
 * read before the first send and every recheckMs after; while a group lags, sending pauses —
 * nothing sent, nothing marked — and gives up after safety.maxPauseMinutes. A lag that cannot be
 * read stops the send (fail closed).
 */
export function consumerLagGate(reader: LagReader, settings: LagGateSettings, logger: Logger, events?: DetectorEventBus, clock?: Clock): PausingGate {
  const read = async (): Promise<GateReading> => {
    const verdict = await checkConsumerLag(reader, settings.groups, settings.limits, clock?.epochMs(clock.now()));
    events?.emit('safety:lag', verdict.lags);
    return verdict.ok ? { open: true, description: 'consumer lag is within the limit' } : { open: false, description: verdict.reason ?? 'consumer lag' };
  };
  const options = { name: 'consumer_lag' as const, recheckMs: settings.recheckMs, pausedRecheckMs: Math.min(settings.recheckMs, PAUSED_RECHECK_MS), maxPauseMs: settings.maxPauseMs };
  return new PausingGate(read, options, logger, (gate, paused, reason) => events?.emit('send:paused', { gate, paused, reason }), clock);
}

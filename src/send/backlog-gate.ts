import type { Logger } from '../logger.js';
import type { DetectorEventBus } from '../observability/events.js';
import type { Clock } from '../time.js';
import { PausingGate, type GateReading } from './send-gate.js';

export interface BacklogGateSettings {
  /** sqs.maxBacklog: above it, sending pauses. */
  maxBacklog: number;
  /** sqs.backlogCheckMs: how often the backlog is read while sending, and while paused. */
  recheckMs: number;
  /** safety.maxPauseMinutes, in ms. */
  maxPauseMs: number;
}

/**
 * Never flood the worker: before each send, the queue's backlog (messages waiting plus in flight)
 * is compared with sqs.maxBacklog. Above it, sending pauses — nothing sent, nothing marked — and
 * resumes once the worker brought it below, or gives up after safety.maxPauseMinutes. A backlog
 * that cannot be read stops the send (fail closed).
 */
export function backlogGate(readBacklog: () => Promise<number>, settings: BacklogGateSettings, logger: Logger, events?: DetectorEventBus, clock?: Clock): PausingGate {
  const { maxBacklog } = settings;
  const read = async (): Promise<GateReading> => {
    const backlog = await readBacklog();
    events?.emit('send:backlog', backlog);
    return backlog > maxBacklog
      ? { open: false, description: `queue backlog ${backlog} is above sqs.maxBacklog ${maxBacklog}; waiting for the worker to catch up` }
      : { open: true, description: `queue backlog ${backlog} is within sqs.maxBacklog ${maxBacklog}` };
  };
  const options = { name: 'queue_backlog' as const, recheckMs: settings.recheckMs, pausedRecheckMs: settings.recheckMs, maxPauseMs: settings.maxPauseMs };
  return new PausingGate(read, options, logger, (gate, paused, reason) => events?.emit('send:paused', { gate, paused, reason }), clock);
}

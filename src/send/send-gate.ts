import { FfError } from '../errors.js';
import type { Logger } from '../logger.js';
import { formatElapsed, systemClock, type Clock } from '../time.js';

/** Which guard closed the gate: a label of ff_detector_sending_paused. */
export type GateName = 'queue_backlog' | 'consumer_lag';

/** One reading of what a gate guards. */
export interface GateReading {
  open: boolean;
  /** What was read, for the log: why it is closed, or that it is back within its limit. */
  description: string;
}

/** Something sending must wait for before each request. */
export interface SendGate {
  /**
   * Resolves once sending may go on, with how long it waited. Throws when the guarded value
   * cannot be read (fail closed) or the gate stayed closed longer than its limit (SENDING_HELD).
   */
  waitOpen(signal?: AbortSignal): Promise<number>;
}

export interface PausingGateOptions {
  name: GateName;
  /** How often the value is read again while the gate is open. */
  recheckMs: number;
  /** How often it is read while the gate is closed, to resume soon after it clears. */
  pausedRecheckMs: number;
  /** A pause this long gives up (safety.maxPauseMinutes): what was not sent stays unmarked. */
  maxPauseMs: number;
}

/**
 * A gate over a value read from outside (the queue's backlog, the worker's consumer lag). Every
 * sender of a run shares one: one reading per interval, one log line when sending pauses and one
 * when it resumes, and one pause clock, so concurrent senders give up together.
 */
export class PausingGate implements SendGate {
  private checkedAt = Number.NEGATIVE_INFINITY;
  private reading: GateReading = { open: true, description: '' };
  private reading$: Promise<GateReading> | undefined;
  private pausedSince: number | undefined;
  /** Once a pause outlasted maxPauseMs, every later wait fails at once: the run is over. */
  private gaveUp: FfError | undefined;

  constructor(
    private readonly read: () => Promise<GateReading>,
    private readonly options: PausingGateOptions,
    private readonly logger: Logger,
    /** Each change of state, with the reading behind it (metrics, /status). */
    private readonly onPause: (name: GateName, paused: boolean, reason: string) => void = () => undefined,
    private readonly clock: Clock = systemClock,
  ) {}

  async waitOpen(signal?: AbortSignal): Promise<number> {
    if (this.gaveUp) throw this.gaveUp;
    const started = this.clock.now();
    try {
      return await this.waitLoop(signal, started);
    } catch (error) {
      // Given up, cancelled or unreadable: sending is no longer paused, it has stopped.
      this.endPause();
      throw error;
    }
  }

  private async waitLoop(signal: AbortSignal | undefined, started: number): Promise<number> {
    const { name, recheckMs, pausedRecheckMs, maxPauseMs } = this.options;
    let lastLook = false;
    for (;;) {
      signal?.throwIfAborted();
      const interval = this.pausedSince === undefined ? recheckMs : pausedRecheckMs;
      if (this.clock.now() - this.checkedAt >= interval) this.reading = await abortable(this.readOnce(), signal);
      if (this.reading.open) {
        if (this.pausedSince !== undefined) this.logger.info({ gate: name, pausedMs: Math.round(this.clock.now() - this.pausedSince) }, `sending resumes: ${this.reading.description}`);
        this.endPause();
        return this.clock.now() - started;
      }
      const now = this.clock.now();
      if (this.pausedSince === undefined) {
        this.pausedSince = now;
        this.onPause(name, true, this.reading.description);
        this.logger.warn({ gate: name }, `sending paused: ${this.reading.description}`);
      }
      const pausedMs = now - this.pausedSince;
      // Give up only on a fresh reading: the worker may have caught up since the last one.
      if (pausedMs >= maxPauseMs && !lastLook) {
        lastLook = true;
        this.reading = await abortable(this.readOnce(), signal);
        continue;
      }
      if (pausedMs >= maxPauseMs) {
        this.gaveUp = new FfError(
          'SENDING_HELD',
          `sending gave up after a pause of ${formatElapsed(pausedMs)} (safety.maxPauseMinutes): ${this.reading.description}; users not sent are left unmarked for a later run`,
        );
        throw this.gaveUp;
      }
      await this.clock.sleep(Math.min(pausedRecheckMs, maxPauseMs - pausedMs), signal);
    }
  }

  /** One read at a time, shared by the senders that need it. */
  private readOnce(): Promise<GateReading> {
    this.reading$ ??= this.read().finally(() => {
      this.checkedAt = this.clock.now();
      this.reading$ = undefined;
    });
    return this.reading$;
  }

  private endPause(): void {
    if (this.pausedSince === undefined) return;
    this.pausedSince = undefined;
    this.onPause(this.options.name, false, this.reading.description);
  }
}

/** Waits for every gate in turn: sending goes on only when all are open. */
export class AllGates implements SendGate {
  constructor(private readonly gates: readonly SendGate[]) {}

  async waitOpen(signal?: AbortSignal): Promise<number> {
    let waited = 0;
    for (const gate of this.gates) waited += await gate.waitOpen(signal);
    return waited;
  }

  /** The gates given, combined; undefined when there is none. */
  static of(gates: ReadonlyArray<SendGate | undefined>): SendGate | undefined {
    const present = gates.filter((gate): gate is SendGate => gate !== undefined);
    if (present.length <= 1) return present[0];
    return new AllGates(present);
  }
}

/** `work`, unless `signal` aborts first (a shutdown does not wait for a slow read). */
function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

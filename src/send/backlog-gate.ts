import type { Logger } from '../logger.js';
import { systemClock, type Clock } from '../time.js';

/**
 * Never flood the worker: before each send, the queue's backlog (messages waiting plus in flight)
 * is compared with the limit, read again at most every `recheckMs`. Above it, sending pauses —
 * nothing sent, nothing marked — and resumes once the worker brought it below. A backlog that
 * cannot be read stops the send (fail closed).
 */
export class BacklogGate {
  private checkedAt = Number.NEGATIVE_INFINITY;
  private backlog = 0;
  private paused = false;

  constructor(
    private readonly readBacklog: () => Promise<number>,
    private readonly maxBacklog: number,
    private readonly logger: Logger,
    private readonly recheckMs: number,
    /** Each reading, and whether sending is paused by it (metrics). */
    private readonly onReading: (backlog: number, paused: boolean) => void = () => undefined,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Resolves once the backlog is at most the limit; how long it waited. */
  async waitBelow(signal?: AbortSignal): Promise<number> {
    const started = this.clock.now();
    for (;;) {
      if (this.clock.now() - this.checkedAt >= this.recheckMs) {
        this.backlog = await this.readBacklog();
        this.checkedAt = this.clock.now();
        this.onReading(this.backlog, this.backlog > this.maxBacklog);
      }
      if (this.backlog <= this.maxBacklog) {
        if (this.paused) this.logger.info({ backlog: this.backlog, maxBacklog: this.maxBacklog }, `queue backlog ${this.backlog} is back within sqs.maxBacklog: sending resumes`);
        this.paused = false;
        return this.clock.now() - started;
      }
      if (!this.paused) this.logger.warn({ backlog: this.backlog, maxBacklog: this.maxBacklog }, `queue backlog ${this.backlog} above sqs.maxBacklog ${this.maxBacklog}: sending paused until the worker catches up`);
      this.paused = true;
      await this.clock.sleep(this.recheckMs, signal);
    }
  }
}

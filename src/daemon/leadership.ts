import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { RunLease } from '../state/run-lease.js';
import type { Locks } from '../state/types.js';

export type Role = 'leader' | 'follower';

/**
 * One leader across replicas: every replica tries to take the leader lock (unique token, TTL)
 * every third of the TTL; the holder renews it and is the only one that polls. When the leader
 * dies its lock expires and another replica takes over within the TTL. A leader that cannot renew
 * (lock lost or taken) steps down at once, and its run's signal is aborted (fencing).
 */
export class Leadership {
  private lease: RunLease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly locks: Locks,
    private readonly key: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly onChange: (role: Role) => void = () => undefined,
  ) {}

  get role(): Role {
    return this.lease && !this.lease.lost.aborted ? 'leader' : 'follower';
  }

  /** Aborts when leadership is lost; undefined while following. */
  get signal(): AbortSignal | undefined {
    return this.lease?.lost;
  }

  start(): Promise<void> {
    return this.attempt();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const lease = this.lease;
    this.lease = undefined;
    await lease?.release();
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    try {
      const lease = await RunLease.acquire(this.locks, this.key, this.logger, this.ttlMs);
      if (lease && !this.stopped) {
        this.lease = lease;
        this.logger.info({ lock: this.key, token: lease.token }, 'this replica is now the leader');
        this.onChange('leader');
        lease.lost.addEventListener('abort', () => this.stepDown(), { once: true });
        return;
      }
      await lease?.release();
    } catch (error) {
      this.logger.warn(`could not try the leader lock ${this.key}: ${errorMessage(error)}`);
    }
    this.schedule();
  }

  private stepDown(): void {
    this.lease = undefined;
    this.logger.warn({ lock: this.key }, 'leadership lost; following');
    this.onChange('follower');
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.attempt(), this.ttlMs / 3);
    this.timer.unref();
  }
}

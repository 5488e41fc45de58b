import { randomUUID } from 'node:crypto';
import { FfError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { SECOND } from '../time.js';
import type { Locks } from './types.js';

export const DEFAULT_LEASE_TTL_MS = 30 * SECOND;

/**
 * The "one run at a time" lease (design invariant 5): a lock with a unique token and a TTL,
 * renewed at a third of the TTL while the run lasts and released only by its owner. When a
 * renewal finds the lock gone or taken, `lost` aborts, and the run stops before sending more.
 */
export class RunLease {
  readonly token = randomUUID();
  private readonly lostController = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly locks: Locks,
    readonly key: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  /** The lease, or undefined when another run holds it. */
  static async acquire(locks: Locks, key: string, logger: Logger, ttlMs = DEFAULT_LEASE_TTL_MS): Promise<RunLease | undefined> {
    const lease = new RunLease(locks, key, ttlMs, logger);
    if (!(await locks.tryLock(key, lease.token, ttlMs))) return undefined;
    lease.scheduleRenewal();
    return lease;
  }

  /** Aborts when the lease is lost; the run passes it on as its cancel signal. */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  /** Never throws: a lock that cannot be released (Valkey gone) expires by its TTL. */
  async release(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    try {
      await this.locks.unlock(this.key, this.token);
    } catch (error) {
      this.logger.warn({ lock: this.key }, `could not release the run lock; it expires within ${this.ttlMs} ms: ${errorMessage(error)}`);
    }
  }

  private scheduleRenewal(): void {
    this.timer = setTimeout(() => void this.renew(), this.ttlMs / 3);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    try {
      if (await this.locks.renewLock(this.key, this.token, this.ttlMs)) {
        this.scheduleRenewal();
        return;
      }
      this.lose(new FfError('RUN_CANCELLED', `lost the run lock ${this.key} to another process`));
    } catch (error) {
      // The store is unreachable: the run fails (it did not lose its lock to someone, it cannot tell).
      this.lose(new FfError('STATE_UNAVAILABLE', `could not renew the run lock ${this.key}: ${errorMessage(error)}`, { cause: error }));
    }
  }

  private lose(reason: FfError): void {
    this.logger.error({ lock: this.key }, reason.message);
    this.lostController.abort(reason);
  }
}

import type { Locks, Permits, RunHistory } from '../types.js';
import type { ValkeyConnection } from './connection.js';

/** Compare-and-act scripts: only the holder of the token may extend or release a lock. */
const RENEW_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const DELETE_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** Leases as single keys (SET NX PX; scripts for renew and release), so each lives in one slot. */
export class ValkeyLocks implements Locks {
  constructor(private readonly connection: ValkeyConnection) {}

  async tryLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.connection.call('SET NX', () => this.connection.client.set(key, token, 'PX', ttlMs, 'NX'))) === 'OK';
  }

  async renewLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.connection.call('renew lock', () => this.connection.client.eval(RENEW_IF_OWNER, 1, key, token, ttlMs))) === 1;
  }

  async unlock(key: string, token: string): Promise<void> {
    await this.connection.call('unlock', () => this.connection.client.eval(DELETE_IF_OWNER, 1, key, token));
  }
}

/** The run history: one list, LPUSH + LTRIM in a transaction. */
export class ValkeyRunHistory implements RunHistory {
  constructor(
    private readonly connection: ValkeyConnection,
    private readonly key: string,
  ) {}

  async push(entry: string, keep: number): Promise<void> {
    await this.connection.call('LPUSH', () => this.connection.client.multi().lpush(this.key, entry).ltrim(this.key, 0, keep - 1).exec());
  }

  read(count: number): Promise<string[]> {
    return this.connection.call('LRANGE', () => this.connection.client.lrange(this.key, 0, count - 1));
  }
}

/** Permits as single keys: SET with a TTL, taken with GETDEL (one atomic step). */
export class ValkeyPermits implements Permits {
  constructor(private readonly connection: ValkeyConnection) {}

  async grant(key: string, ttlMs: number): Promise<void> {
    await this.connection.call('SET', () => this.connection.client.set(key, new Date().toISOString(), 'PX', ttlMs));
  }

  async take(key: string): Promise<boolean> {
    return (await this.connection.call('GETDEL', () => this.connection.client.getdel(key))) !== null;
  }
}

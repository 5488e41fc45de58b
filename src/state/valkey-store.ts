import { Valkey } from 'iovalkey';
import { FfError, errorMessage } from '../errors.js';
import type { StateKeys, StateStore } from './types.js';

export interface ValkeyStoreOptions extends StateKeys {
  /** List of recent run summaries (LPUSH + LTRIM). */
  historyKey?: string;
  url: string;
  connectTimeoutMs: number;
  /** A command unanswered for this long fails the run instead of hanging it. */
  commandTimeoutMs?: number;
}

/** Compare-and-act scripts: only the holder of the token may extend or release a lock. */
const RENEW_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const DELETE_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * State in Valkey: SMISMEMBER for the known set (one call per batch), pipelined EXISTS for
 * `loaded_users:{id}`, SADD/SREM to mark and forget. Commands fail fast while disconnected
 * (no offline queue, one attempt): a run that loses Valkey fails cleanly and the next one retries.
 */
export class ValkeyStateStore implements StateStore {
  readonly description: string;
  private readonly client: Valkey;
  private connecting: Promise<void> | undefined;
  private closed = false;
  private lastConnectionError: Error | undefined;

  constructor(
    private readonly options: ValkeyStoreOptions,
    client?: Valkey,
  ) {
    this.description = `valkey ${redactUrl(options.url)} (set ${options.knownSetKey})`;
    this.client =
      client ??
      new Valkey(options.url, {
        lazyConnect: true,
        connectTimeout: options.connectTimeoutMs,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        retryStrategy: (attempt) => (attempt > 3 ? null : 100 * attempt),
      });
    // Errors reach callers through rejected commands; without a listener iovalkey would print
    // them. The last one is kept because a failed connect() only says "Connection is closed".
    this.client.on('error', (error: Error) => {
      this.lastConnectionError = error;
    });
  }

  /** The client's connection state (iovalkey's: wait, connecting, ready, reconnecting, end…). */
  get connectionState(): string {
    return this.client.status;
  }

  async ping(): Promise<void> {
    await this.call('PING', () => this.client.ping());
  }

  async areKnown(userIds: readonly string[]): Promise<boolean[]> {
    if (userIds.length === 0) return [];
    const flags = await this.call('SMISMEMBER', () => this.client.smismember(this.options.knownSetKey, userIds as string[]));
    return flags.map((flag) => flag === 1);
  }

  async areLoaded(userIds: readonly string[]): Promise<boolean[]> {
    if (userIds.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const id of userIds) pipeline.exists(this.options.loadedKeyPrefix + id);
    const replies = await this.call('EXISTS', () => pipeline.exec());
    if (!replies) throw new FfError('STATE_UNAVAILABLE', 'Valkey EXISTS pipeline was discarded', { retryable: true });
    return replies.map(([error, value]) => {
      if (error) throw toStateError('EXISTS', error, this.options.url);
      return value === 1;
    });
  }

  async markKnown(userIds: readonly string[]): Promise<void> {
    if (userIds.length > 0) await this.call('SADD', () => this.client.sadd(this.options.knownSetKey, userIds as string[]));
  }

  async forget(userIds: readonly string[]): Promise<void> {
    if (userIds.length > 0) await this.call('SREM', () => this.client.srem(this.options.knownSetKey, userIds as string[]));
  }

  async tryLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.call('SET NX', () => this.client.set(key, token, 'PX', ttlMs, 'NX'));
    return reply === 'OK';
  }

  async renewLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.call('renew lock', () => this.client.eval(RENEW_IF_OWNER, 1, key, token, ttlMs));
    return reply === 1;
  }

  async unlock(key: string, token: string): Promise<void> {
    await this.call('unlock', () => this.client.eval(DELETE_IF_OWNER, 1, key, token));
  }

  async pushHistory(entry: string, keep: number): Promise<void> {
    const key = this.historyKey;
    await this.call('LPUSH', () => this.client.multi().lpush(key, entry).ltrim(key, 0, keep - 1).exec());
  }

  async readHistory(count: number): Promise<string[]> {
    return this.call('LRANGE', () => this.client.lrange(this.historyKey, 0, count - 1));
  }

  private get historyKey(): string {
    return this.options.historyKey ?? 'backfill:detector:runs';
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.client.status === 'end' || this.client.status === 'wait') return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  /**
   * Connects on first use (the client is lazy and keeps no offline queue), and again after the
   * client gave up reconnecting, so a long-running process recovers once Valkey is back.
   */
  private connect(): Promise<void> {
    if (this.client.status !== 'wait' && this.client.status !== 'end') return Promise.resolve();
    this.connecting ??= this.client.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /**
   * One timer per call (a batch), not per command as iovalkey's commandTimeout would set: a
   * call unanswered in time fails the run, and the connection, in an unknown state, is dropped.
   */
  private withTimeout<T>(command: string, work: Promise<T>): Promise<T> {
    const limit = this.options.commandTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.client.disconnect();
        reject(new Error(`no reply to ${command} within ${limit} ms`));
      }, limit);
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  private async call<T>(command: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) throw new FfError('STATE_UNAVAILABLE', `Valkey ${command}: the store is closed`);
    try {
      await this.connect().catch((error: unknown) => {
        throw toStateError('connect', this.lastConnectionError ?? error, this.options.url);
      });
      return await this.withTimeout(command, run());
    } catch (error) {
      throw toStateError(command, error, this.options.url);
    }
  }
}

function toStateError(command: string, error: unknown, url?: string): FfError {
  if (error instanceof FfError) return error;
  const where = url ? ` at ${redactUrl(url)}` : '';
  return new FfError('STATE_UNAVAILABLE', `Valkey ${command} failed${where}: ${errorMessage(error)}`, {
    cause: error,
    retryable: true,
  });
}

/** Keeps passwords out of logs and errors. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

import { FfError } from '../../errors.js';
import type { KnownUsers } from '../types.js';
import { toStateError, type ValkeyConnection } from './connection.js';

export interface KnownUserKeys {
  /** The known set (SADD only after SQS accepted). */
  knownSetKey: string;
  /** The worker's `loaded_users:{id}` keys, read only. */
  loadedKeyPrefix: string;
}

/**
 * SMISMEMBER per batch for the known set (one key), EXISTS for loaded_users (pipelined on a
 * single node, per node on a cluster), SADD/SREM.
 */
export class ValkeyKnownUsers implements KnownUsers {
  constructor(
    private readonly connection: ValkeyConnection,
    private readonly keys: KnownUserKeys,
  ) {}

  async areKnown(userIds: readonly string[]): Promise<boolean[]> {
    if (userIds.length === 0) return [];
    const flags = await this.connection.call('SMISMEMBER', () => this.connection.client.smismember(this.keys.knownSetKey, userIds as string[]));
    return flags.map((flag) => flag === 1);
  }

  async areLoaded(userIds: readonly string[]): Promise<boolean[]> {
    if (userIds.length === 0) return [];
    const { client } = this.connection;
    if (this.connection.cluster) {
      // The keys are spread over every slot: one EXISTS each, auto-pipelined into one write per node.
      const replies = await this.connection.call('EXISTS', () => Promise.all(userIds.map((id) => client.exists(this.keys.loadedKeyPrefix + id))));
      return replies.map((value) => value === 1);
    }
    const pipeline = client.pipeline();
    for (const id of userIds) pipeline.exists(this.keys.loadedKeyPrefix + id);
    const replies = await this.connection.call('EXISTS', () => pipeline.exec());
    if (!replies) throw new FfError('STATE_UNAVAILABLE', 'Valkey EXISTS pipeline was discarded', { retryable: true });
    return replies.map(([error, value]) => {
      if (error) throw toStateError('EXISTS', error);
      return value === 1;
    });
  }

  async markKnown(userIds: readonly string[]): Promise<void> {
    if (userIds.length > 0) await this.connection.call('SADD', () => this.connection.client.sadd(this.keys.knownSetKey, userIds as string[]));
  }

  async forget(userIds: readonly string[]): Promise<void> {
    if (userIds.length > 0) await this.connection.call('SREM', () => this.connection.client.srem(this.keys.knownSetKey, userIds as string[]));
  }
}

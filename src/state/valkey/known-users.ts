import { Cluster } from 'iovalkey';
import { FfError } from '../../errors.js';
import { slotOf } from './slot.js';
import type { KnownUsers } from '../types.js';
import { toStateError, type ValkeyConnection } from './connection.js';

export interface KnownUserKeys {
  /** The known set (SADD only after SQS accepted). */
  knownSetKey: string;
  /** The worker's `loaded_users:{id}` keys, read only. */
  loadedKeyPrefix: string;
}

/**
 * SMISMEMBER per batch for the known set (one key), EXISTS for loaded_users (one pipeline on a
 * single node, one per node on a cluster), SADD/SREM.
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
    if (client instanceof Cluster) return this.areLoadedOnCluster(client, userIds);
    const pipeline = client.pipeline();
    for (const id of userIds) pipeline.exists(this.keys.loadedKeyPrefix + id);
    const replies = await this.connection.call('EXISTS', () => pipeline.exec());
    if (!replies) throw new FfError('STATE_UNAVAILABLE', 'Valkey EXISTS pipeline was discarded', { retryable: true });
    return replies.map(([error, value]) => {
      if (error) throw toStateError('EXISTS', error);
      return value === 1;
    });
  }

  /**
   * The keys spread over every slot, and a cluster pipeline must stay on one node: one pipeline
   * of EXISTS per node (the client's slot map), each answered in one round trip. A MOVED during a
   * resharding is followed by the client.
   */
  private async areLoadedOnCluster(client: Cluster, userIds: readonly string[]): Promise<boolean[]> {
    const keys = userIds.map((id) => this.keys.loadedKeyPrefix + id);
    const byNode = new Map<string, number[]>();
    keys.forEach((key, index) => {
      const slot = slotOf(key);
      const node = client.slots[slot]?.join(',') ?? `slot ${slot}`;
      byNode.set(node, [...(byNode.get(node) ?? []), index]);
    });
    const loaded = new Array<boolean>(keys.length).fill(false);
    await this.connection.call('EXISTS', () =>
      Promise.all(
        [...byNode.values()].map(async (indexes) => {
          const pipeline = client.pipeline();
          for (const index of indexes) pipeline.exists(keys[index] as string);
          const replies = await pipeline.exec();
          if (!replies) throw new FfError('STATE_UNAVAILABLE', 'Valkey EXISTS pipeline was discarded', { retryable: true });
          replies.forEach(([error, value], i) => {
            if (error) throw toStateError('EXISTS', error);
            loaded[indexes[i] as number] = value === 1;
          });
        }),
      ),
    );
    return loaded;
  }

  async markKnown(userIds: readonly string[]): Promise<void> {
    if (userIds.length > 0) await this.connection.call('SADD', () => this.connection.client.sadd(this.keys.knownSetKey, userIds as string[]));
  }

  async *scan(batchSize: number): AsyncIterable<string[]> {
    let cursor = '0';
    do {
      const [next, members] = await this.connection.call('SSCAN', () => this.connection.client.sscan(this.keys.knownSetKey, cursor, 'COUNT', batchSize));
      cursor = next;
      if (members.length > 0) yield members;
    } while (cursor !== '0');
  }

  count(): Promise<number> {
    return this.connection.call('SCARD', () => this.connection.client.scard(this.keys.knownSetKey));
  }

  async forget(userIds: readonly string[]): Promise<void> {
    if (userIds.length > 0) await this.connection.call('SREM', () => this.connection.client.srem(this.keys.knownSetKey, userIds as string[]));
  }
}

import type { ReplicaBoard } from '../types.js';
import type { ValkeyConnection } from './connection.js';

/** Valkey's clock, in milliseconds: every replica's deadlines are read against the same time. */
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** A heartbeat field holds "<deadline ms> <entry>". */
const ANNOUNCE = `${NOW} redis.call('HSET', KEYS[1], ARGV[1], (now + tonumber(ARGV[2])) .. ' ' .. ARGV[3]) return 1`;

/** The live entries; expired (or unreadable) fields are removed in the same step, so a heartbeat written meanwhile is never lost. */
const READ_LIVE = `${NOW}
local fields = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #fields, 2 do
  local value = fields[i + 1]
  local space = string.find(value, ' ', 1, true)
  local deadline = space and tonumber(string.sub(value, 1, space - 1))
  if deadline and deadline > now then live[#live + 1] = string.sub(value, space + 1) else redis.call('HDEL', KEYS[1], fields[i]) end
end
return live`;

/**
 * The replicas' board in Valkey: heartbeats in one hash (`{prefix}replicas`, a field per replica
 * holding its deadline by Valkey's clock — hash fields cannot expire on every Valkey a deployment
 * runs, and the replicas' clocks may differ), notes as single keys with a TTL. Every call touches
 * one key, so it works on a cluster.
 */
export class ValkeyReplicaBoard implements ReplicaBoard {
  private readonly replicasKey: string;

  constructor(
    private readonly connection: ValkeyConnection,
    private readonly prefix: string,
  ) {
    this.replicasKey = `${prefix}replicas`;
  }

  async announce(replicaId: string, entry: string, ttlMs: number): Promise<void> {
    await this.connection.call('announce', () => this.connection.client.eval(ANNOUNCE, 1, this.replicasKey, replicaId, ttlMs, entry));
  }

  async replicas(): Promise<string[]> {
    return (await this.connection.call('read replicas', () => this.connection.client.eval(READ_LIVE, 1, this.replicasKey))) as string[];
  }

  async withdraw(replicaId: string): Promise<void> {
    await this.connection.call('HDEL', () => this.connection.client.hdel(this.replicasKey, replicaId));
  }

  async post(name: string, entry: string | null, ttlMs: number | null): Promise<void> {
    const key = this.noteKey(name);
    if (entry === null) await this.connection.call('DEL', () => this.connection.client.del(key));
    else if (ttlMs === null) await this.connection.call('SET', () => this.connection.client.set(key, entry));
    else await this.connection.call('SET', () => this.connection.client.set(key, entry, 'PX', ttlMs));
  }

  read(name: string): Promise<string | null> {
    return this.connection.call('GET', () => this.connection.client.get(this.noteKey(name)));
  }

  private noteKey(name: string): string {
    return `${this.prefix}board:${name}`;
  }
}

import type { ReplicaBoard } from '../types.js';
import type { ValkeyConnection } from './connection.js';

interface Heartbeat {
  expiresAt: number;
  entry: string;
}

/**
 * The replicas' board in Valkey: heartbeats in one hash (`{prefix}replicas`, a field per replica
 * holding its own deadline, since hash fields cannot expire on every Valkey a deployment runs),
 * notes as single keys with a TTL. Every call touches one key, so it works on a cluster.
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
    const heartbeat: Heartbeat = { expiresAt: Date.now() + ttlMs, entry };
    await this.connection.call('HSET', () => this.connection.client.hset(this.replicasKey, replicaId, JSON.stringify(heartbeat)));
  }

  async replicas(): Promise<string[]> {
    const fields = await this.connection.call('HGETALL', () => this.connection.client.hgetall(this.replicasKey));
    const now = Date.now();
    const heard: string[] = [];
    const expired: string[] = [];
    for (const [replicaId, value] of Object.entries(fields)) {
      const heartbeat = parseHeartbeat(value);
      if (heartbeat && heartbeat.expiresAt > now) heard.push(heartbeat.entry);
      else expired.push(replicaId);
    }
    // A replica that died never withdraws: whoever reads next clears it.
    if (expired.length > 0) await this.connection.call('HDEL', () => this.connection.client.hdel(this.replicasKey, ...expired));
    return heard;
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

function parseHeartbeat(value: string): Heartbeat | undefined {
  try {
    const parsed = JSON.parse(value) as Partial<Heartbeat>;
    return typeof parsed.expiresAt === 'number' && typeof parsed.entry === 'string' ? { expiresAt: parsed.expiresAt, entry: parsed.entry } : undefined;
  } catch {
    return undefined; // written by something else: treated as expired, and cleared
  }
}

import type { ValkeyConnection } from '../state/valkey/connection.js';

/**
 * Where a feed's knowledge of the flag came from: the message's time, then its partition and
 * offset. An older message — another partition behind, a replay after a rebalance — never
 * overwrites a newer state.
 */
export interface LiveVersion {
  /** The message's timestamp (or the document's own version), milliseconds. */
  at: number;
  partition: number;
  offset: number;
}

/** The flag as the feed last saw it: what polling can evaluate with instead of a stale file. */
export interface LiveFlagState {
  flag: string;
  version: LiveVersion;
  enabled: boolean | null;
  percentage: number | null;
  /** The explicit users of the last snapshot, kept up to date by adds and removes. */
  users: string[];
  updatedAt: string;
}

export interface LiveStateStore {
  read(flag: string): Promise<LiveFlagState | null>;
  /** Stores `state` unless the stored one is as new or newer; says which. */
  apply(state: LiveFlagState): Promise<'applied' | 'stale'>;
}

export function isNewer(candidate: LiveVersion, stored: LiveVersion): boolean {
  if (candidate.at !== stored.at) return candidate.at > stored.at;
  if (candidate.partition !== stored.partition) return candidate.partition > stored.partition;
  return candidate.offset > stored.offset;
}

/**
 * Compare-and-set in one script, on one key (one slot on a cluster): the version check and the
 * write cannot be split by another replica's write.
 */
const APPLY_IF_NEWER = `
local current = redis.call('GET', KEYS[1])
if current then
  local v = cjson.decode(current).version
  local at, partition, offset = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if v.at > at or (v.at == at and (v.partition > partition or (v.partition == partition and v.offset >= offset))) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;

/** The live state in Valkey: one JSON value per flag, under a hash tag of its own. */
export class ValkeyLiveStateStore implements LiveStateStore {
  constructor(
    private readonly connection: ValkeyConnection,
    private readonly prefix: string,
  ) {}

  async read(flag: string): Promise<LiveFlagState | null> {
    const value = await this.connection.call('read live state', () => this.connection.client.get(this.key(flag)));
    return value === null ? null : (JSON.parse(value) as LiveFlagState);
  }

  async apply(state: LiveFlagState): Promise<'applied' | 'stale'> {
    const { at, partition, offset } = state.version;
    const reply = await this.connection.call('apply live state', () => this.connection.client.eval(APPLY_IF_NEWER, 1, this.key(state.flag), JSON.stringify(state), at, partition, offset));
    return reply === 1 ? 'applied' : 'stale';
  }

  private key(flag: string): string {
    return `${this.prefix}{feed:${flag}}:state`;
  }
}

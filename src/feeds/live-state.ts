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
  /** The explicit users: of the last snapshot, kept up to date by adds and removes. */
  users: string[];
  /**
   * True once a snapshot gave the whole list. Before that (only adds and removes seen) `users`
   * is what was added, and `removed` what was taken out, of a list the feed never saw whole.
   */
  complete: boolean;
  removed: string[];
  /** Digests of the definition's other rules and of its bucketing parameters (feeds/digest.ts). */
  rulesDigest: string | null;
  bucketingDigest: string | null;
  updatedAt: string;
}

/** Why a full polling run is owed (a change the feed cannot turn into users). */
export interface RunTrigger {
  reason: string;
  /** The rollout cohort was re-drawn (salt, seed, groupId, algorithm or flag key changed). */
  rebucketing: boolean;
  at: string;
}

export interface LiveStateCommit {
  state: LiveFlagState;
  /** The version the change was computed from (null: none stored): another write since is a conflict. */
  base: LiveVersion | null;
  /** Users whose flag result may have changed: the drain evaluates and sends or forgets them. */
  pending: readonly string[];
  trigger: RunTrigger | null;
}

export type CommitResult = 'applied' | 'stale' | 'conflict';

/**
 * What a feed keeps in Valkey, per flag: the live state, the pending set, the re-run flag and the
 * shadow record. Each commit writes the state, the pending users and the trigger at once, so a
 * crash never leaves a state whose users were not queued.
 */
export interface FeedStore {
  readonly description: string;
  read(flag: string): Promise<LiveFlagState | null>;
  /** Stores the commit unless the stored state is as new or newer (`stale`) or moved since `base` (`conflict`). */
  commit(flag: string, commit: LiveStateCommit): Promise<CommitResult>;
  /** Up to `max` pending users (not removed: settle() does that once they are handled). */
  peekPending(flag: string, max: number): Promise<string[]>;
  settle(flag: string, users: readonly string[]): Promise<void>;
  pendingSize(flag: string): Promise<number>;
  /** Takes the re-run flag: the trigger, once; null when none is set. */
  takeTrigger(flag: string): Promise<RunTrigger | null>;
  peekTrigger(flag: string): Promise<RunTrigger | null>;
  /** Puts a taken trigger back (no run could start), unless a newer one was set meanwhile. */
  restoreTrigger(flag: string, trigger: RunTrigger): Promise<void>;
  /** Shadow mode: when the feed would first have enqueued each user (kept if already there). */
  recordShadow(flag: string, users: readonly string[], atMs: number): Promise<void>;
  /** When the feed recorded each user (null: never), and those entries removed. */
  takeShadow(flag: string, users: readonly string[]): Promise<Array<number | null>>;
  /** Every shadow entry recorded before `beforeMs`, removed. */
  takeShadowBefore(flag: string, beforeMs: number): Promise<Array<{ user: string; atMs: number }>>;
  shadowSize(flag: string): Promise<number>;
}

export function isNewer(candidate: LiveVersion, stored: LiveVersion): boolean {
  if (candidate.at !== stored.at) return candidate.at > stored.at;
  if (candidate.partition !== stored.partition) return candidate.partition > stored.partition;
  return candidate.offset > stored.offset;
}

export function versionTag(version: LiveVersion): string {
  return `${version.at}:${version.partition}:${version.offset}`;
}

/**
 * Compare-and-set in one script on keys of one hash tag (one slot on a cluster): the version
 * check, the state, the pending users and the re-run flag are written together or not at all.
 * ARGV: state JSON, at, partition, offset, base tag ('' = nothing stored), trigger JSON ('' =
 * none), then the pending users. Returns 1 applied, 0 stale, 2 conflict.
 */
const COMMIT = `
local current = redis.call('GET', KEYS[1])
if current then
  local v = cjson.decode(current).version
  local at, partition, offset = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if v.at > at or (v.at == at and (v.partition > partition or (v.partition == partition and v.offset >= offset))) then return 0 end
  if ARGV[5] ~= string.format('%d:%d:%d', v.at, v.partition, v.offset) then return 2 end
elseif ARGV[5] ~= '' then
  return 2
end
redis.call('SET', KEYS[1], ARGV[1])
for i = 7, #ARGV, 500 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
if ARGV[6] ~= '' then redis.call('SET', KEYS[3], ARGV[6]) end
return 1`;

/**
 * HMGET then HDEL in one step: a user matched by one polling run is not matched again. In chunks
 * of 500: Lua 5.1's unpack() fails ("too many results to unpack") from about 8,000 values.
 */
const TAKE_FIELDS = `
local values = {}
for i = 1, #ARGV, 500 do
  local chunk = redis.call('HMGET', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
  for j = 1, #chunk do values[#values + 1] = chunk[j] end
end
for i = 1, #ARGV, 500 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
return values`;

/** The feed's keys in Valkey: `<prefix>{feed:<flag>}:state|pending|rerun|shadow`, one slot per flag. */
export class ValkeyFeedStore implements FeedStore {
  readonly description = 'valkey';

  constructor(
    private readonly connection: ValkeyConnection,
    private readonly prefix: string,
  ) {}

  async read(flag: string): Promise<LiveFlagState | null> {
    const value = await this.call('read the live state', (client) => client.get(this.key(flag, 'state')));
    return value === null ? null : (JSON.parse(value) as LiveFlagState);
  }

  async commit(flag: string, { state, base, pending, trigger }: LiveStateCommit): Promise<CommitResult> {
    const { at, partition, offset } = state.version;
    const keys = [this.key(flag, 'state'), this.key(flag, 'pending'), this.key(flag, 'rerun')];
    const args = [JSON.stringify(state), at, partition, offset, base ? versionTag(base) : '', trigger ? JSON.stringify(trigger) : '', ...pending];
    const reply = await this.call('commit the live state', (client) => client.eval(COMMIT, keys.length, ...keys, ...args));
    return reply === 1 ? 'applied' : reply === 2 ? 'conflict' : 'stale';
  }

  peekPending(flag: string, max: number): Promise<string[]> {
    return this.call('read pending users', (client) => client.srandmember(this.key(flag, 'pending'), max));
  }

  async settle(flag: string, users: readonly string[]): Promise<void> {
    if (users.length > 0) await this.call('settle pending users', (client) => client.srem(this.key(flag, 'pending'), ...users));
  }

  pendingSize(flag: string): Promise<number> {
    return this.call('count pending users', (client) => client.scard(this.key(flag, 'pending')));
  }

  async takeTrigger(flag: string): Promise<RunTrigger | null> {
    return parseTrigger(await this.call('take the re-run flag', (client) => client.getdel(this.key(flag, 'rerun'))));
  }

  async peekTrigger(flag: string): Promise<RunTrigger | null> {
    return parseTrigger(await this.call('read the re-run flag', (client) => client.get(this.key(flag, 'rerun'))));
  }

  async restoreTrigger(flag: string, trigger: RunTrigger): Promise<void> {
    await this.call('restore the re-run flag', (client) => client.set(this.key(flag, 'rerun'), JSON.stringify(trigger), 'NX'));
  }

  async recordShadow(flag: string, users: readonly string[], atMs: number): Promise<void> {
    if (users.length === 0) return;
    const key = this.key(flag, 'shadow');
    await this.call('record shadow users', async (client) => {
      const pipeline = client.pipeline();
      for (const user of users) pipeline.hsetnx(key, user, String(atMs));
      await pipeline.exec();
    });
  }

  async takeShadow(flag: string, users: readonly string[]): Promise<Array<number | null>> {
    if (users.length === 0) return [];
    const values = (await this.call('match shadow users', (client) => client.eval(TAKE_FIELDS, 1, this.key(flag, 'shadow'), ...users))) as Array<string | null>;
    return values.map((value) => (value === null ? null : Number(value)));
  }

  async takeShadowBefore(flag: string, beforeMs: number): Promise<Array<{ user: string; atMs: number }>> {
    const key = this.key(flag, 'shadow');
    const taken: Array<{ user: string; atMs: number }> = [];
    let cursor = '0';
    do {
      const [next, flat] = await this.call('scan shadow users', (client) => client.hscan(key, cursor, 'COUNT', 1000));
      cursor = next;
      const due: string[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const atMs = Number(flat[i + 1]);
        if (atMs < beforeMs) {
          due.push(flat[i] as string);
          taken.push({ user: flat[i] as string, atMs });
        }
      }
      if (due.length > 0) await this.call('remove shadow users', (client) => client.hdel(key, ...due));
    } while (cursor !== '0');
    // HSCAN may return a field twice while the hash changes.
    return [...new Map(taken.map((entry) => [entry.user, entry])).values()];
  }

  shadowSize(flag: string): Promise<number> {
    return this.call('count shadow users', (client) => client.hlen(this.key(flag, 'shadow')));
  }

  private call<T>(what: string, command: (client: ValkeyConnection['client']) => Promise<T>): Promise<T> {
    return this.connection.call(what, () => command(this.connection.client));
  }

  private key(flag: string, part: 'state' | 'pending' | 'rerun' | 'shadow'): string {
    return `${this.prefix}{feed:${flag}}:${part}`;
  }
}

function parseTrigger(value: string | null): RunTrigger | null {
  return value === null ? null : (JSON.parse(value) as RunTrigger);
}

import type { ValkeyConnection } from '../state/valkey/connection.js';

/**
 * Where a change came from: the message's time, its partition and its offset (for documents of
 * one message: offset × 1000 + index). Changes without one get (now, -1, a sequence).
 */
export interface LiveVersion {
  /** The message's timestamp (or the document's own version), milliseconds. */
  at: number;
  partition: number;
  offset: number;
}

/**
 * The flag as the feed last saw it, without its users: they live in Valkey sets beside it (the
 * explicit users, and the users removed while the whole list is unknown), so a change costs the
 * same with ten users or a million.
 */
export interface LiveFlagState {
  flag: string;
  /** Incremented by every commit: what a commit compares (and sets) to detect a concurrent one. */
  revision: number;
  /** The last change applied. */
  version: LiveVersion;
  /** The last snapshot applied: an older snapshot (another partition behind) is stale. */
  snapshotVersion: LiveVersion | null;
  /**
   * The highest offset applied per partition: a change at or below it is a redelivery or a
   * replay (stale). Deltas on different partitions are independent, so only their own partition
   * orders them — an add is never dropped because another partition is ahead.
   */
  applied: Record<string, number>;
  enabled: boolean | null;
  percentage: number | null;
  /**
   * True once a snapshot gave the whole list. Before that (only adds and removes seen) the
   * explicit-users set holds what was added, and the removed set what was taken out, of a list
   * the feed never saw whole.
   */
  complete: boolean;
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

/** What a commit does to the explicit users. */
export type UsersChange =
  | { kind: 'none' }
  /** The whole list: the users added and removed are found by the store (a set difference) and pended. */
  | { kind: 'replace'; users: readonly string[] }
  /**
   * The whole list, already loaded into a stage (FeedStore.stage) so it never sits in the process.
   * `count`: the distinct users staged; a stage that lost any (expired, evicted) is refused.
   */
  | { kind: 'replace-staged'; stage: string; count: number }
  | { kind: 'add'; users: readonly string[] }
  /** `remember`: the whole list is unknown, so the removal is kept to override the rules file. */
  | { kind: 'remove'; users: readonly string[]; remember: boolean };

export interface LiveStateCommit {
  state: LiveFlagState;
  /** The revision read before planning (0: nothing stored): another commit since is a conflict. */
  base: number;
  users: UsersChange;
  trigger: RunTrigger | null;
  /** A replace that would remove more explicit users than this is held: nothing applied (null: no limit). */
  maxRemoved: number | null;
}

/** What a bucket feed did with an object's version (its checkpoint, by key). */
export interface ObjectMark {
  etag: string;
  /** applied: its snapshot is the live state; held: not applied (unreadable, or it tripped the forget guard). */
  outcome: 'applied' | 'held' | 'unrelated';
  /** Why a version was held: released forget-guard holds are read again. */
  heldBy?: 'forget-guard' | 'unreadable' | 'vanished';
  detail: string | null;
  at: string;
}

export type CommitOutcome = { result: 'applied' | 'held'; added: number; removed: number } | { result: 'conflict' } | { result: 'stage-lost' };

/**
 * What a feed keeps in Valkey, per flag: the live state and its user sets, the pending set, the
 * re-run flag and the shadow record. A commit writes the state, the users, the pending users and
 * the trigger at once, so a crash never leaves a state whose users were not queued.
 */
export interface FeedStore {
  readonly description: string;
  read(flag: string): Promise<LiveFlagState | null>;
  commit(flag: string, commit: LiveStateCommit): Promise<CommitOutcome>;
  /** Whether each user is an explicit user of the live state, and was removed while it was incomplete. */
  membership(flag: string, users: readonly string[]): Promise<{ explicit: boolean[]; removed: boolean[] }>;
  explicitCount(flag: string): Promise<number>;
  /** Adds users to a stage (expires after `ttlSeconds`), for a replace-staged commit; the distinct users staged so far. */
  stage(flag: string, stage: string, users: readonly string[], ttlSeconds: number): Promise<number>;
  dropStage(flag: string, stage: string): Promise<void>;
  /** The bucket feed's checkpoint: per object key, the ETag last read and what came of it. */
  objectMarks(flag: string): Promise<Map<string, ObjectMark>>;
  markObject(flag: string, key: string, mark: ObjectMark): Promise<void>;
  unmarkObject(flag: string, key: string): Promise<void>;
  /** Up to `max` pending users (not removed: settle() does that once they are handled). */
  peekPending(flag: string, max: number): Promise<string[]>;
  /** Each pending user's token: what settle() compares, so a user pended again since is kept. */
  pendingTokens(flag: string, users: readonly string[]): Promise<string[]>;
  /** Removes users from the pending set — with tokens, only those not pended again since; the count removed. */
  settle(flag: string, users: readonly string[], tokens?: readonly string[]): Promise<number>;
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

/** Whether a change at `version` was applied already (a replay), or is a snapshot older than the last. */
export function isStale(state: LiveFlagState | null, version: LiveVersion, snapshot: boolean): boolean {
  if (!state) return false;
  const applied = state.applied[String(version.partition)];
  if (applied !== undefined && version.offset <= applied) return true;
  const last = state.snapshotVersion;
  if (!snapshot || last === null) return false;
  // Within one partition the offset orders (a producer's clock may step back); across partitions, time.
  return last.partition === version.partition ? version.offset <= last.offset : !isNewer(version, last);
}

/**
 * One script on keys of one hash tag (one cluster slot): the revision check, the users, the
 * pending users, the state and the re-run flag are written together or not at all. A replace
 * loads the new list into a set and lets Valkey find what was added and removed (SDIFFSTORE), so
 * the process never holds both lists.
 * KEYS: state, users, removed, pending, rerun, incoming (or the stage), added, gone, pending
 * tokens (user → revision that last pended it), the tokens' default (the last replace's revision).
 * ARGV: state JSON, base revision, kind, trigger JSON ('' none), max removed (-1 none), then the
 * users (for replace-staged: the count staged).
 * Returns {1 applied | 2 conflict | 3 held | 4 stage lost, added, removed}.
 */
const COMMIT = `
local current = redis.call('GET', KEYS[1])
local revision = 0
if current then revision = cjson.decode(current).revision or 0 end
if revision ~= tonumber(ARGV[2]) then return {2, 0, 0} end
local kind, added, removed = ARGV[3], 0, 0
local function each(key, command)
  for i = 6, #ARGV, 500 do redis.call(command, key, unpack(ARGV, i, math.min(i + 499, #ARGV))) end
end
-- The pending users' tokens: a drain settles a user only if it was not pended again since it read them.
local function tokens(value)
  for i = 6, #ARGV, 250 do
    local pairs = {}
    for j = i, math.min(i + 249, #ARGV) do
      pairs[#pairs + 1] = ARGV[j]
      pairs[#pairs + 1] = value
    end
    redis.call('HSET', KEYS[9], unpack(pairs))
  end
end
if kind == 'replace' or kind == 'replace-staged' or kind == 'replace-diffed' then
  if kind == 'replace' then
    redis.call('DEL', KEYS[6])
    each(KEYS[6], 'SADD')
  elseif redis.call('SCARD', KEYS[6]) ~= tonumber(ARGV[6]) then
    redis.call('DEL', KEYS[7], KEYS[8])
    return {4, 0, 0}
  end
  if kind == 'replace-diffed' then
    -- added and gone were computed beforehand, a batch at a time (a large list must not block Valkey);
    -- sets that lost members (expired, evicted) would pend too few users: refused like a lost stage
    added = redis.call('SCARD', KEYS[7])
    removed = redis.call('SCARD', KEYS[8])
    if added ~= tonumber(ARGV[7]) or removed ~= tonumber(ARGV[8]) then
      redis.call('DEL', KEYS[7], KEYS[8])
      return {4, 0, 0}
    end
  else
    added = redis.call('SDIFFSTORE', KEYS[7], KEYS[6], KEYS[2])
    removed = redis.call('SDIFFSTORE', KEYS[8], KEYS[2], KEYS[6])
  end
  local limit = tonumber(ARGV[5])
  if limit >= 0 and removed > limit then
    redis.call('DEL', KEYS[6], KEYS[7], KEYS[8])
    return {3, added, removed}
  end
  if added > 0 then redis.call('SUNIONSTORE', KEYS[4], KEYS[4], KEYS[7]) end
  if removed > 0 then redis.call('SUNIONSTORE', KEYS[4], KEYS[4], KEYS[8]) end
  -- Every pending user's token becomes this revision: a drain pass that read an older one settles none.
  redis.call('DEL', KEYS[9])
  redis.call('SET', KEYS[10], revision + 1)
  if redis.call('EXISTS', KEYS[6]) == 1 then
    redis.call('RENAME', KEYS[6], KEYS[2])
    redis.call('PERSIST', KEYS[2]) -- a stage expires; the users it became must not
  else
    redis.call('DEL', KEYS[2])
  end
  redis.call('DEL', KEYS[3], KEYS[7], KEYS[8])
elseif kind == 'add' then
  each(KEYS[2], 'SADD')
  each(KEYS[3], 'SREM')
  each(KEYS[4], 'SADD')
  tokens(revision + 1)
  added = #ARGV - 5
elseif kind == 'remove' or kind == 'remove-remember' then
  each(KEYS[2], 'SREM')
  if kind == 'remove-remember' then each(KEYS[3], 'SADD') end
  each(KEYS[4], 'SADD')
  tokens(revision + 1)
  removed = #ARGV - 5
end
redis.call('SET', KEYS[1], ARGV[1])
-- An owed run already set keeps its time: changes arriving faster than the debounce must not postpone it for ever.
if ARGV[4] ~= '' then redis.call('SET', KEYS[5], ARGV[4], 'NX') end
return {1, added, removed}`;

/** HMGET then HDEL in one step, in chunks (Lua's unpack fails near 8,000 values). */
/**
 * Removes each pending user whose token is still the one the drain read: one pended again since
 * (a re-add while its pass was sending) stays for the next pass. ARGV: user, token, user, token…
 */
const SETTLE = `
local base = redis.call('GET', KEYS[3]) or '0'
local settled = 0
for i = 1, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[2], ARGV[i]) or base
  if current == ARGV[i + 1] then
    redis.call('SREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    settled = settled + 1
  end
end
return settled`;

const TAKE_FIELDS = `
local values = {}
for i = 1, #ARGV, 500 do
  local last = math.min(i + 499, #ARGV)
  local chunk = redis.call('HMGET', KEYS[1], unpack(ARGV, i, last))
  for j = 1, #chunk do values[#values + 1] = chunk[j] end
end
for i = 1, #ARGV, 500 do redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV))) end
return values`;

type Part = 'state' | 'users' | 'removed' | 'pending' | 'pending-tokens' | 'pending-base' | 'rerun' | 'incoming' | 'added' | 'gone' | 'shadow' | 'objects' | `stage:${string}` | `added:${string}` | `gone:${string}`;

/** Members read and looked up per round trip while diffing a large staged list. */
const DIFF_BATCH = 10_000;
/** The diff's sets expire if a commit never comes (the process died between diff and commit). */
const STAGE_DIFF_TTL_SECONDS = 3600;

/** The feed's keys in Valkey: `<prefix>{feed:<flag>}:<part>`, one slot per flag. */
export class ValkeyFeedStore implements FeedStore {
  readonly description = 'valkey';

  constructor(
    private readonly connection: ValkeyConnection,
    private readonly prefix: string,
    /** Staged lists larger than this are diffed outside the commit script (diffStage). */
    private readonly inlineDiffMax = 100_000,
  ) {}

  async read(flag: string): Promise<LiveFlagState | null> {
    const value = await this.call('read the live state', (client) => client.get(this.key(flag, 'state')));
    return value === null ? null : (JSON.parse(value) as LiveFlagState);
  }

  async commit(flag: string, { state, base, users, trigger, maxRemoved }: LiveStateCommit): Promise<CommitOutcome> {
    const staged = users.kind === 'replace-staged' ? users.stage : null;
    // A large staged list is diffed a batch at a time before the script, which then only counts
    // and swaps: SDIFFSTORE over millions of members would block every other client for seconds.
    const diffed = staged !== null && users.kind === 'replace-staged' && users.count > this.inlineDiffMax;
    const sizes = diffed && staged !== null ? await this.diffStage(flag, staged) : null;
    const parts: Part[] = ['state', 'users', 'removed', 'pending', 'rerun', staged !== null ? `stage:${staged}` : 'incoming', diffed ? `added:${staged}` : 'added', diffed ? `gone:${staged}` : 'gone', 'pending-tokens', 'pending-base'];
    const keys = parts.map((part) => this.key(flag, part));
    const kind = users.kind === 'remove' && users.remember ? 'remove-remember' : diffed ? 'replace-diffed' : users.kind;
    const listed = users.kind === 'none' ? [] : users.kind === 'replace-staged' ? [users.count, ...(sizes ? [sizes.added, sizes.gone] : [])] : users.users;
    const args = [JSON.stringify(state), base, kind, trigger ? JSON.stringify(trigger) : '', maxRemoved ?? -1, ...listed];
    const [code, added, removed] = (await this.call('commit the live state', (client) => client.eval(COMMIT, keys.length, ...keys, ...args))) as [number, number, number];
    if (code === 2) return { result: 'conflict' };
    if (code === 4) return { result: 'stage-lost' };
    return { result: code === 3 ? 'held' : 'applied', added, removed };
  }

  /** The stage's users not in the live users (`added:<stage>`) and the live users not in it (`gone:<stage>`). */
  private async diffStage(flag: string, stage: string): Promise<{ added: number; gone: number }> {
    const stageKey = this.key(flag, `stage:${stage}`);
    const usersKey = this.key(flag, 'users');
    const into = async (from: string, against: string, target: string): Promise<number> => {
      const targetKey = this.key(flag, target as Part);
      await this.call('diff a staged list', (client) => client.del(targetKey));
      let size = 0;
      let cursor = '0';
      do {
        const [next, members] = await this.call('diff a staged list', (client) => client.sscan(from, cursor, 'COUNT', DIFF_BATCH));
        cursor = next;
        if (members.length === 0) continue;
        const present = await this.call('diff a staged list', (client) => client.smismember(against, ...members));
        const missing = members.filter((_, i) => present[i] === 0);
        if (missing.length > 0) {
          const replies = await this.call('diff a staged list', (client) => client.multi().sadd(targetKey, ...missing).expire(targetKey, STAGE_DIFF_TTL_SECONDS).scard(targetKey).exec());
          size = Number(replies?.[2]?.[1] ?? size);
        }
      } while (cursor !== '0');
      return size;
    };
    return { added: await into(stageKey, usersKey, `added:${stage}`), gone: await into(usersKey, stageKey, `gone:${stage}`) };
  }

  async membership(flag: string, users: readonly string[]): Promise<{ explicit: boolean[]; removed: boolean[] }> {
    if (users.length === 0) return { explicit: [], removed: [] };
    const [explicit, removed] = await this.call('read live users', async (client) => {
      const pipeline = client.pipeline();
      pipeline.smismember(this.key(flag, 'users'), ...users);
      pipeline.smismember(this.key(flag, 'removed'), ...users);
      const replies = (await pipeline.exec()) ?? [];
      return replies.map(([error, reply]) => {
        if (error) throw error;
        return (reply as number[]).map((member) => member === 1);
      });
    });
    return { explicit: explicit ?? [], removed: removed ?? [] };
  }

  explicitCount(flag: string): Promise<number> {
    return this.call('count live users', (client) => client.scard(this.key(flag, 'users')));
  }

  async stage(flag: string, stage: string, users: readonly string[], ttlSeconds: number): Promise<number> {
    const key = this.key(flag, `stage:${stage}`);
    return this.call('stage users', async (client) => {
      if (users.length === 0) return client.scard(key);
      // One round trip per batch: the list is as fast to stage as Valkey can add.
      const replies = await client.multi().sadd(key, ...users).expire(key, ttlSeconds).scard(key).exec();
      const [error, size] = replies?.[2] ?? [new Error('the staging transaction was discarded'), 0];
      if (error) throw error;
      return size as number;
    });
  }

  async dropStage(flag: string, stage: string): Promise<void> {
    await this.call('drop a stage', (client) => client.del(this.key(flag, `stage:${stage}`), this.key(flag, `added:${stage}`), this.key(flag, `gone:${stage}`)));
  }

  async objectMarks(flag: string): Promise<Map<string, ObjectMark>> {
    const entries = await this.call('read the bucket checkpoint', (client) => client.hgetall(this.key(flag, 'objects')));
    return new Map(Object.entries(entries).map(([key, value]) => [key, JSON.parse(value) as ObjectMark]));
  }

  async markObject(flag: string, key: string, mark: ObjectMark): Promise<void> {
    await this.call('write the bucket checkpoint', (client) => client.hset(this.key(flag, 'objects'), key, JSON.stringify(mark)));
  }

  async unmarkObject(flag: string, key: string): Promise<void> {
    await this.call('write the bucket checkpoint', (client) => client.hdel(this.key(flag, 'objects'), key));
  }

  peekPending(flag: string, max: number): Promise<string[]> {
    return this.call('read pending users', (client) => client.srandmember(this.key(flag, 'pending'), max));
  }

  async pendingTokens(flag: string, users: readonly string[]): Promise<string[]> {
    if (users.length === 0) return [];
    return this.call('read pending tokens', async (client) => {
      const [tokens, base] = await Promise.all([client.hmget(this.key(flag, 'pending-tokens'), ...users), client.get(this.key(flag, 'pending-base'))]);
      return tokens.map((token) => token ?? base ?? '0');
    });
  }

  async settle(flag: string, users: readonly string[], tokens?: readonly string[]): Promise<number> {
    if (users.length === 0) return 0;
    const keys = [this.key(flag, 'pending'), this.key(flag, 'pending-tokens'), this.key(flag, 'pending-base')];
    const pairs = users.flatMap((user, i) => [user, tokens?.[i] ?? '']);
    if (!tokens) {
      // Unconditional: every named user goes.
      await this.call('settle pending users', (client) => client.multi().srem(keys[0] as string, ...users).hdel(keys[1] as string, ...users).exec());
      return users.length;
    }
    let settled = 0;
    for (let i = 0; i < pairs.length; i += 1000) {
      const chunk = pairs.slice(i, i + 1000);
      settled += Number(await this.call('settle pending users', (client) => client.eval(SETTLE, keys.length, ...keys, ...chunk)));
    }
    return settled;
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
      for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
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

  private key(flag: string, part: Part): string {
    return `${this.prefix}{feed:${flag}}:${part}`;
  }
}

function parseTrigger(value: string | null): RunTrigger | null {
  return value === null ? null : (JSON.parse(value) as RunTrigger);
}

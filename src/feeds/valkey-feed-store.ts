import type { ValkeyConnection } from '../state/valkey/connection.js';
import type { CommitOutcome, FeedStore, LiveFlagState, LiveStateCommit, ObjectMark, RunTrigger } from './live-state.js';

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

/** HMGET then HDEL in one step, in chunks (Lua's unpack fails near 8,000 values). */
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

import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { ratePolicy } from '../../send/rate-policy.js';
import { GrantQueue, type Grant, type RateLimiter } from '../../send/rate-limiter.js';
import { formatQueueIdentity, type QueueIdentity } from '../../sink/queue-identity.js';
import { MINUTE, systemClock, type Clock } from '../../time.js';
import type { ValkeyConnection } from './connection.js';

/**
 * The rules of rate-policy.ts, applied in Valkey with Valkey's clock (TIME) so that every sender
 * of a queue — the daemon's runs, CLI backfills, admin backfills, on any machine — shares one
 * limit. The limit is the lowest any of them was configured with in the last `idle` ms (a CLI
 * run with a higher --rate-limit cannot exceed the daemon's). Keys (one hash tag, one cluster
 * slot): the token bucket (hash), the window's grants (list of "ms:count", oldest first), and
 * the senders' limits (hash sender → "rate:lastSeenMs"); all expire when idle.
 *
 * ARGV: wanted, this sender's rate, batch size, sender id, idle ms.
 * Returns { granted, wait ms, effective rate, grant time } — granted 0: wait that long, ask again.
 * The window counts a grant from its grant time until STARTED moves it to when the request was
 * issued (below).
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local wanted, myRate, maxBatch, me, idle = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
-- Lua would print these times with 14 digits (tenths of a second): keep microseconds.
local function ms(value) return string.format('%.3f', value) end

redis.call('HSET', KEYS[3], me, ARGV[2] .. ':' .. ms(now))
local rate = myRate
local senders = redis.call('HGETALL', KEYS[3])
for i = 1, #senders, 2 do
  local r, seen = string.match(senders[i + 1], '^([^:]+):(.+)$')
  if tonumber(seen) + idle < now then redis.call('HDEL', KEYS[3], senders[i])
  elseif tonumber(r) < rate then rate = tonumber(r) end
end

local burst = math.min(maxBatch, math.max(1, math.floor(rate)))
local capacity = burst + 0.99
local windowMs = math.max(1000, 1000 / rate)
local windowCap = math.max(1, math.ceil(rate * windowMs / 1000 - 1e-9))

local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'inWindow')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
local inWindow = tonumber(state[3]) or 0
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000)

while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head then inWindow = 0 break end
  local sentAt, count = string.match(head, '^([^:]+):(.+)$')
  if tonumber(sentAt) + windowMs > now then break end
  redis.call('LPOP', KEYS[2])
  inWindow = inWindow - tonumber(count)
end

local count = math.min(wanted, burst, windowCap - inWindow)
local granted, wait, grantAt = 0, 0, ms(now)
if count >= 1 and tokens >= count - 1e-9 then
  granted = count
  tokens = tokens - count
  inWindow = inWindow + count
  redis.call('RPUSH', KEYS[2], grantAt .. ':' .. count)
elseif count >= 1 then
  wait = (count - tokens) * 1000 / rate
else
  local sentAt = string.match(redis.call('LINDEX', KEYS[2], 0), '^([^:]+):')
  wait = tonumber(sentAt) + windowMs - now
end

redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', ms(now), 'inWindow', inWindow)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], math.ceil(idle + windowMs)) end
return { granted, string.format('%.3f', wait), tostring(rate), grantAt }`;

/**
 * A request starts after its grant: the reply's trip, a busy event loop, a garbage collection,
 * the SDK's own work. Its window entry moves to when it started, so no window of request starts
 * exceeds the limit. ARGV: grant time, start time (both Valkey's clock).
 */
const STARTED = `
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
for i, entry in ipairs(entries) do
  local sentAt, count = string.match(entry, '^([^:]+):(.+)$')
  if sentAt == ARGV[1] then
    if tonumber(ARGV[2]) > tonumber(sentAt) then redis.call('LSET', KEYS[1], i - 1, ARGV[2] .. ':' .. count) end
    return 1
  end
end
return 0`;

export interface SharedLimitOptions {
  /** ff-detector's key prefix (state.detectorKeyPrefix). */
  prefix: string;
  queue: QueueIdentity;
  ratePerSecond: number;
  maxBatch: number;
  /** A sender's limit stops counting this long after its last request. */
  idleMs?: number;
  clock?: Clock;
}

/**
 * One rate limit per queue across processes, in Valkey. Fails closed: when Valkey cannot be
 * reached the grant fails (STATE_UNAVAILABLE), and nothing is sent. Callers in this process are
 * served in arrival order.
 */
export class ValkeyRateLimiter implements RateLimiter {
  readonly ratePerSecond: number;
  readonly maxGrant: number;
  readonly description: string;
  /** The limit in force at the last grant: the lowest among the queue's senders. */
  effectiveRate: number;
  private readonly keys: [string, string, string];
  private readonly sender = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly idleMs: number;
  private readonly clock: Clock;
  private readonly grants = new GrantQueue(() => this.maxGrant);

  constructor(
    private readonly connection: ValkeyConnection,
    options: SharedLimitOptions,
  ) {
    this.ratePerSecond = options.ratePerSecond;
    this.effectiveRate = options.ratePerSecond;
    this.maxGrant = ratePolicy(options.ratePerSecond, options.maxBatch).burst;
    this.idleMs = options.idleMs ?? 2 * MINUTE;
    this.clock = options.clock ?? systemClock;
    const tagged = `${options.prefix}{ratelimit:${formatQueueIdentity(options.queue)}}`;
    this.keys = [`${tagged}:bucket`, `${tagged}:window`, `${tagged}:senders`];
    this.description = `${options.ratePerSecond} msgs/s shared by every sender of queue ${formatQueueIdentity(options.queue)} (Valkey)`;
  }

  acquire(wanted: number, signal?: AbortSignal): Promise<Grant> {
    return this.grants.take(wanted, (want) => this.waitFor(want, signal));
  }

  private async waitFor(want: number, signal?: AbortSignal): Promise<Grant> {
    for (;;) {
      signal?.throwIfAborted();
      const asked = this.clock.now();
      const [granted, wait, rate, grantAt] = (await this.connection.call('rate limit', () =>
        this.connection.client.eval(ACQUIRE, 3, ...this.keys, want, this.ratePerSecond, this.maxGrant, this.sender, this.idleMs),
      )) as [number, string, string, string];
      this.effectiveRate = Number(rate);
      // The grant happened after `asked`: counting from there over-estimates the start a little,
      // never under-estimates it.
      if (granted >= 1) return { count: granted, started: (at) => this.moveToStart(grantAt, at - asked) };
      await this.clock.sleepUntil(this.clock.now() + Math.max(0.5, Number(wait)), signal);
    }
  }

  /**
   * Tells Valkey the request started at most `delayMs` after its grant. Not awaited: it reaches
   * Valkey before this process asks again (same connection, in order), and long before the
   * grant leaves the window. If it fails, the grant time stands.
   */
  private moveToStart(grantAt: string, delayMs: number): void {
    const startAt = (Number(grantAt) + delayMs).toFixed(3);
    this.connection.call('rate limit start', () => this.connection.client.eval(STARTED, 1, this.keys[1], grantAt, startAt)).catch(() => undefined);
  }
}

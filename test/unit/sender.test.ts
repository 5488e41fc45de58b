import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { BatchSender, backoffMs } from '../../src/send/sender.js';
import { LocalRateLimiter } from '../../src/send/rate-limiter.js';
import { buildUserLoadMessage } from '../../src/sink/message.js';
import { ManualClock, RecordingSink } from '../helpers/fakes.js';

const settings = { reason: 'r', lookbackDays: 365, priority: 'low', requestIdPrefix: 'p' };
const messages = (n: number) => Array.from({ length: n }, (_, i) => buildUserLoadMessage(`u${i}`, settings));
const retry = { entryRetries: 3, baseMs: 100, maxMs: 1000 };

describe('BatchSender', () => {
  it('retries entries failed with SenderFault=false, with the same request_id, after backoff', async () => {
    const sink = new RecordingSink((message, call) =>
      message.userId === 'u3' && call < 3 ? { ok: false, code: 'InternalError', message: 'try again', senderFault: false } : { ok: true },
    );
    const clock = new ManualClock();
    const batch = messages(5);
    const result = await new BatchSender(sink, undefined, retry, silentLogger(), clock).send(batch);
    expect(result.accepted.map((m) => m.userId).sort()).toEqual(['u0', 'u1', 'u2', 'u3', 'u4']);
    expect(result.failed).toEqual([]);
    expect(sink.calls.map((call) => call.map((m) => m.userId))).toEqual([['u0', 'u1', 'u2', 'u3', 'u4'], ['u3'], ['u3']]);
    const requestIds = sink.sent.filter((m) => m.userId === 'u3').map((m) => m.requestId);
    expect(new Set(requestIds).size).toBe(1);
    expect(clock.now()).toBe(100 + 200);
  });

  it('reports SenderFault=true entries at once, without retrying them', async () => {
    const sink = new RecordingSink((message) =>
      message.userId === 'u1' ? { ok: false, code: 'InvalidMessageContents', message: 'bad', senderFault: true } : { ok: true },
    );
    const result = await new BatchSender(sink, undefined, retry, silentLogger(), new ManualClock()).send(messages(3));
    expect(sink.calls).toHaveLength(1);
    expect(result.accepted).toHaveLength(2);
    expect(result.failed).toEqual([expect.objectContaining({ code: 'InvalidMessageContents', senderFault: true })]);
    expect(result.failed[0]?.message.userId).toBe('u1');
  });

  it('gives up after entryRetries and reports the entry as failed', async () => {
    const sink = new RecordingSink(() => ({ ok: false, code: 'ServiceUnavailable', message: 'busy', senderFault: false }));
    const result = await new BatchSender(sink, undefined, retry, silentLogger(), new ManualClock()).send(messages(2));
    expect(sink.calls).toHaveLength(1 + retry.entryRetries);
    expect(result.accepted).toEqual([]);
    expect(result.failed.map((f) => f.code)).toEqual(['ServiceUnavailable', 'ServiceUnavailable']);
  });

  it('ends the batch on a whole-call failure, keeping what was accepted before it', async () => {
    const sink = new RecordingSink();
    const send = sink.send.bind(sink);
    sink.send = (batch) => (sink.calls.length === 0 ? send(batch) : Promise.reject(new Error('connect ECONNREFUSED')));
    const limiter = new LocalRateLimiter(25, new ManualClock());
    const result = await new BatchSender(sink, limiter, retry, silentLogger(), new ManualClock()).send(messages(10));
    expect(result.accepted).toHaveLength(10);
    const second = await new BatchSender(sink, limiter, retry, silentLogger(), new ManualClock()).send(messages(10));
    expect(second.accepted).toEqual([]);
    expect(String(second.interruptedBy)).toContain('ECONNREFUSED');
  });

  it('stops between paced chunks when cancelled, keeping the chunk already accepted', async () => {
    const sink = new RecordingSink();
    const clock = new ManualClock();
    const limiter = new LocalRateLimiter(15, clock);
    (await limiter.acquire(10)).started(clock.now()); // the window now has room for 5 until a second has passed
    const controller = new AbortController();
    const send = sink.send.bind(sink);
    sink.send = (batch) => send(batch).finally(() => controller.abort(new Error('shutting down')));
    const result = await new BatchSender(sink, limiter, retry, silentLogger(), clock).send(messages(10), controller.signal);
    expect(result.accepted).toHaveLength(5);
    expect(String(result.interruptedBy)).toContain('shutting down');
  });

  it('backs off exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffMs(attempt, retry))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});

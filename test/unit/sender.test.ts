import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { BatchSender, backoffMs } from '../../src/send/sender.js';
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

  it('lets a whole-call failure through to the caller', async () => {
    const sink = new RecordingSink();
    sink.send = () => Promise.reject(new Error('connect ECONNREFUSED'));
    await expect(new BatchSender(sink, undefined, retry, silentLogger()).send(messages(1))).rejects.toThrow('ECONNREFUSED');
  });

  it('backs off exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffMs(attempt, retry))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});

import { describe, expect, it } from 'vitest';
import { BackfillJob } from '../../src/backfill/job.js';
import { mapWithConcurrency } from '../../src/concurrency.js';
import { silentLogger } from '../../src/logger.js';
import type { OutgoingMessage } from '../../src/sink/message.js';
import type { EntryOutcome, MessageSink } from '../../src/sink/types.js';

const message = { reason: 'r', lookbackDays: 365, priority: 'low', requestIdPrefix: 'p' };
const retry = { entryRetries: 0, baseMs: 1, maxMs: 1 };

describe('mapWithConcurrency', () => {
  it('after a failure, waits for the calls in flight before rejecting', async () => {
    const finished: number[] = [];
    let release: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const mapping = mapWithConcurrency([0, 1, 2, 3], 2, async (item) => {
      if (item === 0) {
        await slow;
        finished.push(item);
        return item;
      }
      throw new Error(`item ${item} failed`);
    });
    let settled = false;
    void mapping.catch(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false); // item 0 is still in flight
    release();
    await expect(mapping).rejects.toThrow('item 1 failed');
    expect(finished).toEqual([0]);
  });
});

describe('BackfillJob', () => {
  it('a failing batch beside one in flight: users the queue accepts afterwards are not reported remaining', async () => {
    let releaseSlow: () => void = () => undefined;
    const sink: MessageSink = {
      description: 'two calls in flight',
      maxBatchSize: 10,
      async send(messages: readonly OutgoingMessage[]): Promise<EntryOutcome[]> {
        if (messages[0]?.userId === 'u0') {
          await new Promise<void>((resolve) => (releaseSlow = resolve)); // accepted late
          return messages.map(() => ({ ok: true }));
        }
        setImmediate(() => releaseSlow());
        throw new Error('queue gone');
      },
      close: () => Promise.resolve(),
    };
    const users = Array.from({ length: 20 }, (_, i) => `u${i}`);
    const result = await new BackfillJob(users, sink, undefined, silentLogger(), { message, retry, concurrency: 2, progressEvery: 1000 }).run();
    expect(result.status).toBe('failed');
    expect(result.sent).toBe(10);
    expect(result.remaining).toEqual(users.slice(10)); // not the 10 accepted after the failure
  });

  it('records each batch through onBatch; a failing record stops the job', async () => {
    const recorded: string[] = [];
    const sink: MessageSink = { description: 'ok', maxBatchSize: 10, send: (m) => Promise.resolve(m.map(() => ({ ok: true }) as EntryOutcome)), close: () => Promise.resolve() };
    const users = Array.from({ length: 30 }, (_, i) => `u${i}`);
    const result = await new BackfillJob(users, sink, undefined, silentLogger(), {
      message,
      retry,
      concurrency: 1,
      progressEvery: 1000,
      onBatch: (accepted) => {
        if (recorded.length >= 10) return Promise.reject(new Error('state store gone'));
        recorded.push(...accepted);
        return Promise.resolve();
      },
    }).run();
    expect(recorded).toEqual(users.slice(0, 10));
    expect(result).toMatchObject({ status: 'failed', error: 'state store gone' });
  });
});

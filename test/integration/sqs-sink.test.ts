import { afterAll, describe, expect, it } from 'vitest';
import { buildUserLoadMessage } from '../../src/sink/message.js';
import { SqsSink } from '../../src/sink/sqs-sink.js';
import { FfError } from '../../src/errors.js';
import { SqsFaultProxy } from '../../faults/sqs-fault-proxy.js';
import { awsEndpoint, awsEnv, createQueue, drainQueue, sqsClient, userIdsOf } from '../helpers/services.js';

const settings = { reason: 'feature_flag_enabled', lookbackDays: 365, priority: 'low', requestIdPrefix: 'detector' };
const client = sqsClient();
afterAll(() => client.destroy());

describe('SqsSink against the local SQS server', () => {
  it('delivers the exact UserLoadEvent bodies with SendMessageBatch', async () => {
    const queueUrl = await createQueue();
    const sink = new SqsSink({ queueUrl, maxAttempts: 2, requestTimeoutMs: 5000 }, client);
    const messages = Array.from({ length: 10 }, (_, i) => buildUserLoadMessage(`user-${i}`, settings));
    const outcomes = await sink.send(messages);
    expect(outcomes).toEqual(messages.map(() => ({ ok: true })));
    const received = await drainQueue(queueUrl);
    expect(received.map((m) => m.Body).sort()).toEqual(messages.map((m) => m.body).sort());
  });

  it('sets MessageGroupId to the user and MessageDeduplicationId to the request on FIFO queues', async () => {
    const queueUrl = await createQueue(undefined, true);
    const sink = new SqsSink({ queueUrl, maxAttempts: 2, requestTimeoutMs: 5000 }, client);
    const message = buildUserLoadMessage('user-fifo', settings);
    await sink.send([message]);
    await sink.send([message]); // a retry of the same request is deduplicated by SQS
    const received = await drainQueue(queueUrl);
    expect(userIdsOf(received)).toEqual(['user-fifo']);
    expect(received[0]?.Attributes?.MessageGroupId).toBe('user-fifo');
    expect(received[0]?.Attributes?.MessageDeduplicationId).toBe(message.requestId);
  });

  it('refuses a missing queue as a fatal error', async () => {
    const sink = new SqsSink({ queueUrl: (await createQueue()).replace(/[^/]+$/, 'no-such-queue'), maxAttempts: 1, requestTimeoutMs: 5000 }, client);
    const error = await sink.send([buildUserLoadMessage('u', settings)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FfError);
    expect((error as FfError).code).toBe('SINK_REJECTED');
    expect((error as FfError).message).toContain('no-such-queue');
  });

  it('reports an unreachable server as retryable', async () => {
    const unreachable = sqsClient('http://127.0.0.1:1', 1);
    const sink = new SqsSink({ queueUrl: 'http://127.0.0.1:1/000000000000/q', maxAttempts: 1, requestTimeoutMs: 1000 }, unreachable);
    const error = await sink.send([buildUserLoadMessage('u', settings)]).catch((e: unknown) => e);
    expect((error as FfError).code).toBe('SINK_UNAVAILABLE');
    expect((error as FfError).retryable).toBe(true);
    unreachable.destroy();
  });

  it('gives up on a server that took the request and never answers, within its timeout (its own client)', async () => {
    const queueUrl = await createQueue();
    const proxy = await SqsFaultProxy.start(awsEndpoint(), 1);
    proxy.set({ kind: 'blackhole' });
    // The sink builds its own client from its settings, as in production (credentials from the environment).
    const saved = { ...process.env };
    Object.assign(process.env, awsEnv(proxy.endpoint));
    try {
      const sink = new SqsSink({ queueUrl, region: 'us-east-1', endpoint: proxy.endpoint, maxAttempts: 2, requestTimeoutMs: 300 });
      const started = Date.now();
      const error = await sink.send([buildUserLoadMessage('u', settings)]).catch((e: unknown) => e);
      expect((error as FfError).code).toBe('SINK_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(5000); // two attempts of 300 ms, not for ever
      await sink.close();
    } finally {
      process.env = saved;
      await proxy.close();
    }
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import {
  GetQueueAttributesCommand,
  RequestThrottled,
  SendMessageBatchCommand,
  SQSClient,
  type SendMessageBatchRequestEntry,
  type SendMessageBatchResult,
} from '@aws-sdk/client-sqs';
import { SqsFaultProxy, type SqsProxyStats } from '../../faults/sqs-fault-proxy.js';
import { awsEndpoint, createQueue, drainQueue, sqsClient, uniqueName, waitFor } from '../helpers/services.js';

// Every mode of the fault proxy, through a real SQSClient (its real retry strategy and MD5
// checks) against the real local SQS server.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startProxy(seed = 1): Promise<SqsFaultProxy> {
  const proxy = await SqsFaultProxy.start(awsEndpoint(), seed);
  cleanups.push(() => proxy.close());
  return proxy;
}

function clientThrough(proxy: SqsFaultProxy, maxAttempts: number): SQSClient {
  const client = sqsClient(proxy.endpoint, maxAttempts);
  cleanups.push(() => client.destroy());
  return client;
}

function entries(count: number, tag = uniqueName('body')): SendMessageBatchRequestEntry[] {
  return Array.from({ length: count }, (_, i) => ({ Id: `e${i}`, MessageBody: `${tag}-${i}` }));
}

function sendBatch(client: SQSClient, queueUrl: string, batch: SendMessageBatchRequestEntry[]): Promise<SendMessageBatchResult & { $metadata: { attempts?: number } }> {
  return client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch }));
}

/** Resolves with what the send threw; fails the test if it succeeded. */
async function sendFailure(client: SQSClient, queueUrl: string, batch: SendMessageBatchRequestEntry[]): Promise<Error & { $metadata?: { httpStatusCode?: number; attempts?: number }; $fault?: string }> {
  const outcome = await sendBatch(client, queueUrl, batch).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof Error)) throw new Error('the send succeeded, a failure was expected');
  return outcome;
}

async function bodiesInQueue(queueUrl: string): Promise<string[]> {
  return (await drainQueue(queueUrl)).map((m) => m.Body ?? '').sort();
}

const bodiesOf = (batch: SendMessageBatchRequestEntry[]): string[] => batch.map((e) => e.MessageBody ?? '').sort();

const stats = (counts: Partial<SqsProxyStats>): SqsProxyStats => ({ requests: 0, sendBatches: 0, forwardedEntries: 0, failedEntries: 0, faulted: 0, ...counts });

describe('SqsFaultProxy in front of the local SQS server', () => {
  it('passes every action through unchanged when no fault is set', async () => {
    const proxy = await startProxy();
    const client = clientThrough(proxy, 1);
    const queueUrl = await createQueue();
    const batch = entries(10);

    const result = await sendBatch(client, queueUrl, batch);
    const { Attributes = {} } = await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));

    expect(result.Successful?.map((e) => e.Id).sort()).toEqual(batch.map((e) => e.Id).sort());
    expect(result.Failed ?? []).toEqual([]);
    expect(Attributes.ApproximateNumberOfMessages).toBe('10');
    expect(proxy.stats).toEqual(stats({ requests: 2, sendBatches: 1, forwardedEntries: 10 }));
    expect(await bodiesInQueue(queueUrl)).toEqual(bodiesOf(batch));
  });

  it.each([500, 503] as const)('answers HTTP %i to the next N requests, which the SDK retries until one passes', async (status) => {
    const proxy = await startProxy();
    const client = clientThrough(proxy, 3);
    const queueUrl = await createQueue();
    const batch = entries(3);

    proxy.set({ kind: 'status', status, count: 2 });
    const result = await sendBatch(client, queueUrl, batch);

    expect(result.$metadata.attempts).toBe(3);
    expect(result.Successful).toHaveLength(3);
    expect(proxy.stats).toEqual(stats({ requests: 3, sendBatches: 3, forwardedEntries: 3, faulted: 2 }));
    // The faulted attempts never reached the server: each message arrived once.
    expect(await bodiesInQueue(queueUrl)).toEqual(bodiesOf(batch));
  });

  it('fails the send when every attempt gets a 5xx, then passes once the count is used up', async () => {
    const proxy = await startProxy();
    const client = clientThrough(proxy, 2);
    const queueUrl = await createQueue();
    const lost = entries(2);
    const delivered = entries(2);

    proxy.set({ kind: 'status', status: 500, count: 2 });
    const error = await sendFailure(client, queueUrl, lost);
    const result = await sendBatch(client, queueUrl, delivered);

    expect(error.name).toBe('InternalError');
    expect(error.$fault).toBe('server');
    expect(error.$metadata?.httpStatusCode).toBe(500);
    expect(error.$metadata?.attempts).toBe(2);
    expect(result.$metadata.attempts).toBe(1);
    expect(proxy.stats).toEqual(stats({ requests: 3, sendBatches: 3, forwardedEntries: 2, faulted: 2 }));
    expect(await bodiesInQueue(queueUrl)).toEqual(bodiesOf(delivered));
  });

  it('throttles: the SDK names the error RequestThrottled and retries it (a 403 it would otherwise give up on)', async () => {
    const proxy = await startProxy();
    const queueUrl = await createQueue();
    const retried = entries(2);

    proxy.set({ kind: 'throttle', count: 1 });
    const result = await sendBatch(clientThrough(proxy, 3), queueUrl, retried);
    expect(result.$metadata.attempts).toBe(2);

    proxy.set({ kind: 'throttle', count: 2 });
    const error = await sendFailure(clientThrough(proxy, 2), queueUrl, entries(2));
    expect(error).toBeInstanceOf(RequestThrottled);
    expect(error.$metadata?.httpStatusCode).toBe(403);
    expect(error.$metadata?.attempts).toBe(2);

    expect(proxy.stats).toEqual(stats({ requests: 4, sendBatches: 4, forwardedEntries: 2, faulted: 3 }));
    expect(await bodiesInQueue(queueUrl)).toEqual(bodiesOf(retried));
  });

  it.each([
    { senderFault: true, code: 'InvalidParameterValue' },
    { senderFault: false, code: 'InternalError' },
  ])('fails part of a batch with SenderFault=$senderFault ($code); only the Successful entries arrive', async ({ senderFault, code }) => {
    const proxy = await startProxy(42);
    const client = clientThrough(proxy, 1);
    const queueUrl = await createQueue();
    const partial = entries(10);
    const whole = entries(10);

    proxy.set({ kind: 'partial', senderFault, fraction: 0.5, count: 1 });
    const result = await sendBatch(client, queueUrl, partial);
    const next = await sendBatch(client, queueUrl, whole);

    const failed = result.Failed ?? [];
    const successfulIds = (result.Successful ?? []).map((e) => e.Id ?? '');
    expect(failed).toHaveLength(5);
    for (const entry of failed) expect(entry).toMatchObject({ SenderFault: senderFault, Code: code });
    expect([...successfulIds, ...failed.map((e) => e.Id)].sort()).toEqual(partial.map((e) => e.Id).sort());
    expect(next.Successful).toHaveLength(10);
    expect(proxy.stats).toEqual(stats({ requests: 2, sendBatches: 2, forwardedEntries: 15, failedEntries: 5 }));
    const arrivedFromPartial = bodiesOf(partial.filter((e) => successfulIds.includes(e.Id ?? '')));
    expect(await bodiesInQueue(queueUrl)).toEqual([...arrivedFromPartial, ...bodiesOf(whole)].sort());
  });

  it('fails the same entries for the same seed, and only batches use up a partial fault', async () => {
    const failedIds = async (seed: number): Promise<string[]> => {
      const proxy = await startProxy(seed);
      const client = clientThrough(proxy, 1);
      const queueUrl = await createQueue();
      proxy.set({ kind: 'partial', senderFault: false, fraction: 0.3, count: 1 });
      // Another action meanwhile passes and leaves the count for the batch.
      await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }));
      const result = await sendBatch(client, queueUrl, entries(10));
      expect(proxy.stats).toEqual(stats({ requests: 2, sendBatches: 1, forwardedEntries: 7, failedEntries: 3 }));
      return (result.Failed ?? []).map((e) => e.Id ?? '').sort();
    };

    const first = await failedIds(7);
    expect(first).toHaveLength(3);
    expect(await failedIds(7)).toEqual(first);
    expect(await failedIds(8)).not.toEqual(first);
  });

  it('answers a batch whose entries all fail without reaching the server', async () => {
    const proxy = await startProxy();
    const client = clientThrough(proxy, 1);
    const queueUrl = await createQueue();

    proxy.set({ kind: 'partial', senderFault: true, fraction: 1, count: 1 });
    const result = await sendBatch(client, queueUrl, entries(4));

    expect(result.Successful ?? []).toEqual([]);
    expect(result.Failed).toHaveLength(4);
    expect(proxy.stats).toEqual(stats({ requests: 1, sendBatches: 1, failedEntries: 4 }));
    expect(await bodiesInQueue(queueUrl)).toEqual([]);
  });

  it('blackholes: a client with a thrown request timeout gives up, and nothing arrives', async () => {
    const proxy = await startProxy();
    const queueUrl = await createQueue();
    // requestTimeout alone only logs a warning in this SDK (see the next test): throwOnRequestTimeout makes it fail the request.
    const client = new SQSClient({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
      requestHandler: { requestTimeout: 500, throwOnRequestTimeout: true },
    });
    cleanups.push(() => client.destroy());

    proxy.set({ kind: 'blackhole' });
    const error = await sendFailure(client, queueUrl, entries(3));

    expect(error.name).toBe('TimeoutError');
    expect(proxy.stats).toEqual(stats({ requests: 1, sendBatches: 1, faulted: 1 }));
    proxy.set({ kind: 'pass' });
    expect(await bodiesInQueue(queueUrl)).toEqual([]);
  });

  it('holds a request that only has a requestTimeout until the fault changes, then drops its connection', async () => {
    const proxy = await startProxy();
    const queueUrl = await createQueue();
    const warnings: string[] = [];
    const client = new SQSClient({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
      requestHandler: { requestTimeout: 300 },
      logger: { debug: () => undefined, info: () => undefined, warn: (message: string) => warnings.push(message), error: () => undefined },
    });
    cleanups.push(() => client.destroy());

    proxy.set({ kind: 'blackhole' });
    let settled = false;
    const outcome = sendBatch(client, queueUrl, entries(3)).then(
      () => 'sent',
      (error: unknown) => (error instanceof Error ? error.name : String(error)),
    );
    void outcome.finally(() => (settled = true));
    await waitFor(() => warnings.some((w) => w.includes('exceeded the configured 300 ms requestTimeout')), 'the SDK to warn of the request timeout');
    // Past the timeout the SDK has only warned: the request is still waiting on the proxy.
    expect(settled).toBe(false);

    proxy.set({ kind: 'pass' });
    expect(await outcome).not.toBe('sent');
    expect(proxy.stats).toEqual(stats({ requests: 1, sendBatches: 1, faulted: 1 }));
    expect(await bodiesInQueue(queueUrl)).toEqual([]);
  });

  it('calls onSendBatch after each batch, so a fault can start after N batches', async () => {
    const proxy = await startProxy();
    const client = clientThrough(proxy, 1);
    const queueUrl = await createQueue();
    const seen: number[] = [];
    proxy.onSendBatch = (running) => {
      seen.push(running.sendBatches);
      if (running.sendBatches === 2) proxy.set({ kind: 'status', status: 503, count: 1 });
    };

    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(await sendBatch(client, queueUrl, entries(1)).then(() => 'sent', (error: unknown) => (error instanceof Error ? error.name : 'error')));
    }

    expect(outcomes).toEqual(['sent', 'sent', 'ServiceUnavailable', 'sent']);
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(proxy.stats).toEqual(stats({ requests: 4, sendBatches: 4, forwardedEntries: 3, faulted: 1 }));
    expect(await bodiesInQueue(queueUrl)).toHaveLength(3);
  });
});

import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, ReceiveMessageCommand, DeleteMessageBatchCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Cluster, Valkey } from 'iovalkey';

/**
 * Where the real test servers are: set by scripts/with-services.sh (npm test). Integration tests
 * refuse to run without them rather than pass against nothing.
 */
function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run integration tests with \`npm test\`, which starts the services`);
  return value;
}

export const valkeyUrl = (): string => required('FFD_TEST_VALKEY_URL');
/** A seed node of the test cluster (three primaries, three replicas). */
export const valkeyClusterUrl = (): string => required('FFD_TEST_VALKEY_CLUSTER_URL');
export const awsEndpoint = (): string => required('FFD_TEST_AWS_ENDPOINT');

/** Environment for a child ff-detector process talking to the local SQS/S3 server. */
export function awsEnv(endpoint = awsEndpoint()): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL_SQS: endpoint,
    AWS_ENDPOINT_URL_S3: endpoint,
  };
}

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

export function sqsClient(endpoint = awsEndpoint(), maxAttempts = 3): SQSClient {
  return new SQSClient({ region: 'us-east-1', endpoint, credentials, maxAttempts, requestHandler: { connectionTimeout: 1000, requestTimeout: 3000, throwOnRequestTimeout: true } });
}

export function s3Client(endpoint = awsEndpoint()): S3Client {
  return new S3Client({ region: 'us-east-1', endpoint, credentials, forcePathStyle: true });
}

export function valkeyClient(): Valkey {
  return new Valkey(valkeyUrl());
}

export function valkeyClusterClient(seedUrl = valkeyClusterUrl()): Cluster {
  const seed = new URL(seedUrl);
  return new Cluster([{ host: seed.hostname, port: Number(seed.port) }]);
}

/** Where the state-store tests run: a single node and a cluster, each with a client to check on it. */
export interface ValkeyTarget {
  name: string;
  cluster: boolean;
  url(): string;
  client(): Valkey | Cluster;
}

export const VALKEY_TARGETS: ValkeyTarget[] = [
  { name: 'a single Valkey node', cluster: false, url: valkeyUrl, client: valkeyClient },
  { name: 'a Valkey cluster', cluster: true, url: valkeyClusterUrl, client: () => valkeyClusterClient() },
];

/** Unique per test, so test files can share one server and run in parallel. */
export function uniqueName(prefix = 'test'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export async function createQueue(name = uniqueName('q'), fifo = false): Promise<string> {
  const client = sqsClient();
  try {
    const queueName = fifo ? `${name}.fifo` : name;
    const attributes: Record<string, string> = fifo ? { FifoQueue: 'true' } : {};
    const result = await client.send(new CreateQueueCommand({ QueueName: queueName, Attributes: attributes }));
    return result.QueueUrl as string;
  } finally {
    client.destroy();
  }
}

/** Receives and deletes until the queue answers empty. */
export async function drainQueue(queueUrl: string): Promise<Message[]> {
  const client = sqsClient();
  const all: Message[] = [];
  try {
    for (;;) {
      const { Messages = [] } = await client.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['All'] }),
      );
      if (Messages.length === 0) return all;
      all.push(...Messages);
      await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })),
        }),
      );
    }
  } finally {
    client.destroy();
  }
}

export function userIdsOf(messages: Message[]): string[] {
  return messages.map((m) => (JSON.parse(m.Body as string) as { user_id: string }).user_id);
}

export async function putObject(bucket: string, key: string, body: string | Buffer): Promise<void> {
  const client = s3Client();
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => undefined);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  } finally {
    client.destroy();
  }
}

/** Polls a condition (never a fixed sleep) until it holds or the deadline passes. */
export async function waitFor(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

import { GetQueueAttributesCommand, SQSClient, SendMessageBatchCommand, SQSServiceException } from '@aws-sdk/client-sqs';
import { FfError, errorMessage } from '../errors.js';
import type { OutgoingMessage } from './message.js';
import type { EntryOutcome, MessageSink } from './types.js';

export interface SqsSinkOptions {
  queueUrl: string;
  /** null: the SDK's own resolution (AWS_REGION, the profile). */
  region?: string | null;
  /** sqs.endpoint: requests go there, whatever host the queue URL names. */
  endpoint?: string | null;
  /** Attempts the SDK makes per request (its standard retry mode, with backoff). */
  maxAttempts: number;
  requestTimeoutMs: number;
}

/** Errors after which retrying the call cannot succeed: the run stops and says why. */
const FATAL_ERRORS = new Set([
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'AccessDenied',
  'AccessDeniedException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'InvalidAddress',
]);

/**
 * SQS through SendMessageBatch (≤ 10 entries). For a `.fifo` queue, MessageGroupId is the user ID
 * and MessageDeduplicationId the request ID, so a retried send is deduplicated by SQS itself.
 */
export class SqsSink implements MessageSink {
  readonly maxBatchSize = 10;
  readonly description: string;
  private readonly client: SQSClient;
  private readonly fifo: boolean;
  /** An injected client belongs to the caller, who closes it. */
  private readonly ownsClient: boolean;

  constructor(
    private readonly options: SqsSinkOptions,
    client?: SQSClient,
  ) {
    this.description = `sqs ${options.queueUrl}`;
    this.fifo = options.queueUrl.endsWith('.fifo');
    this.ownsClient = client === undefined;
    // With a custom endpoint (sqs.endpoint), send there even if the queue URL names another host,
    // as local SQS servers hand out URLs that need not resolve.
    this.client =
      client ??
      new SQSClient({
        maxAttempts: options.maxAttempts,
        ...(options.region ? { region: options.region } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        useQueueUrlAsEndpoint: !options.endpoint,
        requestHandler: {
          connectionTimeout: Math.min(options.requestTimeoutMs, 3000),
          requestTimeout: options.requestTimeoutMs,
          // Without it the SDK only logs a warning when the timeout passes and waits for ever:
          // an SQS that took a batch and never answered would hang the run (the fault campaign's
          // sqs-lost-responses scenario).
          throwOnRequestTimeout: true,
        },
      });
  }

  async send(messages: readonly OutgoingMessage[]): Promise<EntryOutcome[]> {
    if (messages.length === 0) return [];
    if (messages.length > this.maxBatchSize) throw new RangeError(`at most ${this.maxBatchSize} messages per batch`);
    const command = new SendMessageBatchCommand({
      QueueUrl: this.options.queueUrl,
      Entries: messages.map((message, index) => ({
        Id: String(index),
        MessageBody: message.body,
        ...(this.fifo ? { MessageGroupId: message.userId, MessageDeduplicationId: message.requestId } : {}),
      })),
    });
    let response;
    try {
      response = await this.client.send(command);
    } catch (error) {
      throw toSinkError(this.options.queueUrl, error);
    }
    const outcomes: EntryOutcome[] = messages.map(() => ({
      ok: false,
      code: 'NoResult',
      message: 'SQS returned neither success nor failure for this entry',
      senderFault: false,
    }));
    for (const success of response.Successful ?? []) outcomes[Number(success.Id)] = { ok: true };
    for (const failure of response.Failed ?? []) {
      outcomes[Number(failure.Id)] = {
        ok: false,
        code: failure.Code ?? 'Unknown',
        message: failure.Message ?? '',
        senderFault: failure.SenderFault ?? false,
      };
    }
    return outcomes;
  }

  /** ApproximateNumberOfMessages + …NotVisible (needs sqs:GetQueueAttributes). */
  async backlog(): Promise<number> {
    try {
      const { Attributes = {} } = await this.client.send(
        new GetQueueAttributesCommand({ QueueUrl: this.options.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
      );
      return Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
    } catch (error) {
      const failure = toSinkError(this.options.queueUrl, error);
      throw new FfError(failure.code, `cannot read the backlog of ${this.options.queueUrl} (sqs:GetQueueAttributes, for sqs.maxBacklog): ${errorMessage(error)}`, { cause: error });
    }
  }

  close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
    return Promise.resolve();
  }
}

function toSinkError(queueUrl: string, error: unknown): FfError {
  const name = error instanceof Error ? error.name : 'Error';
  const code = error instanceof SQSServiceException ? (error as SQSServiceException & { Code?: string }).Code : undefined;
  const fatal = FATAL_ERRORS.has(name) || (code !== undefined && FATAL_ERRORS.has(code));
  return new FfError(fatal ? 'SINK_REJECTED' : 'SINK_UNAVAILABLE', `SQS SendMessageBatch to ${queueUrl} failed: ${name}: ${errorMessage(error)}`, {
    cause: error,
    retryable: !fatal,
  });
}

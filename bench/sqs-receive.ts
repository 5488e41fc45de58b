import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** Every message of the queue (at least `expected`, waiting up to 30 s for them): its user and SentTimestamp. */
export async function receiveAll(sqs: SQSClient, queueUrl: string, expected: number): Promise<Array<{ user: string; at: number }>> {
  const all: Array<{ user: string; at: number }> = [];
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['SentTimestamp'] }));
    if (Messages.length === 0) {
      if (all.length >= expected || Date.now() > deadline) return all;
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    for (const message of Messages) all.push({ user: (JSON.parse(message.Body as string) as { user_id: string }).user_id, at: Number(message.Attributes?.SentTimestamp) });
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })) }));
  }
}

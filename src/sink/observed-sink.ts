import type { OutgoingMessage } from './message.js';
import type { EntryOutcome, MessageSink } from './types.js';

/**
 * A sink that passes every message to `inner` (which stays its owner's: closing this one does
 * not close it) and tells `onAccepted` the users whose message the queue accepted, once per batch.
 */
export class ObservedSink implements MessageSink {
  readonly description: string;
  readonly maxBatchSize: number;
  readonly backlog?: () => Promise<number>;

  constructor(
    private readonly inner: MessageSink,
    private readonly onAccepted: (users: string[]) => Promise<void> | void,
  ) {
    this.description = inner.description;
    this.maxBatchSize = inner.maxBatchSize;
    if (inner.backlog) this.backlog = inner.backlog.bind(inner);
  }

  async send(messages: readonly OutgoingMessage[]): Promise<EntryOutcome[]> {
    const outcomes = await this.inner.send(messages);
    const accepted = messages.filter((_, index) => outcomes[index]?.ok).map((message) => message.userId);
    if (accepted.length > 0) await this.onAccepted(accepted);
    return outcomes;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

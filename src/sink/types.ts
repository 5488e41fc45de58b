import type { OutgoingMessage } from './message.js';

export type EntryOutcome =
  | { ok: true }
  | {
      ok: false;
      code: string;
      message: string;
      /** SQS's SenderFault: true means the entry itself is bad and retrying cannot help. */
      senderFault: boolean;
    };

/**
 * Where backfill messages go: SQS, or stdout for the embedded default and --dry-run. `send` takes
 * at most 10 messages and returns one outcome per message, in order; it throws an FfError
 * (SINK_UNAVAILABLE / SINK_REJECTED) when the whole call fails.
 */
export interface MessageSink {
  readonly description: string;
  readonly maxBatchSize: number;
  send(messages: readonly OutgoingMessage[]): Promise<EntryOutcome[]>;
  /** Messages waiting in the queue plus those in flight (a queue has one; stdout has none). */
  backlog?(): Promise<number>;
  close(): Promise<void>;
}

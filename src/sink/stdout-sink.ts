import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { OutgoingMessage } from './message.js';
import type { EntryOutcome, MessageSink } from './types.js';

/** Writes each message body as one JSON line (the embedded default, and --dry-run). */
export class StdoutSink implements MessageSink {
  readonly maxBatchSize = 10;
  readonly description: string;

  constructor(
    private readonly out: Writable = process.stdout,
    label = 'stdout',
  ) {
    this.description = label;
  }

  async send(messages: readonly OutgoingMessage[]): Promise<EntryOutcome[]> {
    let text = '';
    for (const message of messages) text += `${message.body}\n`;
    if (!this.out.write(text)) await once(this.out, 'drain');
    return messages.map(() => ({ ok: true }));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

import type { FeedStore } from '../src/feeds/live-state.js';
import type { ShadowAgreement } from '../src/pipeline/summary.js';
import type { OutgoingMessage } from '../src/sink/message.js';
import type { EntryOutcome, MessageSink } from '../src/sink/types.js';

/**
 * Wraps a polling run's sink to compare what the run enqueues with what a feed in shadow mode
 * recorded: each accepted user is looked up (and taken) in the shadow record as it is sent; at
 * the end, what the feed recorded before the run and the run did not send is "only the feed".
 */
export class ShadowComparison implements MessageSink {
  readonly description: string;
  readonly maxBatchSize: number;
  backlog?: () => Promise<number>;
  private both = 0;
  private onlyPolling = 0;
  private readonly leads: number[] = [];
  /** Accepted users the shadow record could not be read for (Valkey blipped): left out of the counts. */
  private unmatched = 0;
  private readonly startedAt = Date.now();

  constructor(
    private readonly inner: MessageSink,
    private readonly store: FeedStore,
    private readonly flag: string,
    private readonly feed: string,
  ) {
    this.description = inner.description;
    this.maxBatchSize = inner.maxBatchSize;
    if (inner.backlog) this.backlog = inner.backlog.bind(inner);
  }

  async send(messages: readonly OutgoingMessage[]): Promise<EntryOutcome[]> {
    const outcomes = await this.inner.send(messages);
    const accepted = messages.filter((_, index) => outcomes[index]?.ok).map((message) => message.userId);
    if (accepted.length > 0) {
      // A report card only: failing to read it must not fail a batch the queue accepted.
      try {
        const now = Date.now();
        for (const foundAt of await this.store.takeShadow(this.flag, accepted)) {
          if (foundAt === null) this.onlyPolling += 1;
          else {
            this.both += 1;
            this.leads.push(Math.max(0, (now - foundAt) / 60_000));
          }
        }
      } catch {
        this.unmatched += accepted.length;
      }
    }
    return outcomes;
  }

  /** The agreement, once the run is over; the feed's unmatched entries from before the run are taken. */
  async finish(): Promise<ShadowAgreement> {
    const onlyFeed = await this.store.takeShadowBefore(this.flag, this.startedAt);
    const leads = [...this.leads].sort((a, b) => a - b);
    const round = (minutes: number | undefined): number | null => (minutes === undefined ? null : Math.round(minutes * 10) / 10);
    return { feed: this.feed, both: this.both, onlyPolling: this.onlyPolling, onlyFeed: onlyFeed.length, unmatched: this.unmatched, feedEarlierMinutes: { p50: round(leads[Math.floor((leads.length - 1) / 2)]), max: round(leads.at(-1)) } };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

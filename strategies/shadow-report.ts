import type { FeedStore } from '../src/feeds/live-state.js';
import type { ShadowAgreement } from '../src/pipeline/summary.js';

/**
 * Compares what a polling run enqueues with what a feed in shadow mode recorded: each accepted
 * user (`observe`, fed by an ObservedSink) is looked up (and taken) in the shadow record as it is
 * sent; at the end, what the feed recorded before the run and the run did not send is "only the
 * feed".
 */
export class ShadowComparison {
  private both = 0;
  private onlyPolling = 0;
  private readonly leads: number[] = [];
  /** Accepted users the shadow record could not be read for (Valkey blipped): left out of the counts. */
  private unmatched = 0;
  private readonly startedAt = Date.now();

  constructor(
    private readonly store: FeedStore,
    private readonly flag: string,
    private readonly feed: string,
  ) {}

  /** A report card only: failing to read it must not fail a batch the queue accepted. */
  async observe(accepted: string[]): Promise<void> {
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

  /** The agreement, once the run is over; the feed's unmatched entries from before the run are taken. */
  async finish(): Promise<ShadowAgreement> {
    const onlyFeed = await this.store.takeShadowBefore(this.flag, this.startedAt);
    const leads = [...this.leads].sort((a, b) => a - b);
    const round = (minutes: number | undefined): number | null => (minutes === undefined ? null : Math.round(minutes * 10) / 10);
    return { feed: this.feed, both: this.both, onlyPolling: this.onlyPolling, onlyFeed: onlyFeed.length, unmatched: this.unmatched, feedEarlierMinutes: { p50: round(leads[Math.floor((leads.length - 1) / 2)]), max: round(leads.at(-1)) } };
  }
}

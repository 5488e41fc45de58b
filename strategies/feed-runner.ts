import { errorMessage } from '../src/errors.js';
import type { FeedChange } from '../src/feeds/changes.js';
import { LiveStateSink, type AppliedChange } from '../src/feeds/live-state-sink.js';
import { forgetPolicyFor } from './forget-policy.js';
import type { FeedStore, LiveFlagState, RunTrigger } from '../src/feeds/live-state.js';
import type { ShadowAgreement } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { drainPending, type DrainPass } from './feed-drain.js';
import type { FeedHandle, FeedHealth, FeedStrategy } from './feed.js';

export type RunRequestResult = 'started' | 'busy' | 'follower' | 'stopping';

export interface FeedRunnerOptions {
  /** Record what would be sent, send nothing (strategies.*.shadow). */
  shadow: boolean;
  /** Change nothing shared: the feed store is this process's, the source is read without a trace. */
  dryRun: boolean;
  /** Stop the feed once it applied what its source held at start. */
  untilEnd?: boolean;
  /** A change the users cannot express owes a full run this long after the last one (debounce). */
  debounceMs: number;
  /** Starts a full polling run now (the daemon); absent: owed runs are only reported (watch). */
  requestRun?: (reason: string) => RunRequestResult;
  onChange?: (change: FeedChange, at: { partition: number; offset: string }) => void;
  onDrained?: (pass: DrainPass) => void;
  onRunOwed?: (trigger: RunTrigger) => void;
}

/** What /status shows of a feed. */
export interface FeedStatus {
  strategy: string;
  shadow: boolean;
  leading: boolean;
  health: FeedHealth;
  details: object | null;
  liveState: { revision: number; version: LiveFlagState['version']; ageSeconds: number; enabled: boolean | null; percentage: number | null; explicitUsers: number; complete: boolean } | null;
  pending: number | null;
  shadowRecorded: number | null;
  runOwed: RunTrigger | null;
  lastRebucketing: RunTrigger | null;
  /** The last polling run's comparison with this feed (shadow mode), with when it was made. */
  lastAgreement: (ShadowAgreement & { at: string }) | null;
  drained: { passes: number; users: number; sent: number; unsettledPasses: number };
  error: string | null;
}

const IDLE_MS = 1000;
/** The process's drain queue (see drainOnce). */
let draining: Promise<void> = Promise.resolve();
const BACKOFF_MAX_MS = 30_000;

/**
 * A feed at work: its source applied into the live state by every replica (the sink), and — on
 * the leader only, so two replicas never send the same pending user — the pending users drained
 * through the pipeline and the owed full runs started, debounced. A drain or a trigger that fails
 * is retried with backoff; nothing is dropped, since both live in the feed store.
 */
export class FeedRunner {
  private handle: FeedHandle | undefined;
  private leading = false;
  /** Aborted when this replica stops leading: a drain pass must not go on beside the new leader's. */
  private leadership = new AbortController();
  private wake: () => void = () => undefined;
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;
  private lastRebucketing: RunTrigger | null = null;
  private lastAgreement: FeedStatus['lastAgreement'] = null;
  private readonly drained = { passes: 0, users: 0, sent: 0, unsettledPasses: 0 };
  private error: string | null = null;

  constructor(
    private readonly runtime: Runtime,
    private readonly strategy: FeedStrategy,
    private readonly store: FeedStore,
    private readonly options: FeedRunnerOptions,
  ) {}

  start(signal: AbortSignal): void {
    const { logger, events } = this.runtime;
    const { state } = this.runtime.config;
    // A snapshot removing too many explicit users at once is held (the forget guard), until released.
    const released = async (): Promise<boolean> => !this.options.dryRun && forgetPolicyFor(this.runtime, await this.runtime.openStore(), { dryRun: false }).released();
    const guard = { maxFraction: state.maxForgetFraction, floor: state.maxForgetFloor, released };
    const onApplied = (applied: AppliedChange): void => {
      if (applied.rebucketing) this.lastRebucketing = { reason: applied.trigger ?? 'rebucketing', rebucketing: true, at: new Date().toISOString() };
      if (applied.added + applied.removed > 0 || applied.trigger) this.wake();
    };
    const sink = new LiveStateSink(this.store, logger, events, onApplied, () => new Date(), guard);
    const stopping = AbortSignal.any([signal, this.stopper.signal]);
    const onAgreement = (agreement: ShadowAgreement): void => {
      if (agreement.feed.split('+').includes(this.strategy.name)) this.lastAgreement = { ...agreement, at: new Date().toISOString() };
    };
    events.on('feed:agreement', onAgreement);
    stopping.addEventListener('abort', () => events.off('feed:agreement', onAgreement), { once: true });
    this.handle = this.strategy.start(this.runtime, sink, stopping, { readOnly: this.options.dryRun, untilEnd: this.options.untilEnd, onChange: this.options.onChange, leading: () => this.leading });
    this.loop = this.work(stopping);
  }

  /** The leader drains and starts owed runs; followers only apply. */
  setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading) {
      this.leadership = new AbortController();
      this.wake();
    } else {
      // A pass in progress stops at once: the new leader drains the same users.
      this.leadership.abort(new Error('leadership lost'));
    }
  }

  /** Settles when the feed stopped by itself (untilEnd) or failed. */
  get ended(): Promise<void> {
    return this.handle?.ended ?? Promise.resolve();
  }

  /** Drains until no user is pending (watch --until-end), or a pass leaves users unsettled. */
  async drainAll(signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      const pass = await this.drainOnce(signal, false);
      if (!pass) return true;
      if (!pass.settled) return false;
    }
  }

  async status(): Promise<FeedStatus> {
    const { flag } = this.runtime.config;
    const health: FeedHealth = this.handle?.health() ?? { state: 'starting', position: null, lastChangeAt: null, error: null };
    let liveState: FeedStatus['liveState'] = null;
    let pending: number | null = null;
    let shadowRecorded: number | null = null;
    let runOwed: RunTrigger | null = null;
    try {
      const state = await this.store.read(flag);
      if (state) {
        const ageSeconds = Math.max(0, Math.round((Date.now() - Date.parse(state.updatedAt)) / 1000));
        liveState = { revision: state.revision, version: state.version, ageSeconds, enabled: state.enabled, percentage: state.percentage, explicitUsers: await this.store.explicitCount(flag), complete: state.complete };
      }
      [pending, shadowRecorded, runOwed] = await Promise.all([this.store.pendingSize(flag), this.store.shadowSize(flag), this.store.peekTrigger(flag)]);
    } catch (error) {
      this.error = `cannot read the feed store: ${errorMessage(error)}`;
    }
    return {
      strategy: this.strategy.name,
      shadow: this.options.shadow,
      leading: this.leading,
      health,
      details: this.handle?.details?.() ?? null,
      liveState,
      pending,
      shadowRecorded,
      runOwed,
      lastRebucketing: this.lastRebucketing,
      lastAgreement: this.lastAgreement,
      drained: { ...this.drained },
      error: this.error,
    };
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.wake();
    await this.handle?.stop();
    await this.loop;
  }

  private async work(signal: AbortSignal): Promise<void> {
    let backoffMs = IDLE_MS;
    while (!signal.aborted) {
      let failed = false;
      if (this.leading) {
        try {
          while (!signal.aborted) {
            const pass = await this.drainOnce(signal);
            if (!pass) break;
            if (!pass.settled) {
              failed = true;
              break;
            }
          }
          await this.honourTrigger();
          this.error = null;
        } catch (error) {
          failed = true;
          this.error = errorMessage(error);
          this.runtime.logger.warn({ err: error, strategy: this.strategy.name }, `feed drain or trigger failed, retrying: ${this.error}`);
        }
      }
      backoffMs = failed ? Math.min(backoffMs * 2, BACKOFF_MAX_MS) : IDLE_MS;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoffMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /**
   * One pass at a time in this process — the loop's and drainAll's, and those of every feed's
   * runner, which share the pending set — so no user is sent twice by it.
   */
  private drainOnce(signal: AbortSignal | undefined, asLeader = true): Promise<DrainPass | null> {
    const pass = draining.then(() => this.drainPass(signal, asLeader));
    draining = pass.then(
      () => undefined,
      () => undefined,
    );
    return pass;
  }

  private async drainPass(signal: AbortSignal | undefined, asLeader: boolean): Promise<DrainPass | null> {
    // The loop drains as the leader, so losing leadership stops its pass; drainAll is asked for.
    if (asLeader && this.leadership.signal.aborted) return null;
    const passSignal = asLeader ? (signal ? AbortSignal.any([signal, this.leadership.signal]) : this.leadership.signal) : signal;
    const pass = await drainPending(this.runtime, this.store, { strategy: this.strategy.name, shadow: this.options.shadow, dryRun: this.options.dryRun }, passSignal);
    if (!pass) return null;
    this.drained.passes += 1;
    this.drained.users += pass.users;
    this.drained.sent += pass.sent.length;
    if (!pass.settled) this.drained.unsettledPasses += 1;
    this.options.onDrained?.(pass);
    return pass;
  }

  /** A full run owed and due (debounced): taken, then started; put back if none could start. */
  private async honourTrigger(): Promise<void> {
    const { flag } = this.runtime.config;
    const owed = await this.store.peekTrigger(flag);
    if (!owed || Date.now() - Date.parse(owed.at) < this.options.debounceMs) return;
    const taken = await this.store.takeTrigger(flag);
    if (!taken) return;
    if (!this.options.requestRun) {
      this.options.onRunOwed?.(taken);
      return;
    }
    const result = this.options.requestRun(`feed: ${taken.reason}`);
    if (result !== 'started') await this.store.restoreTrigger(flag, taken);
    if (result === 'started') this.runtime.logger.info({ trigger: taken }, `full run started for the feed: ${taken.reason}`);
    else this.runtime.logger.debug({ trigger: taken, result }, `full run owed, not started (${result}): kept for later`);
  }
}

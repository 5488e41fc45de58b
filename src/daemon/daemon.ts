import { randomUUID } from 'node:crypto';
import cron, { type ScheduledTask } from 'node-cron';
import { Counter, Gauge, type Registry } from 'prom-client';
import { errorMessage } from '../errors.js';
import { bindMetrics } from '../observability/metrics.js';
import { summaryWithoutRun, type RunSummary } from '../pipeline/summary.js';
import type { Runtime } from '../runtime/runtime.js';
import type { StateStore } from '../state/types.js';
import type { GateName } from '../send/send-gate.js';
import { feedStrategy, KAFKA_TOPIC, oneShotStrategy, RECONCILE, S3_BUCKET } from '../../strategies/index.js';
import { FeedRunner, type FeedStatus } from '../../strategies/feed-runner.js';
import type { OneShotStrategy } from '../../strategies/types.js';
import { FfError } from '../errors.js';
import { bindFeedGauges } from './feed-gauges.js';
import { Leadership, type Role } from './leadership.js';
import { ReplicaPresence, type LocalRun } from './replica-presence.js';
import { packageVersion } from '../cli/version.js';

export type TriggerResult = 'started' | 'busy' | 'follower' | 'stopping';

export interface SendingPause {
  gate: GateName;
  since: string;
  reason: string;
}

interface ActiveRun {
  /** Named here, before the strategy starts: the run can be shown and cancelled from its first moment. */
  runId: string;
  trigger: string;
  strategy: string;
  startedAt: Date;
  cancel: AbortController;
  done: Promise<RunSummary>;
  progress: { enqueued: number; queued: number; elapsedMs: number };
  /** Its summary is out (run:finished): no longer shown as in progress while it is recorded. */
  finished: boolean;
}

/**
 * `ff-detector run`: polls on a cron schedule while this replica leads, one run at a time; a tick
 * that finds a run in progress is skipped and counted. Each run's summary goes to the history in
 * the state store, the metrics and the log.
 */
export class Daemon {
  readonly registry: Registry;
  private readonly skippedTicks: Counter;
  private readonly leaderGauge: Gauge;
  private leadership: Leadership | undefined;
  private task: ScheduledTask | undefined;
  private upkeepTask: ScheduledTask | undefined;
  private store: StateStore | undefined;
  private active: ActiveRun | undefined;
  private stopping = false;
  private readonly pauses = new Map<GateName, SendingPause>();
  /** The scheduled runs' strategy (daemon.strategy), also run by POST /runs. */
  private readonly strategy: OneShotStrategy;
  /** The known set's upkeep (reconcile), on daemon.reconcileSchedule; none when that is null. */
  private readonly upkeep: OneShotStrategy | undefined;
  /** The feeds enabled (strategies.kafkaTopic, strategies.s3Bucket): on every replica; drains on the leader. */
  private readonly feeds: FeedRunner[] = [];
  private readonly feedStopper = new AbortController();
  private presence: ReplicaPresence | undefined;

  /** Throws a configuration error (exit 2) when daemon.strategy names no one-shot strategy. */
  constructor(private readonly runtime: Runtime) {
    const { daemon } = runtime.config;
    this.strategy = oneShotStrategy(daemon.strategy, 'daemon.strategy');
    this.upkeep = daemon.reconcileSchedule === null ? undefined : oneShotStrategy(RECONCILE, 'daemon.reconcileSchedule');
    this.registry = bindMetrics(runtime.events);
    this.skippedTicks = new Counter({ name: 'ff_detector_skipped_ticks_total', help: 'Scheduled ticks not run, by reason', labelNames: ['reason'], registers: [this.registry] });
    this.leaderGauge = new Gauge({ name: 'ff_detector_leader', help: '1 while this replica is the leader', registers: [this.registry] });
    const progress = (field: 'enqueued' | 'queued') => () => (this.active ? this.active.progress[field] : 0);
    new Gauge({ name: 'ff_detector_current_run_enqueued', help: 'Users enqueued so far by the run in progress', registers: [this.registry], collect() { this.set(progress('enqueued')()); } });
    new Gauge({ name: 'ff_detector_current_run_queued', help: 'Users queued for sending so far by the run in progress', registers: [this.registry], collect() { this.set(progress('queued')()); } });
    // Feed drains run the pipeline too, perhaps at the same time: only the run's own progress counts.
    runtime.events.on('run:progress', ({ runId, enqueued, queued, elapsedMs }) => {
      if (this.active?.runId === runId) this.active.progress = { enqueued, queued, elapsedMs };
    });
    runtime.events.on('send:paused', ({ gate, paused, reason }) => {
      if (paused) this.pauses.set(gate, { gate, since: new Date().toISOString(), reason });
      else this.pauses.delete(gate);
    });
  }

  /** Gates holding this replica's sending (a run's or a backfill's) right now, and why. */
  sendingPaused(): SendingPause[] {
    return [...this.pauses.values()];
  }

  get role(): Role {
    return this.leadership?.role ?? 'follower';
  }

  /** Opens the store and the flag rules, then takes part in leader election and schedules ticks. */
  async start(): Promise<void> {
    const { config, logger } = this.runtime;
    this.store = await this.runtime.openStore();
    await this.runtime.openChecker();
    this.presence = new ReplicaPresence({
      board: this.store.board,
      permits: this.store.permits,
      keyPrefix: config.state.detectorKeyPrefix,
      version: packageVersion(),
      rateLimit: config.enqueue.rateLimit,
      role: () => this.role,
      lagGateEnabled: config.safety.consumerLag.enabled,
      localRun: () => this.localRun(),
      events: this.runtime.events,
      logger,
    });
    const onRole = (role: Role): void => {
      this.leaderGauge.set(role === 'leader' ? 1 : 0);
      for (const feed of this.feeds) feed.setLeading(role === 'leader');
      this.presence?.announce(); // the board says who leads now, not at the next heartbeat
      if (role === 'leader' && config.daemon.runAtStart) this.trigger('start');
    };
    this.leadership = new Leadership(this.store.locks, `${config.state.detectorKeyPrefix}leader`, config.daemon.leaderTtlMs, logger, onRole);
    await this.leadership.start();
    this.presence.start();
    await this.startFeeds();
    this.task = cron.schedule(config.daemon.schedule, () => void this.trigger('schedule'), { timezone: config.daemon.timezone, name: 'polling' });
    const { upkeep } = this;
    if (upkeep && config.daemon.reconcileSchedule !== null) {
      this.upkeepTask = cron.schedule(config.daemon.reconcileSchedule, () => void this.trigger('reconcile', upkeep), { timezone: config.daemon.timezone, name: upkeep.name });
    }
    logger.info({ schedule: config.daemon.schedule, timezone: config.daemon.timezone, strategy: this.strategy.name, role: this.role }, 'daemon started');
  }

  /**
   * The feeds enabled: the flag topic's (strategies.kafkaTopic) and the flag bucket's
   * (strategies.s3Bucket). They keep their state in Valkey, shared by the replicas: with the file
   * store it would be one process's, so that is refused (exit 2).
   */
  private async startFeeds(): Promise<void> {
    const { config } = this.runtime;
    const enabled = [
      { name: KAFKA_TOPIC, setting: 'strategies.kafkaTopic', ...config.strategies.kafkaTopic },
      { name: S3_BUCKET, setting: 'strategies.s3Bucket', ...config.strategies.s3Bucket },
    ].filter((feed) => feed.enabled);
    if (enabled.length === 0) return;
    if (config.state.valkeyUrl === null) throw new FfError('CONFIG_INVALID', `${enabled[0]?.setting ?? 'strategies'}.enabled: a feed keeps its live state and pending users in Valkey; set state.valkeyUrl (VALKEY_URL)`);
    const store = await this.runtime.openFeedStore(false);
    for (const settings of enabled) {
      const feed = new FeedRunner(this.runtime, feedStrategy(settings.name, settings.setting), store, {
        shadow: settings.shadow,
        dryRun: false,
        debounceMs: settings.debounceSeconds * 1000,
        requestRun: (reason) => this.trigger(reason),
      });
      feed.start(this.feedStopper.signal);
      feed.setLeading(this.role === 'leader');
      this.feeds.push(feed);
    }
    bindFeedGauges(this.registry, () => this.feedStatus());
  }

  /** The feeds' state for /status (none configured: empty). */
  feedStatus(): Promise<FeedStatus[]> {
    return Promise.all(this.feeds.map((feed) => feed.status()));
  }

  /** Starts a run now unless one is in progress or this replica follows. */
  trigger(trigger: string, strategy: OneShotStrategy = this.strategy): TriggerResult {
    const { logger } = this.runtime;
    if (this.stopping) return 'stopping';
    const leaderSignal = this.leadership?.signal;
    if (this.role !== 'leader' || !leaderSignal) {
      if (trigger === 'schedule') this.skippedTicks.inc({ reason: 'follower' });
      return 'follower';
    }
    if (this.active) {
      logger.warn({ trigger, running: this.active.trigger, since: this.active.startedAt.toISOString() }, `${trigger} skipped: a run is in progress`);
      if (trigger === 'schedule') this.skippedTicks.inc({ reason: 'busy' });
      return 'busy';
    }
    const cancel = new AbortController();
    const signal = AbortSignal.any([cancel.signal, leaderSignal]);
    const runId = randomUUID();
    const active: ActiveRun = {
      runId,
      trigger,
      strategy: strategy.name,
      startedAt: new Date(),
      cancel,
      progress: { enqueued: 0, queued: 0, elapsedMs: 0 },
      finished: false,
      done: this.execute(runId, trigger, signal, strategy).then((summary) => this.record(active, summary)),
    };
    this.active = active;
    this.presence?.runStarted();
    void active.done.finally(() => {
      if (this.active === active) this.active = undefined;
    });
    return 'started';
  }

  /** Cancels the run in progress; its in-flight batch finishes and is marked. */
  cancel(reason = 'cancelled by request'): boolean {
    if (!this.active) return false;
    this.active.cancel.abort(new Error(reason));
    return true;
  }

  /** What the replicas share (the console, /status): who is there, the leader's run, the lag gate's last reading. */
  get shared(): ReplicaPresence {
    if (!this.presence) throw new Error('the daemon has not started');
    return this.presence;
  }

  private localRun(): LocalRun | undefined {
    const active = this.active;
    if (!active || active.finished) return undefined;
    const { runId, trigger, startedAt, progress } = active;
    return { runId, trigger, startedAt, ...progress, cancel: (reason) => active.cancel.abort(new Error(reason)) };
  }

  async lastRuns(count = 10): Promise<RunSummary[]> {
    const entries = this.store ? await this.store.history.read(count) : [];
    return entries.map((entry) => JSON.parse(entry) as RunSummary);
  }

  /** Stops scheduling, cancels the run in progress and waits for it; safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    const { logger } = this.runtime;
    const steps: Array<[string, () => Promise<unknown> | unknown]> = [
      ['stop the schedule', () => this.task?.destroy()],
      ['stop the reconcile schedule', () => this.upkeepTask?.destroy()],
      ['finish the run in progress', async () => (this.cancel('shutting down') ? await this.active?.done : undefined)],
      ['stop the feeds', () => Promise.all(this.feeds.map((feed) => feed.stop()))],
      ['release leadership', () => this.leadership?.stop()],
      ['leave the replicas\' board', () => this.presence?.stop()],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (error) {
        logger.warn(`could not ${what}: ${errorMessage(error)}`);
      }
    }
    this.leaderGauge.set(0);
  }

  private async execute(runId: string, trigger: string, signal: AbortSignal, strategy: OneShotStrategy): Promise<RunSummary> {
    try {
      return await strategy.run(this.runtime, { dryRun: false, signal, runId });
    } catch (error) {
      this.runtime.logger.error({ err: error, trigger, runId }, `run failed to start: ${errorMessage(error)}`);
      return summaryWithoutRun(strategy.name, 'failed', errorMessage(error), { dryRun: false, budget: this.runtime.config.enqueue.budget, startedAt: new Date(), runId });
    }
  }

  /** The run is over: no longer shown as in progress, announced, kept in the history. */
  private async record(active: ActiveRun, summary: RunSummary): Promise<RunSummary> {
    const { logger, config } = this.runtime;
    active.finished = true;
    this.runtime.events.emit('run:finished', summary);
    try {
      await this.store?.history.push(JSON.stringify(summary), config.daemon.historySize);
    } catch (error) {
      logger.warn(`could not record the run in the history: ${errorMessage(error)}`);
    }
    return summary;
  }
}


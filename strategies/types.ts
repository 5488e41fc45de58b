import type { RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import type { FeedStrategy } from './feed.js';

export type { FeedChange, FeedChangeSink, FeedHandle, FeedHealth, FeedPosition, FeedStartOptions, FeedState, FeedStrategy } from './feed.js';

export interface RunRequest {
  dryRun: boolean;
  /** Forget however many known users the run finds disabled (the operator's release of the forget guard). */
  allowMassForget?: boolean;
  signal?: AbortSignal | undefined;
  /** The run's ID, when the caller names it before it starts (the daemon: to show and cancel it from any replica). */
  runId?: string | undefined;
}

/** What every strategy has. Each one is a file in strategies/, registered in strategies/index.ts. */
export interface StrategyBase {
  /** Unique in the registry; what config (daemon.strategy), summaries and metrics call it. */
  readonly name: string;
  /** Not yet trusted in production (strategies B and C until investigation says they can work). */
  readonly experimental: boolean;
}

/**
 * A strategy that works in runs (strategy A, polling; reconcile): each run finds candidates,
 * feeds them to the detection pipeline and ends with a summary. The CLI runs one now; the daemon
 * runs them on its schedules, one at a time.
 */
export interface OneShotStrategy extends StrategyBase {
  readonly kind: 'one-shot';
  run(runtime: Runtime, request: RunRequest): Promise<RunSummary>;
}

/**
 * How candidates are found. `kind` tells the two shapes apart: a one-shot strategy is run, a feed
 * (strategies/feed.ts) is started and follows the flag system until stopped.
 */
export type Strategy = OneShotStrategy | FeedStrategy;

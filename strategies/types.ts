import type { RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';

export interface RunRequest {
  dryRun: boolean;
  /** Forget however many known users the run finds disabled (the operator's release of the forget guard). */
  allowMassForget?: boolean;
  signal?: AbortSignal | undefined;
}

/**
 * A detection strategy: how candidates are found. Each one is a file in strategies/ and is
 * registered in strategies/index.ts.
 */
export interface Strategy {
  readonly name: string;
  readonly experimental: boolean;
  /** One run: find candidates, feed them to the detection pipeline, return its summary. */
  run(runtime: Runtime, request: RunRequest): Promise<RunSummary>;
}

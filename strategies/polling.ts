import { runDetection } from '../src/pipeline/detection.js';
import type { RunSummary } from '../src/pipeline/summary.js';
import type { Runtime } from '../src/runtime/runtime.js';
import type { RunRequest, Strategy } from './types.js';

/**
 * Strategy A of the seed: test every candidate (recently active users, or a maintained list)
 * against the flag and enqueue those newly enabled. Works with nothing but the flag's rules.
 */
export const pollingStrategy: Strategy = {
  name: 'polling',
  experimental: false,

  async run(runtime: Runtime, request: RunRequest): Promise<RunSummary> {
    const { config, logger } = runtime;
    const store = await runtime.openStore();
    const checker = await runtime.openChecker();
    const sink = runtime.openSink(request.dryRun);
    return runDetection(
      {
        source: runtime.openCandidateSource(),
        checker,
        store,
        sink,
        limiter: runtime.createLimiter(request.dryRun, sink),
        logger,
      },
      {
        strategy: 'polling',
        idPattern: runtime.idPattern,
        dryRun: request.dryRun,
        forgetDisabled: config.state.forgetDisabled,
        budget: config.enqueue.budget,
        maxInFlightBatches: config.state.maxInFlightBatches,
        sendConcurrency: config.sqs.concurrency,
        message: config.enqueue,
        retry: { entryRetries: config.sqs.entryRetries, baseMs: config.sqs.retryBaseMs, maxMs: config.sqs.retryMaxMs },
        signal: request.signal,
      },
    );
  },
};

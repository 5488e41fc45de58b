import { loadConfig } from '../config/load.js';
import { chooseSink } from '../config/sink-choice.js';
import { EXIT_OK, EXIT_RUN_FAILED, FfError, errorMessage } from '../errors.js';
import { createLogger } from '../logger.js';
import { summaryWithoutRun, type RunSummary } from '../pipeline/summary.js';
import { Runtime } from '../runtime/runtime.js';
import { oneShotStrategy, POLLING } from '../../strategies/index.js';
import { overridesFrom } from './options.js';
import { writeLine } from './output.js';

export interface DetectFlags {
  sink?: 'sqs' | 'stdout';
  config?: string;
  candidates?: string;
  column?: string;
  flags?: string;
  dryRun?: boolean;
  rateLimit?: number;
  budget?: number;
  stateFile?: string;
  logLevel?: string;
  metricsFile?: string;
  allowMassForget?: boolean;
}

/**
 * `ff-detector detect`: one polling run now (`ff-detector reconcile`: one reconcile run), the
 * strategy taken from the registry by name. Stdout carries the message bodies (stdout sink or
 * --dry-run), then the run summary as the last line, also when the run fails after start-up.
 * Configuration and rules errors, an unknown strategy among them, exit 2 before any run starts.
 */
export async function detectCommand(flags: DetectFlags, strategyName: string = POLLING): Promise<number> {
  const strategy = oneShotStrategy(strategyName, 'strategy');
  const logger = createLogger(flags.logLevel);
  const config = loadConfig({ configPath: flags.config ?? process.env.FF_DETECTOR_CONFIG, overrides: overridesFrom({ ...flags }) });
  chooseSink(config, flags.dryRun ?? false); // refuses Valkey state with an accidental stdout sink (exit 2)
  const runtime = new Runtime(config, logger);
  // prom-client only when metrics are asked for.
  const metrics = flags.metricsFile ? await import('../observability/metrics.js') : undefined;
  const registry = metrics?.bindMetrics(runtime.events);
  const startedAt = new Date();
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let summary: RunSummary;
  try {
    summary = await strategy.run(runtime, { dryRun: flags.dryRun ?? false, allowMassForget: flags.allowMassForget ?? false, signal: abort.signal });
  } catch (error) {
    if (error instanceof FfError && error.exitCode !== EXIT_RUN_FAILED) {
      await runtime.close();
      throw error;
    }
    logger.error({ err: error }, `${strategy.name} run failed: ${errorMessage(error)}`);
    summary = summaryWithoutRun(strategy.name, 'failed', errorMessage(error), { dryRun: flags.dryRun ?? false, budget: config.enqueue.budget, startedAt });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  runtime.events.emit('run:finished', summary);
  if (!summary.dryRun && summary.status !== 'skipped' && runtime.storeOpened) await recordRun(runtime, summary);
  if (metrics && registry && flags.metricsFile) {
    await metrics.writeMetricsFile(registry, flags.metricsFile).catch((error: unknown) => logger.error({ err: error }, `cannot write metrics to ${flags.metricsFile}`));
  }
  await runtime.close();
  await writeLine(process.stdout, JSON.stringify(summary));
  return summary.status === 'ok' ? EXIT_OK : EXIT_RUN_FAILED;
}

/** The run history (`ff-detector status`, the daemon's /status); a failure to record is only logged. */
async function recordRun(runtime: Runtime, summary: RunSummary): Promise<void> {
  try {
    await (await runtime.openStore()).history.push(JSON.stringify(summary), runtime.config.daemon.historySize);
  } catch (error) {
    runtime.logger.warn(`could not record the run in the history: ${errorMessage(error)}`);
  }
}

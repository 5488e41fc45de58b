import { loadConfig } from '../config/load.js';
import { chooseSink } from '../config/sink-choice.js';
import { EXIT_OK, EXIT_RUN_FAILED, FfError, errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { BackfillManager } from '../backfill/manager.js';
import { AdminServer } from '../daemon/admin-server.js';
import { adminRoutes } from '../daemon/admin-routes.js';
import { Daemon } from '../daemon/daemon.js';
import { Runtime } from '../runtime/runtime.js';
import { pollingStrategy } from '../../strategies/polling.js';
import { overridesFrom } from './options.js';

export interface RunFlags {
  sink?: 'sqs' | 'stdout';
  config?: string;
  flags?: string;
  stateFile?: string;
  logLevel?: string;
}

/**
 * `ff-detector run`: the daemon. SIGTERM/SIGINT stop the schedule, let the in-flight send batch
 * finish and be marked, release the leader lock and close every client, within
 * daemon.shutdownTimeoutMs; a second signal, or the deadline, forces the exit.
 */
export async function runCommand(flags: RunFlags): Promise<number> {
  const logger = createLogger(flags.logLevel);
  const config = loadConfig({ configPath: flags.config ?? process.env.FF_DETECTOR_CONFIG, overrides: overridesFrom({ ...flags }) });
  chooseSink(config, false); // refuses Valkey state with an accidental stdout sink (exit 2)
  const runtime = new Runtime(config, logger);
  const daemon = new Daemon(runtime, pollingStrategy);
  const backfills = new BackfillManager(runtime);
  const admin = new AdminServer(adminRoutes(daemon, runtime, backfills), config.admin, logger.child({ module: 'admin' }));

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (signal: string): Promise<void> => {
    if (shuttingDown) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    logger.info(`${signal}: shutting down`);
    const watchdog = setTimeout(() => {
      logger.error(`shutdown took longer than ${config.daemon.shutdownTimeoutMs} ms: exiting`);
      process.exit(EXIT_RUN_FAILED);
    }, config.daemon.shutdownTimeoutMs);
    watchdog.unref();
    shuttingDown = stopAll(daemon, backfills, admin, runtime, logger).finally(() => clearTimeout(watchdog));
    return shuttingDown;
  };
  const stopped = new Promise<string>((resolve) => {
    process.on('SIGTERM', () => resolve('SIGTERM'));
    process.on('SIGINT', () => resolve('SIGINT'));
  });

  try {
    await daemon.start();
    const address = await admin.listen();
    logger.info(address, `admin API listening on http://${address.host}:${address.port}`);
  } catch (error) {
    logger.error({ err: error }, `daemon failed to start: ${errorMessage(error)}`);
    await stopAll(daemon, backfills, admin, runtime, logger);
    return error instanceof FfError ? error.exitCode : EXIT_RUN_FAILED;
  }
  const signal = await stopped;
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await shutdown(signal);
  logger.info('stopped');
  return EXIT_OK;
}

async function stopAll(daemon: Daemon, backfills: BackfillManager, admin: AdminServer, runtime: Runtime, logger: Logger): Promise<void> {
  for (const [what, step] of [
    ['stop the daemon', () => daemon.stop()],
    ['stop the backfill job', () => backfills.stop()],
    ['close the admin API', () => admin.close()],
    ['close the clients', () => runtime.close()],
  ] as const) {
    try {
      await step();
    } catch (error) {
      logger.warn(`could not ${what}: ${errorMessage(error)}`);
    }
  }
}

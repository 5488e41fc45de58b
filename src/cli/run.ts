import { loadConfig } from '../config/load.js';
import { chooseSink } from '../config/sink-choice.js';
import { EXIT_OK, EXIT_RUN_FAILED, FfError, errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { BackfillCoordinator } from '../backfill/coordinator.js';
import { backfillRoutes } from '../daemon/backfill-routes.js';
import { AdminServer } from '../daemon/admin-server.js';
import { isLoopback } from '../daemon/request-guard.js';
import { adminRoutes } from '../daemon/admin-routes.js';
import { consoleRoutes } from '../daemon/console-routes.js';
import { Daemon } from '../daemon/daemon.js';
import { Runtime } from '../runtime/runtime.js';
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
  const daemon = new Daemon(runtime); // its strategies come from the registry (daemon.strategy); a bad name exits 2 here
  const parts: DaemonParts = { daemon, runtime };

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
    shuttingDown = stopAll(parts, logger).finally(() => clearTimeout(watchdog));
    return shuttingDown;
  };
  const stopped = new Promise<string>((resolve) => {
    process.on('SIGTERM', () => resolve('SIGTERM'));
    process.on('SIGINT', () => resolve('SIGINT'));
  });

  try {
    await daemon.start();
    parts.backfills = new BackfillCoordinator(runtime, await runtime.openStore(), logger.child({ module: 'backfill' }));
    const routes = [...adminRoutes(daemon, runtime), ...backfillRoutes(parts.backfills, { bodyLimitBytes: config.admin.backfillBodyLimitBytes, maxUsers: config.backfill.maxUsers }), ...(config.admin.console ? consoleRoutes() : [])];
    parts.admin = new AdminServer(routes, config.admin, logger.child({ module: 'admin' }));
    const address = await parts.admin.listen();
    logger.info(address, `admin API listening on http://${address.host}:${address.port}`);
    if (!isLoopback(config.admin.host) && config.admin.token === null) {
      logger.warn(`the admin API is bound to ${config.admin.host} without ADMIN_TOKEN: only ${config.admin.publicRoutes.join(', ')} answer; set ADMIN_TOKEN for the others`);
    }
    parts.backfills.watch(); // takes over a backfill job left by a replica that stopped or died
  } catch (error) {
    logger.error({ err: error }, `daemon failed to start: ${errorMessage(error)}`);
    await stopAll(parts, logger);
    return error instanceof FfError ? error.exitCode : EXIT_RUN_FAILED;
  }
  const signal = await stopped;
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await shutdown(signal);
  logger.info('stopped');
  return EXIT_OK;
}

interface DaemonParts {
  daemon: Daemon;
  runtime: Runtime;
  backfills?: BackfillCoordinator;
  admin?: AdminServer;
}

async function stopAll({ daemon, runtime, backfills, admin }: DaemonParts, logger: Logger): Promise<void> {
  for (const [what, step] of [
    ['stop the daemon', () => daemon.stop()],
    ['stop the backfill job', () => backfills?.stop()],
    ['close the admin API', () => admin?.close()],
    ['close the clients', () => runtime.close()],
  ] as const) {
    try {
      await step();
    } catch (error) {
      logger.warn(`could not ${what}: ${errorMessage(error)}`);
    }
  }
}

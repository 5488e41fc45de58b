import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

/**
 * Logs are JSON lines on stderr, so stdout stays reserved for messages and the run summary.
 * Written synchronously: a CLI that exits right after a failure must not lose its last lines.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  const options = { level, base: { service: 'ff-detector' } };
  if (process.stderr.isTTY) {
    // Human-readable on a terminal; JSON lines everywhere else (containers, pipes, files).
    return pino(options, pretty({ destination: 2, sync: true, colorize: true, ignore: 'service,pid,hostname' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/** For unit tests and library callers that want silence. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

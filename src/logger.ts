import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Logs are JSON lines on stderr, so stdout stays reserved for messages and the run summary.
 * Written synchronously: a CLI that exits right after a failure must not lose its last lines.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'ff-detector' } }, pino.destination({ fd: 2, sync: true }));
}

/** For unit tests and library callers that want silence. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

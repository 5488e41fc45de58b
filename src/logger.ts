import { createRequire } from 'node:module';
import pino from 'pino';
import type PinoPretty from 'pino-pretty';

// pino-pretty (and its dependencies) only for a terminal: a run writing JSON never loads it.
const require = createRequire(import.meta.url);

export type Logger = pino.Logger;

/**
 * Logs are JSON lines on stderr, so stdout stays reserved for messages and the run summary.
 * Written synchronously: a CLI that exits right after a failure must not lose its last lines.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  const options = { level, base: { service: 'ff-detector' } };
  if (process.stderr.isTTY) {
    // Human-readable on a terminal; JSON lines everywhere else (containers, pipes, files).
    const pretty = require('pino-pretty') as typeof PinoPretty;
    return pino(options, pretty({ destination: 2, sync: true, colorize: true, ignore: 'service,pid,hostname' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/** For unit tests and library callers that want silence. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

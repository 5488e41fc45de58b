import { createRequire } from 'node:module';
import pino from 'pino';
import type PinoPretty from 'pino-pretty';
import { FfError } from './errors.js';
import { LOG_LEVELS, isLogLevel, logLevelFromEnv } from './log-levels.js';

// pino-pretty (and its dependencies) only for a terminal: a run writing JSON never loads it.
const require = createRequire(import.meta.url);

export type Logger = pino.Logger;

/**
 * Logs are JSON lines on stderr, so stdout stays reserved for messages and the run summary.
 * Written synchronously: a CLI that exits right after a failure must not lose its last lines.
 * The level is the one given (--log-level), else LOG_LEVEL, else info; an unknown one is a
 * configuration error (exit 2), not pino's own exception.
 */
export function createLogger(level?: string): Logger {
  const chosen = level ?? logLevelFromEnv() ?? 'info';
  if (!isLogLevel(chosen)) throw new FfError('CONFIG_INVALID', `log level "${chosen}" is not one of: ${LOG_LEVELS.join(', ')}`);
  const options = { level: chosen, base: { service: 'ff-detector' } };
  // Human-readable on a terminal; JSON lines everywhere else (containers, pipes, files).
  return pino(options, process.stderr.isTTY ? terminalDestination() : pino.destination({ fd: 2, sync: true }));
}

/** For unit tests and library callers that want silence. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** The fields of a pino JSON line that the terminal's one-line error uses. */
export interface LogEntry {
  level: number;
  msg?: string;
  err?: { message?: string };
  /** A run summary (the pipeline logs a failed run with it): its `error` is the reason. */
  summary?: { error?: string | null };
}

const ERROR_LEVEL = pino.levels.values.error as number;
const FATAL_LEVEL = pino.levels.values.fatal as number;

/**
 * A person at a terminal gets an error as one line saying what failed and why — not an object
 * dump with a stack trace; other levels are pretty-printed. Machines (no TTY) keep the JSON.
 */
export function terminalDestination(out: { write(text: string): unknown } = pino.destination({ fd: 2, sync: true })): pino.DestinationStream {
  const pretty = (require('pino-pretty') as typeof PinoPretty).prettyFactory({ colorize: true, ignore: 'service,pid,hostname' });
  return {
    write(line: string): void {
      const entry = JSON.parse(line) as LogEntry;
      out.write(entry.level >= ERROR_LEVEL ? errorLine(entry) : pretty(entry));
    },
  };
}

/** `ff-detector: error: <message>[: <reason>]`, the reason taken from the error or run summary. */
export function errorLine(entry: LogEntry): string {
  const label = entry.level >= FATAL_LEVEL ? 'fatal' : 'error';
  const message = entry.msg ?? '';
  const reason = entry.err?.message ?? entry.summary?.error ?? undefined;
  const text = reason && !alreadySays(message, reason) ? [message, reason].filter(Boolean).join(': ') : message;
  return `ff-detector: ${label}: ${text}\n`;
}

/**
 * Most error logs already quote the error's message (`backfill failed: <message>`), while pino's
 * serializer appends its causes (`<message>: ENOENT: …`): the first clause is enough to tell.
 */
function alreadySays(message: string, reason: string): boolean {
  return message.includes(reason.split(': ')[0] ?? reason);
}

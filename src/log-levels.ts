import { FfError } from './errors.js';

/**
 * pino's levels, in the order of verbosity. Kept apart from logger.ts so the CLI can offer them as
 * --log-level choices and check LOG_LEVEL without loading pino for --help or --version.
 */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * The LOG_LEVEL environment variable, checked like --log-level: a value pino does not know is a
 * configuration error (exit 2) naming the variable and the allowed levels, never pino's own
 * message. Unset or empty (`LOG_LEVEL=` in an env file) means no choice.
 */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel | undefined {
  const value = env.LOG_LEVEL;
  if (value === undefined || value === '') return undefined;
  if (!isLogLevel(value)) {
    throw new FfError('CONFIG_INVALID', `LOG_LEVEL "${value}" is not a log level; use one of: ${LOG_LEVELS.join(', ')}`);
  }
  return value;
}

/**
 * Errors carry a stable code, the exit status the CLI should use and whether trying again later
 * can help. Adapters convert their clients' errors into these at the boundary, so the pipeline
 * never inspects an AWS or Valkey error shape.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'RULES_INVALID'
  | 'INPUT_UNREADABLE'
  | 'INPUT_MALFORMED'
  | 'STATE_UNAVAILABLE'
  | 'SINK_UNAVAILABLE'
  | 'SINK_REJECTED'
  | 'RUN_CANCELLED'
  | 'CHECKER_REFUSED'
  | 'SOURCE_UNAVAILABLE'
  | 'SCHEMA_DRIFT'
  /** The users to enqueue outgrew memory and could not be written to enqueue.spillDir. */
  | 'SPILL_FAILED'
  /** A send gate (queue backlog, consumer lag) stayed closed longer than safety.maxPauseMinutes. */
  | 'SENDING_HELD';

export const EXIT_OK = 0;
export const EXIT_RUN_FAILED = 1;
export const EXIT_USAGE = 2;

export class FfError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FfError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  get exitCode(): number {
    return this.code === 'CONFIG_INVALID' || this.code === 'RULES_INVALID' ? EXIT_USAGE : EXIT_RUN_FAILED;
  }
}

/** A configuration or rules file that fails validation; `problems` names every bad field. */
export class ValidationError extends FfError {
  readonly problems: readonly string[];

  constructor(code: 'CONFIG_INVALID' | 'RULES_INVALID', source: string, problems: readonly string[]) {
    super(code, `${source} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ValidationError';
    this.problems = problems;
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

import { readFileSync } from 'node:fs';
import snowflake from 'snowflake-sdk';
import { FfError, errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Row, SnowflakeClient, TableName } from './client.js';

export interface SnowflakeConnectionSettings {
  account: string;
  username: string;
  password: string | null;
  privateKeyPath: string | null;
  privateKeyPassphrase: string | null;
  warehouse: string | null;
  role: string | null;
  database: string;
  schema: string;
  /** Overrides the account's URL (private link, or a local Snowflake-protocol server in tests). */
  accessUrl: string | null;
  queryTimeoutSeconds: number;
  /** The driver's own retries of a failed login (its default runs for minutes). */
  loginRetries: number;
}

let driverConfigured = false;

/**
 * Snowflake through snowflake-sdk: one connection, password or key-pair authentication, results
 * streamed (streamResult + streamRows). The statement timeout is set per session
 * (STATEMENT_TIMEOUT_IN_SECONDS), so Snowflake itself cancels a runaway query.
 */
export class SdkSnowflakeClient implements SnowflakeClient {
  readonly description: string;
  private connection: snowflake.Connection | undefined;

  constructor(
    private readonly settings: SnowflakeConnectionSettings,
    private readonly logger: Logger,
  ) {
    this.description = `snowflake ${settings.account} ${settings.database}.${settings.schema}`;
    if (!driverConfigured) {
      // The driver logs to a file by default; route its errors into our logs instead.
      snowflake.configure({ logLevel: 'ERROR', customLogger: driverLogger(logger) });
      driverConfigured = true;
    }
  }

  async columnsOf(table: TableName): Promise<Set<string>> {
    const columns = new Set<string>();
    const sql = `SELECT COLUMN_NAME FROM ${quoteIdentifier(table.database)}.INFORMATION_SCHEMA.COLUMNS WHERE UPPER(TABLE_SCHEMA) = ? AND UPPER(TABLE_NAME) = ?`;
    for await (const row of this.streamRows(sql, [table.schema.toUpperCase(), table.table.toUpperCase()])) {
      columns.add(String(row.COLUMN_NAME ?? row.column_name).toUpperCase());
    }
    return columns;
  }

  async *streamRows(sqlText: string, binds: ReadonlyArray<string | number | boolean | null>): AsyncGenerator<Row> {
    const connection = await this.connect();
    // Our own deadline besides Snowflake's statement timeout: while the connection is lost the
    // driver retries requests on its own (not configurable) and would keep the run waiting.
    const deadlineMs = (this.settings.queryTimeoutSeconds + 5) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const rows = await new Promise<AsyncIterable<Row>>((resolve, reject) => {
      timer = setTimeout(() => reject(new FfError('SOURCE_UNAVAILABLE', `Snowflake query failed: no answer within ${deadlineMs / 1000} s`, { retryable: true })), deadlineMs);
      connection.execute({
        sqlText,
        binds: binds as snowflake.Binds,
        streamResult: true,
        complete: (error, statement) => {
          if (error) reject(toSnowflakeError('query', error));
          else resolve(statement.streamRows() as AsyncIterable<Row>);
        },
      });
    }).finally(() => clearTimeout(timer));
    try {
      yield* rows;
    } catch (error) {
      throw toSnowflakeError('reading rows', error);
    }
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    if (!connection) return;
    await new Promise<void>((resolve) => connection.destroy(() => resolve()));
  }

  private async connect(): Promise<snowflake.Connection> {
    if (this.connection) return this.connection;
    const s = this.settings;
    const keyPair = s.privateKeyPath !== null;
    const connection = snowflake.createConnection({
      account: s.account,
      username: s.username,
      ...(keyPair
        ? { authenticator: 'SNOWFLAKE_JWT', privateKey: readPrivateKey(s.privateKeyPath as string), ...(s.privateKeyPassphrase ? { privateKeyPass: s.privateKeyPassphrase } : {}) }
        : { password: s.password ?? '' }),
      database: s.database,
      schema: s.schema,
      ...(s.warehouse ? { warehouse: s.warehouse } : {}),
      ...(s.role ? { role: s.role } : {}),
      ...(s.accessUrl ? { accessUrl: s.accessUrl } : {}),
      application: 'ff-detector',
      sfRetryMaxLoginRetries: s.loginRetries,
    });
    // connectAsync() resolves even when the login fails; the callback is told the truth.
    await new Promise<void>((resolve, reject) =>
      connection.connect((error) => (error ? reject(toSnowflakeError(`connect to ${s.accessUrl ?? s.account}`, error)) : resolve())),
    );
    this.connection = connection;
    await new Promise<void>((resolve, reject) =>
      connection.execute({
        sqlText: `ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = ${Math.trunc(s.queryTimeoutSeconds)}`,
        complete: (error) => (error ? reject(toSnowflakeError('set the statement timeout', error)) : resolve()),
      }),
    ).catch((error: unknown) => this.logger.warn(`could not set STATEMENT_TIMEOUT_IN_SECONDS; continuing without it: ${errorMessage(error)}`));
    return connection;
  }
}

function readPrivateKey(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new FfError('SOURCE_UNAVAILABLE', `cannot read the Snowflake private key ${file}: ${errorMessage(error)}`, { cause: error });
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.toUpperCase().replaceAll('"', '""')}"`;
}

function toSnowflakeError(action: string, error: unknown): FfError {
  if (error instanceof FfError) return error;
  const code = (error as { code?: string | number } | undefined)?.code;
  const message = errorMessage(error);
  const detail = code === undefined || message.includes(String(code)) ? message : `${code}: ${message}`;
  return new FfError('SOURCE_UNAVAILABLE', `Snowflake ${action} failed: ${detail}`, {
    cause: error,
    retryable: true,
  });
}

function driverLogger(logger: Logger): snowflake.SnowflakeLogger {
  const child = logger.child({ module: 'snowflake-sdk' });
  return {
    error: (message: string) => child.error(message),
    warn: (message: string) => child.warn(message),
    info: (message: string) => child.debug(message),
    debug: (message: string) => child.trace(message),
    trace: (message: string) => child.trace(message),
  };
}

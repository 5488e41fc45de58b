import { FfError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { DetectorEventBus } from '../../observability/events.js';
import { BatchBuilder } from '../batch-builder.js';
import type { CandidateBatch, CandidateSource } from '../types.js';
import type { Row, SnowflakeClient, TableName } from './client.js';
import { toPositionalBinds, type BindValue } from './named-binds.js';

export interface SnowflakeSourceOptions {
  /** SQL with `:name` bind variables, returning one user ID per row. */
  query: string;
  binds: Record<string, BindValue>;
  /** Result column holding the ID (case-insensitive). */
  idColumn: string;
  /** Checked before the query: the table must have every one of these columns. */
  schemaGate: { table: TableName; columns: readonly string[] } | null;
  batchSize: number;
}

/**
 * Recently active users from Snowflake (seed section 4, strategy A, step 1). A schema gate runs
 * first (seed section 2): a renamed or dropped column stops the run before any query, naming table
 * and column. Rows are streamed into the pipeline in batches, with back pressure, so memory stays
 * flat whatever the row count. The query text and row count are logged, never credentials.
 */
export class SnowflakeCandidateSource implements CandidateSource {
  readonly description: string;

  constructor(
    private readonly client: SnowflakeClient,
    private readonly options: SnowflakeSourceOptions,
    private readonly logger: Logger,
    private readonly events?: DetectorEventBus,
  ) {
    this.description = `${client.description} (query on column ${options.idColumn})`;
  }

  async *batches(): AsyncGenerator<CandidateBatch> {
    const { query, binds, idColumn, schemaGate, batchSize } = this.options;
    const { sqlText, binds: values } = toPositionalBinds(query, binds);
    if (schemaGate) await this.checkSchema(schemaGate.table, schemaGate.columns);

    const started = performance.now();
    this.logger.info({ query: sqlText, bindNames: Object.keys(binds) }, 'running the Snowflake candidate query');
    const batch = new BatchBuilder('snowflake', batchSize);
    let rowNumber = 0;
    let key: string | undefined;
    for await (const row of this.client.streamRows(sqlText, values)) {
      rowNumber++;
      key ??= columnKey(row, idColumn);
      const value = row[key];
      if (value === null || value === undefined || value === '') batch.reject(rowNumber, `no value in column ${idColumn}`);
      else batch.add(String(value).trim(), rowNumber);
      if (batch.full) yield batch.take() as CandidateBatch;
    }
    const last = batch.take();
    if (last) yield last;
    this.logger.info({ rows: rowNumber, ms: Math.round(performance.now() - started) }, `Snowflake candidate query returned ${rowNumber} rows`);
  }

  private async checkSchema(table: TableName, required: readonly string[]): Promise<void> {
    const name = `${table.database}.${table.schema}.${table.table}`;
    const columns = await this.client.columnsOf(table);
    if (columns.size === 0) {
      this.events?.emit('source:schema-drift', { table: name, missing: [...required] });
      throw new FfError('SCHEMA_DRIFT', `schema check failed: table ${name} does not exist or has no columns`);
    }
    const missing = required.filter((column) => !columns.has(column.toUpperCase()));
    if (missing.length > 0) {
      this.events?.emit('source:schema-drift', { table: name, missing });
      throw new FfError('SCHEMA_DRIFT', `schema drift: table ${name} has no column ${missing.join(', ')} (found: ${[...columns].join(', ')})`);
    }
    this.logger.info({ table: name, columns: required }, 'schema check passed');
  }
}

/** The row's key for `column`, matched without regard to case (Snowflake upper-cases names). */
function columnKey(row: Row, column: string): string {
  const wanted = column.toUpperCase();
  const key = Object.keys(row).find((name) => name.toUpperCase() === wanted);
  if (key === undefined) throw new FfError('SOURCE_UNAVAILABLE', `the Snowflake candidate query returns no column ${column} (columns: ${Object.keys(row).join(', ')})`);
  return key;
}

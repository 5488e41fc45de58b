/** A Snowflake row as the driver hands it over: column name → value. */
export type Row = Record<string, unknown>;

/** The Snowflake calls ff-detector makes. */
export interface SnowflakeClient {
  readonly description: string;
  /** Column names (upper case) of a table; empty when the table does not exist. */
  columnsOf(table: TableName): Promise<Set<string>>;
  /** Streams a query's rows with back pressure: the next rows are read as these are consumed. */
  streamRows(sqlText: string, binds: ReadonlyArray<string | number | boolean | null>): AsyncIterable<Row>;
  close(): Promise<void>;
}

export interface TableName {
  database: string;
  schema: string;
  table: string;
}

import { describe, expect, it } from 'vitest';
import type { Row, SnowflakeClient, TableName } from '../../src/candidates/snowflake/client.js';
import { toPositionalBinds } from '../../src/candidates/snowflake/named-binds.js';
import { SnowflakeCandidateSource } from '../../src/candidates/snowflake/snowflake-source.js';
import { FfError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';

describe('named bind variables', () => {
  it('become positional binds; strings, identifiers, comments and casts are left alone', () => {
    const sql = `SELECT ':not' AS a, "col:x", x::date -- :comment\n/* :block */ FROM t WHERE d >= :days AND s = :status AND d2 >= :days`;
    expect(toPositionalBinds(sql, { days: 30, status: "it's" })).toEqual({
      sqlText: `SELECT ':not' AS a, "col:x", x::date -- :comment\n/* :block */ FROM t WHERE d >= ? AND s = ? AND d2 >= ?`,
      binds: [30, "it's", 30],
    });
  });

  it('names every variable without a value', () => {
    expect(() => toPositionalBinds('SELECT :a, :b, :c', { b: 1 })).toThrow('bind variables with no value: :a, :c');
  });
});

class FakeSnowflake implements SnowflakeClient {
  readonly description = 'fake snowflake';
  queries: Array<{ sqlText: string; binds: unknown[] }> = [];
  constructor(
    private readonly rows: Row[],
    private readonly columns: string[] = ['USER_ID_RAW', 'PURCHASE_DATE'],
  ) {}
  columnsOf(_table: TableName): Promise<Set<string>> {
    return Promise.resolve(new Set(this.columns));
  }
  async *streamRows(sqlText: string, binds: ReadonlyArray<string | number | boolean | null>): AsyncGenerator<Row> {
    this.queries.push({ sqlText, binds: [...binds] });
    yield* this.rows;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const options = {
  query: 'SELECT DISTINCT USER_ID_RAW AS USER_ID FROM RECEIPTS WHERE PURCHASE_DATE >= DATEADD(day, -:activeDays, CURRENT_DATE())',
  binds: { activeDays: 30 },
  idColumn: 'user_id',
  schemaGate: { table: { database: 'DB', schema: 'S', table: 'RECEIPTS' }, columns: ['USER_ID_RAW', 'PURCHASE_DATE'] },
  batchSize: 2,
};

describe('SnowflakeCandidateSource (fake client)', () => {
  it('streams the ID column in batches with row numbers, rejecting empty values', async () => {
    const client = new FakeSnowflake([{ USER_ID: 'a' }, { USER_ID: ' b ' }, { USER_ID: null }, { USER_ID: 42 }]);
    const batches = [];
    for await (const batch of new SnowflakeCandidateSource(client, options, silentLogger()).batches()) batches.push(batch);
    expect(batches.map((b) => b.ids)).toEqual([['a', 'b'], ['42']]);
    expect([...(batches[1]?.positions ?? [])]).toEqual([4]);
    expect(batches.flatMap((b) => b.rejected)).toEqual([{ position: 3, reason: 'no value in column user_id' }]);
    expect(client.queries[0]?.binds).toEqual([30]);
    expect(client.queries[0]?.sqlText).toContain('-?');
  });

  it('stops before the query when a gated column is missing, naming table and column', async () => {
    const client = new FakeSnowflake([{ USER_ID: 'a' }], ['USER_ID', 'PURCHASE_DATE']);
    const run = async () => {
      for await (const batch of new SnowflakeCandidateSource(client, options, silentLogger()).batches()) void batch;
    };
    await expect(run()).rejects.toThrow(new FfError('SCHEMA_DRIFT', 'schema drift: table DB.S.RECEIPTS has no column USER_ID_RAW (found: USER_ID, PURCHASE_DATE)'));
    expect(client.queries).toEqual([]);
  });

  it('names a result without the ID column', async () => {
    const client = new FakeSnowflake([{ OTHER: 'a' }]);
    const run = async () => {
      for await (const batch of new SnowflakeCandidateSource(client, { ...options, schemaGate: null }, silentLogger()).batches()) void batch;
    };
    await expect(run()).rejects.toThrow('returns no column user_id (columns: OTHER)');
  });
});

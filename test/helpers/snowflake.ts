import snowflake from 'snowflake-sdk';
import type { SnowflakeConnectionSettings } from '../../src/candidates/snowflake/sdk-client.js';
import { uniqueName } from './services.js';

export function snowflakeUrl(): string {
  const url = process.env.FFD_TEST_SNOWFLAKE_URL;
  if (!url) throw new Error('FFD_TEST_SNOWFLAKE_URL is not set: run integration tests with `npm test`, which starts the services');
  return url;
}

/** Connection settings for the local server, in a schema of the test's own. */
export function snowflakeSettings(schema: string, overrides: Partial<SnowflakeConnectionSettings> = {}): SnowflakeConnectionSettings {
  return {
    account: 'test',
    username: 'tester',
    password: 'secret',
    privateKeyPath: null,
    privateKeyPassphrase: null,
    warehouse: null,
    role: null,
    database: 'FFD',
    schema,
    accessUrl: snowflakeUrl(),
    queryTimeoutSeconds: 60,
    loginRetries: 0,
    ...overrides,
  };
}

/** Creates a fresh schema with a RECEIPTS table and runs `statements` in it. */
export async function seedReceipts(statements: string[], columns = 'USER_ID_RAW VARCHAR, PURCHASE_DATE DATE, RECEIPT_ID_RAW VARCHAR'): Promise<string> {
  snowflake.configure({ logLevel: 'ERROR' }); // the driver logs every connection at INFO otherwise
  const schema = uniqueName('S').toUpperCase().replace(/-/g, '_');
  const connection = snowflake.createConnection({ account: 'test', username: 'seed', password: 'x', database: 'FFD', schema, accessUrl: snowflakeUrl(), sfRetryMaxLoginRetries: 0 });
  await new Promise<void>((resolve, reject) => connection.connect((error) => (error ? reject(error) : resolve())));
  const run = (sqlText: string) =>
    new Promise<void>((resolve, reject) => connection.execute({ sqlText, complete: (error) => (error ? reject(error) : resolve()) }));
  await run(`CREATE SCHEMA IF NOT EXISTS FFD.${schema}`);
  await run(`CREATE TABLE FFD.${schema}.RECEIPTS (${columns})`);
  for (const statement of statements) await run(statement.replaceAll('{schema}', `FFD.${schema}`));
  await new Promise<void>((resolve) => connection.destroy(() => resolve()));
  return schema;
}

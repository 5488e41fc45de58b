import snowflake from 'snowflake-sdk';

/** Loads `rows` distinct active users into FFD.<schema>.RECEIPTS on the local Snowflake server. */
export async function seedSnowflake(accessUrl: string, schema: string, rows: number): Promise<void> {
  snowflake.configure({ logLevel: 'ERROR' });
  const connection = snowflake.createConnection({ account: 'bench', username: 'bench', password: 'x', database: 'FFD', schema, accessUrl, sfRetryMaxLoginRetries: 0 });
  await new Promise<void>((resolve, reject) => connection.connect((error) => (error ? reject(error) : resolve())));
  const run = (sqlText: string) => new Promise<void>((resolve, reject) => connection.execute({ sqlText, complete: (error) => (error ? reject(error) : resolve()) }));
  await run(`CREATE SCHEMA IF NOT EXISTS FFD.${schema}`);
  await run(`CREATE OR REPLACE TABLE FFD.${schema}.RECEIPTS (USER_ID_RAW VARCHAR, PURCHASE_DATE DATE, RECEIPT_ID_RAW VARCHAR)`);
  await run(`INSERT INTO FFD.${schema}.RECEIPTS SELECT 'user-' || i, CURRENT_DATE(), 'r' || i FROM range(${rows}) t(i)`);
  await new Promise<void>((resolve) => connection.destroy(() => resolve()));
}

export function snowflakeEnv(accessUrl: string, schema: string): Record<string, string> {
  return {
    SNOWFLAKE_ACCOUNT: 'bench',
    SNOWFLAKE_USER: 'bench',
    SNOWFLAKE_PASSWORD: 'x',
    SNOWFLAKE_DATABASE: 'FFD',
    SNOWFLAKE_SCHEMA: schema,
    SNOWFLAKE_ACCESS_URL: accessUrl,
  };
}

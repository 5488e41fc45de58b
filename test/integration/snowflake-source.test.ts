import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/files.js';
import { SdkSnowflakeClient } from '../../src/candidates/snowflake/sdk-client.js';
import { SnowflakeCandidateSource, type SnowflakeSourceOptions } from '../../src/candidates/snowflake/snowflake-source.js';
import { DEFAULT_SNOWFLAKE_QUERY } from '../../src/config/schema.js';
import { FfError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { seedReceipts, snowflakeSettings, snowflakeUrl } from '../helpers/snowflake.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

// snowflake-sdk against the local Snowflake-protocol server (fakesnow + scripts/snowflake-server.py).

const options = (schema: string, overrides: Partial<SnowflakeSourceOptions> = {}): SnowflakeSourceOptions => ({
  query: DEFAULT_SNOWFLAKE_QUERY,
  binds: { activeDays: 30 },
  idColumn: 'USER_ID',
  schemaGate: { table: { database: 'FFD', schema, table: 'RECEIPTS' }, columns: ['USER_ID_RAW', 'PURCHASE_DATE'] },
  batchSize: 1000,
  ...overrides,
});

async function drain(source: SnowflakeCandidateSource): Promise<{ ids: string[]; batches: number; maxBatch: number }> {
  const ids: string[] = [];
  let batches = 0;
  let maxBatch = 0;
  for await (const batch of source.batches()) {
    ids.push(...batch.ids);
    batches++;
    maxBatch = Math.max(maxBatch, batch.ids.length);
  }
  return { ids, batches, maxBatch };
}

describe('Snowflake candidate source (real snowflake-sdk, local server)', () => {
  it('returns distinct users active within activeDays, via the default query and named binds', async () => {
    const schema = await seedReceipts([
      `INSERT INTO {schema}.RECEIPTS VALUES ('u1', CURRENT_DATE(), 'r1'), ('u1', DATEADD(day, -1, CURRENT_DATE()), 'r2'), ('u2', DATEADD(day, -10, CURRENT_DATE()), 'r3'), ('old', DATEADD(day, -90, CURRENT_DATE()), 'r4')`,
    ]);
    const client = new SdkSnowflakeClient(snowflakeSettings(schema), silentLogger());
    try {
      const { ids } = await drain(new SnowflakeCandidateSource(client, options(schema), silentLogger()));
      expect(ids.sort()).toEqual(['u1', 'u2']);
      const wider = await drain(new SnowflakeCandidateSource(client, options(schema, { binds: { activeDays: 120 } }), silentLogger()));
      expect(wider.ids.sort()).toEqual(['old', 'u1', 'u2']);
    } finally {
      await client.close();
    }
  });

  it('streams a 200,000-row result in batches of the configured size', async () => {
    const schema = await seedReceipts([
      `INSERT INTO {schema}.RECEIPTS SELECT 'user-' || i, DATEADD(day, -(i % 20), CURRENT_DATE()), 'r' || i FROM range(200000) t(i)`,
    ]);
    const client = new SdkSnowflakeClient(snowflakeSettings(schema), silentLogger());
    try {
      const { ids, batches, maxBatch } = await drain(new SnowflakeCandidateSource(client, options(schema), silentLogger()));
      expect(ids).toHaveLength(200_000);
      expect(new Set(ids).size).toBe(200_000);
      expect(batches).toBe(200);
      expect(maxBatch).toBe(1000);
    } finally {
      await client.close();
    }
  });

  it('stops before the query when a required column was renamed, naming table and column', async () => {
    const schema = await seedReceipts([], 'USER_ID VARCHAR, PURCHASE_DATE DATE');
    const client = new SdkSnowflakeClient(snowflakeSettings(schema), silentLogger());
    try {
      const error = await drain(new SnowflakeCandidateSource(client, options(schema), silentLogger())).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FfError);
      expect((error as FfError).code).toBe('SCHEMA_DRIFT');
      expect((error as FfError).message).toBe(`schema drift: table FFD.${schema}.RECEIPTS has no column USER_ID_RAW (found: USER_ID, PURCHASE_DATE)`);
    } finally {
      await client.close();
    }
  });

  it('reports bad SQL with Snowflake’s code and message', async () => {
    const schema = await seedReceipts([]);
    const client = new SdkSnowflakeClient(snowflakeSettings(schema), silentLogger());
    try {
      const source = new SnowflakeCandidateSource(client, options(schema, { query: 'SELEKT USER_ID FROM RECEIPTS', schemaGate: null }), silentLogger());
      await expect(drain(source)).rejects.toThrow(/^Snowflake query failed: 001003 \(42000\): /);
    } finally {
      await client.close();
    }
  });

  it('fails cleanly, within its deadline, when the connection drops', async () => {
    const schema = await seedReceipts([`INSERT INTO {schema}.RECEIPTS VALUES ('u1', CURRENT_DATE(), 'r1')`]);
    const proxy = await TcpProxy.start(snowflakeUrl());
    const client = new SdkSnowflakeClient(snowflakeSettings(schema, { accessUrl: proxy.url(snowflakeUrl()), queryTimeoutSeconds: 1 }), silentLogger());
    try {
      await drain(new SnowflakeCandidateSource(client, options(schema), silentLogger())); // connected and working
      proxy.cut();
      const started = Date.now();
      const error = await drain(new SnowflakeCandidateSource(client, options(schema, { schemaGate: null }), silentLogger())).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FfError);
      expect((error as FfError).message).toMatch(/^Snowflake (query failed|connect)/);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it('says clearly when the server cannot be reached at all', async () => {
    const client = new SdkSnowflakeClient(snowflakeSettings('X', { accessUrl: 'http://127.0.0.1:1' }), silentLogger());
    const error = await drain(new SnowflakeCandidateSource(client, options('X', { schemaGate: null }), silentLogger())).catch((e: unknown) => e);
    expect((error as FfError).message).toMatch(/^Snowflake connect to http:\/\/127\.0\.0\.1:1 failed.*ECONNREFUSED/);
    await client.close();
  });
});

describe('Snowflake key-pair authentication', () => {
  const writeKey = (passphrase?: string): string => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: passphrase ? { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase } : { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const file = path.join(tempDir(), 'rsa_key.p8');
    writeFileSync(file, privateKey);
    return file;
  };

  it('signs in with a private key file, encrypted or not', async () => {
    const schema = await seedReceipts([`INSERT INTO {schema}.RECEIPTS VALUES ('k1', CURRENT_DATE(), 'r1')`]);
    for (const passphrase of [undefined, 'correct horse']) {
      const settings = snowflakeSettings(schema, { password: null, privateKeyPath: writeKey(passphrase), privateKeyPassphrase: passphrase ?? null });
      const client = new SdkSnowflakeClient(settings, silentLogger());
      try {
        expect((await drain(new SnowflakeCandidateSource(client, options(schema), silentLogger()))).ids).toEqual(['k1']);
      } finally {
        await client.close();
      }
    }
  });

  it('names an unreadable key file', async () => {
    const client = new SdkSnowflakeClient(snowflakeSettings('X', { password: null, privateKeyPath: '/nonexistent/key.p8' }), silentLogger());
    await expect(drain(new SnowflakeCandidateSource(client, options('X'), silentLogger()))).rejects.toThrow('cannot read the Snowflake private key /nonexistent/key.p8');
  });
});

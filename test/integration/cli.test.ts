import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import type { RunSummary } from '../../src/pipeline/summary.js';
import { tempDir } from '../helpers/files.js';
import { seedReceipts, snowflakeUrl } from '../helpers/snowflake.js';
import { awsEnv, createQueue, drainQueue, putObject, uniqueName, userIdsOf, valkeyClient, valkeyUrl } from '../helpers/services.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/ff-detector');
const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  lines: string[];
  summary: RunSummary;
}

/** Runs the installed CLI as a user would: a child process, its own cwd and environment. */
async function cli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Result> {
  const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '', ...options.env };
  let code = 0;
  let stdout = '';
  let stderr = '';
  try {
    ({ stdout, stderr } = await run(BIN, args, { cwd: options.cwd ?? tempDir(), env, maxBuffer: 64 * 1024 * 1024 }));
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    ({ code, stdout, stderr } = failed);
  }
  const lines = stdout.trim().split('\n').filter(Boolean);
  const last = lines.at(-1) ?? '{}';
  return { code, stdout, stderr, lines, summary: (last.startsWith('{"runId"') ? JSON.parse(last) : {}) as RunSummary };
}

describe('ff-detector detect — embedded default', () => {
  it('runs on the sample files with file state and stdout, and a second run reports nothing new', async () => {
    const cwd = tempDir();
    const first = await cli(['detect'], { cwd });
    expect(first.code).toBe(0);
    expect(first.summary).toMatchObject({ status: 'ok', strategy: 'polling', invalid: 1, duplicates: 1 });
    expect(first.summary.enqueued).toBeGreaterThan(5);
    const bodies = first.lines.slice(0, -1).map((line) => JSON.parse(line) as { event_type: string; user_id: string });
    expect(bodies).toHaveLength(first.summary.enqueued);
    expect(bodies.every((b) => b.event_type === 'user_load_request')).toBe(true);
    expect(existsSync(path.join(cwd, '.ff-detector/state.journal'))).toBe(true);

    const second = await cli(['detect'], { cwd });
    expect(second.code).toBe(0);
    expect(second.lines).toHaveLength(1);
    expect(second.summary).toMatchObject({ status: 'ok', enqueued: 0, alreadyKnown: first.summary.enqueued });

    const status = await cli(['status', '--json'], { cwd });
    expect(status.lines.map((line) => (JSON.parse(line) as { runId: string }).runId)).toEqual([second.summary.runId, first.summary.runId]);
    const table = await cli(['status'], { cwd });
    expect(table.stdout).toMatch(/^STARTED\s+STATUS\s+CANDIDATES/);
  });

  it('--dry-run prints every message, then the summary, and changes no state', async () => {
    const cwd = tempDir();
    const dry = await cli(['detect', '--dry-run'], { cwd });
    expect(dry.code).toBe(0);
    expect(dry.summary).toMatchObject({ dryRun: true, status: 'ok' });
    expect(dry.lines.length - 1).toBe(dry.summary.enqueued);
    expect(existsSync(path.join(cwd, '.ff-detector/state.journal'))).toBe(false);
    const real = await cli(['detect'], { cwd });
    expect(real.summary.enqueued).toBe(dry.summary.enqueued);
  });

  it('honours --candidates, --column, --flags, --budget', async () => {
    const dir = tempDir();
    const csv = path.join(dir, 'users.csv.gz');
    writeFileSync(csv, gzipSync('id,name\nu1,a\nu2,b\nu3,c\nbad id,d\n'));
    const rules = path.join(dir, 'rules.yaml');
    writeFileSync(rules, 'flag: consumer_graph_ingestion\nenabled: true\nusers: [u1, u2, u3]\n');
    const result = await cli(['detect', '--candidates', csv, '--column', 'id', '--flags', rules, '--budget', '2', '--rate-limit', '1000'], { cwd: dir });
    expect(result.summary).toMatchObject({ status: 'ok', candidates: 4, invalid: 1, enqueued: 2, deferred: 1, budget: 2 });
    expect(result.summary.invalidExamples[0]).toMatchObject({ origin: csv, line: 5, value: 'bad id' });
  });

  it('ends with a failed summary, exit 1, naming a missing candidate file', async () => {
    const result = await cli(['detect', '--candidates', '/nonexistent/users.txt']);
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'failed' });
    expect(result.summary.error).toContain('/nonexistent/users.txt: no such file');
  });

  it('handles an empty candidate file', async () => {
    const file = path.join(tempDir(), 'empty.txt');
    writeFileSync(file, '');
    const result = await cli(['detect', '--candidates', file]);
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({ status: 'ok', candidates: 0, enqueued: 0 });
  });
});

describe('ff-detector — bad configuration and rules exit 2', () => {
  it('names every bad field of a rules file', async () => {
    const rules = path.join(tempDir(), 'rules.yaml');
    writeFileSync(rules, 'flag: consumer_graph_ingestion\nenabled: maybe\npercentage: 101\nbucketing:\n  algorithm: statsig\n');
    const result = await cli(['detect', '--flags', rules]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    for (const field of ['enabled:', 'percentage:', 'bucketing.algorithm: must be one of: flipper, unleash, launchdarkly, flagd']) {
      expect(result.stderr).toContain(field);
    }
  });

  it('names every bad config field', async () => {
    const config = path.join(tempDir(), 'c.yaml');
    writeFileSync(config, 'enqueue:\n  rateLimit: 0\nsqs:\n  concurrency: many\n');
    const result = await cli(['detect', '--config', config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('enqueue.rateLimit');
    expect(result.stderr).toContain('sqs.concurrency');
  });

  it('refuses a flag value that does not parse', async () => {
    const result = await cli(['detect', '--rate-limit', 'fast']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"fast" is not a number');
  });
});

describe('ff-detector with VALKEY_URL and SQS_QUEUE_URL', () => {
  const env = (prefix: string, queueUrl: string) => ({
    ...awsEnv(),
    VALKEY_URL: valkeyUrl(),
    SQS_QUEUE_URL: queueUrl,
  });
  const configFor = (prefix: string) => {
    const config = path.join(tempDir(), 'c.yaml');
    writeFileSync(config, `state:\n  knownSetKey: ${prefix}:known\n  loadedKeyPrefix: "${prefix}:loaded:"\n  detectorKeyPrefix: "${prefix}:d:"\nenqueue:\n  rateLimit: 500\n`);
    return config;
  };

  it('sends to SQS, marks in Valkey, and `check` reports per user', async () => {
    const prefix = uniqueName('cli');
    const queueUrl = await createQueue();
    const config = configFor(prefix);
    const result = await cli(['detect', '--config', config], { env: env(prefix, queueUrl) });
    expect(result.code).toBe(0);
    expect(result.lines).toHaveLength(1); // messages went to SQS, not stdout
    const sent = userIdsOf(await drainQueue(queueUrl));
    expect(sent).toHaveLength(result.summary.enqueued);
    const valkey = valkeyClient();
    expect((await valkey.smembers(`${prefix}:known`)).sort()).toEqual([...sent].sort());
    await valkey.set(`${prefix}:loaded:user-0004`, '1', 'EX', 60);
    await valkey.quit();

    const check = await cli(['check', '--config', config, '--json', 'user-0001', 'user-0003', 'user-0004', 'not valid!'], { env: env(prefix, queueUrl) });
    expect(check.code).toBe(0);
    expect(check.lines.map((line) => JSON.parse(line) as object)).toEqual([
      { userId: 'user-0001', valid: true, flag: 'enabled', known: true, loaded: false },
      { userId: 'user-0003', valid: true, flag: 'disabled', known: false, loaded: false },
      { userId: 'user-0004', valid: true, flag: 'enabled', known: true, loaded: true },
      { userId: 'not valid!', valid: false, flag: 'invalid', known: null, loaded: null },
    ]);
    const table = await cli(['check', '--config', config, 'user-0001'], { env: env(prefix, queueUrl) });
    expect(table.stdout).toMatch(/^USER\s+FLAG\s+KNOWN\s+LOADED\nuser-0001\s+enabled\s+yes\s+no\n$/);
  });

  it('reads candidates and rules from s3:// URIs', async () => {
    const prefix = uniqueName('cli');
    const bucket = uniqueName('bucket');
    await putObject(bucket, 'lists/users.txt.gz', gzipSync('s1\ns2\ns3\n'));
    await putObject(bucket, 'rules.yaml', 'flag: consumer_graph_ingestion\nenabled: true\nusers: [s1, s3]\n');
    const result = await cli(['detect', '--config', configFor(prefix), '--dry-run', '--candidates', `s3://${bucket}/lists/users.txt.gz`, '--flags', `s3://${bucket}/rules.yaml`], {
      env: env(prefix, await createQueue()),
    });
    expect(result.summary).toMatchObject({ status: 'ok', candidates: 3, enqueued: 2 });
    const missing = await cli(['detect', '--config', configFor(prefix), '--candidates', `s3://${bucket}/nope.txt`], { env: env(prefix, await createQueue()) });
    expect(missing.code).toBe(1);
    expect(missing.summary.error).toContain(`cannot read s3://${bucket}/nope.txt: object does not exist`);
  });

  it('fails clearly at start, exit 1, when Valkey is down', async () => {
    const result = await cli(['detect'], { env: { ...awsEnv(), VALKEY_URL: 'redis://127.0.0.1:1', SQS_QUEUE_URL: await createQueue() } });
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'failed', enqueued: 0 });
    expect(result.summary.error).toMatch(/Valkey connect failed at redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED/);
    expect(result.stderr).toContain('ECONNREFUSED');
  });
});

describe('ff-detector help', () => {
  it('lists the commands and exits 0', async () => {
    const result = await cli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('detect');
    expect(result.stdout).toContain('check');
    expect(readFileSync(BIN, 'utf8')).toContain('--max-old-space-size');
  });

  it('exits 2 on an unknown command', async () => {
    expect((await cli(['frobnicate'])).code).toBe(2);
  });
});

describe('ff-detector detect with candidates from Snowflake', () => {
  const snowflakeEnv = (schema: string) => ({
    SNOWFLAKE_ACCOUNT: 'test',
    SNOWFLAKE_USER: 'tester',
    SNOWFLAKE_PASSWORD: 'secret',
    SNOWFLAKE_DATABASE: 'FFD',
    SNOWFLAKE_SCHEMA: schema,
    SNOWFLAKE_ACCESS_URL: snowflakeUrl(),
  });
  const configFile = () => {
    const file = path.join(tempDir(), 'c.yaml');
    writeFileSync(file, 'candidates:\n  source: snowflake\n  snowflake:\n    loginRetries: 0\nenqueue:\n  rateLimit: 1000\n');
    return file;
  };

  it('runs the active-users query and checks each user against the rules', async () => {
    const schema = await seedReceipts([
      `INSERT INTO {schema}.RECEIPTS SELECT 'user-' || lpad(CAST(i AS VARCHAR), 4, '0'), CURRENT_DATE(), 'r' || i FROM range(1, 61) t(i)`,
    ]);
    const result = await cli(['detect', '--dry-run', '--config', configFile()], { env: snowflakeEnv(schema) });
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({ status: 'ok', candidates: 60, invalid: 0 });
    expect(result.summary.enqueued).toBeGreaterThan(5);
  });

  it('exits 1 naming table and column when the schema gate fails, and counts it in the metrics', async () => {
    const schema = await seedReceipts([], 'USER_ID VARCHAR, PURCHASE_DATE DATE');
    const metricsFile = path.join(tempDir(), 'ff-detector.prom');
    const result = await cli(['detect', '--config', configFile(), '--metrics-file', metricsFile], { env: snowflakeEnv(schema) });
    const metrics = readFileSync(metricsFile, 'utf8');
    expect(metrics).toContain(`ff_detector_schema_check_failures_total{table="FFD.${schema}.RECEIPTS"} 1`);
    expect(metrics).toContain('ff_detector_run_duration_seconds_count{strategy="polling",status="failed"} 1');
    expect(result.code).toBe(1);
    expect(result.summary.status).toBe('failed');
    expect(result.summary.error).toBe(`schema drift: table FETCH_SERVICES_PROD.RECEIPT_SERVICE.RECEIPTS has no column USER_ID_RAW (found: USER_ID, PURCHASE_DATE)`.replace('FETCH_SERVICES_PROD.RECEIPT_SERVICE', `FFD.${schema}`));
    expect(result.stderr).not.toContain('secret');
  });
});

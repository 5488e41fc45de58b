import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Valkey } from 'iovalkey';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { tempDir } from '../helpers/files.js';
import { awsEnv, createQueue, drainQueue, valkeyUrl } from '../helpers/services.js';
import { cliCases, httpCases } from '../fixtures/bad-inputs/cases.js';

// The bad-input corpus (issue 12, item 7), table-driven: every case gets its exit code or HTTP
// status, an error that names the problem and where it is, and changes nothing — the Valkey
// database reserved for this file stays empty and the queue receives nothing.

/** A database of the single node that only this file uses: anything written to it is a leak. */
const CORPUS_DB = 9;
const corpusUrl = (): string => `${valkeyUrl()}/${CORPUS_DB}`;
/** The run history: the one key a refused run may write (its failed summary, for /status). */
const RUN_HISTORY = 'backfill:detector:runs';
let valkey: Valkey;

beforeAll(async () => {
  valkey = new Valkey(corpusUrl());
  await valkey.flushdb();
});
// A case that leaked is reported as such; the next starts clean.
afterEach(() => valkey.flushdb());
afterAll(() => valkey.quit());

describe('bad input on the command line, in the environment and in files', () => {
  expect(cliCases.length).toBeGreaterThanOrEqual(60);

  it.each(cliCases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const cwd = tempDir();
    for (const [name, content] of Object.entries(c.files ?? {})) writeFileSync(path.join(cwd, name), content);
    const queueUrl = await createQueue();
    const result = await runCli(c.args, { cwd, env: { ...awsEnv(), VALKEY_URL: corpusUrl(), SQS_QUEUE_URL: queueUrl, ...c.env } });
    expect(result.code, result.stderr).toBe(c.exit);
    for (const phrase of c.says) {
      if (typeof phrase === 'string') expect(result.stderr).toContain(phrase);
      else expect(result.stderr).toMatch(phrase);
    }
    // A run that failed is recorded in the run history (for /status); nothing else may be written.
    expect((await valkey.keys('*')).filter((key) => key !== RUN_HISTORY), 'keys written to Valkey').toEqual([]);
    expect(await drainQueue(queueUrl), 'messages sent').toEqual([]);
  });
});

describe('bad requests to the admin API', () => {
  let daemon: DaemonProcess;
  let queueUrl: string;
  const stateDb = CORPUS_DB + 1;

  beforeAll(async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'candidates.txt'), 'user-0001\n');
    writeFileSync(path.join(dir, 'rules.yaml'), 'flag: consumer_graph_ingestion\nenabled: true\nusers: [user-0001]\n');
    const config = [
      `candidates:\n  path: ${path.join(dir, 'candidates.txt')}`,
      `flags:\n  rules: ${path.join(dir, 'rules.yaml')}`,
      'daemon:\n  schedule: "0 0 1 1 *"',
      'backfill:\n  maxUsers: 10000',
    ].join('\n');
    queueUrl = await createQueue();
    daemon = await DaemonProcess.start(config, { ...awsEnv(), VALKEY_URL: `${valkeyUrl()}/${stateDb}`, SQS_QUEUE_URL: queueUrl });
  });
  afterAll(async () => {
    daemon.kill('SIGTERM');
    await daemon.exited;
    const state = new Valkey(`${valkeyUrl()}/${stateDb}`);
    await state.flushdb();
    await state.quit();
  });

  it.each(httpCases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const response = await fetch(`${daemon.admin}${c.path}`, { method: c.method, headers: c.headers ?? {}, ...(c.body === undefined ? {} : { body: c.body }) });
    const text = await response.text();
    expect(response.status, text).toBe(c.status);
    const { error } = JSON.parse(text) as { error: string };
    for (const phrase of c.says) {
      if (typeof phrase === 'string') expect(error).toContain(phrase);
      else expect(error).toMatch(phrase);
    }
    expect((await daemon.get<{ job: unknown }>('/admin/backfill/status')).job, 'a backfill job was created').toBeNull();
    expect((await daemon.status()).lastRuns, 'a run was started').toEqual([]);
    expect(await drainQueue(queueUrl), 'messages sent').toEqual([]);
    expect(daemon.exitCode).toBeNull();
  });
});

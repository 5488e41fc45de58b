import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpFlagChecker } from '../../src/flags/http-checker.js';
import { silentLogger } from '../../src/logger.js';
import { runDetection } from '../../src/pipeline/detection.js';
import { logLines, runCli } from '../helpers/cli.js';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { detectionOptions } from '../helpers/detection.js';
import { MemoryKnownUsers, RecordingSink, sourceOf } from '../helpers/fakes.js';
import { tempDir } from '../helpers/files.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, valkeyUrl, waitFor } from '../helpers/services.js';

const users = (n: number): string[] => Array.from({ length: n }, (_, i) => `user-${i}`);

/**
 * A flag service that is up but never answers: it accepts each request and holds it (a hung
 * upstream, a full thread pool). Counts the requests it got.
 */
let hanging: Server;
let hangingBase = '';
let hangingRequests = 0;
const held: ServerResponse[] = [];
/** A port where nothing listens: connections are refused. */
let deadPort = 0;

beforeAll(async () => {
  hanging = createServer((_req, res) => {
    hangingRequests++;
    held.push(res);
  });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  hangingBase = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  deadPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

afterAll(async () => {
  hanging.closeAllConnections();
  await new Promise<void>((resolve) => hanging.close(() => resolve()));
});

afterEach(() => {
  for (const res of held.splice(0)) res.destroy();
});

function writeFile(name: string, content: string | Buffer): string {
  const file = path.join(tempDir(), name);
  writeFileSync(file, content);
  return file;
}

describe('ff-detector detect on unusable input ends degraded, exit 1', () => {
  it('a CR-only candidate file (one line holding every ID): degraded, logged at error level, in the metrics, nothing sent', async () => {
    const cwd = tempDir();
    const candidates = writeFile('candidates.txt', `${users(50).join('\r')}\r`);
    const metricsFile = path.join(cwd, 'ff-detector.prom');
    const result = await runCli(['detect', '--candidates', candidates, '--metrics-file', metricsFile], { cwd });
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'degraded', candidates: 1, invalid: 1, enqueued: 0 });
    expect(result.summary.error).toMatch(/^run degraded: 1 of 1 candidates \(100 %\) are invalid, above safety\.maxInvalidFraction \(50 %\)/);
    const errors = logLines(result.stderr).filter((line) => line.level === 50);
    expect(errors.map((line) => line.msg)).toEqual([result.summary.error, 'detection run degraded']);
    const metrics = readFileSync(metricsFile, 'utf8');
    expect(metrics).toContain('ff_detector_run_duration_seconds_count{strategy="polling",status="degraded"} 1');
    expect(metrics).not.toMatch(/ff_detector_last_success_timestamp_seconds\{/);
    // Recorded in the history as such.
    const status = await runCli(['status', '--json'], { cwd });
    expect(JSON.parse(status.stdout.trim().split('\n')[0] as string)).toMatchObject({ runId: result.summary.runId, status: 'degraded' });
  });

  it('a UTF-16 candidate file: every line invalid', async () => {
    const candidates = writeFile('candidates.txt', Buffer.from(`\uFEFF${users(40).join('\r\n')}\r\n`, 'utf16le'));
    const result = await runCli(['detect', '--candidates', candidates]);
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'degraded', enqueued: 0 });
    expect(result.summary.invalid).toBe(result.summary.candidates);
  });

  it('the sample list as shipped stays ok (1 invalid line of 62)', async () => {
    const result = await runCli(['detect', '--dry-run']);
    expect(result.code).toBe(0);
    expect(result.summary).toMatchObject({ status: 'ok', invalid: 1, error: null });
  });

  it('a flag service that refuses connections, through the http checker: degraded, and its breaker opened', async () => {
    const cwd = tempDir();
    const config = writeFile(
      'ff-detector.yaml',
      `flags:\n  checker: http\n  http:\n    urlTemplate: "http://127.0.0.1:${deadPort}/flags/{flag}/users/{userId}"\n    timeoutMs: 1000\n`,
    );
    const result = await runCli(['detect', '--config', config, '--candidates', writeFile('c.txt', `${users(1000).join('\n')}\n`)], { cwd });
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'degraded', evaluated: 1000, unevaluable: 1000, enqueued: 0 });
    expect(result.summary.error).toMatch(/^run degraded: 1000 of 1000 users checked \(100 %\) are unevaluable/);
    const messages = logLines(result.stderr).map((line) => String(line.msg));
    expect(messages.some((msg) => msg.startsWith('flag service circuit breaker opened after 5 consecutive failures (last: network: fetch failed)'))).toBe(true);
  });
});

describe('the http checker against a flag service that never answers (real local server)', () => {
  it('1000 candidates cost about one timeout, not one per user', async () => {
    const timeoutMs = 500;
    const checker = new HttpFlagChecker(
      {
        flag: 'consumer_graph_ingestion',
        urlTemplate: `${hangingBase}/flags/{flag}/users/{userId}`,
        batchUrl: null,
        batchSize: 100,
        responsePath: 'enabled',
        batchResponsePath: '',
        headers: {},
        concurrency: 16,
        timeoutMs,
        retries: 3,
        retryBaseMs: 100,
        retryMaxMs: 5000,
        breakerThreshold: 5,
        breakerCooldownMs: 60_000,
      },
      silentLogger(),
    );
    hangingRequests = 0;
    const store = new MemoryKnownUsers();
    const sink = new RecordingSink();
    const started = performance.now();
    // Batches of 100, 4 classified at once, each checked 16 users at a time: 64 requests in flight.
    const inFlight = 4 * 16;
    const summary = await runDetection(
      { source: sourceOf(users(1000), 100), checker, known: store, sink, limiter: undefined, logger: silentLogger() },
      detectionOptions({ maxInFlightBatches: 4 }),
    );
    const elapsedMs = performance.now() - started;
    expect(summary).toMatchObject({ status: 'degraded', evaluated: 1000, unevaluable: 1000, enqueued: 0 });
    // Without the breaker: 1000 users / 64 in flight × 4 attempts × 500 ms ≈ 30 s.
    // With it: the first wave times out together, five of those failures open it, the rest is at once.
    expect(hangingRequests).toBeLessThanOrEqual(5 + inFlight);
    expect(elapsedMs).toBeLessThan(10 * timeoutMs);
    expect(sink.sent).toHaveLength(0);
    expect(store.known.size).toBe(0);
  });

  it('the same through the CLI: a run over 1000 candidates ends degraded within a few timeouts', async () => {
    const config = writeFile('ff-detector.yaml', `flags:\n  checker: http\n  http:\n    urlTemplate: "${hangingBase}/flags/{flag}/users/{userId}"\n    timeoutMs: 500\n`);
    hangingRequests = 0;
    const result = await runCli(['detect', '--config', config, '--candidates', writeFile('c.txt', `${users(1000).join('\n')}\n`)]);
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'degraded', unevaluable: 1000 });
    expect(hangingRequests).toBeLessThanOrEqual(5 + 16);
    expect(Number(result.summary.durationMs)).toBeLessThan(10 * 500);
  });
});

describe('an idPattern that backtracks catastrophically', () => {
  it('is refused before any run: exit 2, the field named and why', async () => {
    const cwd = tempDir();
    const config = writeFile('ff-detector.yaml', 'idPattern: "^(a+)+$"\n');
    const candidates = writeFile('c.txt', `${'a'.repeat(35)}!\n`); // the line: minutes with that pattern
    const result = await runCli(['detect', '--config', config, '--candidates', candidates], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`idPattern (in ${config}): can backtrack catastrophically`);
    expect(result.summary).toEqual({}); // no run, no summary
  });
});

describe('ff-detector run (daemon)', () => {
  const daemons = daemonsForTests(afterEach);

  it('records a degraded run in /status and /metrics', async () => {
    const fixture = new PollingFixture();
    const candidates = path.join(fixture.dir, 'candidates.txt');
    writeFileSync(candidates, Buffer.from(`${users(30).join('\n')}\n`, 'utf16le'));
    const config = [
      `candidates:\n  path: ${candidates}`,
      `flags:\n  rules: ${fixture.writeRules(users(30))}`,
      `state:\n  knownSetKey: ${fixture.knownKey}\n  loadedKeyPrefix: "${fixture.loadedPrefix}"\n  detectorKeyPrefix: "${fixture.prefix}:detector:"`,
      'daemon:\n  schedule: "0 0 1 1 *"',
    ].join('\n');
    const daemon = await DaemonProcess.start(config, { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: await createQueue() });
    daemons.push(daemon);
    await waitFor(async () => (await daemon.status()).role === 'leader', 'leadership');
    expect((await daemon.post('/runs')).status).toBe(202);
    await waitFor(async () => (await daemon.status()).lastRuns.length > 0, 'the run to finish');
    expect((await daemon.status()).lastRuns[0]).toMatchObject({ status: 'degraded', enqueued: 0 });
    const metrics = await (await fetch(`${daemon.admin}/metrics`)).text();
    expect(metrics).toContain('ff_detector_run_duration_seconds_count{strategy="polling",status="degraded"} 1');
  });
});

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FfError } from '../../src/errors.js';
import { HttpFlagChecker, type HttpCheckerOptions } from '../../src/flags/http-checker.js';
import { silentLogger } from '../../src/logger.js';
import { runDetection } from '../../src/pipeline/detection.js';
import { MemoryKnownUsers, RecordingSink, sourceOf } from '../helpers/fakes.js';
import { detectionOptions } from '../helpers/detection.js';

/**
 * A real HTTP flag service on loopback. IDs choose the behaviour: even numbers are enabled; `c…`
 * answers after 10 ms (so requests overlap);
 * `slow-` answers after the client's timeout; `flaky-` fails twice with 503 then answers;
 * `limited-` gets one 429; `garbled-` is not JSON; `text-` has a non-boolean; `gone-` is 404.
 */
let server: Server;
let base = '';
let inFlight = 0;
let maxInFlight = 0;
const attempts = new Map<string, number>();
let batchCalls = 0;

function answer(id: string, res: ServerResponse): boolean | undefined {
  const seen = (attempts.get(id) ?? 0) + 1;
  attempts.set(id, seen);
  if (id.startsWith('flaky-') && seen <= 2) return void res.writeHead(503).end('busy');
  if (id.startsWith('limited-') && seen === 1) return void res.writeHead(429, { 'retry-after': '0' }).end();
  if (id.startsWith('gone-')) return void res.writeHead(404).end();
  if (id.startsWith('garbled-')) return void res.writeHead(200).end('{"enabled": tru');
  return Number(id.replace(/\D/g, '')) % 2 === 0;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  try {
    if (req.headers.authorization !== 'Bearer good') return void res.writeHead(401).end();
    const url = new URL(req.url ?? '/', base);
    const single = /^\/flags\/([^/]+)\/users\/([^/]+)$/.exec(url.pathname);
    if (single) {
      const id = decodeURIComponent(single[2] as string);
      if (id.startsWith('slow-')) await new Promise((resolve) => setTimeout(resolve, 400));
      if (id.startsWith('c')) await new Promise((resolve) => setTimeout(resolve, 10)); // lets requests overlap
      const enabled = answer(id, res);
      if (enabled === undefined) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ flag: single[1], data: { enabled: id.startsWith('text-') ? 'yes' : enabled } }));
    }
    if (url.pathname === '/batch' && req.method === 'POST') {
      batchCalls++;
      let body = '';
      for await (const chunk of req) body += chunk;
      const { userIds } = JSON.parse(body) as { userIds: string[] };
      const results = Object.fromEntries(userIds.filter((id) => !id.startsWith('gone-')).map((id) => [id, { data: { enabled: Number(id.replace(/\D/g, '')) % 2 === 0 } }]));
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ results }));
    }
    res.writeHead(404).end();
  } finally {
    inFlight--;
  }
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const checker = (overrides: Partial<HttpCheckerOptions> = {}) =>
  new HttpFlagChecker(
    {
      flag: 'consumer_graph_ingestion',
      urlTemplate: `${base}/flags/{flag}/users/{userId}`,
      batchUrl: null,
      batchSize: 50,
      responsePath: 'data.enabled',
      batchResponsePath: 'results',
      headers: { authorization: 'Bearer good' },
      concurrency: 4,
      timeoutMs: 200,
      retries: 3,
      retryBaseMs: 5,
      retryMaxMs: 20,
      ...overrides,
    },
    silentLogger(),
  );

describe('HttpFlagChecker against a real HTTP server', () => {
  it('checks each user, in order, never more than `concurrency` at once', async () => {
    maxInFlight = 0;
    const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
    const results = await checker({ concurrency: 3 }).check(ids);
    expect(results).toEqual(ids.map((_, i) => (i % 2 === 0 ? 'enabled' : 'disabled')));
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(maxInFlight).toBeGreaterThan(1);
  });

  it('keeps to `concurrency` across batches checked at once, as a run classifies them', async () => {
    maxInFlight = 0;
    const one = checker({ concurrency: 3 });
    const batches = Array.from({ length: 4 }, (_, b) => Array.from({ length: 20 }, (_, i) => `c${b * 20 + i}`));
    await Promise.all(batches.map((ids) => one.check(ids)));
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(maxInFlight).toBeGreaterThan(1);
  });

  it('retries 5xx and 429 until an answer comes', async () => {
    expect(await checker().check(['flaky-2', 'limited-3'])).toEqual(['enabled', 'disabled']);
    expect(attempts.get('flaky-2')).toBe(3);
    expect(attempts.get('limited-3')).toBe(2);
  });

  it('counts users whose answer stays missing, slow, malformed or not boolean as unevaluable', async () => {
    const results = await checker({ retries: 1 }).check(['slow-2', 'garbled-4', 'text-6', 'gone-8', 'flaky-10', 'u12']);
    expect(results).toEqual(['unevaluable', 'unevaluable', 'unevaluable', 'unevaluable', 'unevaluable', 'enabled']);
  });

  it('stops on 401 with a clear error instead of marking anyone', async () => {
    const error = await checker({ headers: { authorization: 'Bearer wrong' } }).check(['u1', 'u2']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FfError);
    expect((error as FfError).code).toBe('CHECKER_REFUSED');
    expect((error as FfError).message).toContain('401');
  });

  it('uses the batch endpoint: one POST per batchSize users, results by user', async () => {
    const ids = [...Array.from({ length: 120 }, (_, i) => `b${i}`), 'gone-1'];
    batchCalls = 0;
    const results = await checker({ batchUrl: `${base}/batch`, batchSize: 50 }).check(ids);
    expect(batchCalls).toBe(3);
    expect(results.slice(0, 120)).toEqual(ids.slice(0, 120).map((_, i) => (i % 2 === 0 ? 'enabled' : 'disabled')));
    expect(results[120]).toBe('unevaluable');
  });

  it('makes every user unevaluable when the service is unreachable', async () => {
    const dead = checker({ urlTemplate: 'http://127.0.0.1:1/{flag}/{userId}', retries: 1 });
    expect(await dead.check(['u1', 'u2'])).toEqual(['unevaluable', 'unevaluable']);
  });
});

describe('a detection run with the http checker', () => {
  it('enqueues and marks enabled users only; unevaluable ones are neither sent nor marked', async () => {
    const store = new MemoryKnownUsers();
    const sink = new RecordingSink();
    const ids = ['c2', 'c3', 'garbled-4', 'gone-6', 'c8'];
    const summary = await runDetection(
      { source: sourceOf(ids), checker: checker({ retries: 0 }), known: store, sink, limiter: undefined, logger: silentLogger() },
      detectionOptions({ maxInFlightBatches: 2, retry: { entryRetries: 0, baseMs: 1, maxMs: 1 } }),
    );
    expect(summary).toMatchObject({ status: 'ok', enabled: 2, disabled: 1, unevaluable: 2, enqueued: 2 });
    expect(sink.sent.map((m) => m.userId).sort()).toEqual(['c2', 'c8']);
    expect([...store.known].sort()).toEqual(['c2', 'c8']);
  });
});

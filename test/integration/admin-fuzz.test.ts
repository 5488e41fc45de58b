import { afterEach, describe, expect, it } from 'vitest';
import { mulberry32 as prng } from '../../faults/sqs-fault-proxy.js';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { PollingFixture } from '../helpers/polling.js';
import { rawRequest } from '../helpers/raw-http.js';
import { awsEnv, createQueue, drainQueue, userIdsOf, valkeyUrl, waitFor } from '../helpers/services.js';

// Issue 12, item 1: the daemon survives any request. A bounded loop of generated requests —
// request lines, methods, targets, headers and bodies, well-formed and not — against a real
// `ff-detector run` on loopback. Seeded, so a failure replays.

const daemons = daemonsForTests(afterEach);
const TOKEN = 'fuzz-test-token-0123456789';

const METHODS = { valid: ['GET', 'POST'], broken: ['PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE', 'CONNECT', 'GE T', 'get', 'X'.repeat(40), ''] };
const TARGETS = {
  valid: ['/healthz', '/readyz', '/status', '/metrics', '/runs', '/runs/cancel', '/admin/backfill', '/admin/backfill/status', '/admin/forget-hold/release', '/nope'],
  broken: ['//[', 'http://[/healthz', 'http://evil/status', '*', '/%', '/%zz', '/..%2f..%2fetc/passwd', '/status?x=%', `/${'a'.repeat(5000)}`, '/\u00e9\u0000', ''],
};
const VERSIONS = { valid: ['HTTP/1.1', 'HTTP/1.0'], broken: ['HTTP/2.0', 'HTTP/1.1 extra', '', 'HTTP/9'] };
const BODIES = {
  valid: ['', '{}', '{"user_ids":["u-1"]}', '{"source":"candidates"}'],
  broken: ['{', '[]', 'null', '{"user_ids":[]}', '{"s3_uri":"s3://nope/x"}', '{"user_ids":"u-1"}', '"\\ud800"', '\u0000\u0001', 'x'.repeat(3000)],
};

/** A valid choice most of the time, a broken one sometimes: every part of a request can break. */
function part<T>(random: () => number, choices: { valid: readonly T[]; broken: readonly T[] }): T {
  const list = random() < 0.85 ? choices.valid : choices.broken;
  return list[Math.floor(random() * list.length)] as T;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

/** One generated request: mostly plausible, each part sometimes broken. */
function generate(random: () => number, port: number): string {
  const method = part(random, METHODS);
  const target = part(random, TARGETS);
  const version = part(random, VERSIONS);
  const body = part(random, BODIES);
  const length = String(Buffer.byteLength(body));
  const headers: string[] = [];
  headers.push(`Host: ${part(random, { valid: [`127.0.0.1:${port}`, `localhost:${port}`], broken: ['evil.example', '', `127.0.0.1:${port}, evil`] })}`);
  if (random() < 0.7) headers.push(`Content-Type: ${part(random, { valid: ['application/json', 'application/json; charset=utf-8'], broken: ['text/plain', '', 'application/json\u0000'] })}`);
  if (random() < 0.5) headers.push(`Authorization: ${part(random, { valid: [`Bearer ${TOKEN}`], broken: ['Bearer wrong', 'Basic x', 'Bearer', ''] })}`);
  if (random() < 0.2) headers.push(`Origin: ${part(random, { valid: [`http://127.0.0.1:${port}`], broken: ['http://evil.example', 'null', '::'] })}`);
  if (random() < 0.9) headers.push(`Content-Length: ${part(random, { valid: [length], broken: ['0', '-1', '99999999999', 'abc', `${length}, 5`] })}`);
  else headers.push('Transfer-Encoding: chunked');
  if (random() < 0.05) headers.push(`X-Big: ${'b'.repeat(20_000)}`);
  if (random() < 0.05) headers.push(pick(random, ['Bad Header Line', ': no name', 'X-Ctl: a\u0001b']));
  headers.push('Connection: close');
  return `${method} ${target} ${version}\r\n${headers.join('\r\n')}\r\n\r\n${body}`;
}

describe('the admin API under generated hostile requests', () => {
  it('answers every request with a status or a closed connection, never a 500, and the daemon lives on', async () => {
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    const config = [
      `candidates:\n  path: ${fixture.writeCandidates(['u-1'])}`,
      `flags:\n  rules: ${fixture.writeRules([])}`,
      `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"`,
      'daemon:\n  schedule: "0 0 1 1 *"',
      `admin:\n  token: ${TOKEN}\n  requestTimeoutMs: 2000`,
    ].join('\n');
    const daemon = await DaemonProcess.start(config, { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl });
    daemons.push(daemon);
    const port = Number(new URL(daemon.admin).port);
    const random = prng(20_261_129);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const request = generate(random, port);
      const outcome = await rawRequest(port, request, { timeoutMs: 6000, endAfterWrite: random() < 0.5 });
      outcomes.set(String(outcome), (outcomes.get(String(outcome)) ?? 0) + 1);
      expect(outcome, request.slice(0, 200)).not.toBe(500);
      expect(outcome, request.slice(0, 200)).not.toBe('timeout');
      expect(daemon.exitCode, `daemon exited after: ${request.slice(0, 200)}\n${daemon.log.slice(-2000)}`).toBeNull();
    }
    // The generator reached the interesting answers, not only one kind.
    for (const status of ['200', '202', '400', '401', '403', '404', '405', '415']) expect(outcomes.get(status) ?? 0, `${status} in ${JSON.stringify([...outcomes])}`).toBeGreaterThan(0);
    expect((await fetch(`${daemon.admin}/healthz`)).status).toBe(200);
    expect((await daemon.status()).role).toBe('leader');
    await waitFor(async () => !(await daemon.get<{ running: boolean }>('/admin/backfill/status')).running, 'any backfill a request started to end');
    // Only what an authorised, well-formed request asked for was sent: u-1, the one valid ID in the bodies.
    expect(new Set(userIdsOf(await drainQueue(queueUrl)))).toEqual(new Set(outcomes.has('202') ? ['u-1'] : []));
  });

  it('refuses a backfill body over its byte limit or with more values than backfill.maxUsers, before parsing it', async () => {
    const fixture = new PollingFixture();
    const config = [
      `candidates:\n  path: ${fixture.writeCandidates([])}`,
      `flags:\n  rules: ${fixture.writeRules([])}`,
      `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"`,
      'daemon:\n  schedule: "0 0 1 1 *"',
      'admin:\n  backfillBodyLimitBytes: 4096',
      'backfill:\n  maxUsers: 100',
    ].join('\n');
    const daemon = await DaemonProcess.start(config, { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: await createQueue() });
    daemons.push(daemon);
    const ids = (n: number, length = 4) => Array.from({ length: n }, (_, i) => `u${String(i).padStart(length - 1, '0')}`);
    const tooMany = await daemon.post('/admin/backfill', { user_ids: ids(101) });
    expect(tooMany.status).toBe(413);
    expect(await tooMany.json()).toEqual({ error: 'body holds more than 100 values' });
    const tooBig = await daemon.post('/admin/backfill', { user_ids: ids(50, 100) });
    expect(tooBig.status).toBe(413);
    expect(await tooBig.json()).toEqual({ error: 'body larger than 4096 bytes' });
    expect((await daemon.post('/admin/backfill', { user_ids: ids(100) })).status).toBe(202);
  });
});

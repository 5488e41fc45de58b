import { afterEach, describe, expect, it } from 'vitest';
import { AdminServer, HttpError, type AdminServerOptions, type Route } from '../../src/daemon/admin-server.js';
import { silentLogger } from '../../src/logger.js';
import { rawRequest } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/services.js';

const routes: Route[] = [
  { method: 'GET', path: '/status', mutating: false, handle: () => ({ status: 200, body: { role: 'leader' } }) },
  { method: 'POST', path: '/runs', mutating: true, handle: (body) => ({ status: 202, body: { received: body ?? null } }) },
  {
    method: 'POST',
    path: '/boom',
    mutating: true,
    handle: () => {
      throw new HttpError(409, 'a run is in progress');
    },
  },
];

const defaults: AdminServerOptions = { host: '127.0.0.1', port: 0, token: null, bodyLimitBytes: 64, requestTimeoutMs: 2000, publicRoutes: ['/healthz'] };
let server: AdminServer | undefined;
afterEach(async () => server?.close());

let port = 0;
async function start(options: Partial<AdminServerOptions> = {}): Promise<string> {
  server = new AdminServer(routes, { ...defaults, ...options }, silentLogger());
  ({ port } = await server.listen());
  return `http://127.0.0.1:${port}`;
}

const json = { 'content-type': 'application/json' };

describe('AdminServer over real HTTP', () => {
  it('serves JSON, 404 for unknown routes, 405 for a wrong method', async () => {
    const base = await start();
    expect(await (await fetch(`${base}/status`)).json()).toEqual({ role: 'leader' });
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'no route /nope' });
    expect((await fetch(`${base}/runs`)).status).toBe(405);
  });

  it('requires the bearer token for mutating routes when one is set', async () => {
    const base = await start({ token: 'a-long-enough-secret' });
    expect((await fetch(`${base}/runs`, { method: 'POST', headers: json })).status).toBe(401);
    expect((await fetch(`${base}/runs`, { method: 'POST', headers: { ...json, authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(`${base}/runs`, { method: 'POST', headers: { ...json, authorization: 'Bearer a-long-enough-secret' }, body: '{"a":1}' });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toEqual({ received: { a: 1 } });
    expect((await fetch(`${base}/status`)).status).toBe(200); // reads need no token
  });

  it('allows mutating routes without a token on loopback only', async () => {
    const loopback = await start();
    expect((await fetch(`${loopback}/runs`, { method: 'POST', headers: json })).status).toBe(202);
    await server?.close();
    server = new AdminServer(routes, { ...defaults, host: '0.0.0.0' }, silentLogger());
    const { port: open } = await server.listen();
    const refused = await fetch(`http://127.0.0.1:${open}/runs`, { method: 'POST', headers: json });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: '/runs is disabled: set ADMIN_TOKEN, or bind the admin API to loopback' });
  });

  it('limits bodies, rejects invalid JSON and turns errors into JSON', async () => {
    const base = await start();
    expect((await fetch(`${base}/runs`, { method: 'POST', headers: json, body: 'x'.repeat(100) })).status).toBe(413);
    expect((await fetch(`${base}/runs`, { method: 'POST', headers: json, body: '{nope' })).status).toBe(400);
    const conflict = await fetch(`${base}/boom`, { method: 'POST', headers: json });
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toEqual({ error: 'a run is in progress' });
  });

  it('refuses a body with more values than the route allows, before parsing it', async () => {
    server = new AdminServer([{ method: 'POST', path: '/list', mutating: true, maxItems: 3, handle: (body) => ({ status: 200, body }) }], defaults, silentLogger());
    ({ port } = await server.listen());
    const post = (body: string) => fetch(`http://127.0.0.1:${port}/list`, { method: 'POST', headers: json, body });
    expect((await post('["a","b","c"]')).status).toBe(200);
    const over = await post('["a","b","c","d"]');
    expect(over.status).toBe(413);
    expect(await over.json()).toEqual({ error: 'body holds more than 3 values' });
  });
});

describe('hostile requests', () => {
  it('answers a malformed request target with 400 and keeps serving', async () => {
    await start();
    for (const target of ['//[', 'http://[/healthz', '/%', '*']) {
      const status = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
      expect([400, 404], target).toContain(status);
    }
    expect(await rawRequest(port, `GET //[ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)).toBe(400);
    expect((await fetch(`http://127.0.0.1:${port}/status`)).status).toBe(200);
  });

  it('takes POSTs as application/json only: a cross-site form or no-cors fetch is refused', async () => {
    const base = await start();
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const response = await fetch(`${base}/runs`, { method: 'POST', headers: type ? { 'content-type': type } : {}, body: type ? '{"a":1}' : null });
      expect(response.status, type).toBe(415);
      expect(await response.json()).toEqual({ error: 'POST needs Content-Type: application/json' });
    }
    expect((await fetch(`${base}/runs`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{}' })).status).toBe(202);
  });

  it('on loopback, refuses a Host that is not its own (DNS rebinding) and a foreign Origin', async () => {
    await start();
    const get = (headers: string) => rawRequest(port, `GET /status HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`);
    expect(await get(`Host: evil.example:${port}\r\n`)).toBe(403);
    expect(await get('')).toBe(400); // no Host at all: refused by Node's HTTP parser
    expect(await get(`Host: 127.0.0.1:${port + 1}\r\n`)).toBe(403);
    expect(await get(`Host: localhost:${port}\r\n`)).toBe(200);
    expect(await get(`Host: 127.0.0.1:${port}\r\nOrigin: http://evil.example\r\n`)).toBe(403);
    expect(await get(`Host: 127.0.0.1:${port}\r\nOrigin: null\r\n`)).toBe(403);
    expect(await get(`Host: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\n`)).toBe(200);
  });

  it('beyond loopback, every route but the public ones needs the token', async () => {
    server = new AdminServer(routes, { ...defaults, host: '0.0.0.0', token: 'a-long-enough-secret', publicRoutes: ['/healthz'] }, silentLogger());
    const { port: open } = await server.listen();
    const base = `http://127.0.0.1:${open}`;
    expect((await fetch(`${base}/status`)).status).toBe(401);
    expect((await fetch(`${base}/status`, { headers: { authorization: 'Bearer a-long-enough-secret' } })).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    server.close();
    server = new AdminServer(routes, { ...defaults, host: '0.0.0.0', publicRoutes: ['/status'] }, silentLogger());
    const { port: open2 } = await server.listen();
    expect((await fetch(`http://127.0.0.1:${open2}/status`)).status).toBe(200); // public: no token needed, none configured
  });

  it('closes the connection of a client that never finishes its request', async () => {
    await start({ requestTimeoutMs: 500 });
    const started = Date.now();
    // Headers never finished (slowloris), and a body shorter than its Content-Length.
    expect(await rawRequest(port, `GET /status HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`, { timeoutMs: 5000 })).toBe(408);
    const body = await rawRequest(port, `POST /runs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{`, { timeoutMs: 5000 });
    expect([408, 'closed']).toContain(body);
    expect(Date.now() - started).toBeLessThan(5000);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/status`)).status === 200, 'the server to answer others');
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { AdminServer, HttpError, type AdminServerOptions, type Route } from '../../src/daemon/admin-server.js';
import { silentLogger } from '../../src/logger.js';

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

let server: AdminServer | undefined;
afterEach(async () => server?.close());

async function start(options: Partial<AdminServerOptions> = {}): Promise<string> {
  server = new AdminServer(routes, { host: '127.0.0.1', port: 0, token: null, bodyLimitBytes: 64, ...options }, silentLogger());
  const { port } = await server.listen();
  return `http://127.0.0.1:${port}`;
}

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
    expect((await fetch(`${base}/runs`, { method: 'POST' })).status).toBe(401);
    expect((await fetch(`${base}/runs`, { method: 'POST', headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(`${base}/runs`, { method: 'POST', headers: { authorization: 'Bearer a-long-enough-secret' }, body: '{"a":1}' });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toEqual({ received: { a: 1 } });
    expect((await fetch(`${base}/status`)).status).toBe(200); // reads need no token
  });

  it('allows mutating routes without a token on loopback only', async () => {
    const loopback = await start();
    expect((await fetch(`${loopback}/runs`, { method: 'POST' })).status).toBe(202);
    await server?.close();
    server = new AdminServer(routes, { host: '0.0.0.0', port: 0, token: null, bodyLimitBytes: 64 }, silentLogger());
    const { port } = await server.listen();
    const refused = await fetch(`http://127.0.0.1:${port}/runs`, { method: 'POST' });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: 'mutating endpoints are disabled: set ADMIN_TOKEN or bind to loopback' });
  });

  it('limits bodies, rejects invalid JSON and turns errors into JSON', async () => {
    const base = await start();
    expect((await fetch(`${base}/runs`, { method: 'POST', body: 'x'.repeat(100) })).status).toBe(413);
    expect((await fetch(`${base}/runs`, { method: 'POST', body: '{nope' })).status).toBe(400);
    const conflict = await fetch(`${base}/boom`, { method: 'POST' });
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toEqual({ error: 'a run is in progress' });
  });
});

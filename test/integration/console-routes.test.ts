import { afterEach, describe, expect, it } from 'vitest';
import { AdminServer, type AdminServerOptions, type Route } from '../../src/daemon/admin-server.js';
import { CONSOLE_CSP, consoleRoutes } from '../../src/daemon/console-routes.js';
import { CONSOLE_HTML } from '../../src/console/page.js';
import { silentLogger } from '../../src/logger.js';
import { rawRequest } from '../helpers/raw-http.js';

// The console's files over real HTTP: what they answer, to whom, with which headers.

const status: Route = { method: 'GET', path: '/status', mutating: false, handle: () => ({ status: 200, body: { user: '<script>alert(1)</script>' } }) };
const defaults: AdminServerOptions = { host: '127.0.0.1', port: 0, token: 'a-long-enough-secret', bodyLimitBytes: 1024, requestTimeoutMs: 2000, publicRoutes: ['/healthz'] };
let server: AdminServer | undefined;
afterEach(async () => server?.close());

async function start(options: Partial<AdminServerOptions> = {}): Promise<number> {
  server = new AdminServer([status, ...consoleRoutes()], { ...defaults, ...options }, silentLogger());
  return (await server.listen()).port;
}

describe('the console routes', () => {
  it('serve the page, its stylesheet and its scripts with a strict Content-Security-Policy', async () => {
    const port = await start();
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await page.text()).toBe(CONSOLE_HTML);
    expect((await fetch(`http://127.0.0.1:${port}/console/console.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    const script = await fetch(`http://127.0.0.1:${port}/console/app.js`);
    expect(script.status).toBe(200); // compiled by npm run build, which the test command runs first
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await script.text()).toContain("get('/status')");
    expect((await fetch(`http://127.0.0.1:${port}/console/other.js`)).status).toBe(404);
  });

  it('the policy allows no inline script or style, and the page has none', () => {
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'"]) expect(CONSOLE_CSP).toContain(directive);
    expect(CONSOLE_CSP).not.toMatch(/unsafe|\*/);
    expect(CONSOLE_HTML).not.toMatch(/\son[a-z]+=/i); // no inline handlers
    expect(CONSOLE_HTML).not.toMatch(/<script(?![^>]*\bsrc=)/); // no inline script
    expect(CONSOLE_HTML).not.toMatch(/style=/);
  });

  it('beyond loopback, the files answer without the token and the data does not', async () => {
    const port = await start({ host: '0.0.0.0' });
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/console/app.js`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/status`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: 'Bearer a-long-enough-secret' } })).status).toBe(200);
  });

  it('on loopback, the page follows the Host rule (DNS rebinding) like every route', async () => {
    const port = await start();
    const rebound = await rawRequest(port, `GET / HTTP/1.1\r\nHost: attacker.example:${port}\r\nConnection: close\r\n\r\n`);
    expect(rebound).toBe(403);
  });

  it('JSON answers are never sniffed as a page', async () => {
    const port = await start();
    const answer = await fetch(`http://127.0.0.1:${port}/status`);
    expect(answer.headers.get('content-type')).toBe('application/json');
    expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
    expect(answer.headers.get('cache-control')).toBe('no-store');
  });
});

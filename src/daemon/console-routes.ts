import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../config/load.js';
import { CONSOLE_CSS, CONSOLE_HTML } from '../console/page.js';
import type { AdminResponse, Route } from './admin-server.js';

/**
 * What the console page may load and do: its own script and stylesheet and the admin API on the
 * same origin, nothing inline, nothing else (no frames, no form posts, no base URL changes).
 */
export const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE_HEADERS = { 'content-security-policy': CONSOLE_CSP, 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache' };

/** The browser modules, compiled by tsconfig.console.json (npm run build) into the package's dist/. */
const SCRIPTS = ['app.js', 'api.js', 'chart.js', 'dom.js'] as const;
const SCRIPT_DIR = path.join(PACKAGE_ROOT, 'dist', 'src', 'console', 'browser');

function asset(body: string, contentType: string): AdminResponse {
  return { status: 200, body, contentType, headers: PAGE_HEADERS };
}

const scripts = new Map<string, string>();

/** Read at the first request and kept (a missing build is reported, and looked for again next time). */
function script(name: string): AdminResponse {
  try {
    let text = scripts.get(name);
    if (text === undefined) scripts.set(name, (text = readFileSync(path.join(SCRIPT_DIR, name), 'utf8')));
    return asset(text, 'text/javascript; charset=utf-8');
  } catch {
    return { status: 500, body: { error: `console script ${name} is missing: run npm run build` } };
  }
}

/**
 * The operator's console (README "Console"): a page, its stylesheet and its script modules. They
 * hold no data, so they answer without the token (a browser cannot send a bearer header when it
 * navigates) but under the same Host and Origin rules; everything they show comes from the JSON
 * routes, with the token.
 */
export function consoleRoutes(): Route[] {
  return [
    { method: 'GET', path: '/', mutating: false, asset: true, handle: () => asset(CONSOLE_HTML, 'text/html; charset=utf-8') },
    { method: 'GET', path: '/console/console.css', mutating: false, asset: true, handle: () => asset(CONSOLE_CSS, 'text/css; charset=utf-8') },
    ...SCRIPTS.map((name): Route => ({ method: 'GET', path: `/console/${name}`, mutating: false, asset: true, handle: () => script(name) })),
  ];
}

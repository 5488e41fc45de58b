import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** An answer to give instead of handling the request. */
export interface Refusal {
  status: number;
  error: string;
}

export interface GuardOptions {
  /** The bind address (admin.host). */
  host: string;
  token: string | null;
  /** Routes any caller may read when bound beyond loopback (health probes, scrapers). */
  publicRoutes: readonly string[];
}

/**
 * Who may do what on the admin API (README "Security"):
 * - on a loopback bind, a browser is the threat: the Host header must name the bind (DNS
 *   rebinding) and an Origin header, if any, must be the API's own (cross-site requests);
 * - beyond loopback, the network is: every route but the public ones needs the bearer token, and
 *   with no token configured only the public routes answer;
 * - mutating routes need the token whenever one is configured;
 * - the console's files (assets) hold no data and answer without it: a browser navigating to
 *   the page cannot send a bearer header, and what the page shows it fetches with the token;
 * - a POST must say `Content-Type: application/json`, which a cross-site "simple request" (a form,
 *   a no-cors fetch) cannot send without a preflight we never answer.
 */
export class RequestGuard {
  private readonly loopback: boolean;
  private readonly tokenDigest: Buffer | null;
  private allowedHosts = new Set<string>();

  constructor(private readonly options: GuardOptions) {
    this.loopback = isLoopback(options.host);
    this.tokenDigest = options.token === null ? null : digest(options.token);
  }

  /** Called once the port is known: the Host values a loopback bind answers to. */
  bound(port: number): void {
    const names = ['127.0.0.1', 'localhost', '[::1]', this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host];
    this.allowedHosts = new Set(names.flatMap((name) => (port === 80 ? [name, `${name}:80`] : [`${name}:${port}`])));
  }

  /** Checks before the route is known: the caller's Host and Origin. */
  checkCaller(req: IncomingMessage): Refusal | undefined {
    if (!this.loopback) return undefined;
    const host = (req.headers.host ?? '').toLowerCase();
    if (!this.allowedHosts.has(host)) return { status: 403, error: `Host "${truncate(host)}" is not this admin API's address: refused (DNS rebinding protection)` };
    const origin = req.headers.origin;
    if (origin !== undefined && !this.allowedHosts.has(hostOfOrigin(origin))) return { status: 403, error: 'cross-origin request refused' };
    return undefined;
  }

  /** Checks for a known route: its authorisation and, for a POST, the content type. */
  checkRoute(req: IncomingMessage, route: { path: string; method: string; mutating: boolean; asset?: boolean }): Refusal | undefined {
    const needsToken = route.mutating || (!this.loopback && route.asset !== true && !this.options.publicRoutes.includes(route.path));
    if (needsToken) {
      if (this.tokenDigest === null) {
        if (!this.loopback) return { status: 403, error: `${route.path} is disabled: set ADMIN_TOKEN, or bind the admin API to loopback` };
      } else if (!this.tokenMatches(req)) {
        return { status: 401, error: 'missing or wrong bearer token' };
      }
    }
    if (route.method === 'POST' && !isJson(req.headers['content-type'])) return { status: 415, error: 'POST needs Content-Type: application/json' };
    return undefined;
  }

  private tokenMatches(req: IncomingMessage): boolean {
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    // Hashing first makes both sides the same length, so the comparison leaks nothing.
    return given !== undefined && this.tokenDigest !== null && timingSafeEqual(digest(given), this.tokenDigest);
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function isJson(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() === 'application/json';
}

function hostOfOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' ? url.host.toLowerCase() : '';
  } catch {
    return ''; // "null" (a sandboxed page, a file) or garbage: never ours
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

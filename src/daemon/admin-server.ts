import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';

export interface AdminResponse {
  status: number;
  body: unknown;
  /** Plain text (Prometheus) instead of JSON. */
  contentType?: string;
}

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** Needs the bearer token (mutating endpoints). */
  mutating: boolean;
  /** Overrides the server's body limit for this route. */
  bodyLimitBytes?: number;
  handle(body: unknown): Promise<AdminResponse> | AdminResponse;
}

export interface AdminServerOptions {
  host: string;
  port: number;
  token: string | null;
  bodyLimitBytes: number;
}

/**
 * The admin HTTP API: a route table, JSON in and out. Mutating routes need `Authorization:
 * Bearer <token>` (compared in constant time); with no token configured they are refused unless
 * the server is bound to loopback. Bodies are size-limited; unknown routes are 404.
 */
export class AdminServer {
  private readonly server: Server;

  constructor(
    private readonly routes: readonly Route[],
    private readonly options: AdminServerOptions,
    private readonly logger: Logger,
  ) {
    this.server = createServer((req, res) => void this.dispatch(req, res));
  }

  async listen(): Promise<{ host: string; port: number }> {
    this.server.listen(this.options.port, this.options.host);
    await once(this.server, 'listening');
    const address = this.server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    const route = this.routes.find((candidate) => candidate.path === path && candidate.method === req.method);
    try {
      if (!route) {
        const known = this.routes.some((candidate) => candidate.path === path);
        return send(res, known ? { status: 405, body: { error: `method ${req.method} not allowed on ${path}` } } : { status: 404, body: { error: `no route ${path}` } });
      }
      if (route.mutating) {
        const refusal = this.authorize(req);
        if (refusal) return send(res, refusal);
      }
      const body = route.method === 'POST' ? await readJson(req, route.bodyLimitBytes ?? this.options.bodyLimitBytes) : undefined;
      send(res, await route.handle(body));
    } catch (error) {
      if (error instanceof HttpError) return send(res, { status: error.status, body: { error: error.message } });
      this.logger.error({ err: error, path }, 'admin request failed');
      send(res, { status: 500, body: { error: 'internal error' } });
    }
  }

  private authorize(req: IncomingMessage): AdminResponse | undefined {
    const { token, host } = this.options;
    if (token === null) {
      return isLoopback(host) ? undefined : { status: 403, body: { error: 'mutating endpoints are disabled: set ADMIN_TOKEN or bind to loopback' } };
    }
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    // Hashing first makes both sides the same length, so the comparison leaks nothing.
    if (given !== undefined && timingSafeEqual(digest(given), digest(token))) return undefined;
    return { status: 401, body: { error: 'missing or wrong bearer token' } };
  }
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

function send(res: ServerResponse, response: AdminResponse): void {
  const text = response.contentType ? String(response.body) : JSON.stringify(response.body);
  res.writeHead(response.status, { 'content-type': response.contentType ?? 'application/json' });
  res.end(text);
}

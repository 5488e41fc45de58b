import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import { RequestGuard, type GuardOptions } from './request-guard.js';

export interface AdminResponse {
  status: number;
  body: unknown;
  /** Plain text (Prometheus, the console's files) instead of JSON. */
  contentType?: string;
  headers?: Readonly<Record<string, string>>;
}

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** Needs the bearer token (mutating endpoints). */
  mutating: boolean;
  /** A file of the console: holds no data, answers without the token (Host and Origin rules still apply). */
  asset?: boolean;
  /** Overrides the server's body limit for this route. */
  bodyLimitBytes?: number;
  /**
   * Refuses (413) a body holding more JSON values than this before parsing it, so that a body
   * within the byte limit cannot fill the heap with millions of tiny strings.
   */
  maxItems?: number;
  handle(body: unknown): Promise<AdminResponse> | AdminResponse;
}

export interface AdminServerOptions extends GuardOptions {
  port: number;
  bodyLimitBytes: number;
  /** A request must arrive whole within this (slow clients cannot hold sockets). */
  requestTimeoutMs: number;
}

/** Headers must arrive within this; Node answers 408 and closes the socket otherwise. */
const HEADERS_TIMEOUT_MS = 10_000;

/**
 * The admin HTTP API: a route table, JSON in and out. Who may call what is RequestGuard's
 * (request-guard.ts). Any request, however malformed, gets a 4xx or 5xx answer: nothing a client
 * sends can throw outside the handler. Bodies are size-limited, slow clients timed out.
 */
export class AdminServer {
  private readonly server: Server;
  private readonly guard: RequestGuard;

  constructor(
    private readonly routes: readonly Route[],
    private readonly options: AdminServerOptions,
    private readonly logger: Logger,
  ) {
    this.guard = new RequestGuard(options);
    const timeouts = {
      requestTimeout: options.requestTimeoutMs,
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, options.requestTimeoutMs),
      // How often Node looks for requests past those timeouts (its default is 30 s).
      connectionsCheckingInterval: Math.min(1000, options.requestTimeoutMs),
    };
    this.server = createServer(timeouts, (req, res) => void this.dispatch(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  async listen(): Promise<{ host: string; port: number }> {
    this.server.listen(this.options.port, this.options.host);
    await once(this.server, 'listening');
    const address = this.server.address() as AddressInfo;
    this.guard.bound(address.port);
    return { host: address.address, port: address.port };
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => undefined); // a client gone mid-body: the read below fails, answered or not
    let path = '?';
    try {
      path = pathOf(req.url);
      send(res, await this.answer(req, path));
    } catch (error) {
      if (error instanceof HttpError) return send(res, { status: error.status, body: { error: error.message } });
      this.logger.error({ err: error, path }, 'admin request failed');
      send(res, { status: 500, body: { error: 'internal error' } });
    }
  }

  private async answer(req: IncomingMessage, path: string): Promise<AdminResponse> {
    const refused = this.guard.checkCaller(req);
    if (refused) return { status: refused.status, body: { error: refused.error } };
    const route = this.routes.find((candidate) => candidate.path === path && candidate.method === req.method);
    if (!route) {
      const known = this.routes.some((candidate) => candidate.path === path);
      return known ? { status: 405, body: { error: `method ${truncate(req.method ?? '')} not allowed on ${path}` } } : { status: 404, body: { error: `no route ${truncate(path)}` } };
    }
    const denied = this.guard.checkRoute(req, route);
    if (denied) return { status: denied.status, body: { error: denied.error } };
    const body = route.method === 'POST' ? await readJson(req, route.bodyLimitBytes ?? this.options.bodyLimitBytes, route.maxItems) : undefined;
    return route.handle(body);
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

/** The path of a request target: origin form (`/status?x`) or absolute form (`http://host/status`). */
function pathOf(target: string | undefined): string {
  try {
    return new URL(target ?? '/', 'http://admin.invalid').pathname;
  } catch {
    throw new HttpError(400, 'malformed request target');
  }
}

function countByte(bytes: Buffer, byte: number): number {
  let count = 0;
  for (let at = bytes.indexOf(byte); at !== -1; at = bytes.indexOf(byte, at + 1)) count++;
  return count;
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

async function readJson(req: IncomingMessage, limit: number, maxItems = Number.POSITIVE_INFINITY): Promise<unknown> {
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
  const bytes = Buffer.concat(chunks);
  // Values are separated by commas: counting them bounds the parse (commas inside strings only
  // make the count larger, never smaller).
  if (countByte(bytes, 0x2c) >= maxItems) throw new HttpError(413, `body holds more than ${maxItems} values`);
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

function send(res: ServerResponse, response: AdminResponse): void {
  if (res.headersSent || res.destroyed) return;
  const text = response.contentType ? String(response.body) : JSON.stringify(response.body);
  // nosniff: a JSON answer holding a user's text is never run as a script or rendered as a page.
  res.writeHead(response.status, { 'content-type': response.contentType ?? 'application/json', 'x-content-type-options': 'nosniff', 'cache-control': 'no-store', ...response.headers });
  res.end(text);
}

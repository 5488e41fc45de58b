import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

// An HTTP proxy in front of an SQS server that answers the way SQS itself fails: 5xx, throttling,
// part of a batch Failed, or silence. A TCP proxy can only cut or slow bytes; these faults need
// to speak the protocol.
//
// Wire facts this relies on (checked against @aws-sdk/client-sqs 3.1175 and fauxqs 2.4):
// - The SDK speaks AWS JSON 1.0 to SQS: POST /, `Content-Type: application/x-amz-json-1.0`,
//   `X-Amz-Target: AmazonSQS.<Action>`, `x-amzn-query-mode: true` (the client is
//   awsQueryCompatible). fauxqs routes on the same header and checks no signature, so a request
//   whose body the proxy rewrites (the forwarded part of a partial batch) is still accepted.
// - Errors: a JSON body `{"__type": "com.amazonaws.sqs#<Code>", "message": …}` plus the header
//   `x-amzn-query-error: <QueryCode>;<Sender|Receiver>`. Being query-compatible, the SDK takes the
//   error's name from that header first, then `__type`; the name and the HTTP status decide how
//   its retry strategy classifies the error (@smithy/core retry: service-error-classification).

/** What the proxy does to the requests it receives. */
export type SqsFault =
  | { kind: 'pass' }
  /** The next `count` requests (any action) are answered with HTTP `status` (500 or 503) and an AWS JSON error body (InternalError / ServiceUnavailable), without reaching the server. */
  | { kind: 'status'; status: 500 | 503; count: number }
  /** The next `count` requests are answered as SQS throttling errors (what the AWS SDK classifies as throttling and retries with backoff). */
  | { kind: 'throttle'; count: number }
  /** The next `count` SendMessageBatch requests: a seeded `fraction` of their entries is answered Failed (SenderFault=`senderFault`, a plausible Code such as InternalError when false, InvalidParameterValue when true) WITHOUT being forwarded; the other entries are forwarded to the server and its answer merged, so the client sees one response with Successful + Failed. */
  | { kind: 'partial'; senderFault: boolean; fraction: number; count: number }
  /** Requests are read and never answered (until the fault is changed; then held requests are dropped by destroying their sockets). */
  | { kind: 'blackhole' };

export interface SqsProxyStats {
  /** Every HTTP request received. */
  requests: number;
  /** SendMessageBatch requests received. */
  sendBatches: number;
  /** Entries forwarded to the server that it reported Successful. */
  forwardedEntries: number;
  /** Entries the proxy answered Failed. */
  failedEntries: number;
  /** Requests answered by a fault (status/throttle/blackhole). */
  faulted: number;
}

const JSON_1_0 = 'application/x-amz-json-1.0';
const SEND_MESSAGE_BATCH = 'AmazonSQS.SendMessageBatch';

/** Headers that belong to one connection, not to the message, plus the length we recompute. */
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length']);

/** An error answer as SQS sends it over AWS JSON 1.0 in query-compatible mode. */
interface WireError {
  status: number;
  /** The shape name in `__type`. */
  code: string;
  /** The legacy query-protocol code in `x-amzn-query-error`: the SDK names the error after it. */
  queryCode: string;
  fault: 'Sender' | 'Receiver';
  message: string;
}

/**
 * SQS's throttling error as its model (com.amazonaws.sqs#RequestThrottled) defines it: HTTP 403,
 * awsQueryError code `RequestThrottled`. The SDK names the error `RequestThrottled`, which is in
 * THROTTLING_ERROR_CODES, so it retries with the throttling backoff (1 s base, not 50 ms). Note
 * fauxqs prefixes its own query codes with `AWS.SimpleQueueService.`, but this one must not be:
 * the SDK would then find no such code, name the error after the raw header, and treat a 403 as a
 * client error that is not retried.
 */
const THROTTLED: WireError = { status: 403, code: 'RequestThrottled', queryCode: 'RequestThrottled', fault: 'Sender', message: 'Rate exceeded (injected by SqsFaultProxy)' };

/**
 * The SQS model has no InternalError or ServiceUnavailable shape, so the SDK builds a generic
 * SQSServiceException named after the code; what makes it retry is the status alone (500 and 503
 * are in TRANSIENT_ERROR_STATUS_CODES).
 */
function serverError(status: 500 | 503): WireError {
  const code = status === 500 ? 'InternalError' : 'ServiceUnavailable';
  return { status, code, queryCode: code, fault: 'Receiver', message: `${code} (injected by SqsFaultProxy)` };
}

/** mulberry32: a tiny seeded PRNG, so a campaign's seed replays the same failed entries. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Which of `n` entries fail: `fraction × n` of them, the fractional part rounded up with that
 * probability (so small batches still fail at the asked rate on average), chosen by a partial
 * Fisher–Yates shuffle. Always draws from `random` the same way for the same n, so seeds replay.
 */
export function pickFailures(n: number, fraction: number, random: () => number): Set<number> {
  const exact = fraction * n;
  const count = Math.min(n, Math.floor(exact) + (random() < exact - Math.floor(exact) ? 1 : 0));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (n - i));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return new Set(order.slice(0, count));
}

interface BatchEntry {
  Id: string;
  [field: string]: unknown;
}

interface BatchRequest {
  Entries: BatchEntry[];
  [field: string]: unknown;
}

interface BatchResult {
  Successful: unknown[];
  Failed: unknown[];
}

interface Upstream {
  status: number;
  headers: http.OutgoingHttpHeaders;
  body: Buffer;
}

/** What one request gets, decided when it arrives (so a fault applies to requests in arrival order). */
type Decision =
  | { kind: 'forward' }
  | { kind: 'error'; error: WireError }
  | { kind: 'partial'; senderFault: boolean; fraction: number; random: () => number }
  | { kind: 'blackhole' };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function parseBatchRequest(body: Buffer): BatchRequest | undefined {
  const value = parseJson(body);
  if (!isRecord(value) || !Array.isArray(value.Entries)) return undefined;
  const entries: unknown[] = value.Entries;
  if (!entries.every((e) => isRecord(e) && typeof e.Id === 'string')) return undefined;
  return value as BatchRequest;
}

function parseBatchResult(body: Buffer): BatchResult | undefined {
  const value = parseJson(body);
  if (!isRecord(value)) return undefined;
  const successful = value.Successful ?? [];
  const failed = value.Failed ?? [];
  if (!Array.isArray(successful) || !Array.isArray(failed)) return undefined;
  return { Successful: successful, Failed: failed };
}

/** An injected Failed entry, with the code SQS gives for that kind of fault. */
function failedEntry(id: string, senderFault: boolean): Record<string, unknown> {
  return senderFault
    ? { Id: id, SenderFault: true, Code: 'InvalidParameterValue', Message: 'Invalid parameter value (injected by SqsFaultProxy)' }
    : { Id: id, SenderFault: false, Code: 'InternalError', Message: 'Internal error (injected by SqsFaultProxy)' };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function forwardableHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !NOT_FORWARDED.has(name)) out[name] = value;
  }
  return out;
}

function send(res: http.ServerResponse, status: number, headers: http.OutgoingHttpHeaders, body: Buffer | string): void {
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, value: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  send(res, status, { 'x-amzn-requestid': randomUUID(), ...headers, 'content-type': JSON_1_0 }, JSON.stringify(value));
}

function sendError(res: http.ServerResponse, error: WireError): void {
  sendJson(res, error.status, { __type: `com.amazonaws.sqs#${error.code}`, message: error.message }, { 'x-amzn-query-error': `${error.queryCode};${error.fault}` });
}

/**
 * An HTTP proxy on loopback in front of an SQS server (use `endpoint` as the SDK's endpoint).
 * `set()` chooses the fault for requests that arrive from then on; counted faults fall back to
 * 'pass' once used up. `stats` counts what happened, for assertions and for triggers.
 */
export class SqsFaultProxy {
  readonly stats: SqsProxyStats = { requests: 0, sendBatches: 0, forwardedEntries: 0, failedEntries: 0, faulted: 0 };
  /**
   * Called after each SendMessageBatch answer (not for blackholed ones, which get none) with the
   * running stats: lets a caller inject a fault after N batches. It runs right after the answer is
   * written, so a fault it sets applies to every request that arrives after it (with one batch in
   * flight at a time, the very next one). A throw is rethrown outside the request.
   */
  onSendBatch: ((stats: SqsProxyStats) => void) | undefined;

  private readonly server: http.Server;
  /** Keep-alive, so forwarding does not add a connection per request. */
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly held = new Set<Socket>();
  private fault: SqsFault = { kind: 'pass' };
  /** Requests the current counted fault may still take. */
  private remaining = 0;
  private random: () => number;
  private faultsSet = 0;
  private port = 0;

  private constructor(
    private readonly target: URL,
    private readonly seed: number,
  ) {
    this.random = mulberry32(seed);
    this.server = http.createServer((req, res) => void this.handle(req, res));
    // Longer than any retry backoff in a test, so the SDK does not reuse a socket the server is
    // just closing (an ECONNRESET it would retry, spending an attempt the test counts).
    this.server.keepAliveTimeout = 30_000;
  }

  static async start(targetEndpoint: string, seed: number): Promise<SqsFaultProxy> {
    const proxy = new SqsFaultProxy(new URL(targetEndpoint), seed);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.server.address() as AddressInfo).port;
    return proxy;
  }

  /** http://127.0.0.1:<port>, to use as the SDK's endpoint (AWS_ENDPOINT_URL_SQS). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  set(fault: SqsFault): void {
    if (fault.kind === 'partial' && !(fault.fraction >= 0 && fault.fraction <= 1)) throw new RangeError(`partial fraction must be within [0, 1], got ${fault.fraction}`);
    this.dropHeld();
    this.fault = { ...fault };
    this.remaining = 'count' in fault ? fault.count : 0;
    if ('count' in fault && fault.count <= 0) this.fault = { kind: 'pass' };
    // Each set() reseeds from the proxy's seed and how many faults came before, so which entries
    // fail depends only on the seed and the campaign's script, not on earlier traffic.
    this.faultsSet += 1;
    this.random = mulberry32((this.seed + Math.imul(this.faultsSet, 0x9e3779b9)) >>> 0);
  }

  async close(): Promise<void> {
    this.dropHeld();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    this.agent.destroy();
    await closed;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.stats.requests += 1;
    const isSendBatch = req.headers['x-amz-target'] === SEND_MESSAGE_BATCH;
    if (isSendBatch) this.stats.sendBatches += 1;
    const decision = this.decide(isSendBatch);
    if (decision.kind === 'blackhole') {
      // Held from arrival, so a set() while the body is still coming in drops it too.
      this.hold(req.socket);
      req.resume();
      return;
    }
    try {
      await this.answer(req, res, decision, isSendBatch);
    } catch (err) {
      this.answerUnforwarded(res, err);
    }
    if (isSendBatch) this.notifySendBatch();
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse, decision: Exclude<Decision, { kind: 'blackhole' }>, isSendBatch: boolean): Promise<void> {
    const body = await readBody(req);
    switch (decision.kind) {
      case 'error':
        return sendError(res, decision.error);
      case 'partial':
        return this.answerPartial(req, res, body, decision);
      case 'forward':
        return this.answerForwarded(req, res, body, isSendBatch);
    }
  }

  /** A throw from the callback is rethrown outside the request, so it fails the run instead of vanishing. */
  private notifySendBatch(): void {
    try {
      this.onSendBatch?.(this.stats);
    } catch (err) {
      setImmediate(() => {
        throw err;
      });
    }
  }

  private decide(isSendBatch: boolean): Decision {
    const fault = this.fault;
    switch (fault.kind) {
      case 'pass':
        return { kind: 'forward' };
      case 'blackhole':
        this.stats.faulted += 1;
        return { kind: 'blackhole' };
      case 'status':
        this.useOne();
        this.stats.faulted += 1;
        return { kind: 'error', error: serverError(fault.status) };
      case 'throttle':
        this.useOne();
        this.stats.faulted += 1;
        return { kind: 'error', error: THROTTLED };
      case 'partial':
        // Only batches can fail in part; every other action passes and does not use the count.
        if (!isSendBatch) return { kind: 'forward' };
        this.useOne();
        return { kind: 'partial', senderFault: fault.senderFault, fraction: fault.fraction, random: this.random };
    }
  }

  private useOne(): void {
    this.remaining -= 1;
    if (this.remaining <= 0) this.fault = { kind: 'pass' };
  }

  private async answerForwarded(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, isSendBatch: boolean): Promise<void> {
    const upstream = await this.forward(req, body);
    if (isSendBatch && upstream.status === 200) this.stats.forwardedEntries += parseBatchResult(upstream.body)?.Successful.length ?? 0;
    send(res, upstream.status, upstream.headers, upstream.body);
  }

  /**
   * Fails the chosen entries here and forwards the rest, then answers with the server's own
   * Successful entries (the SDK checks their MD5OfMessageBody against what it sent) and both
   * sets of Failed ones. A server error for the forwarded part is relayed as it is: then the
   * whole request failed and no entry was answered Failed by the proxy.
   */
  private async answerPartial(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, decision: Extract<Decision, { kind: 'partial' }>): Promise<void> {
    const request = parseBatchRequest(body);
    if (!request) return this.answerForwarded(req, res, body, true);
    const failing = pickFailures(request.Entries.length, decision.fraction, decision.random);
    const injected = request.Entries.filter((_, i) => failing.has(i)).map((e) => failedEntry(e.Id, decision.senderFault));
    const kept = request.Entries.filter((_, i) => !failing.has(i));
    if (kept.length === 0) {
      this.stats.failedEntries += injected.length;
      return sendJson(res, 200, { Successful: [], Failed: injected });
    }
    const upstream = await this.forward(req, Buffer.from(JSON.stringify({ ...request, Entries: kept })));
    const result = upstream.status === 200 ? parseBatchResult(upstream.body) : undefined;
    if (!result) return send(res, upstream.status, upstream.headers, upstream.body);
    this.stats.forwardedEntries += result.Successful.length;
    this.stats.failedEntries += injected.length;
    sendJson(res, 200, { Successful: result.Successful, Failed: [...result.Failed, ...injected] }, upstream.headers);
  }

  /** Sends the request on to the server as it came (Host included: it is what the SDK signed). */
  private forward(req: http.IncomingMessage, body: Buffer): Promise<Upstream> {
    return new Promise((resolve, reject) => {
      const upstreamReq = http.request(
        {
          host: this.target.hostname,
          port: this.target.port,
          method: req.method,
          path: req.url,
          agent: this.agent,
          headers: { ...forwardableHeaders(req.headers), 'content-length': body.length },
        },
        (upstreamRes) => {
          readBody(upstreamRes)
            .then((resBody) => resolve({ status: upstreamRes.statusCode ?? 502, headers: forwardableHeaders(upstreamRes.headers), body: resBody }))
            .catch(reject);
        },
      );
      upstreamReq.on('error', reject);
      upstreamReq.end(body);
    });
  }

  /** Keeps the socket open and silent; the client's own timeout is what ends the request. */
  private hold(socket: Socket): void {
    this.held.add(socket);
    socket.once('close', () => this.held.delete(socket));
  }

  private dropHeld(): void {
    for (const socket of this.held) socket.destroy();
    this.held.clear();
  }

  /** The server unreachable or the client gone: answer 502 (which the SDK retries) if we still can. */
  private answerUnforwarded(res: http.ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const message = `SqsFaultProxy could not forward the request: ${err instanceof Error ? err.message : String(err)}`;
    sendJson(res, 502, { __type: 'com.amazonaws.sqs#InternalError', message }, { 'x-amzn-query-error': 'InternalError;Receiver' });
  }
}

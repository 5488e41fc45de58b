import { Cluster, Valkey } from 'iovalkey';
import { FfError, errorMessage } from '../../errors.js';
import { SECOND } from '../../time.js';
import { TIMED_OUT, within } from '../../concurrency.js';

export interface ValkeyConnectionOptions {
  url: string;
  /** A Valkey cluster (ElastiCache / MemoryDB cluster mode, Serverless): `url` is one seed node. */
  cluster?: boolean;
  connectTimeoutMs: number;
  /** A call unanswered for this long fails instead of hanging the run. */
  commandTimeoutMs?: number;
}

/**
 * One connection to Valkey — a single node, or a cluster whose slots the client follows through
 * failovers and resharding (MOVED/ASK) — shared by the known set, the locks, the run history, the
 * backfill jobs and the rate limiter. In a cluster every command and script touches one slot. Commands fail fast while disconnected (no offline queue, one
 * attempt): a run that loses Valkey fails cleanly and the next one retries. Every error leaves
 * as an FfError (STATE_UNAVAILABLE) naming the command and the server, never the password.
 */
export class ValkeyConnection {
  readonly description: string;
  readonly client: Valkey | Cluster;
  readonly cluster: boolean;
  private connecting: Promise<void> | undefined;
  private closed = false;
  private lastConnectionError: Error | undefined;
  private lastNodeError: string | undefined;
  private readonly database: number;

  constructor(
    private readonly options: ValkeyConnectionOptions,
    client?: Valkey | Cluster,
  ) {
    this.cluster = options.cluster ?? false;
    this.description = `valkey ${this.cluster ? 'cluster ' : ''}${redactUrl(options.url)}`;
    this.database = databaseOf(options.url);
    this.client = client ?? (this.cluster ? clusterClient(options) : singleNodeClient(options));
    // Errors reach callers through rejected commands; without a listener iovalkey would print
    // them. The last one is kept because a failed connect() only says "Connection is closed".
    this.client.on('error', (error: Error) => {
      this.lastConnectionError = error;
    });
    // A cluster reports why a node refused it (WRONGPASS, a TLS error) only as a node error; its
    // own error then just says it could not load the slots.
    this.client.on('node error', (error: Error, node: string) => {
      this.lastNodeError = `${errorMessage(error)} (node ${node})`;
    });
  }

  /** The client's connection state (iovalkey's: wait, connecting, ready, reconnecting, end…). */
  get state(): string {
    return this.client.status;
  }

  /**
   * Runs one call (a command, a pipeline, a script) with a deadline, connecting first if needed.
   * `what` names it in errors.
   */
  async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) throw new FfError('STATE_UNAVAILABLE', `Valkey ${what}: the store is closed`);
    try {
      await this.connect();
      return await this.withTimeout(what, run());
    } catch (error) {
      throw toStateError(what, error, this.options.url);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.client.status === 'end' || this.client.status === 'wait') return;
    // QUIT to a Valkey gone silent is never answered: close within the connect timeout regardless.
    try {
      if ((await within(this.client.quit(), this.options.connectTimeoutMs)) === TIMED_OUT) this.client.disconnect();
    } catch {
      this.client.disconnect();
    }
  }

  /**
   * Connects on first use (the client is lazy and keeps no offline queue), and again after the
   * client gave up reconnecting, so a long-running process recovers once Valkey is back. Calls
   * made while a connection is being set up wait for it instead of failing.
   */
  private connect(): Promise<void> {
    if (this.connecting) return this.connecting;
    const status = this.client.status;
    if (status === 'ready') return Promise.resolve();
    const opening = status === 'wait' || status === 'end' ? this.open() : this.ready();
    this.connecting = opening.finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Waits for a connection iovalkey is already setting up (connecting, reconnecting). */
  private ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error): void => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.client.off('end', onEnd);
        if (error) reject(toStateError('connect', this.lastConnectionError ?? error, this.options.url));
        else resolve();
      };
      const onReady = (): void => done();
      const onEnd = (): void => done(new Error('connection closed'));
      const timer = setTimeout(() => done(new Error(`not connected within ${this.options.connectTimeoutMs} ms`)), this.options.connectTimeoutMs);
      this.client.once('ready', onReady);
      this.client.once('end', onEnd);
    });
  }

  private async open(): Promise<void> {
    try {
      this.lastNodeError = undefined;
      await this.withDeadline(this.client.connect());
    } catch (error) {
      const cause = errorMessage(this.lastConnectionError ?? error);
      throw toStateError('connect', new Error(this.lastNodeError ? `${cause}: ${this.lastNodeError}` : cause), this.options.url);
    }
    // iovalkey reports a failed SELECT as an 'error' event and stays on database 0: check.
    if (this.database !== 0) await this.checkDatabase();
  }

  private async checkDatabase(): Promise<void> {
    const info = await this.client.client('INFO');
    const selected = Number(/\bdb=(\d+)/.exec(String(info))?.[1] ?? 0);
    if (selected === this.database) return;
    this.client.disconnect();
    throw new FfError('CONFIG_INVALID', `Valkey at ${redactUrl(this.options.url)} has no database ${this.database} (state.valkeyUrl): ${errorMessage(this.lastConnectionError)}`);
  }

  /**
   * A cluster client whose nodes refuse it (a wrong password) can leave connect() pending with
   * nothing left to wake the process, which then exits mid-run (code 13) without its summary: a
   * connect gets a deadline of its own, and the client is dropped when it passes.
   */
  private async withDeadline(connecting: Promise<void>): Promise<void> {
    const limit = 2 * this.options.connectTimeoutMs;
    if ((await within(connecting, limit)) !== TIMED_OUT) return;
    this.client.disconnect();
    throw new Error(`not connected within ${limit} ms`);
  }

  /**
   * One timer per call (a batch), not per command as iovalkey's commandTimeout would set: a
   * call unanswered in time fails, and the connection, in an unknown state, is dropped.
   */
  private async withTimeout<T>(what: string, work: Promise<T>): Promise<T> {
    const limit = this.options.commandTimeoutMs ?? 10 * SECOND;
    const reply = await within(work, limit);
    if (reply !== TIMED_OUT) return reply;
    this.client.disconnect();
    throw new Error(`no reply to ${what} within ${limit} ms`);
  }
}

export function toStateError(what: string, error: unknown, url?: string): FfError {
  if (error instanceof FfError) return error;
  const where = url ? ` at ${redactUrl(url)}` : '';
  return new FfError('STATE_UNAVAILABLE', `Valkey ${what} failed${where}: ${errorMessage(error)}`, { cause: error, retryable: isTransient(error) });
}

/** Valkey's replies that retrying can cure; any other error reply (WRONGTYPE, a script error) is deterministic. */
const TRANSIENT_REPLY = /^(OOM|BUSY|LOADING|TRYAGAIN|CLUSTERDOWN|MOVED|ASK|MASTERDOWN|READONLY|NOREPLICAS)\b/;

function isTransient(error: unknown): boolean {
  if (!(error instanceof Error) || error.name !== 'ReplyError') return true; // connection errors, timeouts
  return TRANSIENT_REPLY.test(error.message);
}

/** Keeps passwords out of logs and errors. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function singleNodeClient(options: ValkeyConnectionOptions): Valkey {
  return new Valkey(options.url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (attempt) => (attempt > 3 ? null : 100 * attempt),
  });
}

/**
 * A cluster client from one seed URL. No auto-pipelining: it can put commands of two nodes in one
 * pipeline while the slot map changes, which fails them ("All keys in the pipeline should belong
 * to the same slots allocation group"); the known-users lookups group their keys per node
 * themselves. With TLS (rediss://) node addresses keep their host names, so certificates match
 * (ElastiCache and MemoryDB).
 */
function clusterClient(options: ValkeyConnectionOptions): Cluster {
  const url = new URL(options.url);
  const tls = url.protocol === 'rediss:';
  return new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: (attempt) => (attempt > 3 ? null : 100 * attempt),
    slotsRefreshTimeout: options.connectTimeoutMs,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    ...(tls ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) } : {}),
    redisOptions: {
      connectTimeout: options.connectTimeoutMs,
      maxRetriesPerRequest: 1,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(tls ? { tls: { servername: url.hostname } } : {}),
    },
  });
}

/** The database a `redis://host:port/N` URL selects; the config validated N already. */
function databaseOf(url: string): number {
  const path = new URL(url).pathname.replace(/^\//, '');
  return path === '' ? 0 : Number(path);
}

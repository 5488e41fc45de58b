import { FileCandidateSource } from '../candidates/file-source.js';
import type { SnowflakeClient, TableName } from '../candidates/snowflake/client.js';
import { SnowflakeCandidateSource } from '../candidates/snowflake/snowflake-source.js';
import type { CandidateSource } from '../candidates/types.js';
import type { Config } from '../config/schema.js';
import { chooseSink } from '../config/sink-choice.js';
import { HttpFlagChecker } from '../flags/http-checker.js';
import { loadFlagRules } from '../flags/load-rules.js';
import { ReloadingRulesChecker } from '../flags/reloading-checker.js';
import type { FlagSnapshot } from '../flags/snapshot.js';
import type { FlagChecker } from '../flags/types.js';
import { LazyS3ObjectStore } from '../inputs/lazy-s3-object-store.js';
import { DetectorEventBus } from '../observability/events.js';
import type { LagReader } from '../safety/consumer-lag.js';
import type { Logger } from '../logger.js';
import { LocalRateLimiter, type RateLimiter } from '../send/rate-limiter.js';
import { backlogGate } from '../send/backlog-gate.js';
import { AllGates, type SendGate } from '../send/send-gate.js';
import { StdoutSink } from '../sink/stdout-sink.js';
import type { MessageSink } from '../sink/types.js';
import { FileStateStore } from '../state/file/index.js';
import type { FeedStore } from '../feeds/live-state.js';
import { ValkeyFeedStore } from '../feeds/valkey-feed-store.js';
import { MemoryFeedStore } from '../feeds/memory-feed-store.js';
import type { StateStore } from '../state/types.js';
import { ValkeyStateStore } from '../state/valkey/index.js';
import { ValkeyRateLimiter } from '../state/valkey/rate-limiter.js';
import { queueIdentity } from '../sink/queue-identity.js';
import type { Writable } from 'node:stream';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { S3Client } from '@aws-sdk/client-s3';

/** Clients to use instead of the ones built from the environment (tests, embedding). */
export interface RuntimeClients {
  stdout?: Writable;
  snowflake?: SnowflakeClient;
  lag?: LagReader;
  sqs?: SQSClient;
  s3?: S3Client;
}

/**
 * The composition root: turns a validated Config into the real adapters. Valkey when
 * state.valkeyUrl (VALKEY_URL) is set, else the file store; SQS when sqs.queueUrl (SQS_QUEUE_URL)
 * is set, else stdout; --dry-run always writes to stdout and sends nothing.
 */
export class Runtime {
  readonly objectStore: LazyS3ObjectStore;
  readonly events = new DetectorEventBus();
  /** Compiled once: callers test it per candidate. */
  readonly idPattern: RegExp;
  private readonly closers: Array<() => Promise<void> | void> = [];
  private readonly stdout: Writable;
  /** Clients are opened once and shared by every run of a long-running process. */
  private readonly opened = new Map<string, Promise<unknown>>();
  private checkerLoaded = false;

  constructor(
    readonly config: Config,
    readonly logger: Logger,
    private readonly clients: RuntimeClients = {},
  ) {
    this.stdout = clients.stdout ?? process.stdout;
    this.idPattern = new RegExp(config.idPattern);
    this.objectStore = new LazyS3ObjectStore(clients.s3, config.s3.endpoint);
    this.closers.push(() => this.objectStore.destroy());
  }

  /** Opens the state store and checks that it answers (STATE_UNAVAILABLE otherwise). */
  openStore(): Promise<StateStore> {
    return this.once('store', () => this.createStore());
  }

  private async createStore(): Promise<StateStore> {
    const { state } = this.config;
    const store: StateStore = state.valkeyUrl
      ? new ValkeyStateStore({
          url: state.valkeyUrl,
          cluster: state.valkeyCluster,
          knownSetKey: state.knownSetKey,
          loadedKeyPrefix: state.loadedKeyPrefix,
          detectorKeyPrefix: state.detectorKeyPrefix,
          connectTimeoutMs: state.connectTimeoutMs,
        })
      : new FileStateStore(state.file);
    this.closers.push(() => store.close());
    await store.ping();
    return store;
  }

  /**
   * Where feeds keep the live state, pending users, re-run flag and shadow record: beside the
   * state in Valkey; in this process only with the file store or for a dry run (`watch --dry-run`).
   */
  openFeedStore(dryRun: boolean): Promise<FeedStore> {
    return this.once(`feed-store:${dryRun}`, async () => {
      const store = dryRun ? undefined : await this.openStore();
      return store instanceof ValkeyStateStore ? new ValkeyFeedStore(store.connection, this.config.state.detectorKeyPrefix) : new MemoryFeedStore();
    });
  }

  // The AWS and Snowflake SDKs are loaded only when used: together they add ~70 MB of RSS to
  // every process, which a dry run over a file never needs.
  openSink(dryRun: boolean): Promise<MessageSink> {
    return this.once(`sink:${dryRun}`, () => this.createSink(dryRun));
  }

  private async createSink(dryRun: boolean): Promise<MessageSink> {
    const { sqs } = this.config;
    const kind = chooseSink(this.config, dryRun);
    let sink: MessageSink;
    if (kind === 'sqs' && sqs.queueUrl) {
      const { SqsSink } = await import('../sink/sqs-sink.js');
      sink = new SqsSink({ queueUrl: sqs.queueUrl, region: sqs.region, endpoint: sqs.endpoint, maxAttempts: sqs.maxAttempts, requestTimeoutMs: sqs.requestTimeoutMs }, this.clients.sqs);
    } else {
      sink = new StdoutSink(this.stdout, kind === 'dry-run' ? 'stdout (dry run)' : 'stdout');
    }
    this.closers.push(() => sink.close());
    return sink;
  }

  /**
   * The rate limit for sends to `sink`: with Valkey state, one limit shared by every sender of
   * the queue (in Valkey); else this process's own. None for --dry-run: nothing to pace.
   */
  async createLimiter(dryRun: boolean, sink: MessageSink): Promise<RateLimiter | undefined> {
    if (dryRun) return undefined;
    const { enqueue, sqs, state } = this.config;
    const shared = state.valkeyUrl !== null && sqs.queueUrl !== null && chooseSink(this.config, false) === 'sqs';
    const store = shared ? await this.openStore() : undefined;
    if (store instanceof ValkeyStateStore && sqs.queueUrl) {
      const queue = queueIdentity(sqs.queueUrl, sqs.region);
      return new ValkeyRateLimiter(store.connection, { prefix: state.detectorKeyPrefix, queue, ratePerSecond: enqueue.rateLimit, maxBatch: sink.maxBatchSize });
    }
    return new LocalRateLimiter(enqueue.rateLimit, undefined, sink.maxBatchSize);
  }

  /**
   * What every send to `sink` waits for (runs, backfills, feeds): the queue's backlog below
   * sqs.maxBacklog (when the sink can read it) and, with safety.consumerLag on, the worker's
   * consumer groups caught up. None for --dry-run: nothing is sent.
   */
  async createSendGate(dryRun: boolean, sink: MessageSink): Promise<SendGate | undefined> {
    if (dryRun) return undefined;
    const { sqs, safety } = this.config;
    const maxPauseMs = safety.maxPauseMinutes * 60_000;
    const backlog = sqs.maxBacklog > 0 && sink.backlog ? backlogGate(sink.backlog.bind(sink), { maxBacklog: sqs.maxBacklog, recheckMs: sqs.backlogCheckMs, maxPauseMs }, this.logger, this.events) : undefined;
    const lag = safety.consumerLag;
    if (!lag.enabled) return backlog;
    const { consumerLagGate } = await import('../safety/lag-gate.js');
    const lagGate = consumerLagGate(await this.openLagReader(), { groups: lag.groups, limits: lag, recheckMs: lag.recheckMs, maxPauseMs }, this.logger, this.events);
    return AllGates.of([backlog, lagGate]);
  }

  /**
   * The flag checker, with the rules read (first call) or re-read if they changed since (later
   * calls, in a long-running process; a bad new version keeps the previous rules).
   */
  async openChecker(): Promise<FlagChecker> {
    const checker = await this.once('checker', () => this.createChecker());
    if (checker instanceof ReloadingRulesChecker) await checker.refresh();
    this.checkerLoaded = true;
    return checker;
  }

  /** Reads consumer lag for the safety gate (kafkajs, loaded only when the gate is on). */
  openLagReader(): Promise<LagReader> {
    return this.once('lag', async () => {
      const { KafkaLagReader } = await import('../safety/consumer-lag.js');
      const gate = this.config.safety.consumerLag;
      const reader = this.clients.lag ?? new KafkaLagReader(gate.brokers, gate.timeoutMs, this.config.kafka);
      this.closers.push(() => reader.close());
      return reader;
    });
  }

  /** True once the state store was opened (and answered). */
  get storeOpened(): boolean {
    return this.opened.has('store');
  }

  /** True once the flag rules were loaded (or the checker needs none). */
  get checkerReady(): boolean {
    return this.checkerLoaded;
  }

  private async createChecker(): Promise<FlagChecker> {
    const { flags } = this.config;
    if (flags.checker === 'http' && flags.http) {
      const checker = new HttpFlagChecker({ flag: this.config.flag, ...flags.http }, this.logger);
      this.logger.info({ checker: checker.description }, 'flag checks go to the flag service');
      return checker;
    }
    if (flags.checker === 'openfeature' && flags.openfeature) {
      // The provider is code the operator installed: loaded only when configured (src/flags/openfeature-provider.ts).
      const { openOpenFeatureChecker } = await import('../flags/openfeature-provider.js');
      const opened = await openOpenFeatureChecker(flags.openfeature, this.config.flag, this.logger);
      this.closers.push(() => opened.close());
      this.logger.info({ checker: opened.checker.description }, 'flag checks go through the OpenFeature provider');
      return opened.checker;
    }
    const load = async (): Promise<FlagSnapshot> => {
      const snapshot = await loadFlagRules(
        { location: flags.rules, expectedFlag: this.config.flag, idPattern: this.idPattern, logger: this.logger, allowInvalidListEntries: flags.allowInvalidListEntries },
        { objectStore: this.objectStore },
      );
      this.logger.info({ rules: flags.rules }, snapshot.describe());
      return snapshot;
    };
    return new ReloadingRulesChecker(load, { objectStore: this.objectStore }, this.logger);
  }

  async openCandidateSource(): Promise<CandidateSource> {
    const { candidates } = this.config;
    if (candidates.source === 'snowflake') return this.openSnowflakeSource();
    return new FileCandidateSource(
      { location: candidates.path, column: candidates.column, batchSize: candidates.batchSize },
      { objectStore: this.objectStore },
    );
  }

  private async openSnowflakeSource(): Promise<CandidateSource> {
    const { batchSize, snowflake } = this.config.candidates;
    const client = await this.once('snowflake', async () => {
      const { SdkSnowflakeClient } = await import('../candidates/snowflake/sdk-client.js');
      const created = this.clients.snowflake ?? new SdkSnowflakeClient({ ...snowflake, account: snowflake.account ?? '', username: snowflake.username ?? '' }, this.logger);
      this.closers.push(() => created.close());
      return created;
    });
    const gate = snowflake.schemaGate;
    return new SnowflakeCandidateSource(
      client,
      {
        query: snowflake.query,
        binds: { activeDays: snowflake.activeDays, ...snowflake.binds },
        idColumn: snowflake.idColumn,
        schemaGate: gate ? { table: qualifyTable(gate.table, snowflake.database, snowflake.schema), columns: gate.columns } : null,
        batchSize,
      },
      this.logger,
      this.events,
    );
  }

  /** Opens a client once; a failed open is forgotten, so the next call tries again. */
  private once<T>(key: string, open: () => Promise<T>): Promise<T> {
    let opening = this.opened.get(key) as Promise<T> | undefined;
    if (!opening) {
      opening = open();
      this.opened.set(key, opening);
      opening.catch(() => this.opened.delete(key));
    }
    return opening;
  }

  /** Closes every client opened, each on its own so one failure does not leak the others. */
  async close(): Promise<void> {
    this.opened.clear();
    for (const close of this.closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        this.logger.warn({ err: error }, 'error while closing a client');
      }
    }
  }
}

/** `TABLE`, `SCHEMA.TABLE` or `DB.SCHEMA.TABLE`, completed with the connection's database and schema. */
function qualifyTable(name: string, database: string, schema: string): TableName {
  const parts = name.split('.');
  const table = parts.pop() as string;
  return { table, schema: parts.pop() ?? schema, database: parts.pop() ?? database };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Valkey } from 'iovalkey';

// One scenario's private slice of the shared servers — its keys, queue and files — and how its
// outcome is measured against the invariants (README "Reliability").

export const LAUNCHER = fileURLToPath(new URL('../../bin/ff-detector', import.meta.url));

export interface Services {
  valkeyUrl: string;
  awsEndpoint: string;
  snowflakeUrl: string;
  kafkaBrokers: string[];
}

export function servicesFromEnv(): Services {
  const need = (name: string): string => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set: run the campaign with \`npm run faults\`, which starts the services`);
    return value;
  };
  return { valkeyUrl: need('FFD_TEST_VALKEY_URL'), awsEndpoint: need('FFD_TEST_AWS_ENDPOINT'), snowflakeUrl: need('FFD_TEST_SNOWFLAKE_URL'), kafkaBrokers: need('FFD_TEST_KAFKA_BROKERS').split(',') };
}

export interface ScenarioResult {
  name: string;
  /** Enabled, unloaded candidates (or a backfill's users): who must be enqueued. */
  expected: number;
  /** Distinct users with at least one message. */
  enqueued: number;
  /** Expected users never enqueued, after the follow-up run. */
  lost: number;
  /** Users in the known set without an accepted message (and not loaded). */
  markedUnsent: number;
  /** Messages beyond one per user. */
  duplicates: number;
  /** The bound duplicates must stay within: one batch per request in flight at each fault. */
  duplicateBound: number;
  ok: boolean;
  note: string;
}

export const AWS_ENV = { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };

export class World {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'ffd-faults-'));
  readonly knownKey: string;
  readonly loadedPrefix: string;
  readonly detectorPrefix: string;
  readonly candidates: string[];
  /** Enabled and not loaded: who the runs must enqueue. */
  readonly expected: Set<string>;
  readonly loaded: Set<string>;
  readonly candidatesFile: string;
  readonly rulesFile: string;
  queueUrl = '';

  /** `count` candidates; every `enabledEvery`-th enabled, every `loadedEvery`-th of those loaded already (0: none). */
  constructor(
    readonly services: Services,
    readonly name: string,
    count: number,
    enabledEvery = 2,
    loadedEvery = 10,
  ) {
    const prefix = `faults:${name}:${Date.now()}`;
    this.knownKey = `${prefix}:known`;
    this.loadedPrefix = `${prefix}:loaded:`;
    this.detectorPrefix = `${prefix}:detector:`;
    this.candidates = Array.from({ length: count }, (_, i) => `user-${String(i).padStart(8, '0')}`);
    const enabled = this.candidates.filter((_, i) => i % enabledEvery === 0);
    this.loaded = new Set(loadedEvery > 0 ? enabled.filter((_, i) => i % loadedEvery === 3) : []);
    this.expected = new Set(enabled.filter((id) => !this.loaded.has(id)));
    this.candidatesFile = path.join(this.dir, 'candidates.txt');
    writeFileSync(this.candidatesFile, `${this.candidates.join('\n')}\n`);
    writeFileSync(path.join(this.dir, 'enabled.txt'), `${enabled.join('\n')}\n`);
    this.rulesFile = path.join(this.dir, 'rules.yaml');
    writeFileSync(this.rulesFile, 'flag: consumer_graph_ingestion\nenabled: true\nusers: enabled.txt\n');
  }

  /** Creates the queue and marks the loaded users as the worker would. */
  async prepare(): Promise<void> {
    const sqs = this.sqs();
    try {
      this.queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `faults-${this.name}-${Date.now()}` }))).QueueUrl as string;
    } finally {
      sqs.destroy();
    }
    const valkey = new Valkey(this.services.valkeyUrl);
    try {
      const pipeline = valkey.pipeline();
      for (const id of this.loaded) pipeline.set(`${this.loadedPrefix}${id}`, '1', 'EX', 3600);
      await pipeline.exec();
    } finally {
      valkey.disconnect();
    }
  }

  /**
   * A config file for this world: `extra` sections are appended (YAML), `state` lines go into the
   * state section, and `candidates` replaces the candidate file (a Snowflake source).
   */
  config(options: { extra?: string; state?: string; candidates?: string; name?: string } = {}): string {
    const file = path.join(this.dir, options.name ?? 'config.yaml');
    const state = `state:\n  knownSetKey: ${this.knownKey}\n  loadedKeyPrefix: "${this.loadedPrefix}"\n  detectorKeyPrefix: "${this.detectorPrefix}"\n  connectTimeoutMs: 2000\n${options.state ?? ''}`;
    const sections = [options.candidates ?? `candidates:\n  path: ${this.candidatesFile}\n`, `flags:\n  rules: ${this.rulesFile}\n`, state, options.extra ?? ''];
    writeFileSync(file, sections.join(''));
    return file;
  }

  /** The environment of a detector process; valkeyUrl and sqsEndpoint may be proxies. */
  env(through: { valkeyUrl?: string; sqsEndpoint?: string } = {}): Record<string, string> {
    return {
      PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      HOME: process.env.HOME ?? '',
      ...AWS_ENV,
      AWS_ENDPOINT_URL_SQS: through.sqsEndpoint ?? this.services.awsEndpoint,
      AWS_ENDPOINT_URL_S3: this.services.awsEndpoint,
      VALKEY_URL: through.valkeyUrl ?? this.services.valkeyUrl,
      SQS_QUEUE_URL: this.queueUrl,
      LOG_LEVEL: 'warn',
    };
  }

  /** Counts every message in the queue (receiving and deleting them) and reads the known set. */
  async measure(name: string, duplicateBound: number, note = ''): Promise<ScenarioResult> {
    const counts = await this.drain();
    const valkey = new Valkey(this.services.valkeyUrl);
    let known: string[];
    try {
      known = await valkey.smembers(this.knownKey);
    } finally {
      valkey.disconnect();
    }
    const sent = new Set(counts.keys());
    const messages = [...counts.values()].reduce((a, b) => a + b, 0);
    const lost = [...this.expected].filter((id) => !sent.has(id)).length;
    const markedUnsent = known.filter((id) => !sent.has(id) && !this.loaded.has(id)).length;
    const duplicates = messages - sent.size;
    const ok = lost === 0 && markedUnsent === 0 && duplicates <= duplicateBound;
    return { name, expected: this.expected.size, enqueued: sent.size, lost, markedUnsent, duplicates, duplicateBound, ok, note };
  }

  sqs(endpoint = this.services.awsEndpoint): SQSClient {
    return new SQSClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  }

  private async drain(): Promise<Map<string, number>> {
    const sqs = this.sqs();
    const counts = new Map<string, number>();
    try {
      for (;;) {
        const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: this.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 600 }));
        if (Messages.length === 0) return counts;
        for (const message of Messages) {
          const userId = (JSON.parse(message.Body ?? '{}') as { user_id?: string }).user_id ?? '?';
          counts.set(userId, (counts.get(userId) ?? 0) + 1);
        }
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })) }));
      }
    } finally {
      sqs.destroy();
    }
  }
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  summary: { status?: string; enqueued?: number; error?: string | null };
}

/** Runs `ff-detector <args>`; `whileRunning` may act on the process (kill it). */
export async function runCli(args: string[], env: Record<string, string>, whileRunning?: (child: ChildProcess) => void): Promise<CliRun> {
  const child = spawn(LAUNCHER, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  whileRunning?.(child);
  const [code, signal] = await exited;
  const last = stdout.trim().split('\n').at(-1) ?? '';
  let summary: CliRun['summary'] = {};
  try {
    summary = last.startsWith('{') ? (JSON.parse(last) as CliRun['summary']) : {};
  } catch {
    summary = {};
  }
  return { code, signal, stderr, summary };
}

/** The campaign's seeded PRNG (the proxy's, so one seed drives both). */
export { mulberry32 as prng } from './sqs-fault-proxy.js';

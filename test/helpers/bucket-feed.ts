import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import YAML from 'yaml';
import type { BucketFeedDetails } from '../../src/feeds/bucket-feed.js';
import type { MappingConfig } from '../../src/investigate/mapping.js';
import type { FeedStatus } from '../../strategies/feed-runner.js';
import { BIN } from './cli.js';
import { DaemonProcess } from './daemon.js';
import { tempDir } from './files.js';
import { awsEnv, s3Client, uniqueName, valkeyUrl } from './services.js';
import { FLAG } from './topic-feed.js';

// Strategy C (the flag bucket feed, issue 16) against the real S3 server (fauxqs), Valkey and SQS:
// a test's private bucket, Valkey keys and queues, the mapping as `investigate s3` prints it, and
// `watch s3` / `run` as child processes.

export { FLAG };

/** What watch's summary line and /status show of the bucket feed (s3-bucket.ts adds the notification counts). */
export type BucketDetails = Omit<BucketFeedDetails, 'notifications'> & {
  notifications: { received: number; relevant: number; malformed: number };
  notificationQueue: string | null;
  store: string | null;
};

export interface BucketStatus {
  role: string;
  currentRun: { trigger: string } | null;
  feeds: Array<FeedStatus & { details: BucketDetails | null }>;
}

export interface BucketConfigOptions {
  mapping: MappingConfig;
  /** The rules file's flag: on, no users, 0 % unless said otherwise. */
  rules?: Record<string, unknown>;
  prefix?: string;
  shadow?: boolean;
  intervalSeconds?: number;
  notificationQueueUrl?: string;
  debounceSeconds?: number;
  maxForgetFloor?: number;
  maxForgetFraction?: number;
  rateLimit?: number;
  leaderTtlMs?: number;
}

export type WatchLine = { type: string; [key: string]: unknown };

export interface WatchResult {
  code: number | null;
  lines: WatchLine[];
  stderr: string;
  summary: WatchLine & { details: BucketDetails };
  /** `/usr/bin/time -v`'s maximum resident set size of the process, when measured. */
  maxRssKb: number | null;
}

/** One test's slice of the shared servers: its bucket, Valkey keys and files. */
export class BucketFixture {
  readonly prefix = uniqueName('bfeed');
  readonly bucket = uniqueName('ffd-bucket');
  readonly dir = tempDir('ffd-bucket-feed-');
  readonly knownKey = `${this.prefix}:known`;
  readonly loadedPrefix = `${this.prefix}:loaded:`;
  readonly detectorPrefix = `${this.prefix}:detector:`;

  /** The feed's Valkey keys for the flag (live-state.ts: `<prefix>{feed:<flag>}:<part>`). */
  feedKey(part: 'state' | 'users' | 'pending' | 'objects' | 'shadow'): string {
    return `${this.detectorPrefix}{feed:${FLAG}}:${part}`;
  }

  config(options: BucketConfigOptions): string {
    const rules = path.join(this.dir, `rules-${uniqueName()}.yaml`);
    writeFileSync(rules, YAML.stringify({ flag: FLAG, enabled: true, users: [], percentage: 0, ...options.rules }));
    const candidates = path.join(this.dir, 'candidates.txt');
    writeFileSync(candidates, '');
    return YAML.stringify({
      flag: FLAG,
      candidates: { path: candidates },
      flags: { rules },
      state: {
        knownSetKey: this.knownKey,
        loadedKeyPrefix: this.loadedPrefix,
        detectorKeyPrefix: this.detectorPrefix,
        ...(options.maxForgetFloor === undefined ? {} : { maxForgetFloor: options.maxForgetFloor }),
        ...(options.maxForgetFraction === undefined ? {} : { maxForgetFraction: options.maxForgetFraction }),
      },
      enqueue: { rateLimit: options.rateLimit ?? 1000, budget: 0 },
      daemon: { schedule: '0 0 1 1 *', leaderTtlMs: options.leaderTtlMs ?? 2000 },
      sqs: { maxBacklog: 0, requestTimeoutMs: 5000 },
      strategies: {
        s3Bucket: {
          enabled: true,
          bucket: this.bucket,
          prefix: options.prefix ?? '',
          intervalSeconds: options.intervalSeconds ?? 60,
          shadow: options.shadow ?? false,
          // The run the first change owes is reported, not started, unless a test wants it.
          debounceSeconds: options.debounceSeconds ?? 3600,
          mapping: options.mapping,
          ...(options.notificationQueueUrl ? { notificationQueueUrl: options.notificationQueueUrl } : {}),
        },
      },
    });
  }

  writeConfig(options: BucketConfigOptions): string {
    const file = path.join(this.dir, `config-${uniqueName()}.yaml`);
    writeFileSync(file, this.config(options));
    return file;
  }

  /**
   * `ff-detector watch s3 --once` (and `extra`, e.g. --dry-run) as a user runs it: its NDJSON
   * lines parsed. `measureRss`: run under `/usr/bin/time -v` for the peak RSS (the CLI execs node,
   * so it is the node process's).
   */
  async watch(options: BucketConfigOptions, { queueUrl, extra = [], measureRss = false }: { queueUrl?: string; extra?: string[]; measureRss?: boolean } = {}): Promise<WatchResult> {
    const config = this.writeConfig(options);
    const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '', ...awsEnv(), VALKEY_URL: valkeyUrl(), ...(queueUrl ? { SQS_QUEUE_URL: queueUrl } : {}) };
    const args = ['watch', 's3', '--once', ...extra, '--config', config];
    const child = measureRss ? spawn('/usr/bin/time', ['-v', BIN, ...args], { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(BIN, args, { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    const lines = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as WatchLine);
    const summary = lines.at(-1);
    if (summary?.type !== 'summary') throw new Error(`watch s3 printed no summary (exit ${String(code)}):\n${stdout}\n${stderr}`);
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
    return { code, lines, stderr, summary: summary as WatchResult['summary'], maxRssKb: rss?.[1] ? Number(rss[1]) : null };
  }

  startDaemon(options: BucketConfigOptions, queueUrl: string): Promise<DaemonProcess> {
    return DaemonProcess.start(this.config(options), { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl });
  }
}

/** The users a watch run enqueued (or, with --dry-run and in shadow mode, would have). */
export function sentBy(lines: WatchLine[]): string[] {
  return lines
    .filter((line) => line.type === 'enqueued' || line.type === 'would-enqueue')
    .map((line) => String(line.user))
    .sort();
}

export const changesIn = (lines: WatchLine[]): WatchLine[] => lines.filter((line) => line.type === 'change');

/** The mapping `ff-detector investigate s3 --bucket <bucket> --format json` prints, as a user copies it. */
export async function investigatedMapping(bucket: string, prefix?: string): Promise<MappingConfig & { objects: NonNullable<MappingConfig['objects']> }> {
  const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, ...awsEnv() };
  const args = ['investigate', 's3', '--bucket', bucket, ...(prefix ? ['--prefix', prefix] : []), '--format', 'json'];
  const { stdout } = await promisify(execFile)(BIN, args, { env, cwd: tempDir(), maxBuffer: 16 * 1024 * 1024 });
  const report = JSON.parse(stdout) as { mapping: MappingConfig | null; verdict: { result: string } };
  if (!report.mapping?.objects) throw new Error(`investigate s3 found no mapping with objects for ${bucket}: ${stdout.slice(0, 2000)}`);
  return report.mapping as MappingConfig & { objects: NonNullable<MappingConfig['objects']> };
}

export async function deleteObject(bucket: string, key: string, client: S3Client = s3Client()): Promise<void> {
  try {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } finally {
    client.destroy();
  }
}

/** The users `${prefix}-0000`… */
export function users(prefix: string, n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(from + i).padStart(4, '0')}`);
}

/** A per-flag CSV export: a header, then one user a line. */
export function csv(ids: readonly string[]): string {
  return `user_id,enabled_at\n${ids.map((id) => `${id},2026-11-29`).join('\n')}\n`;
}

/** An S3 event notification (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html). */
export function s3Event(bucket: string, key: string, etag: string): string {
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: new Date().toISOString(),
        eventName: 'ObjectCreated:Put',
        s3: { s3SchemaVersion: '1.0', configurationId: 'ff-detector', bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` }, object: { key: encodeURIComponent(key).replace(/%2F/g, '/'), size: 1, eTag: etag.replace(/"/g, ''), sequencer: '0065' } },
      },
    ],
  });
}

import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createGzip } from 'node:zlib';
import { CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, DeleteQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Valkey } from 'iovalkey';
import { deleteKeys, firstArrivals, percentile, receiveAll } from './feed-helpers.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logger.js';
import { Runtime } from '../src/runtime/runtime.js';
import { FeedRunner } from '../strategies/feed-runner.js';
import { feedStrategy, S3_BUCKET } from '../strategies/index.js';
import { benchDir, FLAG } from './fixtures.js';

/**
 * Strategy C, the flag bucket's feed (strategies/feed-runner.ts over src/feeds/bucket-feed.ts),
 * against the local S3 and SQS server (fauxqs) and Valkey:
 * (a) latency: the list object (linkedByKey, one ID per line) rewritten REWRITES times, each time
 *     with one user more; the wall clock just before PutObject → that user's message accepted by
 *     SQS (the server's SentTimestamp, same host and clock), with a leading non-shadow FeedRunner
 *     in this process. Once listing every second (no notifications), once listing every 300 s
 *     with a notification queue that this bench feeds itself an S3-event message right after each
 *     put: fauxqs does not implement bucket notification configuration (its README: "Bucket
 *     configuration (… notifications …) … not supported"), so it never emits them.
 * (b) parse rate: a gzipped list of UUID-shaped IDs (≈ 200 MB at 10M) uploaded as the object, read
 *     by the real CLI in a child process (`ff-detector watch s3 --once`, shadow, staged in Valkey,
 *     not --dry-run): the feed's cycle start (its lastListing.at) → the snapshot applied (its
 *     change line on stdout), its users/s and MB/s (compressed and decompressed), the child's
 *     peak RSS (VmHWM) then, beside `zcat file | wc -l` on the same file.
 * `node dist/bench/bucket.js` runs this section alone.
 */
export interface BucketFigures {
  rewrites: number;
  /** intervalSeconds 1, no notifications: put → SentTimestamp. */
  intervalP50Ms: number;
  intervalP99Ms: number;
  intervalMaxMs: number;
  /** The same, to when the feed applied the snapshot (live state and pending set committed). */
  intervalAppliedP50Ms: number;
  intervalAppliedP99Ms: number;
  /** intervalSeconds 300, an S3 event on the notification queue after each put. */
  notifiedP50Ms: number;
  notifiedP99Ms: number;
  notifiedMaxMs: number;
  notifiedAppliedP50Ms: number;
  notifiedAppliedP99Ms: number;
  /** Rewrites not applied within WAKE_TIMEOUT_MS of their notification (picked up by the next one). */
  notifiedLate: number;
  duplicates: number;
  parseUsers: number;
  parseGzipBytes: number;
  parseRawBytes: number;
  generateSeconds: number;
  uploadSeconds: number;
  /** The feed's cycle start → the snapshot applied. */
  parseSeconds: number;
  /** The child's start → the snapshot applied (adds start-up, Valkey connection, first listing). */
  parseWallSeconds: number;
  parsePeakRssMb: number;
  /**
   * The snapshot's commit (one Lua script: SDIFFSTORE, SUNIONSTORE over the whole list), as
   * Valkey's SLOWLOG timed it: Valkey serves no other client meanwhile. -1 when not logged.
   */
  parseCommitMs: number;
  zcatSeconds: number;
}

const REWRITES = 20;
const INTERVAL_SECONDS = 1;
const NOTIFIED_INTERVAL_SECONDS = 300;
const WAKE_TIMEOUT_MS = 15_000;
/**
 * Users of the parse object: UUIDs (as many flag systems key users), distinct and pseudo-random,
 * so the list compresses as a real one does (≈ 1.9:1): 10M of them are ≈ 200 MB gzipped, 370 MB
 * decompressed — the 200 MB list. FFD_BENCH_BUCKET_USERS overrides.
 */
const PARSE_USERS = Number(process.env.FFD_BENCH_BUCKET_USERS ?? 10_000_000);
const PART_BYTES = 8 * 1024 * 1024; // fauxqs takes request bodies up to 11 MiB
const KEY = `exports/${FLAG}.csv`;
const PARSE_KEY = `exports/${FLAG}.csv.gz`;
const LAUNCHER = fileURLToPath(new URL('../../bin/ff-detector', import.meta.url));
/** The i-th user: a UUID-shaped string from a 32-bit mix of i (distinct: the mix is a bijection, and i fills the last group). */
const userId = (i: number): string => {
  const hex = (value: number): string => (value >>> 0).toString(16).padStart(8, '0');
  const a = mix(i ^ 0x9e3779b9);
  const b = mix(a ^ 0x85ebca6b);
  const c = mix(b ^ 0xc2b2ae35);
  return `${hex(a)}-${hex(b).slice(0, 4)}-4${hex(b).slice(5, 8)}-a${hex(c).slice(1, 4)}-${hex(c).slice(4, 8)}${hex(i)}`;
};

/** murmur3's 32-bit finaliser: a bijection on 32-bit integers. */
function mix(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

interface Services {
  valkeyUrl: string;
  awsEndpoint: string;
}

interface Context {
  services: Services;
  run: string;
  dir: string;
  rulesFile: string;
  s3: S3Client;
  sqs: SQSClient;
  valkey: Valkey;
  buckets: string[];
  queues: string[];
}

/** The environment of this process's SDK clients (region, credentials) and of the `watch s3` child (whose config takes the endpoints from it). */
const AWS_ENV = (endpoint: string): Record<string, string> => ({
  AWS_ENDPOINT_URL_S3: endpoint,
  AWS_ENDPOINT_URL_SQS: endpoint,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
});

export async function benchBucket(services: Services): Promise<BucketFigures> {
  const dir = benchDir();
  const run = `bench-bucket-${Date.now()}`;
  const rulesFile = path.join(dir, 'rules.yaml');
  writeFileSync(rulesFile, `flag: ${FLAG}\nenabled: true\n`);
  const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
  const s3 = new S3Client({ region: 'us-east-1', endpoint: services.awsEndpoint, forcePathStyle: true, credentials });
  const sqs = new SQSClient({ region: 'us-east-1', endpoint: services.awsEndpoint, credentials });
  const valkey = new Valkey(services.valkeyUrl);
  const context: Context = { services, run, dir, rulesFile, s3, sqs, valkey, buckets: [], queues: [] };
  const saved = Object.fromEntries(Object.keys(AWS_ENV('')).map((name) => [name, process.env[name]]));
  Object.assign(process.env, AWS_ENV(services.awsEndpoint));
  try {
    const interval = await measureLatency(context, 'interval');
    const notified = await measureLatency(context, 'notified');
    const parse = await measureParse(context);
    return {
      rewrites: REWRITES,
      intervalP50Ms: percentile(interval.sent, 50),
      intervalP99Ms: percentile(interval.sent, 99),
      intervalMaxMs: Math.max(...interval.sent),
      intervalAppliedP50Ms: percentile(interval.applied, 50),
      intervalAppliedP99Ms: percentile(interval.applied, 99),
      notifiedP50Ms: percentile(notified.sent, 50),
      notifiedP99Ms: percentile(notified.sent, 99),
      notifiedMaxMs: Math.max(...notified.sent),
      notifiedAppliedP50Ms: percentile(notified.applied, 50),
      notifiedAppliedP99Ms: percentile(notified.applied, 99),
      notifiedLate: notified.late,
      duplicates: interval.duplicates + notified.duplicates,
      ...parse,
    };
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
    for (const bucket of context.buckets) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: KEY })).catch(() => undefined);
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: PARSE_KEY })).catch(() => undefined);
      await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
    }
    s3.destroy();
    for (const queueUrl of context.queues) await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    sqs.destroy();
    await deleteKeys(valkey, `${run}:*`);
    await valkey.quit();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function createBucket(context: Context, name: string): Promise<string> {
  const bucket = `${context.run}-${name}`;
  await context.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  context.buckets.push(bucket);
  return bucket;
}

async function createQueue(context: Context, name: string): Promise<string> {
  const queueUrl = (await context.sqs.send(new CreateQueueCommand({ QueueName: `${context.run}-${name}` }))).QueueUrl as string;
  context.queues.push(queueUrl);
  return queueUrl;
}

const mapping = (key: string) => ({ kind: 'snapshot', flagNamePath: null, usersPath: '$.user_id', objects: { keyPattern: key, newest: false, linkedByKey: true } });
const stateKeys = (run: string, name: string) => ({ knownSetKey: `${run}:${name}:known`, loadedKeyPrefix: `${run}:${name}:loaded:`, detectorKeyPrefix: `${run}:${name}:detector:` });

/** The list object: a `user_id` header, one ID per line. */
const listBody = (users: readonly string[]): string => `user_id\n${users.join('\n')}\n`;

/** An S3 event notification (as S3 delivers it to SQS) about one object written. */
function s3Event(bucket: string, key: string, size: number, etag: string): string {
  const at = new Date();
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: at.toISOString(),
        eventName: 'ObjectCreated:Put',
        s3: { s3SchemaVersion: '1.0', configurationId: 'bench', bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` }, object: { key: encodeURIComponent(key).replace(/%2F/g, '/'), size, eTag: etag.replace(/"/g, ''), sequencer: at.getTime().toString(16).toUpperCase() } },
      },
    ],
  });
}

/**
 * REWRITES rewrites of the list object, each adding one user, waiting for that user's send before
 * the next; each put after a delay spread evenly over the listing interval (golden-ratio steps),
 * so the put's phase against the feed's cycle is not always the same.
 */
async function measureLatency(context: Context, mode: 'interval' | 'notified'): Promise<{ sent: number[]; applied: number[]; late: number; duplicates: number }> {
  const { run, s3, sqs } = context;
  const bucket = await createBucket(context, mode);
  const queueUrl = await createQueue(context, `${mode}-out`);
  // As fauxqs hands it out (on sqs.<region>.localhost, which does not resolve here): the feed's
  // reader sends to sqs.endpoint instead, as the sink does.
  const notificationQueueUrl = mode === 'notified' ? await createQueue(context, `${mode}-events`) : null;
  const config = loadConfig({
    env: {},
    overrides: {
      flag: FLAG,
      flags: { rules: context.rulesFile },
      state: { valkeyUrl: context.services.valkeyUrl, ...stateKeys(run, mode) },
      sqs: { queueUrl, endpoint: context.services.awsEndpoint },
      s3: { endpoint: context.services.awsEndpoint },
      enqueue: { rateLimit: 100_000 },
      strategies: {
        s3Bucket: { enabled: true, bucket, prefix: 'exports/', intervalSeconds: mode === 'interval' ? INTERVAL_SECONDS : NOTIFIED_INTERVAL_SECONDS, shadow: false, notificationQueueUrl, mapping: mapping(KEY) },
      },
    },
  });
  const runtime = new Runtime(config, createLogger('warn'), { sqs, s3 });
  const drainedAt = new Map<string, number>();
  const appliedAt: number[] = [];
  let wake: () => void = () => undefined;
  const runner = new FeedRunner(runtime, feedStrategy(S3_BUCKET, 'bench'), await runtime.openFeedStore(false), {
    shadow: false,
    dryRun: false,
    // A change the users cannot express owes a full run: reported, never started here.
    debounceMs: 3_600_000,
    onChange: () => void appliedAt.push(Date.now()),
    onDrained: (pass) => {
      const now = Date.now();
      for (const user of pass.sent) if (!drainedAt.has(user)) drainedAt.set(user, now);
      wake();
    },
  });
  const until = async (done: () => boolean, timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return true;
  };
  const put = async (users: readonly string[]): Promise<void> => {
    const body = listBody(users);
    const { ETag = '' } = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: KEY, Body: body }));
    if (notificationQueueUrl) await sqs.send(new SendMessageCommand({ QueueUrl: notificationQueueUrl, MessageBody: s3Event(bucket, KEY, Buffer.byteLength(body), ETag) }));
  };
  const warm = `${run}-${mode}-warmup`;
  const users = Array.from({ length: REWRITES }, (_, i) => `${run}-${mode}-${i}`);
  const putAt = new Map<string, number>();
  const appliedMs: number[] = [];
  let late = 0;
  const stopper = new AbortController();
  try {
    // Warm-up: the first cycle (at start) reads the object, the drain's clients open.
    await put([warm]);
    runner.start(stopper.signal);
    runner.setLeading(true);
    if (!(await until(() => drainedAt.has(warm), 60_000))) throw new Error(`bucket bench (${mode}): the warm-up user was not sent within 60 s`);
    const spread = mode === 'interval' ? INTERVAL_SECONDS * 1000 : 500;
    for (const [i, user] of users.entries()) {
      await new Promise((resolve) => setTimeout(resolve, (((i + 1) * 0.618034) % 1) * spread));
      const applied = appliedAt.length;
      const at = Date.now();
      putAt.set(user, at);
      await put([warm, ...users.slice(0, i + 1)]);
      const timeout = mode === 'interval' ? 30_000 : WAKE_TIMEOUT_MS;
      if (!(await until(() => drainedAt.has(user), timeout))) {
        if (mode === 'interval') throw new Error(`bucket bench (interval): ${user} not sent within 30 s`);
        late += 1;
        process.stderr.write(`bucket bench: rewrite ${i + 1} not applied within ${WAKE_TIMEOUT_MS / 1000} s of its notification\n`);
      }
      const first = appliedAt.slice(applied).find((time) => time >= at);
      if (first !== undefined) appliedMs.push(first - at);
    }
    if (!(await until(() => users.every((user) => drainedAt.has(user)), (NOTIFIED_INTERVAL_SECONDS + 30) * 1000))) throw new Error(`bucket bench (${mode}): not every user was sent`);
  } finally {
    stopper.abort();
    await runner.stop();
    await runtime.close();
  }
  const { sentAt, duplicates } = firstArrivals(await receiveAll(sqs, queueUrl, REWRITES + 1), users, `bucket bench (${mode})`);
  return { sent: users.map((user) => (sentAt.get(user) as number) - (putAt.get(user) as number)), applied: appliedMs, late, duplicates };
}

/** Writes `users` sequential IDs under a `user_id` header, gzipped (level 6, gzip's default). */
async function writeGzipList(file: string, users: number): Promise<{ rawBytes: number }> {
  const gzip = createGzip({ level: 6 });
  const out = createWriteStream(file);
  const piped = new Promise<void>((resolve, reject) => {
    gzip.pipe(out).on('finish', resolve).on('error', reject);
    gzip.on('error', reject);
  });
  let rawBytes = 0;
  const write = async (text: string): Promise<void> => {
    rawBytes += text.length;
    if (!gzip.write(text)) await once(gzip, 'drain');
  };
  await write('user_id\n');
  const chunk = 100_000;
  for (let start = 1; start <= users; start += chunk) {
    let text = '';
    for (let i = start; i < Math.min(users + 1, start + chunk); i++) text += `${userId(i)}\n`;
    await write(text);
  }
  gzip.end();
  await piped;
  return { rawBytes };
}

/** The file as one object: multipart in PART_BYTES parts (fauxqs refuses bodies over 11 MiB). */
async function upload(s3: S3Client, bucket: string, key: string, file: string): Promise<void> {
  const size = statSync(file).size;
  if (size <= PART_BYTES) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(file) }));
    return;
  }
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const handle = await open(file);
  const parts: Array<{ ETag: string; PartNumber: number }> = [];
  try {
    for (let offset = 0, number = 1; offset < size; offset += PART_BYTES, number++) {
      const body = Buffer.alloc(Math.min(PART_BYTES, size - offset));
      await handle.read(body, 0, body.length, offset);
      const { ETag = '' } = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: number, Body: body }));
      parts.push({ ETag, PartNumber: number });
    }
  } finally {
    await handle.close();
  }
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
}

interface WatchSummary {
  state: string;
  error: string | null;
  details: { lastListing: { at: string; durationMs: number; read: number } | null; bytesRead: number } | null;
}

/** `ff-detector watch s3 --once` over the big object, stopped once its snapshot is applied (its pending users are not drained). */
async function measureParse(context: Context): Promise<Pick<BucketFigures, 'parseUsers' | 'parseGzipBytes' | 'parseRawBytes' | 'generateSeconds' | 'uploadSeconds' | 'parseSeconds' | 'parseWallSeconds' | 'parsePeakRssMb' | 'parseCommitMs' | 'zcatSeconds'>> {
  const { run, dir, services } = context;
  const file = path.join(dir, 'users.csv.gz');
  let started = performance.now();
  const { rawBytes } = await writeGzipList(file, PARSE_USERS);
  const generateSeconds = (performance.now() - started) / 1000;
  const gzipBytes = statSync(file).size;
  const bucket = await createBucket(context, 'parse');
  started = performance.now();
  await upload(context.s3, bucket, PARSE_KEY, file);
  const uploadSeconds = (performance.now() - started) / 1000;

  // The same settings as the latency runs, but shadow (the daemon's default for strategy C) and
  // through the CLI's launcher, with its heap bounds.
  const configFile = path.join(dir, 'parse.yaml');
  const keys = stateKeys(run, 'parse');
  writeFileSync(
    configFile,
    JSON.stringify({
      flag: FLAG,
      state: { valkeyUrl: services.valkeyUrl, ...keys },
      strategies: { s3Bucket: { enabled: true, bucket, prefix: 'exports/', intervalSeconds: NOTIFIED_INTERVAL_SECONDS, shadow: true, mapping: mapping(PARSE_KEY) } },
    }),
  );
  const spawnedAt = Date.now();
  const child = spawn(LAUNCHER, ['watch', 's3', '--once', '--config', configFile, '--flags', context.rulesFile, '--log-level', 'warn'], {
    env: { ...process.env, ...AWS_ENV(services.awsEndpoint) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = once(child, 'exit');
  let appliedAt = 0;
  let peakKib = 0;
  let userCount = 0;
  let parseCommitMs = -1;
  let summary: WatchSummary | null = null;
  const readPeak = (): number => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
  const killer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  for await (const line of createInterface({ input: child.stdout })) {
    const message = JSON.parse(line) as { type: string; userCount?: number } & WatchSummary;
    if (message.type === 'change' && appliedAt === 0) {
      appliedAt = Date.now();
      userCount = message.userCount ?? 0;
      peakKib = readPeak();
      // Its cycle ends (the object marked, lastListing set) just after; the drain of its 20M
      // pending users (shadow) is not this measurement.
      setTimeout(() => {
        child.kill('SIGTERM');
        killer.refresh(); // SIGKILL if it has not stopped within 5 minutes after all
      }, 1000);
      // At once: the SLOWLOG keeps 128 entries, and other clients of this Valkey add theirs.
      parseCommitMs = await commitMs(context.valkey, `${keys.detectorKeyPrefix}{feed:`);
    }
    if (message.type === 'summary') summary = message;
  }
  await exited;
  clearTimeout(killer);
  const listing = summary?.details?.lastListing;
  if (appliedAt === 0 || !listing) throw new Error(`bucket bench: watch s3 --once applied nothing (${summary ? JSON.stringify(summary).slice(0, 500) : stderr.slice(-1000)})`);
  if (userCount !== PARSE_USERS) throw new Error(`bucket bench: the feed staged ${userCount} of ${PARSE_USERS} users`);

  started = performance.now();
  const lines = Number(execFileSync('sh', ['-c', 'zcat "$1" | wc -l', 'sh', file], { encoding: 'utf8' }).trim());
  const zcatSeconds = (performance.now() - started) / 1000;
  if (lines !== PARSE_USERS + 1) throw new Error(`bucket bench: zcat | wc -l counted ${lines} lines`);
  return {
    parseUsers: PARSE_USERS,
    parseGzipBytes: gzipBytes,
    parseRawBytes: rawBytes,
    generateSeconds,
    uploadSeconds,
    parseSeconds: (appliedAt - Date.parse(listing.at)) / 1000,
    parseWallSeconds: (appliedAt - spawnedAt) / 1000,
    parsePeakRssMb: peakKib / 1024,
    parseCommitMs,
    zcatSeconds,
  };
}

/** The longest EVAL on keys under `prefix` in Valkey's SLOWLOG (ms), -1 if none. */
async function commitMs(valkey: Valkey, prefix: string): Promise<number> {
  const entries = (await valkey.call('SLOWLOG', 'GET', '1000')) as Array<[number, number, number, string[]]>;
  const durations = entries.filter(([, , , args]) => args[0]?.toLowerCase() === 'eval' && args.some((arg) => arg.startsWith(prefix))).map(([, , micros]) => micros / 1000);
  return durations.length > 0 ? Math.max(...durations) : -1;
}

/** The rows bench/run.ts prints, and its JSON figures. */
export function bucketRows(figures: BucketFigures): { rows: Array<[string, number | string, string?]>; json: Record<string, number> } {
  const round = (value: number, digits = 0): number => Number(value.toFixed(digits));
  const mb = (bytes: number): number => bytes / 1e6;
  const parseUsersPerS = figures.parseUsers / figures.parseSeconds;
  const zcatLinesPerS = (figures.parseUsers + 1) / figures.zcatSeconds;
  const json = {
    bucket_interval_latency_p50_ms: round(figures.intervalP50Ms),
    bucket_interval_latency_p99_ms: round(figures.intervalP99Ms),
    bucket_interval_latency_max_ms: round(figures.intervalMaxMs),
    bucket_interval_applied_p50_ms: round(figures.intervalAppliedP50Ms),
    bucket_interval_applied_p99_ms: round(figures.intervalAppliedP99Ms),
    bucket_notified_latency_p50_ms: round(figures.notifiedP50Ms),
    bucket_notified_latency_p99_ms: round(figures.notifiedP99Ms),
    bucket_notified_latency_max_ms: round(figures.notifiedMaxMs),
    bucket_notified_applied_p50_ms: round(figures.notifiedAppliedP50Ms),
    bucket_notified_applied_p99_ms: round(figures.notifiedAppliedP99Ms),
    bucket_notified_late: figures.notifiedLate,
    bucket_duplicates: figures.duplicates,
    bucket_parse_users: figures.parseUsers,
    bucket_parse_gzip_mb: round(mb(figures.parseGzipBytes), 1),
    bucket_parse_raw_mb: round(mb(figures.parseRawBytes), 1),
    bucket_parse_seconds: round(figures.parseSeconds, 2),
    bucket_parse_wall_seconds: round(figures.parseWallSeconds, 2),
    bucket_parse_users_per_s: round(parseUsersPerS),
    bucket_parse_gzip_mb_per_s: round(mb(figures.parseGzipBytes) / figures.parseSeconds, 2),
    bucket_parse_raw_mb_per_s: round(mb(figures.parseRawBytes) / figures.parseSeconds, 1),
    bucket_parse_peak_rss_mb: round(figures.parsePeakRssMb),
    bucket_parse_commit_ms: round(figures.parseCommitMs),
    zcat_wc_seconds: round(figures.zcatSeconds, 2),
    zcat_wc_raw_mb_per_s: round(mb(figures.parseRawBytes) / figures.zcatSeconds, 1),
    zcat_wc_lines_per_s: round(zcatLinesPerS),
    ratio_bucket_parse_vs_zcat: round(parseUsersPerS / zcatLinesPerS, 4),
    bucket_generate_seconds: round(figures.generateSeconds, 2),
    bucket_upload_seconds: round(figures.uploadSeconds, 2),
  };
  const users = figures.parseUsers.toLocaleString('en-US');
  const rows: Array<[string, number | string, string?]> = [
    [`bucket feed, ${INTERVAL_SECONDS}-s listing, ${figures.rewrites} rewrites: put → SentTimestamp p50/p99 (ms)`, `${json.bucket_interval_latency_p50_ms} / ${json.bucket_interval_latency_p99_ms}`, `max ${json.bucket_interval_latency_max_ms}`],
    [`bucket feed, ${INTERVAL_SECONDS}-s listing: put → applied p50 / p99 (ms)`, `${json.bucket_interval_applied_p50_ms} / ${json.bucket_interval_applied_p99_ms}`],
    [`bucket feed, ${NOTIFIED_INTERVAL_SECONDS}-s listing + S3 events: put → SentTimestamp p50/p99 (ms)`, `${json.bucket_notified_latency_p50_ms} / ${json.bucket_notified_latency_p99_ms}`, `max ${json.bucket_notified_latency_max_ms}`],
    [`bucket feed, S3 events: put → applied p50 / p99 (ms)`, `${json.bucket_notified_applied_p50_ms} / ${json.bucket_notified_applied_p99_ms}`],
    [`bucket feed: rewrites late (> ${WAKE_TIMEOUT_MS / 1000} s after their event) / duplicates`, `${json.bucket_notified_late} / ${json.bucket_duplicates}`],
    [`bucket parse, ${users} users, ${json.bucket_parse_gzip_mb} MB gzip: cycle → applied (s)`, json.bucket_parse_seconds, `from start ${json.bucket_parse_wall_seconds} s`],
    [`bucket parse (users/s)`, json.bucket_parse_users_per_s],
    [`bucket parse, gzip / decompressed (${json.bucket_parse_raw_mb} MB) (MB/s)`, `${json.bucket_parse_gzip_mb_per_s} / ${json.bucket_parse_raw_mb_per_s}`],
    [`bucket parse, watch s3 --once (shadow, Valkey), peak RSS (MB)`, json.bucket_parse_peak_rss_mb],
    [`bucket parse: commit script, Valkey blocked (ms, SLOWLOG)`, json.bucket_parse_commit_ms, '< 10000 (the store\'s call timeout)'],
    [`zcat | wc -l, the same file (s / decompressed MB/s)`, `${json.zcat_wc_seconds} / ${json.zcat_wc_raw_mb_per_s}`],
    ['bucket parse / zcat | wc -l (lines/s)', json.ratio_bucket_parse_vs_zcat],
  ];
  return { rows, json };
}

// `node dist/bench/bucket.js` (services up: scripts/services.sh env): this section alone.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { FFD_TEST_VALKEY_URL: valkeyUrl, FFD_TEST_AWS_ENDPOINT: awsEndpoint } = process.env;
  if (!valkeyUrl || !awsEndpoint) throw new Error('eval "$(scripts/services.sh env)" first');
  const started = performance.now();
  const figures = await benchBucket({ valkeyUrl, awsEndpoint });
  const { rows, json } = bucketRows(figures);
  for (const [name, value, target = ''] of rows) process.stderr.write(`${name.padEnd(70)} ${String(value).padEnd(12)} ${target}\n`);
  process.stderr.write(`bucket bench: ${((performance.now() - started) / 1000).toFixed(0)} s in all (generating ${figures.generateSeconds.toFixed(1)} s, uploading ${figures.uploadSeconds.toFixed(1)} s)\n`);
  process.stdout.write(`${JSON.stringify(json)}\n`);
}

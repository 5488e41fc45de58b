import { rmSync } from 'node:fs';
import { Cluster, Valkey } from 'iovalkey';
import { runCli } from './cli-peak-rss.js';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { benchDir, seedKnown, writeCandidates, writeRules } from './fixtures.js';
import { benchInvestigate } from './investigate.js';
import { benchHttpChecker } from './http-checker.js';
import { benchOpenFeature, openFeatureRows } from './openfeature.js';
import { benchIdPattern } from './id-pattern.js';
import { runNaive } from './naive.js';
import { runPipelineOnce } from './pipeline.js';
import { seedSnowflake, snowflakeEnv } from './snowflake.js';
import { runValkeyBenchmark } from './valkey-benchmark.js';
import { benchKnownSetSharding } from './known-set-sharding.js';
import { benchRateLimits } from './rate-limit.js';
import { benchFeed, feedRows } from './feed.js';
import { benchBucket, bucketRows } from './bucket.js';

/**
 * `npm run bench`, one run against the local services:
 * 1. detection throughput on 1M file candidates beside the naive loop and valkey-benchmark, on
 *    a single Valkey node and on a 3-primary cluster (beside valkey-benchmark --cluster);
 * 2. the same 1M users from Snowflake (local server) beside the file source, both through the CLI;
 * 3. the http flag checker's checks/s at its default concurrency, and the OpenFeature checker's
 *    with flagd's provider in in-process mode beside the embedded evaluator on the same rules;
 * 4. peak RSS of the CLI at 10M file candidates;
 * 5. the backfill sender against the local SQS server beside a plain SendMessageBatch loop, and
 *    the rate limit through the real CLI at 0.5, 9.5, 10 and 100 msgs/s over 60 s, in-process
 *    and shared in Valkey, measured where requests start and at the server (SentTimestamp);
 * 6. sample and investigate over 10,000 flag-topic messages;
 * 7. the idPattern engines: the built-in RegExp beside RE2JS (linear-time) per candidate on the
 *    default pattern, and the ReDoS check config validation does once (docs/decisions.md);
 * 8. the flag-topic feed (strategy B): add produced → SQS-accepted latency at 100 adds/s, and its
 *    msgs/s over a 100,000-message backlog beside `sample kafka` (bench/feed.ts);
 * 9. the flag-bucket feed (strategy C): list object rewritten → SQS-accepted latency, listing every
 *    second and woken by S3 events, and its parse rate over a 10M-user gzipped list beside
 *    `zcat | wc -l` (bench/bucket.ts).
 * A table on stderr; one JSON line on stdout, last.
 */
const valkeyUrl = process.env.FFD_TEST_VALKEY_URL;
const valkeyClusterUrl = process.env.FFD_TEST_VALKEY_CLUSTER_URL;
const snowflakeUrl = process.env.FFD_TEST_SNOWFLAKE_URL;
const awsEndpoint = process.env.FFD_TEST_AWS_ENDPOINT;
const kafkaBrokers = process.env.FFD_TEST_KAFKA_BROKERS;
if (!valkeyUrl || !valkeyClusterUrl || !snowflakeUrl || !awsEndpoint || !kafkaBrokers) throw new Error('run `npm run bench`, which starts the services');
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const dir = benchDir();
const valkey = new Valkey(valkeyUrl);
const knownSetKey = 'bench:known_enabled_users';
const MILLION = 1_000_000;
const TEN_MILLION = 10 * MILLION;

// 1. The pipeline in-process, the naive loop, valkey-benchmark.
const rulesFile = writeRules(dir, MILLION);
const candidatesFile = await writeCandidates(dir, MILLION);
const seeded = await seedKnown(valkey, knownSetKey, MILLION);
log(`fixtures: 1,000,000 candidates, ${seeded.enabled} enabled (10,000-user segment + 10 % flipper), ${seeded.known} already known`);
await runPipelineOnce({ valkeyUrl, knownSetKey, candidatesFile, rulesFile }); // warm-up: JIT, connections
const timings: number[] = [];
for (let i = 0; i < 3; i++) timings.push((await runPipelineOnce({ valkeyUrl, knownSetKey, candidatesFile, rulesFile })).seconds);
const median = [...timings].sort((a, b) => a - b)[1] as number;
const pipelinePerS = MILLION / median;
log(`pipeline: ${timings.map((t) => t.toFixed(2)).join(' / ')} s per 1M (median ${median.toFixed(2)} s)`);
const naivePerS = await runNaive({ valkeyUrl, knownSetKey, candidatesFile, rulesFile, sample: 20_000 });
const valkeyBenchmarkPerS = runValkeyBenchmark(valkeyUrl, knownSetKey);
const knownSetBytes = Number(await valkey.call('MEMORY', 'USAGE', knownSetKey, 'SAMPLES', '0'));

// 1b. The same on the cluster: the known set is one key (one slot; valkey-benchmark --cluster needs
// its hash tag), the loaded_users lookups spread over every slot.
const seedNode = new URL(valkeyClusterUrl);
const cluster = new Cluster([{ host: seedNode.hostname, port: Number(seedNode.port) }]);
const clusterKey = '{bench}:known_enabled_users';
await seedKnown(cluster, clusterKey, MILLION);
const onCluster = { valkeyUrl: valkeyClusterUrl, cluster: true, knownSetKey: clusterKey, candidatesFile, rulesFile };
await runPipelineOnce(onCluster);
const clusterTimings: number[] = [];
for (let i = 0; i < 3; i++) clusterTimings.push((await runPipelineOnce(onCluster)).seconds);
const clusterMedian = [...clusterTimings].sort((a, b) => a - b)[1] as number;
const clusterPerS = MILLION / clusterMedian;
log(`pipeline on the cluster: ${clusterTimings.map((t) => t.toFixed(2)).join(' / ')} s per 1M (median ${clusterMedian.toFixed(2)} s)`);
// --cluster replaces a literal {tag} with one per primary and spreads its clients over them all:
// what the whole cluster can do, where our known set sits on one slot.
const valkeyBenchmarkClusterPerS = runValkeyBenchmark(valkeyClusterUrl, '{tag}:known_enabled_users', { cluster: true });
await cluster.del(clusterKey);
const sharding = await benchKnownSetSharding(cluster, Array.from({ length: MILLION }, (_, i) => `user-${i}`));
cluster.disconnect();

// 2. Sources through the CLI: the same 1M users from a file and from Snowflake.
const fileCli = runCli({ dir, valkeyUrl, knownSetKey, rulesFile, args: ['--candidates', candidatesFile] });
await seedSnowflake(snowflakeUrl, 'BENCH', MILLION);
const snowflakeCli = runCli({
  dir,
  valkeyUrl,
  knownSetKey,
  rulesFile,
  args: [],
  configYaml: 'enqueue:\n  budget: 0\ncandidates:\n  source: snowflake\n  snowflake:\n    loginRetries: 0\n',
  env: snowflakeEnv(snowflakeUrl, 'BENCH'),
});
if (snowflakeCli.summary.candidates !== MILLION) throw new Error(`Snowflake bench read ${snowflakeCli.summary.candidates} rows`);

// 3. The http checker.
const http = await benchHttpChecker(20_000);
const openfeature = openFeatureRows(await benchOpenFeature(200_000));

// 5a. The backfill sender, in a process of its own, before the 10M run churns the machine's memory.
const SENDER_CONCURRENCY = 4;
const throughput = JSON.parse(
  execFileSync(process.execPath, [fileURLToPath(new URL('./backfill-child.js', import.meta.url)), awsEndpoint, '20000', String(SENDER_CONCURRENCY)], {
    encoding: 'utf8',
    env: process.env,
  }),
) as { senderPerS: number; plainPerS: number };

// 4. Peak RSS at 10M.
const rules10m = writeRules(dir, TEN_MILLION);
const candidates10m = await writeCandidates(dir, TEN_MILLION);
await seedKnown(valkey, `${knownSetKey}:10m`, TEN_MILLION);
const tenMillion = runCli({ dir, valkeyUrl, knownSetKey: `${knownSetKey}:10m`, rulesFile: rules10m, args: ['--candidates', candidates10m] });
if (tenMillion.summary.candidates !== TEN_MILLION) throw new Error('the 10M run did not read every candidate');

// 5b. The rate limit, every case at once (they wait far more than they work).
log('rate limit: 60 s at 0.5, 9.5, 10 and 100 msgs/s, in-process and shared in Valkey …');
const rateCases = (['file', 'valkey'] as const).flatMap((state) => [0.5, 9.5, 10, 100].map((rate) => ({ rate, state })));
const rates = await benchRateLimits({ endpoint: awsEndpoint, valkeyUrl, dir, seconds: 60, cases: rateCases });

// 6. Investigation mode.
const investigation = await benchInvestigate(kafkaBrokers.split(','), 10_000);

// 7. idPattern: the per-candidate cost of each engine, and the one-off check at load.
const idPattern = benchIdPattern();

// 8. The flag-topic feed.
const feed = feedRows(await benchFeed({ brokers: kafkaBrokers.split(','), valkeyUrl, awsEndpoint }));

// 9. The flag-bucket feed.
const bucket = bucketRows(await benchBucket({ valkeyUrl, awsEndpoint }));

await valkey.del(knownSetKey, `${knownSetKey}:10m`);
await valkey.quit();
rmSync(dir, { recursive: true, force: true });

const round = (value: number, digits = 0): number => Number(value.toFixed(digits));
const result = {
  candidates: MILLION,
  pipeline_per_s: round(pipelinePerS),
  naive_per_s: round(naivePerS),
  valkey_benchmark_per_s: round(valkeyBenchmarkPerS),
  ratio_vs_naive: round(pipelinePerS / naivePerS, 1),
  ratio_vs_valkey_benchmark: round(pipelinePerS / valkeyBenchmarkPerS, 3),
  known_set_bytes_per_member: round(knownSetBytes / seeded.known, 1),
  cluster_pipeline_per_s: round(clusterPerS),
  cluster_valkey_benchmark_per_s: round(valkeyBenchmarkClusterPerS),
  ratio_cluster_vs_single: round(clusterPerS / pipelinePerS, 3),
  ratio_cluster_vs_valkey_benchmark_cluster: round(clusterPerS / valkeyBenchmarkClusterPerS, 3),
  known_set_one_key_lookups_per_s: round(sharding.oneKeyPerS),
  known_set_sharded_lookups_per_s: round(sharding.shardedPerS),
  peak_rss_mb_10m: round(tenMillion.peakRssMb),
  cli_file_per_s_1m: round(fileCli.perSecond),
  cli_file_peak_rss_mb_1m: round(fileCli.peakRssMb),
  cli_snowflake_per_s_1m: round(snowflakeCli.perSecond),
  cli_snowflake_peak_rss_mb_1m: round(snowflakeCli.peakRssMb),
  ratio_snowflake_vs_file: round(snowflakeCli.perSecond / fileCli.perSecond, 3),
  http_concurrency: http.concurrency,
  http_checks_per_s: round(http.perUserChecksPerS),
  http_batch_checks_per_s: round(http.batchChecksPerS),
  ratio_http_vs_file: round(http.perUserChecksPerS / fileCli.perSecond, 4),
  ...openfeature.json,
  cli_seconds_10m: round(tenMillion.summary.durationMs / 1000, 2),
  backfill_concurrency: SENDER_CONCURRENCY,
  backfill_sender_per_s: round(throughput.senderPerS),
  plain_send_batch_loop_per_s: round(throughput.plainPerS),
  ratio_backfill_vs_plain: round(throughput.senderPerS / throughput.plainPerS, 3),
  rate_limit: rates.map((figures) => ({
    rate: figures.rate,
    limiter: figures.state === 'valkey' ? 'shared (Valkey)' : 'in-process',
    achieved_per_s: round(figures.achievedPerS, 3),
    error_percent: round(figures.errorPercent, 2),
    fullest_client_window: figures.fullestClientWindow,
    window_cap: figures.windowCap,
    window_ms: figures.windowMs,
    fullest_server_window: figures.fullestServerWindow,
    server_achieved_per_s: round(figures.serverAchievedPerS, 3),
  })),
  sample_kafka_per_s: round(investigation.samplePerS),
  investigate_per_s: round(investigation.analyzePerS),
  id_pattern_regexp_per_s: round(idPattern.regexpPerS),
  id_pattern_re2js_per_s: round(idPattern.re2jsPerS),
  ratio_id_pattern_re2js_vs_regexp: round(idPattern.re2jsPerS / idPattern.regexpPerS, 3),
  id_pattern_check_default_ms: round(idPattern.checkDefaultMs, 1),
  id_pattern_check_refused_ms: round(idPattern.checkRefusedMs, 1),
  id_pattern_attack_length: idPattern.attackLength,
  id_pattern_attack_regexp_ms: round(idPattern.attackRegexpMs, 1),
  id_pattern_attack_re2js_35_ms: round(idPattern.attackRe2jsMs, 2),
  ...feed.json,
  ...bucket.json,
};
const row = (name: string, value: number | string, target = ''): void => log(`${name.padEnd(70)} ${String(value).padEnd(12)} ${target}`);
log('');
row('figure', 'value', 'target');
row('pipeline, file, in-process (candidates/s)', result.pipeline_per_s);
row('naive loop (candidates/s)', result.naive_per_s);
row('valkey-benchmark -P 1000 SISMEMBER (/s)', result.valkey_benchmark_per_s);
row('pipeline / naive', result.ratio_vs_naive, '≥ 50');
row('pipeline / valkey-benchmark', result.ratio_vs_valkey_benchmark, '≥ 0.25');
row('known set in Valkey (bytes per member)', result.known_set_bytes_per_member);
row('pipeline on a 3-primary cluster (candidates/s)', result.cluster_pipeline_per_s);
row('valkey-benchmark --cluster -P 1000 SISMEMBER (/s)', result.cluster_valkey_benchmark_per_s);
row('cluster / single node', result.ratio_cluster_vs_single);
row('cluster / valkey-benchmark --cluster', result.ratio_cluster_vs_valkey_benchmark_cluster);
row('known-set lookups on the cluster, one key (/s)', result.known_set_one_key_lookups_per_s);
row('known-set lookups on the cluster, 12 shards (/s)', result.known_set_sharded_lookups_per_s);
row('peak RSS, CLI, 10M file candidates (MB)', result.peak_rss_mb_10m, '≤ 256');
row('CLI, 1M from a file (candidates/s)', result.cli_file_per_s_1m);
row('CLI, 1M from Snowflake (rows/s)', result.cli_snowflake_per_s_1m);
row('Snowflake / file', result.ratio_snowflake_vs_file);
row('peak RSS, CLI, 1M file / Snowflake (MB)', `${result.cli_file_peak_rss_mb_1m} / ${result.cli_snowflake_peak_rss_mb_1m}`);
row(`http checker, per user, concurrency ${http.concurrency} (/s)`, result.http_checks_per_s);
row('http checker, batch endpoint (/s)', result.http_batch_checks_per_s);
for (const [name, value] of openfeature.rows) row(name, value);
row(`backfill sender, concurrency ${SENDER_CONCURRENCY} (msgs/s)`, result.backfill_sender_per_s);
row('plain SendMessageBatch loop (msgs/s)', result.plain_send_batch_loop_per_s);
row('backfill / plain loop', result.ratio_backfill_vs_plain, '≥ 0.9');
for (const figures of result.rate_limit) {
  const name = `rate limit ${figures.rate}/s, ${figures.limiter}`;
  const window = figures.window_ms === 1000 ? '1-s' : `${figures.window_ms / 1000}-s`;
  row(`${name}: achieved (msgs/s)`, figures.achieved_per_s, `±1 % (${figures.error_percent} %)`);
  row(`${name}: fullest ${window} window, request starts`, figures.fullest_client_window, `≤ ${figures.window_cap}`);
  row(`${name}: fullest ${window} window, SentTimestamp`, figures.fullest_server_window, `≤ ${figures.window_cap} + one batch`);
}
row('sample kafka, 10,000 messages (msgs/s)', result.sample_kafka_per_s);
row(`investigate, 10,000 messages (msgs/s, verdict ${investigation.verdict})`, result.investigate_per_s);
row('idPattern, default pattern, built-in RegExp (candidates/s)', result.id_pattern_regexp_per_s);
row('idPattern, default pattern, RE2JS (candidates/s)', result.id_pattern_re2js_per_s);
row('RE2JS / RegExp', result.ratio_id_pattern_re2js_vs_regexp);
row('idPattern ReDoS check at load: default / ^(a+)+$ (ms)', `${result.id_pattern_check_default_ms} / ${result.id_pattern_check_refused_ms}`);
row(`^(a+)+$ on ${idPattern.attackLength} + 1 characters, RegExp / on 35 + 1, RE2JS (ms)`, `${result.id_pattern_attack_regexp_ms} / ${result.id_pattern_attack_re2js_35_ms}`);
for (const [name, value, target] of feed.rows) row(name, value, target);
for (const [name, value, target] of bucket.rows) row(name, value, target);
process.stdout.write(`${JSON.stringify(result)}\n`);

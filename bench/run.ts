import { rmSync } from 'node:fs';
import { Valkey } from 'iovalkey';
import { cliPeakRss } from './cli-peak-rss.js';
import { benchDir, seedKnown, writeCandidates, writeRules } from './fixtures.js';
import { runNaive } from './naive.js';
import { runPipelineOnce } from './pipeline.js';
import { runValkeyBenchmark } from './valkey-benchmark.js';

/**
 * `npm run bench`: detection throughput on 1M file candidates beside the naive loop and
 * valkey-benchmark on the same server, then peak RSS at 10M candidates. Human table on stderr,
 * one JSON line on stdout (the last line).
 */
const valkeyUrl = process.env.FFD_TEST_VALKEY_URL;
if (!valkeyUrl) throw new Error('FFD_TEST_VALKEY_URL is not set: run `npm run bench`, which starts Valkey');
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const dir = benchDir();
const valkey = new Valkey(valkeyUrl);
const knownSetKey = 'bench:known_enabled_users';

const MILLION = 1_000_000;
const rulesFile = writeRules(dir, MILLION);
const candidatesFile = await writeCandidates(dir, MILLION);
const seeded = await seedKnown(valkey, knownSetKey, MILLION);
log(`fixtures: 1,000,000 candidates, ${seeded.enabled} enabled (10,000-user segment + 10 % flipper), ${seeded.known} already known`);

await runPipelineOnce({ valkeyUrl, knownSetKey, candidatesFile, rulesFile }); // warm-up: JIT, connections
const timings: number[] = [];
let enqueued = 0;
for (let i = 0; i < 3; i++) {
  const { summary, seconds } = await runPipelineOnce({ valkeyUrl, knownSetKey, candidatesFile, rulesFile });
  timings.push(seconds);
  enqueued = summary.enqueued;
}
const median = [...timings].sort((a, b) => a - b)[1] as number;
const pipelinePerS = MILLION / median;
log(`pipeline: ${timings.map((t) => t.toFixed(2)).join(' / ')} s per 1M (median ${median.toFixed(2)} s), ${enqueued} would be enqueued`);

const naivePerS = await runNaive({ valkeyUrl, knownSetKey, candidatesFile, rulesFile, sample: 20_000 });
const valkeyBenchmarkPerS = runValkeyBenchmark(valkeyUrl, knownSetKey);

const TEN_MILLION = 10 * MILLION;
const rules10m = writeRules(dir, TEN_MILLION);
const candidates10m = await writeCandidates(dir, TEN_MILLION);
const seeded10m = await seedKnown(valkey, `${knownSetKey}:10m`, TEN_MILLION);
const rss = cliPeakRss({ dir, valkeyUrl, knownSetKey: `${knownSetKey}:10m`, candidatesFile: candidates10m, rulesFile: rules10m });
if (rss.summary.status !== 'ok' || rss.summary.candidates !== TEN_MILLION) throw new Error(`10M run did not complete: ${JSON.stringify(rss.summary)}`);
await valkey.del(knownSetKey, `${knownSetKey}:10m`);
await valkey.quit();
rmSync(dir, { recursive: true, force: true });

const result = {
  candidates: MILLION,
  pipeline_per_s: Math.round(pipelinePerS),
  naive_per_s: Math.round(naivePerS),
  valkey_benchmark_per_s: Math.round(valkeyBenchmarkPerS),
  ratio_vs_naive: Number((pipelinePerS / naivePerS).toFixed(1)),
  ratio_vs_valkey_benchmark: Number((pipelinePerS / valkeyBenchmarkPerS).toFixed(3)),
  peak_rss_mb_10m: Math.round(rss.peakRssMb),
  cli_seconds_10m: Number((rss.summary.durationMs / 1000).toFixed(2)),
  enabled_10m: seeded10m.enabled,
};
log('');
log('figure                         value         target');
log(`pipeline (candidates/s)        ${String(result.pipeline_per_s).padEnd(13)} —`);
log(`naive loop (candidates/s)      ${String(result.naive_per_s).padEnd(13)} —`);
log(`valkey-benchmark -P 1000 (/s)  ${String(result.valkey_benchmark_per_s).padEnd(13)} —`);
log(`pipeline / naive               ${String(result.ratio_vs_naive).padEnd(13)} ≥ 50`);
log(`pipeline / valkey-benchmark    ${String(result.ratio_vs_valkey_benchmark).padEnd(13)} ≥ 0.25`);
log(`peak RSS at 10M (MB)           ${String(result.peak_rss_mb_10m).padEnd(13)} ≤ 256   (ff-detector detect --dry-run, ${result.cli_seconds_10m} s)`);
process.stdout.write(`${JSON.stringify(result)}\n`);

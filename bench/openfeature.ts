import { rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadFlagRules } from '../src/flags/load-rules.js';
import { openOpenFeatureChecker } from '../src/flags/openfeature-provider.js';
import { openFeatureSchema } from '../src/flags/openfeature-schema.js';
import { RulesFlagChecker } from '../src/flags/rules-checker.js';
import type { FlagChecker, FlagResult } from '../src/flags/types.js';
import { DEFAULT_ID_PATTERN } from '../src/config/schema.js';
import { silentLogger } from '../src/logger.js';
import { benchDir, candidateId, FLAG, PERCENTAGE, SEGMENT_SIZE } from './fixtures.js';
import { writeEquivalentRules } from './openfeature-fixtures.js';

export interface OpenFeatureBenchResult {
  users: number;
  concurrency: number;
  openFeaturePerS: number;
  embeddedPerS: number;
}

/** Batches as the pipeline sends them (candidates.batchSize). */
const BATCH = 1000;

/**
 * Checks/s of the OpenFeature checker with flagd's provider in in-process mode (the flag
 * definition from a file) beside the embedded evaluator on the equivalent rules file: the bench's
 * 10,000-user segment and 10 % rollout, bucketed as flagd does. Both must agree on every user.
 */
export async function benchOpenFeature(users: number, concurrency = 16): Promise<OpenFeatureBenchResult> {
  const dir = benchDir();
  const segment = Array.from({ length: SEGMENT_SIZE }, (_, i) => candidateId((i * 97) % users));
  const { rulesFile, flagdFile } = writeEquivalentRules(dir, { flag: FLAG, percentage: PERCENTAGE, excludedUsers: [], users: [], segment });
  const ids = Array.from({ length: users }, (_, i) => candidateId(i));
  const logger = silentLogger();
  const settings = openFeatureSchema.parse({
    package: '@openfeature/flagd-provider',
    args: [{ resolverType: 'in-process', offlineFlagSourcePath: flagdFile }],
    concurrency,
  });
  const opened = await openOpenFeatureChecker(settings, FLAG, logger);
  try {
    const snapshot = await loadFlagRules({ location: rulesFile, expectedFlag: FLAG, idPattern: new RegExp(DEFAULT_ID_PATTERN), logger });
    const embedded = new RulesFlagChecker(snapshot);
    const throughProvider = await timed(opened.checker, ids, 1);
    // The embedded evaluator is ≈ 100 times faster: more rounds, for a measurable time.
    const inProcess = await timed(embedded, ids, 20);
    const disagreeing = ids.filter((_, i) => throughProvider.results[i] !== inProcess.results[i]).length;
    if (disagreeing > 0) throw new Error(`openfeature bench: flagd and the embedded evaluator disagree on ${disagreeing} users`);
    return { users, concurrency, openFeaturePerS: throughProvider.perS, embeddedPerS: inProcess.perS };
  } finally {
    await opened.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timed(checker: FlagChecker, ids: readonly string[], rounds: number): Promise<{ perS: number; results: FlagResult[] }> {
  await checker.check(ids.slice(0, BATCH)); // warm-up: JIT
  let results: FlagResult[] = [];
  const started = performance.now();
  for (let round = 0; round < rounds; round++) {
    results = [];
    for (let i = 0; i < ids.length; i += BATCH) results.push(...(await checker.check(ids.slice(i, i + BATCH))));
  }
  const seconds = (performance.now() - started) / 1000;
  if (results.includes('unevaluable')) throw new Error(`openfeature bench: unevaluable users from ${checker.description}`);
  return { perS: (ids.length * rounds) / seconds, results };
}

/** The section's table rows and JSON fields, for bench/run.ts and for this file run alone. */
export function openFeatureRows(result: OpenFeatureBenchResult): { rows: Array<[string, number | string]>; json: Record<string, number> } {
  const json = {
    openfeature_concurrency: result.concurrency,
    openfeature_flagd_in_process_checks_per_s: Math.round(result.openFeaturePerS),
    embedded_checks_per_s: Math.round(result.embeddedPerS),
    ratio_openfeature_vs_embedded: Number((result.openFeaturePerS / result.embeddedPerS).toFixed(4)),
  };
  const rows: Array<[string, number | string]> = [
    [`OpenFeature checker, flagd provider in-process, concurrency ${result.concurrency} (/s)`, json.openfeature_flagd_in_process_checks_per_s],
    ['embedded evaluator, same rules (/s)', json.embedded_checks_per_s],
    ['OpenFeature (flagd in-process) / embedded', json.ratio_openfeature_vs_embedded],
  ];
  return { rows, json };
}

// `node dist/bench/openfeature.js`: this section alone (it needs no service).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { rows, json } = openFeatureRows(await benchOpenFeature(200_000));
  for (const [name, value] of rows) process.stderr.write(`${name.padEnd(70)} ${String(value)}\n`);
  process.stdout.write(`${JSON.stringify(json)}\n`);
}

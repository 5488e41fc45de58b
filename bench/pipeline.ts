import { tmpdir } from 'node:os';
import { DEFAULT_RUN_HEALTH } from '../src/pipeline/summary.js';
import { Writable } from 'node:stream';
import { FileCandidateSource } from '../src/candidates/file-source.js';
import { loadFlagRules } from '../src/flags/load-rules.js';
import { RulesFlagChecker } from '../src/flags/rules-checker.js';
import { silentLogger } from '../src/logger.js';
import { runDetection } from '../src/pipeline/detection.js';
import type { RunSummary } from '../src/pipeline/summary.js';
import { StdoutSink } from '../src/sink/stdout-sink.js';
import { DEFAULT_ID_PATTERN } from '../src/config/schema.js';
import { ValkeyStateStore } from '../src/state/valkey/index.js';
import { FLAG } from './fixtures.js';

export interface PipelineBenchOptions {
  valkeyUrl: string;
  /** valkeyUrl is a seed node of a cluster. */
  cluster?: boolean;
  knownSetKey: string;
  candidatesFile: string;
  rulesFile: string;
}

/** One dry-run detection over the candidate file: the real pipeline, real Valkey, a discarding sink. */
export async function runPipelineOnce(options: PipelineBenchOptions): Promise<{ summary: RunSummary; seconds: number }> {
  const logger = silentLogger();
  const idPattern = new RegExp(DEFAULT_ID_PATTERN);
  const snapshot = await loadFlagRules({ location: options.rulesFile, expectedFlag: FLAG, idPattern, logger });
  const store = new ValkeyStateStore({ url: options.valkeyUrl, cluster: options.cluster ?? false, knownSetKey: options.knownSetKey, loadedKeyPrefix: 'bench:loaded:', detectorKeyPrefix: 'bench:detector:', connectTimeoutMs: 5000 });
  await store.ping();
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  const started = performance.now();
  const summary = await runDetection(
    {
      source: new FileCandidateSource({ location: options.candidatesFile, batchSize: 1000 }),
      checker: new RulesFlagChecker(snapshot),
      known: store.known,
      sink: new StdoutSink(discard, 'discard (dry run)'),
      limiter: undefined,
      logger,
    },
    {
      strategy: 'polling',
      idPattern,
      dryRun: true,
      forgetDisabled: true,
      forgetPolicy: { maxFraction: 0.1, floor: 100, released: () => Promise.resolve(false) },
      budget: 0,
      maxInFlightBatches: 8,
      pending: { maxInMemory: 1_000_000, spillDir: tmpdir() },
      sendConcurrency: 1,
      message: { reason: 'bench', lookbackDays: 365, priority: 'low', requestIdPrefix: 'bench' },
      retry: { entryRetries: 0, baseMs: 1, maxMs: 1 },
      health: DEFAULT_RUN_HEALTH,
    },
  );
  const seconds = (performance.now() - started) / 1000;
  await store.close();
  if (summary.status !== 'ok') throw new Error(`bench run failed: ${summary.error}`);
  return { summary, seconds };
}

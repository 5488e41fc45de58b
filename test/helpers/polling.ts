import type { SQSClient } from '@aws-sdk/client-sqs';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/logger.js';
import type { RunSummary } from '../../src/pipeline/summary.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { pollingStrategy } from '../../strategies/polling.js';
import { tempDir } from './files.js';
import { sqsClient, uniqueName, valkeyUrl } from './services.js';

/** One test's private slice of the shared servers: its own Valkey keys and files. */
export class PollingFixture {
  readonly dir = tempDir();
  readonly knownKey: string;
  readonly loadedPrefix: string;

  /** `prefix` of every key; a hash tag (`{tag}`) puts them all in one cluster slot. */
  constructor(readonly prefix = uniqueName('inv')) {
    this.knownKey = `${prefix}:known`;
    this.loadedPrefix = `${prefix}:loaded:`;
  }

  writeCandidates(ids: string[]): string {
    const file = path.join(this.dir, 'candidates.txt');
    writeFileSync(file, `${ids.join('\n')}\n`);
    return file;
  }

  /** Rules enabling exactly `users` (and whatever `extra` adds). */
  writeRules(users: string[], extra = ''): string {
    const file = path.join(this.dir, `rules-${uniqueName()}.yaml`);
    writeFileSync(file, `flag: consumer_graph_ingestion\nenabled: true\nusers: ${JSON.stringify(users)}\n${extra}`);
    return file;
  }

  async run(options: {
    candidates: string;
    rules: string;
    queueUrl: string;
    rateLimit?: number;
    budget?: number;
    valkey?: string;
    /** `valkey` is a seed node of a cluster. */
    cluster?: boolean;
    sqs?: SQSClient;
    signal?: AbortSignal;
    safety?: Record<string, unknown>;
    /** Merged into the config's candidates and enqueue sections. */
    candidatesConfig?: Record<string, unknown>;
    enqueueConfig?: Record<string, unknown>;
    /** Sees the run's runtime before it starts (its events). */
    onRuntime?: (runtime: Runtime) => void;
  }): Promise<RunSummary> {
    const config = loadConfig({
      env: {},
      overrides: {
        candidates: { path: options.candidates, ...options.candidatesConfig },
        flags: { rules: options.rules },
        state: {
          valkeyUrl: options.valkey ?? valkeyUrl(),
          valkeyCluster: options.cluster ?? false,
          knownSetKey: this.knownKey,
          loadedKeyPrefix: this.loadedPrefix,
          detectorKeyPrefix: `${this.prefix}:detector:`,
          connectTimeoutMs: 1000,
        },
        sqs: { queueUrl: options.queueUrl, maxAttempts: 2, requestTimeoutMs: 2000, retryBaseMs: 10 },
        enqueue: { rateLimit: options.rateLimit ?? 1000, budget: options.budget ?? 0, ...options.enqueueConfig },
        ...(options.safety ? { safety: options.safety } : {}),
      },
    });
    const client = options.sqs ?? sqsClient();
    const runtime = new Runtime(config, silentLogger(), { sqs: client });
    options.onRuntime?.(runtime);
    try {
      return await pollingStrategy.run(runtime, { dryRun: false, signal: options.signal });
    } finally {
      await runtime.close();
      if (!options.sqs) client.destroy();
    }
  }
}

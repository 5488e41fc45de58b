import { loadConfig } from '../config/load.js';
import { EXIT_OK } from '../errors.js';
import { createLogger } from '../logger.js';
import type { RunSummary } from '../pipeline/summary.js';
import { Runtime } from '../runtime/runtime.js';
import { overridesFrom } from './options.js';
import { formatTable, writeLine } from './output.js';

export interface StatusFlags {
  config?: string;
  stateFile?: string;
  json?: boolean;
  limit?: number;
  logLevel?: string;
}

/** `ff-detector status`: the newest run summaries from the state store (Valkey or the file store). */
export async function statusCommand(flags: StatusFlags): Promise<number> {
  const logger = createLogger(flags.logLevel ?? 'warn');
  const config = loadConfig({ configPath: flags.config ?? process.env.FF_DETECTOR_CONFIG, overrides: overridesFrom({ ...flags }) });
  const runtime = new Runtime(config, logger);
  try {
    const store = await runtime.openStore();
    const runs = (await store.history.read(flags.limit ?? 10)).map((entry) => JSON.parse(entry) as RunSummary);
    if (flags.json) {
      for (const run of runs) await writeLine(process.stdout, JSON.stringify(run));
    } else {
      await writeLine(process.stdout, formatRuns(runs));
    }
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}

function formatRuns(runs: RunSummary[]): string {
  if (runs.length === 0) return 'no runs recorded yet';
  const header = ['STARTED', 'STATUS', 'CANDIDATES', 'ENABLED', 'ENQUEUED', 'DEFERRED', 'FAILED', 'DURATION', 'ERROR'];
  const rows = runs.map((run) => [
    run.startedAt,
    run.status,
    String(run.candidates),
    String(run.enabled),
    String(run.enqueued),
    String(run.deferred),
    String(run.failed),
    `${(run.durationMs / 1000).toFixed(1)}s`,
    run.error ?? '',
  ]);
  return formatTable(header, rows);
}

import { loadConfig } from '../config/load.js';
import { EXIT_OK } from '../errors.js';
import { createLogger } from '../logger.js';
import { Runtime } from '../runtime/runtime.js';
import { overridesFrom } from './options.js';
import { formatTable, writeLine } from './output.js';

export interface CheckFlags {
  config?: string;
  flags?: string;
  stateFile?: string;
  json?: boolean;
  logLevel?: string;
}

interface UserReport {
  userId: string;
  valid: boolean;
  flag: string;
  known: boolean | null;
  loaded: boolean | null;
}

/** `ff-detector check <id…>`: per user, the flag result, known-set membership and loaded_users. */
export async function checkCommand(userIds: string[], flags: CheckFlags): Promise<number> {
  const logger = createLogger(flags.logLevel ?? 'warn');
  const config = loadConfig({ configPath: flags.config ?? process.env.FF_DETECTOR_CONFIG, overrides: overridesFrom({ ...flags }) });
  const runtime = new Runtime(config, logger);
  try {
    const checker = await runtime.openChecker();
    const store = await runtime.openStore();
    const pattern = runtime.idPattern;
    const valid = userIds.filter((id) => pattern.test(id));
    const [results, known, loaded] = await Promise.all([checker.check(valid), store.known.areKnown(valid), store.known.areLoaded(valid)]);
    const reports: UserReport[] = userIds.map((userId) => {
      const index = valid.indexOf(userId);
      if (index === -1) return { userId, valid: false, flag: 'invalid', known: null, loaded: null };
      return { userId, valid: true, flag: results[index] as string, known: known[index] ?? false, loaded: loaded[index] ?? false };
    });
    if (flags.json) {
      for (const report of reports) await writeLine(process.stdout, JSON.stringify(report));
    } else {
      await writeLine(process.stdout, formatReports(reports));
    }
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}

function formatReports(reports: UserReport[]): string {
  return formatTable(['USER', 'FLAG', 'KNOWN', 'LOADED'], reports.map((r) => [r.userId, r.flag, yesNo(r.known), yesNo(r.loaded)]));
}

function yesNo(value: boolean | null): string {
  return value === null ? '-' : value ? 'yes' : 'no';
}

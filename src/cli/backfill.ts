import { randomUUID } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BackfillJob } from '../backfill/job.js';
import { ProgressBar } from '../backfill/progress-bar.js';
import { readUserList } from '../backfill/user-list.js';
import { FileCandidateSource } from '../candidates/file-source.js';
import { loadConfig, resolveLocation } from '../config/load.js';
import { chooseSink } from '../config/sink-choice.js';
import { backfillMessageOf, retryPolicyOf } from '../config/settings.js';
import { EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, FfError, errorMessage } from '../errors.js';
import { createLogger } from '../logger.js';
import { Runtime } from '../runtime/runtime.js';
import { writeLine } from './output.js';

export interface BackfillFlags {
  sink?: 'sqs' | 'stdout';
  userFile?: string;
  column?: string;
  rateLimit?: number;
  lookbackDays?: number;
  dryRun?: boolean;
  queueUrl?: string;
  resumeFrom?: string;
  resumeFile?: string;
  config?: string;
  logLevel?: string;
}

/**
 * `ff-detector backfill`: one UserLoadEvent per listed user (seed section 1). On an unrecoverable
 * send failure or SIGINT/SIGTERM, the users SQS did not accept go to a resume file, whose path is
 * printed; `--resume-from <file>` sends exactly those.
 */
export async function backfillCommand(flags: BackfillFlags): Promise<number> {
  const input = flags.resumeFrom ?? flags.userFile;
  if (!input) {
    process.stderr.write('ff-detector backfill: --user-file is required (or --resume-from)\n');
    return EXIT_USAGE;
  }
  const logger = createLogger(flags.logLevel);
  const config = loadConfig({
    configPath: flags.config ?? process.env.FF_DETECTOR_CONFIG,
    overrides: {
      ...(flags.rateLimit === undefined ? {} : { enqueue: { rateLimit: flags.rateLimit } }),
      ...(flags.queueUrl === undefined ? {} : { sqs: { queueUrl: flags.queueUrl } }),
      ...(flags.lookbackDays === undefined ? {} : { backfill: { lookbackDays: flags.lookbackDays } }),
      ...(flags.sink === undefined ? {} : { sink: flags.sink }),
    },
  });
  chooseSink(config, flags.dryRun ?? false); // refuses Valkey state with an accidental stdout sink (exit 2)
  const runtime = new Runtime(config, logger);
  const abort = new AbortController();
  const onSignal = (): void => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const dryRun = flags.dryRun ?? false;
    const location = resolveLocation(input, process.cwd());
    const source = new FileCandidateSource({ location, column: flags.resumeFrom ? null : flags.column, batchSize: 10_000 }, { objectStore: runtime.objectStore });
    const list = await readUserList(source, runtime.idPattern, config.backfill.maxUsers);
    if (list.invalid > 0) logger.warn({ invalid: list.invalid, examples: list.invalidExamples }, `${list.invalid} invalid lines in ${location} will not be sent`);
    const jobId = randomUUID();
    // The resume file is written before anything is sent — with everyone, replaced at the end by
    // who is left — so an unwritable path stops the job at once, and a crash leaves a list to resume.
    const resumeFile = dryRun ? null : path.resolve(flags.resumeFile ?? `ff-detector-resume-${jobId}.txt`);
    if (resumeFile) await writeResumeFile(resumeFile, list.ids);
    const sink = await runtime.openSink(dryRun);
    const bar = process.stderr.isTTY ? new ProgressBar(process.stderr) : undefined;
    const { sqs } = config;
    const job = new BackfillJob(list.ids, sink, await runtime.createLimiter(dryRun, sink), logger, {
      jobId,
      message: backfillMessageOf(config),
      retry: retryPolicyOf(config),
      concurrency: sqs.concurrency,
      progressEvery: bar ? Number.POSITIVE_INFINITY : 1000,
      signal: abort.signal,
      onProgress: (progress) => bar?.update(progress),
      gate: await runtime.createSendGate(dryRun, sink),
    });
    logger.info({ jobId: job.jobId, users: list.ids.length, duplicates: list.duplicates, invalid: list.invalid, sink: sink.description, rateLimit: dryRun ? null : config.enqueue.rateLimit }, 'backfill started');
    const result = await job.run();
    if (bar) {
      bar.update(result, true);
      bar.done();
    }
    if (resumeFile && result.remaining.length > 0) {
      await writeResumeFile(resumeFile, result.remaining);
      logger.warn({ resumeFile, remaining: result.remaining.length }, `${result.remaining.length} users not sent; resume with: ff-detector backfill --resume-from ${resumeFile}`);
    } else if (resumeFile) {
      await rm(resumeFile, { force: true });
    }
    const { remaining, ...summary } = result;
    const leftIn = remaining.length > 0 ? resumeFile : null;
    await writeLine(process.stdout, JSON.stringify({ ...summary, dryRun, remaining: remaining.length, invalid: list.invalid, duplicates: list.duplicates, invalidExamples: list.invalidExamples, resumeFile: leftIn }));
    return result.status === 'ok' ? EXIT_OK : EXIT_RUN_FAILED;
  } catch (error) {
    // A usage or configuration error goes to main.ts, printed as it is (exit 2). A failure of the
    // job itself is logged once — one line on a terminal, JSON for machines — and exits 1.
    if (error instanceof FfError && error.exitCode !== EXIT_RUN_FAILED) throw error;
    logger.error({ err: error }, `backfill failed: ${errorMessage(error)}`);
    return EXIT_RUN_FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await runtime.close();
  }
}

/** Replaces the resume file whole (written aside, then renamed), or says why it cannot. */
async function writeResumeFile(file: string, userIds: readonly string[]): Promise<void> {
  const aside = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(aside, userIds.length > 0 ? `${userIds.join('\n')}\n` : '');
    await rename(aside, file);
  } catch (error) {
    await rm(aside, { force: true });
    throw new FfError('CONFIG_INVALID', `cannot write the resume file ${file} (--resume-file): ${errorMessage(error)}; nothing was sent`, { cause: error });
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { tempDir } from './files.js';
import type { TimedSend } from '../../bench/rate-measure.js';

export const BIN = path.resolve(import.meta.dirname, '../../bin/ff-detector');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last stdout line parsed as JSON (the run or job summary), or {} when it is not JSON. */
  summary: Record<string, unknown>;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Acts on the running process (signals it, waits for a log line). */
  whileRunning?: (child: ChildProcess, output: () => string) => Promise<void>;
}

/** The installed CLI as a user runs it: a child process with its own cwd and environment. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '', ...options.env };
  const child = spawn(BIN, args, { cwd: options.cwd ?? tempDir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  if (options.whileRunning) await options.whileRunning(child, () => stderr);
  const [code] = (await exited) as [number | null];
  const last = stdout.trim().split('\n').at(-1) ?? '';
  let summary: Record<string, unknown> = {};
  try {
    summary = last.startsWith('{') ? (JSON.parse(last) as Record<string, unknown>) : {};
  } catch {
    summary = {};
  }
  return { code, stdout, stderr, summary };
}

/** The JSON log lines of a process's stderr (lines that are not JSON are left out). */
export function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The `send started` debug lines: when each request started (epoch ms) and its size. */
export function sendStarts(stderr: string): TimedSend[] {
  return logLines(stderr)
    .filter((line) => line.msg === 'send started')
    .map((line) => ({ at: Number(line.startedAt), count: Number(line.count) }));
}

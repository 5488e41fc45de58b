import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunSummary } from '../src/pipeline/summary.js';

const LAUNCHER = fileURLToPath(new URL('../../bin/ff-detector', import.meta.url));

// Runs a command and prints its peak RSS in KiB: getrusage(RUSAGE_CHILDREN) after the child
// exits is exact, where polling /proc could miss the peak.
const MEASURE = `
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
sys.stdout.write(result.stdout.decode().strip().split("\\n")[-1] + "\\n")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(result.returncode)
`;

export interface CliRun {
  peakRssMb: number;
  summary: RunSummary;
  /** Candidates per second over the run's own duration. */
  perSecond: number;
}

/**
 * The real `ff-detector detect --dry-run` (the installed launcher, its own heap settings) against
 * real Valkey, output discarded; `configYaml` is added to the bench's state settings.
 */
export function runCli(options: { dir: string; valkeyUrl: string; knownSetKey: string; rulesFile: string; args: string[]; configYaml?: string; env?: Record<string, string> }): CliRun {
  const config = path.join(options.dir, `bench-config-${Date.now()}.yaml`);
  writeFileSync(config, `state:\n  knownSetKey: ${options.knownSetKey}\n  loadedKeyPrefix: "bench:loaded:"\n${options.configYaml ?? 'enqueue:\n  budget: 0\n'}`);
  const output = execFileSync('python3', ['-c', MEASURE, LAUNCHER, 'detect', '--dry-run', '--config', config, '--flags', options.rulesFile, '--log-level', 'warn', ...options.args], {
    encoding: 'utf8',
    env: { ...process.env, ...options.env, VALKEY_URL: options.valkeyUrl },
    maxBuffer: 1024 * 1024 * 1024,
  });
  const lines = output.trim().split('\n');
  const rssKib = lines.at(-1);
  const summary = JSON.parse(lines.at(-2) ?? '{}') as RunSummary;
  if (summary.status !== 'ok') throw new Error(`bench CLI run failed: ${summary.error ?? output.slice(-500)}`);
  return { peakRssMb: Number(rssKib) / 1024, summary, perSecond: summary.candidates / (summary.durationMs / 1000) };
}

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

/**
 * Peak RSS of the real `ff-detector detect --dry-run` (the installed launcher, its own heap
 * settings) over a candidate file, against real Valkey, its output discarded.
 */
export function cliPeakRss(options: { dir: string; valkeyUrl: string; knownSetKey: string; candidatesFile: string; rulesFile: string }): {
  peakRssMb: number;
  summary: RunSummary;
} {
  const config = path.join(options.dir, 'bench-config.yaml');
  writeFileSync(config, `state:\n  knownSetKey: ${options.knownSetKey}\n  loadedKeyPrefix: "bench:loaded:"\nenqueue:\n  budget: 0\n`);
  const output = execFileSync(
    'python3',
    ['-c', MEASURE, LAUNCHER, 'detect', '--dry-run', '--config', config, '--candidates', options.candidatesFile, '--flags', options.rulesFile, '--log-level', 'warn'],
    { encoding: 'utf8', env: { ...process.env, VALKEY_URL: options.valkeyUrl }, maxBuffer: 1024 * 1024 * 1024 },
  );
  const [summaryLine, rssKib] = output.trim().split('\n');
  return { peakRssMb: Number(rssKib) / 1024, summary: JSON.parse(summaryLine as string) as RunSummary };
}

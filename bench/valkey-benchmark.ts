import { execFileSync } from 'node:child_process';

/** `valkey-benchmark -P 1000` SISMEMBER against the same server: what Valkey itself can do. */
export function runValkeyBenchmark(valkeyUrl: string, key: string, requests = 5_000_000): number {
  const url = new URL(valkeyUrl);
  const output = execFileSync(
    'valkey-benchmark',
    ['-h', url.hostname, '-p', url.port, '-P', '1000', '-n', String(requests), '-r', '10000000', '-q', 'SISMEMBER', key, 'user-__rand_int__'],
    { encoding: 'utf8' },
  );
  const match = /([\d.]+) requests per second/.exec(output);
  if (!match?.[1]) throw new Error(`cannot read valkey-benchmark output: ${output}`);
  return Number(match[1]);
}

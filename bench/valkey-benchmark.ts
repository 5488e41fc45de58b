import { execFileSync } from 'node:child_process';

/**
 * `valkey-benchmark -P 1000` SISMEMBER against the same server: what Valkey itself can do. With
 * `cluster`, `--cluster` against the same cluster (the key needs a hash tag there).
 */
export function runValkeyBenchmark(valkeyUrl: string, key: string, options: { requests?: number; cluster?: boolean } = {}): number {
  const url = new URL(valkeyUrl);
  const output = execFileSync(
    'valkey-benchmark',
    [...(options.cluster ? ['--cluster'] : []), '-h', url.hostname, '-p', url.port, '-P', '1000', '-n', String(options.requests ?? 5_000_000), '-r', '10000000', '-q', 'SISMEMBER', key, 'user-__rand_int__'],
    { encoding: 'utf8' },
  );
  const match = /([\d.]+) requests per second/.exec(output);
  if (!match?.[1]) throw new Error(`cannot read valkey-benchmark output: ${output}`);
  return Number(match[1]);
}

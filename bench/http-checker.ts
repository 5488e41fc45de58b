import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { HttpFlagChecker } from '../src/flags/http-checker.js';
import { silentLogger } from '../src/logger.js';

export interface HttpBenchResult {
  concurrency: number;
  perUserChecksPerS: number;
  batchChecksPerS: number;
}

/** Checks/s of the http flag checker at its default concurrency against a local flag service. */
export async function benchHttpChecker(users: number, concurrency = 16): Promise<HttpBenchResult> {
  const service = spawn(process.execPath, [fileURLToPath(new URL('./flag-service.js', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [firstLine] = (await once(service.stdout, 'data')) as [Buffer];
  const base = `http://127.0.0.1:${firstLine.toString().trim()}`;
  try {
    const ids = Array.from({ length: users }, (_, i) => `user-${i}`);
    const measure = async (batchUrl: string | null): Promise<number> => {
      const checker = new HttpFlagChecker(
        {
          flag: 'consumer_graph_ingestion',
          urlTemplate: `${base}/flags/{flag}/users/{userId}`,
          batchUrl,
          batchSize: 100,
          responsePath: 'enabled',
          batchResponsePath: 'results',
          headers: {},
          concurrency,
          timeoutMs: 5000,
          retries: 0,
          retryBaseMs: 100,
          retryMaxMs: 100,
        },
        silentLogger(),
      );
      await checker.check(ids.slice(0, 1000)); // warm-up: connections, JIT
      const started = performance.now();
      const results = await checker.check(ids);
      const seconds = (performance.now() - started) / 1000;
      if (results.some((result) => result === 'unevaluable')) throw new Error('http bench: unanswered checks');
      return users / seconds;
    };
    return { concurrency, perUserChecksPerS: await measure(null), batchChecksPerS: await measure(`${base}/batch`) };
  } finally {
    service.kill();
  }
}

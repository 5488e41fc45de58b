import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests share one Valkey and one SQS server but use unique keys and queues per
    // test, so files may run in parallel; hooks wait on conditions, never on fixed sleeps.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/closing-line-reporter.ts'],
  },
});

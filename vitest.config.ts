import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests share one Valkey and one SQS server but use unique keys and queues per
    // test, so files may run in parallel; hooks wait on conditions, never on fixed sleeps.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/closing-line-reporter.ts'],
    // The SDK's notice that it will need Node 22 in 2027 is noise in test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});

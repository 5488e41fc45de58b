import { tmpdir } from 'node:os';
import type { DetectionOptions } from '../../src/pipeline/detection.js';
import { DEFAULT_RUN_HEALTH } from '../../src/pipeline/summary.js';

/** Detection options for tests: no budget, fast retries, a simple ID pattern. */
export const detectionOptions = (overrides: Partial<DetectionOptions> = {}): DetectionOptions => ({
  strategy: 'test',
  idPattern: /^[a-z0-9-]+$/,
  dryRun: false,
  forgetDisabled: true,
  forgetPolicy: { maxFraction: 0.1, floor: 100, released: () => Promise.resolve(false) },
  budget: 0,
  maxInFlightBatches: 4,
  pending: { maxInMemory: 1_000_000, spillDir: tmpdir() },
  sendConcurrency: 1,
  message: { reason: 'r', lookbackDays: 365, priority: 'low', requestIdPrefix: 'p' },
  retry: { entryRetries: 2, baseMs: 1, maxMs: 2 },
  health: DEFAULT_RUN_HEALTH,
  ...overrides,
});

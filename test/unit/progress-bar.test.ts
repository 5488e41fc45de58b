import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProgressBar } from '../../src/backfill/progress-bar.js';

describe('ProgressBar', () => {
  it('redraws one line in place with count, percentage, elapsed time and ETA', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const bar = new ProgressBar(out);
    bar.update({ jobId: 'j', status: 'running', total: 75_000, sent: 5000, failed: 0, startedAt: '', elapsedMs: 500_000, etaSeconds: 7000, error: null }, true);
    bar.update({ jobId: 'j', status: 'running', total: 75_000, sent: 5001, failed: 0, startedAt: '', elapsedMs: 500_100, etaSeconds: 7000, error: null });
    bar.done();
    expect(text).toBe(`\r[==                            ] 5000/75000 6.7% 8m20s ETA 1h56m40s\x1b[K\n`); // the second update came too soon to redraw
  });
});

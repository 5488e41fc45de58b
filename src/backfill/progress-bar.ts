import type { Writable } from 'node:stream';
import { formatElapsed } from '../time.js';
import type { BackfillProgress } from './job.js';

/** A one-line progress bar, redrawn in place on a terminal (stderr), at most 10 times a second. */
export class ProgressBar {
  private lastDraw = 0;

  constructor(private readonly out: Writable) {}

  update(progress: BackfillProgress, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const { sent, total, elapsedMs, etaSeconds } = progress;
    const ratio = total === 0 ? 1 : sent / total;
    const width = 30;
    const filled = Math.round(ratio * width);
    const eta = etaSeconds === null ? '' : ` ETA ${formatElapsed(etaSeconds * 1000)}`;
    this.out.write(`\r[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${sent}/${total} ${(ratio * 100).toFixed(1)}% ${formatElapsed(elapsedMs)}${eta}\x1b[K`);
  }

  done(): void {
    this.out.write('\n');
  }
}

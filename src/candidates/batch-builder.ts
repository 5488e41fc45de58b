import type { CandidateBatch, RejectedCandidate } from './types.js';

/** Collects IDs and rejects into fixed-size batches. */
export class BatchBuilder {
  private ids: string[] = [];
  private positions: Uint32Array;
  private rejected: RejectedCandidate[] = [];

  constructor(
    private readonly origin: string,
    private readonly size: number,
  ) {
    this.positions = new Uint32Array(size);
  }

  add(id: string, position: number): void {
    this.positions[this.ids.length] = position;
    this.ids.push(id);
  }

  reject(position: number, reason: string): void {
    this.rejected.push({ position, reason });
  }

  get full(): boolean {
    return this.ids.length >= this.size || this.rejected.length >= this.size;
  }

  /** Hands over the collected batch (undefined when empty) and starts a new one. */
  take(): CandidateBatch | undefined {
    if (this.ids.length === 0 && this.rejected.length === 0) return undefined;
    const batch: CandidateBatch = {
      origin: this.origin,
      ids: this.ids,
      positions: this.positions.subarray(0, this.ids.length),
      rejected: this.rejected,
    };
    this.ids = [];
    this.positions = new Uint32Array(this.size);
    this.rejected = [];
    return batch;
  }
}

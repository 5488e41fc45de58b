import { BatchBuilder } from './batch-builder.js';
import type { CandidateBatch, CandidateSource } from './types.js';

/** Candidates given in memory (an admin request's list), trimmed, positions counted from 1. */
export function sourceOfIds(ids: readonly string[], origin: string, batchSize = 10_000): CandidateSource {
  return {
    description: origin,
    async *batches(): AsyncGenerator<CandidateBatch> {
      const batch = new BatchBuilder(origin, batchSize);
      for (let i = 0; i < ids.length; i++) {
        const id = (ids[i] as string).trim();
        if (id !== '') batch.add(id, i + 1);
        if (batch.full) yield batch.take() as CandidateBatch;
      }
      const last = batch.take();
      if (last) yield last;
    },
  };
}

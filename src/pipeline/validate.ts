import type { CandidateBatch } from '../candidates/types.js';
import type { SeenSet } from './seen-set.js';
import type { InvalidExample, RunCounts } from './summary.js';

export const MAX_INVALID_EXAMPLES = 10;

/**
 * The pipeline's first stage: counts every candidate, turns lines that are not valid IDs into
 * `invalid` (keeping the first few, with where they came from) and drops repeats.
 * Returns the IDs to evaluate.
 */
export function acceptCandidates(
  batch: CandidateBatch,
  idPattern: RegExp,
  seen: SeenSet,
  counts: RunCounts,
  examples: InvalidExample[],
): string[] {
  counts.candidates += batch.ids.length + batch.rejected.length;
  for (const rejected of batch.rejected) {
    counts.invalid++;
    if (examples.length < MAX_INVALID_EXAMPLES) examples.push({ origin: batch.origin, line: rejected.position, reason: rejected.reason });
  }
  const accepted: string[] = [];
  for (let i = 0; i < batch.ids.length; i++) {
    const id = batch.ids[i] as string;
    if (!idPattern.test(id)) {
      counts.invalid++;
      if (examples.length < MAX_INVALID_EXAMPLES) {
        examples.push(invalidIdExample(batch.origin, batch.positions[i] as number, id));
      }
    } else if (seen.add(id)) {
      accepted.push(id);
    } else {
      counts.duplicates++;
    }
  }
  return accepted;
}

/** How an ID that fails the pattern is reported: where it was, why, and its first 40 characters. */
export function invalidIdExample(origin: string, line: number, id: string): InvalidExample {
  const reason = id.includes('\uFFFD') ? 'not valid UTF-8' : 'does not match idPattern';
  return { origin, line, reason, value: id.length > 40 ? `${id.slice(0, 40)}…` : id };
}

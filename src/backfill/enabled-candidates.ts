import type { CandidateSource } from '../candidates/types.js';
import { FfError } from '../errors.js';
import type { FlagChecker } from '../flags/types.js';
import { SeenSet } from '../pipeline/seen-set.js';
import { emptyCounts, type InvalidExample } from '../pipeline/summary.js';
import { acceptCandidates } from '../pipeline/validate.js';
import type { UserList } from './user-list.js';

/**
 * The users the flag enables among the candidate source's, for a backfill of "every enabled
 * candidate": the pipeline's first stage (validation, repeats dropped by hash) and the flag
 * check, without the known-set bookkeeping of a detection run. Holds only the enabled users, at
 * most `cap` of them.
 */
export async function enabledCandidates(source: CandidateSource, checker: FlagChecker, idPattern: RegExp, cap: number, signal: AbortSignal): Promise<UserList> {
  const counts = emptyCounts();
  const invalidExamples: InvalidExample[] = [];
  const seen = new SeenSet();
  const ids: string[] = [];
  for await (const batch of source.batches(signal)) {
    signal.throwIfAborted();
    const valid = acceptCandidates(batch, idPattern, seen, counts, invalidExamples);
    const results = await checker.check(valid);
    valid.forEach((id, i) => {
      if (results[i] !== 'enabled') return;
      if (ids.length >= cap) throw new FfError('INPUT_MALFORMED', `the candidate source enables more than ${cap} users, the cap for one backfill job (backfill.maxUsers)`);
      ids.push(id);
    });
  }
  return { ids, invalid: counts.invalid, duplicates: counts.duplicates, invalidExamples };
}

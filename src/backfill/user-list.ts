import type { CandidateSource } from '../candidates/types.js';
import { FfError } from '../errors.js';
import type { InvalidExample } from '../pipeline/summary.js';
import { MAX_INVALID_EXAMPLES, invalidIdExample } from '../pipeline/validate.js';

export interface UserList {
  ids: string[];
  invalid: number;
  duplicates: number;
  invalidExamples: InvalidExample[];
}

/**
 * Reads a backfill's users whole (a job is capped, 1,000,000 by default): invalid IDs are counted
 * with where they came from, repeats dropped, and a list over the cap refused before anything is
 * sent.
 */
export async function readUserList(source: CandidateSource, idPattern: RegExp, cap: number): Promise<UserList> {
  const seen = new Set<string>();
  const list: UserList = { ids: [], invalid: 0, duplicates: 0, invalidExamples: [] };
  const noteInvalid = (example: InvalidExample): void => {
    list.invalid++;
    if (list.invalidExamples.length < MAX_INVALID_EXAMPLES) list.invalidExamples.push(example);
  };
  for await (const batch of source.batches()) {
    for (const rejected of batch.rejected) noteInvalid({ origin: batch.origin, line: rejected.position, reason: rejected.reason });
    batch.ids.forEach((id, i) => {
      if (!idPattern.test(id)) noteInvalid(invalidIdExample(batch.origin, batch.positions[i] as number, id));
      else if (seen.has(id)) list.duplicates++;
      else if (seen.size >= cap) throw tooMany(source.description, cap);
      else {
        seen.add(id);
        list.ids.push(id);
      }
    });
  }
  return list;
}

export function tooMany(origin: string, cap: number): FfError {
  return new FfError('INPUT_MALFORMED', `${origin} holds more than ${cap} user IDs, the cap for one backfill job (backfill.maxUsers); split it`);
}

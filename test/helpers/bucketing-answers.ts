// What a process answers about bucketing, for the cross-process stability property
// (test/unit/properties/evaluator.properties.test.ts). The same code runs in the test's own
// process, with src/flags/bucketing.ts imported as usual, and in a child process, transpiled
// beside a transpiled bucketing.js (test/helpers/bucketing-process.ts): the bucketing module is
// passed in, never imported here, so that this file runs unchanged in both places.
import { createInterface } from 'node:readline';
import type * as Bucketing from '../../src/flags/bucketing.js';

export type BucketingModule = Pick<typeof Bucketing, 'createRolloutTest' | 'flipperBucket' | 'unleashNormalized' | 'launchDarklyBucket' | 'flagdBucket'>;

/** One (flag, user, algorithm with its parameters, percentage). */
export interface BucketQuestion {
  flag: string;
  userId: string;
  bucketing: Bucketing.BucketingConfig;
  percentage: number;
}

/** The user's bucket under the algorithm, and whether a rollout of `percentage` includes it. */
export interface BucketAnswer {
  bucket: number;
  inRollout: boolean;
}

/** The raw bucket each algorithm computes (README, "Flag rules file", the bucketing table). */
export function bucketOf(module: BucketingModule, question: BucketQuestion): number {
  const { flag, userId, bucketing } = question;
  switch (bucketing.algorithm) {
    case 'flipper':
      return module.flipperBucket(flag, userId);
    case 'unleash':
      return module.unleashNormalized(bucketing.groupId ?? flag, userId, bucketing.seed ?? 0);
    case 'launchdarkly':
      return module.launchDarklyBucket(flag, bucketing.salt ?? '', userId, bucketing.seed);
    case 'flagd':
      return module.flagdBucket(flag, userId, 100_000);
  }
}

export function answer(module: BucketingModule, question: BucketQuestion): BucketAnswer {
  return {
    bucket: bucketOf(module, question),
    inRollout: module.createRolloutTest(question.flag, question.percentage, question.bucketing)(question.userId),
  };
}

/**
 * `value` as one line of JSON. readline also ends lines at U+2028 and U+2029, which JSON leaves
 * unescaped inside strings: they are escaped here.
 */
export function jsonLine(value: unknown): string {
  const json = JSON.stringify(value).replace(/[\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16)}`);
  return `${json}\n`;
}

/**
 * The child process's loop: each stdin line is a JSON array of questions, answered by one stdout
 * line, a JSON array of answers in the same order. Ends when stdin closes.
 */
export async function serve(module: BucketingModule): Promise<void> {
  for await (const line of createInterface({ input: process.stdin })) {
    const questions = JSON.parse(line) as BucketQuestion[];
    process.stdout.write(jsonLine(questions.map((question) => answer(module, question))));
  }
}

import { createHash } from 'node:crypto';
import { crc32 } from './crc32.js';
import { murmur3x86_32 } from './murmur3.js';

/**
 * The published percentage-rollout bucketing algorithms, bit-exact with their own SDKs (test
 * vectors and sources are cited in test/unit/bucketing.test.ts). Each decides whether `userId` is
 * inside a rollout of `percentage` (0–100, fractions allowed) for `flag`.
 */
export type BucketingConfig =
  | { algorithm: 'flipper' }
  | { algorithm: 'unleash'; groupId?: string | undefined; seed?: number | undefined }
  | { algorithm: 'launchdarkly'; salt?: string | undefined; seed?: number | undefined }
  | { algorithm: 'flagd' };

export type BucketingAlgorithm = BucketingConfig['algorithm'];
export const BUCKETING_ALGORITHMS: readonly BucketingAlgorithm[] = ['flipper', 'unleash', 'launchdarkly', 'flagd'];

export type RolloutTest = (userId: string) => boolean;

/**
 * Flipper percentage_of_actors: crc32(flag + id) % 100,000 < percentage × 1,000. The CRC of the
 * flag name can be computed once and continued over the ID (crc32(id, crc32(flag))), which saves
 * building a string per user on the hot path.
 */
export function flipperBucket(flag: string, userId: string, flagCrc = crc32(flag)): number {
  return crc32(userId, flagCrc) % 100_000;
}

/** Unleash normalizedValue: murmur3(`groupId:id`, seed) % 100 + 1, in 1…100. */
export function unleashNormalized(groupId: string, userId: string, seed = 0): number {
  return (murmur3x86_32(`${groupId}:${userId}`, seed) % 100) + 1;
}

/** 0xFFFFFFFFFFFFFFF, as the SDKs' float64 division sees it: it rounds to exactly 2^60. */
const LAUNCHDARKLY_SCALE = 2 ** 60;

/**
 * LaunchDarkly bucket in [0, 1): sha1 of `flag.salt.id` (or `seed.id` when a seed is set, as the
 * JS SDK does: seed 0 counts as unset), first 15 hex digits over 0xFFFFFFFFFFFFFFF, in float64.
 */
export function launchDarklyBucket(flag: string, salt: string, userId: string, seed?: number): number {
  const prefix = seed ? String(seed) : `${flag}.${salt}`;
  const hex = createHash('sha1').update(`${prefix}.${userId}`).digest('hex').substring(0, 15);
  return parseInt(hex, 16) / LAUNCHDARKLY_SCALE;
}

const TWO_POW_32 = 2 ** 32;

/**
 * flagd `fractional` (v0.15+): bucket = (murmur3(flag + id) × totalWeight) >> 32. Exact in
 * float64 while totalWeight < 2^21, which the rollout's 100,000 stays under.
 */
export function flagdBucket(flag: string, userId: string, totalWeight: number): number {
  return Math.floor((murmur3x86_32(flag + userId) * totalWeight) / TWO_POW_32);
}

/** Builds the rollout test for one flag, percentage and algorithm. */
export function createRolloutTest(flag: string, percentage: number, bucketing: BucketingConfig): RolloutTest {
  if (percentage <= 0) return () => false;
  switch (bucketing.algorithm) {
    case 'flipper': {
      if (percentage >= 100) return () => true; // Flipper short-circuits 100 the same way
      const threshold = percentage * 1_000;
      const flagCrc = crc32(flag);
      return (id) => flipperBucket(flag, id, flagCrc) < threshold;
    }
    case 'unleash': {
      const groupId = bucketing.groupId ?? flag;
      const seed = bucketing.seed ?? 0;
      return (id) => unleashNormalized(groupId, id, seed) <= percentage;
    }
    case 'launchdarkly': {
      // A two-variation rollout: weights in 100,000ths, the "on" variation first.
      const limit = (percentage * 1_000) / 100_000;
      const salt = bucketing.salt ?? '';
      return (id) => launchDarklyBucket(flag, salt, id, bucketing.seed) < limit;
    }
    case 'flagd': {
      // fractional with variants [on: p, off: 100 − p]; weights scaled by 1,000 so that
      // fractional percentages stay whole numbers, as flagd requires.
      const onWeight = Math.round(percentage * 1_000);
      return (id) => flagdBucket(flag, id, 100_000) < onWeight;
    }
  }
}

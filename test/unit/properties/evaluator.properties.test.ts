// Property-based tests of the embedded flag evaluator (src/flags/: snapshot.ts, rules-checker.ts,
// bucketing.ts) against README "Flag rules file". Deterministic: every fc.assert names its seed
// and number of runs.
import { createHash } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bucketingModule from '../../../src/flags/bucketing.js';
import { BUCKETING_ALGORITHMS, createRolloutTest, flagdBucket, flipperBucket, launchDarklyBucket, unleashNormalized, type BucketingAlgorithm, type BucketingConfig } from '../../../src/flags/bucketing.js';
import { murmur3x86_32 } from '../../../src/flags/murmur3.js';
import { RulesFlagChecker } from '../../../src/flags/rules-checker.js';
import { FlagSnapshot } from '../../../src/flags/snapshot.js';
import type { FlagResult } from '../../../src/flags/types.js';
import { answer, type BucketQuestion } from '../../helpers/bucketing-answers.js';
import { BucketingProcess } from '../../helpers/bucketing-process.js';

const SEED = 0x5eed_f1a9;

// ---------------------------------------------------------------------------------------------
// Generators

/** The characters of the default idPattern: what real candidate IDs and flag names are made of. */
const ID_CHARS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@-'];
const idText = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 1, maxLength });

/** A user ID: mostly what the default idPattern admits, sometimes any Unicode (a custom pattern). */
const userIdArb = fc.oneof({ weight: 4, arbitrary: idText(24) }, { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }) });

const flagNameArb = fc.oneof(fc.constant('consumer_graph_ingestion'), idText(32), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }));

/** The schema allows any integer seed (z.number().int()); 0 is common and means "unset" for LaunchDarkly. */
const seedArb = fc.oneof(fc.constant(0), fc.integer(), fc.maxSafeInteger());
const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });

/** One algorithm with arbitrary parameters, as the rules file can give them. */
function bucketingArb(algorithm: BucketingAlgorithm): fc.Arbitrary<BucketingConfig> {
  switch (algorithm) {
    case 'flipper':
      return fc.constant({ algorithm });
    case 'unleash':
      return fc.record({ groupId: optional(idText(20)), seed: optional(seedArb) }).map((params) => ({ algorithm, ...params }));
    case 'launchdarkly':
      return fc.record({ salt: optional(fc.string({ maxLength: 12 })), seed: optional(seedArb) }).map((params) => ({ algorithm, ...params }));
    case 'flagd':
      return fc.constant({ algorithm });
  }
}
const anyBucketingArb = fc.oneof(...BUCKETING_ALGORITHMS.map(bucketingArb));

/** 0–100: whole percentages, Flipper-style thousandths (41.687), any double, and both ends. */
const percentageArb = fc.oneof(
  fc.integer({ min: 0, max: 100 }),
  fc.integer({ min: 0, max: 100_000 }).map((thousandths) => thousandths / 1_000),
  fc.double({ min: 0, max: 100, noNaN: true }),
  fc.constantFrom(0, 100),
);

/** Rules that cannot be decided offline (percentageOfTime, groups), as load-rules.ts names them. */
const unevaluableRulesArb = fc.array(fc.constantFrom('percentageOfTime: 5', 'groups: admins'), { maxLength: 2 });

/**
 * Percentages just around where `userId` enters the rollout, from its own bucket, so that the
 * properties also probe the edges (where an off-by-one or a rounding step lives), not only the
 * random percentages that almost never land there.
 */
function edgesOf(flag: string, config: BucketingConfig, userId: string): number[] {
  let edges: number[];
  switch (config.algorithm) {
    case 'flipper': {
      const bucket = flipperBucket(flag, userId);
      edges = [bucket / 1_000, (bucket + 0.5) / 1_000, (bucket + 1) / 1_000];
      break;
    }
    case 'unleash': {
      const normalized = unleashNormalized(config.groupId ?? flag, userId, config.seed ?? 0);
      edges = [normalized - 1, normalized - 0.5, normalized];
      break;
    }
    case 'launchdarkly': {
      const bucket = launchDarklyBucket(flag, config.salt ?? '', userId, config.seed) * 100;
      edges = [bucket * (1 - 1e-15), bucket, bucket * (1 + 1e-15)];
      break;
    }
    case 'flagd': {
      const bucket = flagdBucket(flag, userId, 100_000);
      edges = [bucket / 1_000, (bucket + 0.4999) / 1_000, (bucket + 0.5) / 1_000, (bucket + 1) / 1_000];
      break;
    }
  }
  return edges.map((p) => Math.min(100, Math.max(0, p)));
}

interface Rules {
  flag: string;
  enabled: boolean;
  users: string[];
  excludedUsers: string[];
  segments: Map<string, string[]>;
  percentage: number;
  bucketing: BucketingConfig;
  unevaluableRules: string[];
  /** Every user the lists mention, and users on none: the IDs to evaluate. */
  pool: string[];
}

/**
 * A snapshot over a small pool of users, so that the lists overlap: users both allowed and
 * excluded, in several segments, on no list at all.
 */
const rulesArb: fc.Arbitrary<Rules> = fc
  .uniqueArray(userIdArb, { minLength: 1, maxLength: 24 })
  .chain((pool) =>
    fc.record({
      flag: flagNameArb,
      enabled: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      users: fc.subarray(pool),
      excludedUsers: fc.subarray(pool),
      segments: fc.array(fc.tuple(idText(12), fc.subarray(pool)), { maxLength: 3 }).map((entries) => new Map(entries)),
      bucketing: anyBucketingArb,
      unevaluableRules: unevaluableRulesArb,
      pool: fc.constant(pool),
    }),
  )
  .chain((rules) => {
    // Half the time, a percentage at one user's rollout edge, in thousandths (what every one of
    // the flag systems can express): where the README's comparisons and ours could part.
    const edges = rules.pool.flatMap((id) => edgesOf(rules.flag, rules.bucketing, id).map((p) => Math.round(p * 1_000) / 1_000));
    return fc.oneof(percentageArb, fc.constantFrom(...edges)).map((percentage) => ({ ...rules, percentage }));
  });

const snapshotOf = (rules: Rules): FlagSnapshot => new FlagSnapshot({ ...rules, sources: [] });

// ---------------------------------------------------------------------------------------------
// The README, restated

/**
 * README's bucketing table, restated on its own arithmetic (zlib's CRC-32 of the concatenation,
 * BigInt shifts, sha1 by hand) rather than through bucketing.ts's shortcuts (a CRC continued from
 * the flag's, float division). flagd weights are whole numbers, so its `p × 1000` is rounded.
 */
function readmeInRollout(flag: string, percentage: number, config: BucketingConfig, userId: string): boolean {
  switch (config.algorithm) {
    case 'flipper':
      return zlibCrc32(flag + userId) % 100_000 < percentage * 1_000;
    case 'unleash':
      return (murmur3x86_32(`${config.groupId ?? flag}:${userId}`, config.seed ?? 0) % 100) + 1 <= percentage;
    case 'launchdarkly': {
      const prefix = config.seed ? String(config.seed) : `${flag}.${config.salt ?? ''}`;
      const hex = createHash('sha1').update(`${prefix}.${userId}`).digest('hex').slice(0, 15);
      // Both sides as the SDKs' float64 sees them (0xFFFFFFFFFFFFFFF rounds to 2^60).
      return Number(BigInt(`0x${hex}`)) / Number(0xfffffffffffffffn) < percentage / 100;
    }
    case 'flagd':
      return Number((BigInt(murmur3x86_32(flag + userId)) * 100_000n) >> 32n) < Math.round(percentage * 1_000);
  }
}

/** README's precedence, restated: off → disabled; excluded → disabled; listed → enabled; else the rollout. */
function readmeResult(rules: Rules, userId: string): FlagResult {
  if (!rules.enabled) return 'disabled';
  if (rules.excludedUsers.includes(userId)) return 'disabled';
  if (rules.users.includes(userId)) return 'enabled';
  for (const members of rules.segments.values()) if (members.includes(userId)) return 'enabled';
  if (readmeInRollout(rules.flag, rules.percentage, rules.bucketing, userId)) return 'enabled';
  // Left out by the rollout: a rule we cannot evaluate might still enable them.
  return rules.unevaluableRules.length > 0 ? 'unevaluable' : 'disabled';
}

describe('flag evaluator: precedence (property)', () => {
  // Catches any reordering of the rules (an allowed user who is also excluded coming out enabled,
  // a segment overriding enabled: false, the rollout enabling an excluded user), an unevaluable
  // rule masking an explicit decision, a lost segment, a batch answered out of order, and any
  // rollout arithmetic that drifts from README's table.
  it('every user gets exactly what README "Flag rules file" says, one by one and in a batch', async () => {
    await fc.assert(
      fc.asyncProperty(rulesArb, async (rules) => {
        const snapshot = snapshotOf(rules);
        const expected = rules.pool.map((id) => readmeResult(rules, id));
        expect(rules.pool.map((id) => snapshot.evaluate(id))).toEqual(expected);
        expect(await new RulesFlagChecker(snapshot).check(rules.pool)).toEqual(expected);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Monotonicity

type Listing = 'none' | 'allowed' | 'excluded';

describe.each(BUCKETING_ALGORITHMS)('flag evaluator: raising the percentage (property, %s)', (algorithm) => {
  // Catches a rollout that is not nested — a bucket compared the wrong way, the 100 % or 0 %
  // short-circuit inverted, a rounding step that is not monotone, the percentage used as a
  // modulus or a salt — at the level of the rollout test and of a whole snapshot whose other
  // rules (allowed, excluded, unevaluable) stay fixed.
  it('never disables anyone: whoever is enabled at p is enabled at every p′ ≥ p', () => {
    const usersArb = fc.uniqueArray(fc.record({ id: userIdArb, listing: fc.constantFrom<Listing>('none', 'none', 'allowed', 'excluded') }), { minLength: 1, maxLength: 12, selector: (user) => user.id });
    fc.assert(
      fc.property(flagNameArb, bucketingArb(algorithm), usersArb, fc.array(percentageArb, { minLength: 1, maxLength: 5 }), unevaluableRulesArb, (flag, config, users, randomPercentages, unevaluableRules) => {
        const percentages = [...randomPercentages, ...users.flatMap((user) => edgesOf(flag, config, user.id))].sort((a, b) => a - b);
        const ids = users.map((user) => user.id);
        const snapshotAt = (percentage: number): FlagSnapshot =>
          new FlagSnapshot({
            flag,
            enabled: true,
            users: users.filter((user) => user.listing === 'allowed').map((user) => user.id),
            excludedUsers: users.filter((user) => user.listing === 'excluded').map((user) => user.id),
            segments: new Map(),
            percentage,
            bucketing: config,
            unevaluableRules,
          });
        let previous: { percentage: number; inRollout: boolean[]; results: FlagResult[] } | undefined;
        for (const percentage of percentages) {
          const rollout = createRolloutTest(flag, percentage, config);
          const current = { percentage, inRollout: ids.map((id) => rollout(id)), results: snapshotAt(percentage).evaluateBatch(ids) };
          if (previous) {
            ids.forEach((id, i) => {
              const context = `${id} at ${previous?.percentage}% then ${percentage}%`;
              if (previous?.inRollout[i]) expect(current.inRollout[i], `rollout: ${context}`).toBe(true);
              if (previous?.results[i] === 'enabled') expect(current.results[i], `snapshot: ${context}`).toBe('enabled');
            });
          }
          previous = current;
        }
      }),
      { seed: SEED + BUCKETING_ALGORITHMS.indexOf(algorithm), numRuns: 150 },
    );
  });
});

describe('flag evaluator: whole-thousandth rollouts (property)', () => {
  // flagd's weights are whole numbers: a rollout of k thousandths of a percent is the variants
  // [on: k, off: 100,000 − k], which hold exactly the users whose bucket is below k. Catches
  // p × 1000 truncated instead of rounded: 741 of the 100,001 thousandths come out just below k
  // in float64 (1.001 × 1000 = 1000.9999999999999) and would lose the users of bucket k − 1.
  it('flagd: a rollout of k/1000 % holds exactly the users whose bucket is below k', () => {
    fc.assert(
      fc.property(flagNameArb, fc.array(userIdArb, { minLength: 1, maxLength: 20, size: 'medium' }), (flag, users) => {
        for (const id of users) {
          const bucket = flagdBucket(flag, id, 100_000);
          for (const k of [bucket, bucket + 1]) {
            expect(createRolloutTest(flag, k / 1_000, { algorithm: 'flagd' })(id), `${id} (bucket ${bucket}) at ${k / 1_000}%`).toBe(bucket < k);
          }
        }
      }),
      { seed: SEED, numRuns: 1_000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Stability

const questionArb: fc.Arbitrary<BucketQuestion> = fc.record({ flag: flagNameArb, userId: userIdArb, bucketing: anyBucketingArb, percentage: percentageArb });
const questionsArb = fc.array(questionArb, { minLength: 1, maxLength: 25 });

describe('flag evaluator: bucketing is stable (property)', () => {
  // Catches bucketing that depends on anything but its inputs: state carried from one call to the
  // next (a shared buffer, a cache keyed too loosely — flipper caches the flag's CRC in its rollout
  // test), or call order.
  it('gives the same bucket and decision every time, in any order, from fresh or reused rollout tests', () => {
    fc.assert(
      fc.property(questionsArb, (questions) => {
        const first = questions.map((question) => answer(bucketingModule, question));
        const again = [...questions].reverse().map((question) => answer(bucketingModule, question)).reverse();
        expect(again).toEqual(first);
        // One rollout test per (flag, percentage, algorithm), reused for every user, as a snapshot does.
        const [lead] = questions as [BucketQuestion];
        const reused = createRolloutTest(lead.flag, lead.percentage, lead.bucketing);
        const users = questions.map((question) => question.userId);
        expect(users.map((id) => reused(id))).toEqual(users.map((id) => createRolloutTest(lead.flag, lead.percentage, lead.bucketing)(id)));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  let child: BucketingProcess;
  beforeAll(() => {
    child = BucketingProcess.start();
  });
  afterAll(async () => {
    await child.close();
  });

  // Catches anything per process in bucketing: a random salt or hash seed chosen at start-up, the
  // pid, the environment or locale, module-load order. One child process for the whole property,
  // asked one batch per run; it runs the current src/flags (transpiled), not a stale dist/.
  it('gives the same buckets and decisions in a separate Node.js process', async () => {
    let asked = 0;
    await fc.assert(
      fc.asyncProperty(questionsArb, async (questions) => {
        asked += questions.length;
        expect(await child.ask(questions)).toEqual(questions.map((question) => answer(bucketingModule, question)));
      }),
      { seed: SEED, numRuns: 150 },
    );
    expect(child.pid).not.toBe(process.pid);
    expect(asked).toBeGreaterThan(150);
  });
});

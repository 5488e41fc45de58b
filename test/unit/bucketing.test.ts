import { describe, expect, it } from 'vitest';
import { createRolloutTest, flagdBucket, flipperBucket, launchDarklyBucket, unleashNormalized } from '../../src/flags/bucketing.js';
import { murmur3x86_32 } from '../../src/flags/murmur3.js';

// Every vector below is copied from the named project's own tests; the comment names the file.

describe('murmur3 x86_32', () => {
  // spaolacci/murmur3 murmur_test.go (TestRefStrings data table)
  it.each([
    ['', 0, 0x00000000],
    ['hello', 0, 0x248bfa47],
    ['hello, world', 0, 0x149bbb7f],
    ['The quick brown fox jumps over the lazy dog.', 0, 0xd5c48bfc],
    ['', 1, 0x514e28b7],
    ['hello', 0x2a, 0xe2dbd2e1],
  ])('hashes %j with seed %d to the reference value', (text, seed, expected) => {
    expect(murmur3x86_32(text, seed)).toBe(expected);
  });

  // pid/murmurHash3js test/test-server.js
  it.each([
    ['My hovercraft is full of eels.', 0, 2953494853],
    ['My hovercraft is full of eels.', 25, 2520298415],
    ['My hovercraft is full of eels.', 128, 2204470254],
    ['I will not buy this record, it is scratched.', 0, 2832214938],
    ['0', 0, 3530670207],
    ['01234', 0, 433070448],
  ])('matches murmurHash3js for %j seed %d', (text, seed, expected) => {
    expect(murmur3x86_32(text, seed)).toBe(expected);
  });

  // Reference (UTF-8) values from pid/murmurHash3js issue #3, where that library diverges
  it('hashes non-ASCII text as UTF-8 bytes', () => {
    expect(murmur3x86_32('My 🚀 is full of 🦎.')).toBe(1818098979);
    expect(murmur3x86_32('吉 星 高 照')).toBe(3435142074);
  });
});

describe('flipper: crc32(feature + actor) % 100000 < percentage × 1000', () => {
  // flippercloud/flipper spec/flipper/expressions/percentage_of_actors_spec.rb, describe "#call"
  it('opens User;1 at 42% and at 41.687%, closes it at 0%', () => {
    expect(flipperBucket('', 'User;1')).toBe(41685);
    expect(createRolloutTest('', 42, { algorithm: 'flipper' })('User;1')).toBe(true);
    expect(createRolloutTest('', 41.687, { algorithm: 'flipper' })('User;1')).toBe(true);
    expect(createRolloutTest('', 41.685, { algorithm: 'flipper' })('User;1')).toBe(false);
    expect(createRolloutTest('', 0, { algorithm: 'flipper' })('User;1')).toBe(false);
  });

  it('changes value based on feature_name (a → open at 70, b → closed at 70)', () => {
    expect(createRolloutTest('a', 70, { algorithm: 'flipper' })('User;1')).toBe(true);
    expect(createRolloutTest('b', 70, { algorithm: 'flipper' })('User;1')).toBe(false);
    expect(flipperBucket('a', 'User;1')).toBe(1685966713 % 100_000);
    expect(flipperBucket('b', 'User;1')).toBe(1435882980 % 100_000);
  });
});

describe('unleash: murmur3(`groupId:userId`, 0) % 100 + 1 ≤ percentage', () => {
  // Unleash/unleash-node-sdk src/test/strategy/util.test.ts
  // "normalized values are the same across node, java, and go clients"
  it('normalizes like the node, java and go clients', () => {
    expect(unleashNormalized('gr1', '123')).toBe(73);
    expect(unleashNormalized('groupX', '999')).toBe(25);
  });

  // Unleash/client-specification specifications/10-flexible-rollout-strategy.json
  it.each([
    ['Feature.flexibleRollout.10', 10, '174', true],
    ['Feature.flexibleRollout.10', 10, '499', false],
    ['Feature.flexibleRollout.userId.55', 55, '25', true],
    ['Feature.flexibleRollout.sessionId.42', 42, '147', true],
  ])('client-specification flexible rollout %s (%d%%) for %s → %s', (feature, rollout, id, expected) => {
    expect(createRolloutTest(feature, rollout, { algorithm: 'unleash' })(id)).toBe(expected);
  });

  // Unleash/client-specification specifications/03-gradual-rollout-user-id-strategy.json, Feature.B3
  it('gradual rollout Feature.B3 (50%, groupId AB12A)', () => {
    const test = createRolloutTest('Feature.B3', 50, { algorithm: 'unleash', groupId: 'AB12A' });
    expect(test('122')).toBe(true);
    expect(test('155')).toBe(false);
  });
});

describe('launchdarkly: sha1(`key.salt.id`)[0:15] / 0xFFFFFFFFFFFFFFF', () => {
  // launchdarkly/go-server-sdk-evaluation evaluator_bucketing_testdata_test.go and
  // launchdarkly/node-server-sdk test/evaluator-bucketing-test.js (both to 7 decimal places)
  it.each([
    ['userKeyA', 0.42157587],
    ['userKeyB', 0.6708485],
    ['userKeyC', 0.10343106],
    ['33333', 0.54771423],
    ['99999', 0.7309658],
  ])('buckets %s under hashKey/saltyA to %d', (id, expected) => {
    expect(launchDarklyBucket('hashKey', 'saltyA', id)).toBeCloseTo(expected, 7);
  });

  it.each([
    [61, 'userKeyA', 0.09801207],
    [61, 'userKeyB', 0.14483777],
    [61, 'userKeyC', 0.9242641],
    [60, 'userKeyA', 0.7008816],
  ])('with seed %d buckets %s to %d (flag key and salt ignored)', (seed, id, expected) => {
    expect(launchDarklyBucket('hashKey', 'saltyA', id, seed)).toBeCloseTo(expected, 7);
    expect(launchDarklyBucket('other', 'salt', id, seed)).toBe(launchDarklyBucket('hashKey', 'saltyA', id, seed));
  });

  it('puts userKeyA (0.4216) inside a 42.2% rollout and outside 42.1%', () => {
    expect(createRolloutTest('hashKey', 42.2, { algorithm: 'launchdarkly', salt: 'saltyA' })('userKeyA')).toBe(true);
    expect(createRolloutTest('hashKey', 42.1, { algorithm: 'launchdarkly', salt: 'saltyA' })('userKeyA')).toBe(false);
  });
});

describe('flagd fractional (v0.15+): (murmur3(flagKey + key) × total) >> 32', () => {
  // open-feature/flagd core/pkg/evaluator/fractional_test.go TestFractionalEvaluation:
  // headerColor, weights red/blue/green/yellow 25 each → bucket ranges [0,25) [25,50) [50,75) [75,100)
  it.each([
    ['rachel@faas.com', 'blue', 42],
    ['monica@faas.com', 'yellow', 77],
    ['joey@faas.com', 'red', 7],
    ['ross@faas.com', 'blue', 37],
  ])('headerColor + %s lands in %s', (email, variant, bucket) => {
    const colors = ['red', 'blue', 'green', 'yellow'];
    expect(flagdBucket('headerColor', email, 100)).toBe(bucket);
    expect(colors[Math.floor(flagdBucket('headerColor', email, 100) / 25)]).toBe(variant);
  });

  // open-feature/flagd-testbed evaluator/gherkin/fractional.feature, fractional-hash-edge-flag
  // (targetingKey only, lower 50 / upper 50): boundary hashes 0, 1, 2^31−1 → lower; 2^31, 2^32−1 → upper
  it.each([
    ['ejOoVL', 0x00000000, 'lower'],
    ['bY9fO-', 0x00000001, 'lower'],
    ['SI7p-', 0x7fffffff, 'lower'],
    ['6LvT0', 0x80000000, 'upper'],
    ['ceQdGm', 0xffffffff, 'upper'],
  ])('edge key %s (hash %d) → %s', (key, hash, variant) => {
    expect(murmur3x86_32(key)).toBe(hash);
    expect(flagdBucket('', key, 100) < 50 ? 'lower' : 'upper').toBe(variant);
  });

  it('maps a percentage to variants [on: p, off: 100 − p], bucket 42 inside 43% and outside 42%', () => {
    expect(createRolloutTest('headerColor', 43, { algorithm: 'flagd' })('rachel@faas.com')).toBe(true);
    expect(createRolloutTest('headerColor', 42, { algorithm: 'flagd' })('rachel@faas.com')).toBe(false);
  });
});

describe('rollout edges', () => {
  it.each(['flipper', 'unleash', 'launchdarkly', 'flagd'] as const)('%s: 0%% enables nobody, 100%% everybody', (algorithm) => {
    const none = createRolloutTest('f', 0, { algorithm });
    const all = createRolloutTest('f', 100, { algorithm });
    for (let i = 0; i < 1000; i++) {
      expect(none(`u${i}`)).toBe(false);
      expect(all(`u${i}`)).toBe(true);
    }
  });

  it.each(['flipper', 'unleash', 'launchdarkly', 'flagd'] as const)('%s: 30%% enables about 30%% of 20,000 users', (algorithm) => {
    const test = createRolloutTest('consumer_graph_ingestion', 30, { algorithm });
    let enabled = 0;
    for (let i = 0; i < 20_000; i++) if (test(`user-${i}`)) enabled++;
    expect(enabled / 20_000).toBeGreaterThan(0.28);
    expect(enabled / 20_000).toBeLessThan(0.32);
  });
});

describe('crc32 (JS) agrees with zlib', () => {
  it.each(['', 'a', 'User;1', 'consumer_graph_ingestionuser-123', 'héllo wörld', '吉 星 高 照', 'x'.repeat(1000)])('for %j, also when continued', async (text) => {
    const { crc32: zlibCrc32 } = await import('node:zlib');
    const { crc32 } = await import('../../src/flags/crc32.js');
    expect(crc32(text)).toBe(zlibCrc32(text));
    expect(crc32(text, zlibCrc32('prefix'))).toBe(zlibCrc32(`prefix${text}`));
  });
});

import { describe, expect, it } from 'vitest';
import { digestsOf } from '../../src/feeds/digest.js';
import { MappingReader, type Extracted } from '../../src/feeds/extract.js';
import { compilePath, locate } from '../../src/feeds/json-path.js';
import type { MappingConfig } from '../../src/investigate/mapping.js';

// Issue 15: a snapshot's rules and bucketing digests tell a change of segments, rules or
// bucketing from a change of the explicit users alone (which the feed turns into users itself).

const FLAG = 'consumer_graph_ingestion';

const mapping = (overrides: Partial<MappingConfig>): MappingConfig => ({
  kind: 'snapshot',
  flagNamePath: '$.name',
  usersPath: '$.users[*]',
  usersSeparator: null,
  percentagePath: '$.rollout.percentage',
  enabledPath: '$.enabled',
  operationPath: null,
  addValues: [],
  removeValues: [],
  filters: [{ path: '$.name', equals: FLAG }],
  ...overrides,
});

/** The digests the feed computes for a document: through the mapping, as the topic feed does. */
function digests(reader: MappingReader, document: unknown): { rules: string; bucketing: string | null } {
  const read: Extracted = reader.read(document);
  if (read.type !== 'snapshot') throw new Error(`expected a snapshot, got ${read.type}`);
  return { rules: read.rulesDigest, bucketing: read.bucketingDigest };
}

const plain = new MappingReader(mapping({}), FLAG);
const flag = (overrides: Record<string, unknown> = {}) => ({
  name: FLAG,
  enabled: true,
  users: ['u1', 'u2'],
  rollout: { percentage: 10, salt: 'abc' },
  segments: [{ name: 'beta', members: ['s1', 's2'] }],
  ...overrides,
});

describe('rules digest', () => {
  it('key order does not count, at any depth', () => {
    const reordered = { segments: [{ members: ['s1', 's2'], name: 'beta' }], rollout: { salt: 'abc', percentage: 10 }, users: ['u1', 'u2'], enabled: true, name: FLAG };
    expect(digests(plain, reordered)).toEqual(digests(plain, flag()));
  });

  it('array order does count (a list of rules is ordered)', () => {
    const two = [{ name: 'beta', members: ['s1'] }, { name: 'gamma', members: ['s2'] }];
    expect(digests(plain, flag({ segments: [...two].reverse() })).rules).not.toBe(digests(plain, flag({ segments: two })).rules);
  });

  it('volatile keys (ids, times, versions) are ignored, at any depth', () => {
    const noisy = flag({ id: 'evt-9', version: 42, updated_at: '2026-05-02T00:00:00Z', lastModified: 3, segments: [{ name: 'beta', members: ['s1', 's2'], etag: 'x', createdAt: 1 }] });
    const other = flag({ id: 'evt-10', version: 43, updated_at: '2026-05-03T00:00:00Z', lastModified: 4, segments: [{ name: 'beta', members: ['s1', 's2'], etag: 'y', createdAt: 2 }] });
    expect(digests(plain, noisy)).toEqual(digests(plain, other));
    expect(digests(plain, noisy)).toEqual(digests(plain, flag()));
  });

  it('the values the mapping reads are ignored: users, switch, percentage', () => {
    const base = digests(plain, flag());
    expect(digests(plain, flag({ users: ['u9'] }))).toEqual(base);
    expect(digests(plain, flag({ enabled: false }))).toEqual(base);
    expect(digests(plain, flag({ rollout: { percentage: 55, salt: 'abc' } }))).toEqual(base);
  });

  it('adding or removing an explicit user keeps the rules digest (only the users changed)', () => {
    const base = digests(plain, flag());
    expect(digests(plain, flag({ users: ['u1', 'u2', 'u3'] }))).toEqual(base);
    expect(digests(plain, flag({ users: [] }))).toEqual(base);
  });

  it('the users value is ignored when it is one joined string', () => {
    const unleash = new MappingReader(mapping({ usersPath: '$.strategies[*].parameters.userIds', usersSeparator: ',', percentagePath: null }), FLAG);
    const toggle = (userIds: string, groupId = 'g1') => ({ name: FLAG, enabled: true, strategies: [{ name: 'userWithId', parameters: { userIds } }, { name: 'flexibleRollout', parameters: { rollout: '10', groupId } }] });
    const first = digests(unleash, toggle('u1,u2'));
    expect(digests(unleash, toggle('u1,u2,u3'))).toEqual(first);
    expect(digests(unleash, toggle(''))).toEqual(first);
    expect(unleash.read(toggle('u1, u2'))).toMatchObject({ users: ['u1', 'u2'] });
    // The groupId is a bucketing parameter: its change shows in that digest only.
    const regrouped = digests(unleash, toggle('u1,u2', 'g2'));
    expect(regrouped.rules).toBe(first.rules);
    expect(regrouped.bucketing).not.toBe(first.bucketing);
  });

  it('a segment change changes the rules digest, not the bucketing one', () => {
    const base = digests(plain, flag());
    const moved = digests(plain, flag({ segments: [{ name: 'beta', members: ['s1', 's3'] }] }));
    expect(moved.rules).not.toBe(base.rules);
    expect(moved.bucketing).toBe(base.bucketing);
    const added = digests(plain, flag({ segments: [{ name: 'beta', members: ['s1', 's2'] }, { name: 'staff', members: [] }] }));
    expect(added.rules).not.toBe(base.rules);
  });

  it('a value the mapping does not read, under a key it reads elsewhere, still counts', () => {
    // Only $.users is skipped: a nested "users" field of a rule is part of the rules.
    const base = digests(plain, flag({ rules: [{ users: ['r1'] }] }));
    expect(digests(plain, flag({ rules: [{ users: ['r2'] }] })).rules).not.toBe(base.rules);
  });
});

describe('bucketing digest', () => {
  it('a salt change changes only the bucketing digest', () => {
    const base = digests(plain, flag());
    const resalted = digests(plain, flag({ rollout: { percentage: 10, salt: 'xyz' } }));
    expect(resalted.rules).toBe(base.rules);
    expect(resalted.bucketing).not.toBeNull();
    expect(resalted.bucketing).not.toBe(base.bucketing);
  });

  it('seed, groupId, stickiness and algorithm are bucketing parameters', () => {
    const doc = (params: Record<string, unknown>) => flag({ rollout: { percentage: 10, ...params } });
    const base = digests(plain, doc({ seed: 1, group_id: 'g', stickiness: 'userId', algorithm: 'murmur3' }));
    for (const changed of [{ seed: 2 }, { group_id: 'h' }, { stickiness: 'sessionId' }, { algorithm: 'sha1' }]) {
      const next = digests(plain, doc({ seed: 1, group_id: 'g', stickiness: 'userId', algorithm: 'murmur3', ...changed }));
      expect(next.rules, JSON.stringify(changed)).toBe(base.rules);
      expect(next.bucketing, JSON.stringify(changed)).not.toBe(base.bucketing);
    }
  });

  it('is null when the document has no bucketing parameter', () => {
    expect(digests(plain, flag({ rollout: { percentage: 10 } })).bucketing).toBeNull();
  });

  it('the place of a parameter counts: the same salt moved elsewhere is another bucketing', () => {
    const here = digests(plain, flag({ rollout: { percentage: 10, salt: 'abc' } }));
    const there = digests(plain, flag({ rollout: { percentage: 10 }, variants: { salt: 'abc' } }));
    expect(there.bucketing).not.toBe(here.bucketing);
  });
});

describe('CloudEvents envelopes', () => {
  const envelope = (id: string, time: string, data: unknown) => ({ specversion: '1.0', type: 'flag.updated', source: '/flags', subject: FLAG, id, time, data });
  const reader = new MappingReader(mapping({ flagNamePath: '$.subject', filters: [{ path: '$.subject', equals: FLAG }], usersPath: '$.data.users[*]', enabledPath: '$.data.on', percentagePath: null }), FLAG);

  it('a new event id and time change neither digest', () => {
    const data = { on: true, users: ['u1'], rules: [{ segment: 'beta' }], salt: 's' };
    const first = digests(reader, envelope('e-1', '2026-05-01T00:00:00Z', data));
    expect(digests(reader, envelope('e-2', '2026-05-01T00:05:00Z', data))).toEqual(first);
    expect(digests(reader, envelope('e-3', '2026-05-01T00:10:00Z', { ...data, users: ['u1', 'u2'], on: false }))).toEqual(first);
  });

  it('a change of the data\'s rules does change the rules digest', () => {
    const first = digests(reader, envelope('e-1', 't1', { on: true, users: ['u1'], rules: [{ segment: 'beta' }] }));
    expect(digests(reader, envelope('e-1', 't1', { on: true, users: ['u1'], rules: [{ segment: 'gamma' }] })).rules).not.toBe(first.rules);
  });
});

describe('digestsOf directly', () => {
  it('skips exactly the located values', () => {
    const document = { a: { keep: 1, drop: 2 }, list: ['x', 'y'] };
    const skip = [...locate(document, compilePath('$.a.drop'))];
    const changed = { a: { keep: 1, drop: 3 }, list: ['x', 'y'] };
    expect(digestsOf(changed, locate(changed, compilePath('$.a.drop'))).rules).toBe(digestsOf(document, skip).rules);
    const kept = { a: { keep: 9, drop: 2 }, list: ['x', 'y'] };
    expect(digestsOf(kept, locate(kept, compilePath('$.a.drop'))).rules).not.toBe(digestsOf(document, skip).rules);
  });

  it('with nothing skipped, any non-volatile change counts', () => {
    expect(digestsOf({ a: 1 }, []).rules).not.toBe(digestsOf({ a: 2 }, []).rules);
    expect(digestsOf({ a: 1, id: 'x' }, []).rules).toBe(digestsOf({ id: 'y', a: 1 }, []).rules);
  });
});

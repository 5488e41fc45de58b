import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { analyze, type Sample } from '../../src/investigate/analyze.js';
import { matchKnownIds } from '../../src/investigate/known-ids.js';
import { MemoryKnownUsers } from '../helpers/fakes.js';

// Issue 14, items 1–4: investigation judges fields by their values, reads percentages and
// `{key, value}` entries as flag systems write them, takes the flag as a document's subject only,
// and calls broken samples malformed.

const FLAG = 'consumer_graph_ingestion';
const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
const json = (value: unknown, key: string | null = null, where?: string): Sample => ({ key, value: Buffer.from(JSON.stringify(value)), ...(where ? { where } : {}) });
const run = (samples: Sample[]) => analyze(samples, { source: 'test', flag: FLAG, idPattern });
const users = (n: number, from = 1000) => Array.from({ length: n }, (_, i) => `user-${from + i}`);

/** The same object with its keys in sorted order, as Go and many exporters write maps. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, sortedKeys(v)]));
}

describe('user-ID fields by value, never by position', () => {
  // Per-user events beside fields that match the ID pattern and hold a digit but are no user IDs.
  const events = users(40).map((id, i) => ({
    event_id: randomUUID(),
    a_version: '1.0',
    b_timestamp: `2026-11-${String((i % 28) + 1).padStart(2, '0')}T10:00:00Z`,
    c_rollout: '30',
    d_salt: 'a1b2c3d4',
    flag: FLAG,
    user: id,
    action: i % 2 ? 'enable' : 'disable',
  }));

  it('picks the user field, not a UUID, version, timestamp, numeric string or constant salt, with confidence and runner-up', () => {
    const report = run(events.map((event) => json(event)));
    expect(report.userIdField).toMatchObject({ path: '$.user', confidence: 'high' });
    expect(report.userIdField?.reason).toContain('40 distinct values');
    expect(report.mapping?.usersPath).toBe('$.user');
    const judged = report.userListPaths.map((entry) => entry.path);
    for (const notAnId of ['$.event_id', '$.a_version', '$.b_timestamp', '$.c_rollout']) expect(judged).not.toContain(notAnId);
    expect(report.userIdField?.runnerUp?.path ?? null).toBe('$.d_salt'); // ID-shaped, but one value: far behind
  });

  it('gives the same answer whatever the order of keys', () => {
    const plain = run(events.map((event) => json(event)));
    const sorted = run(events.map((event) => json(sortedKeys(event))));
    expect(sorted.userIdField).toEqual(plain.userIdField);
    expect(sorted.mapping).toEqual(plain.mapping);
  });

  it('takes UUIDs for user IDs only once the known set confirms them', async () => {
    const userIds = Array.from({ length: 20 }, () => randomUUID());
    const idValues = new Map<string, string[]>();
    const report = analyze(
      userIds.map((user) => json({ flag: FLAG, event_id: randomUUID(), user, action: 'enable' })),
      { source: 'test', flag: FLAG, idPattern, idValues },
    );
    expect(report.userIdField).toBeNull(); // by shape alone, a UUID may as well be an event ID
    const known = new MemoryKnownUsers();
    for (const id of userIds.slice(0, 5)) known.known.add(id);
    for (const id of userIds.slice(5, 8)) known.loaded.add(id);
    const confirmed = await matchKnownIds(report, idValues, known);
    expect(confirmed.userIdField).toMatchObject({ path: '$.user', confidence: 'high', reason: '8 of 20 sampled values are users the known set or loaded_users holds' });
    expect(confirmed.mapping?.usersPath).toBe('$.user');
    expect(report.verdict.result).toBe('unclear');
    expect(confirmed.verdict.result).toBe('feasible');
  });

  it('does not take arrays of group names or CSV column names for user lists', () => {
    const report = run(Array.from({ length: 10 }, () => json({ name: FLAG, groups: ['admins', 'beta_testers'], columns: ['user_id', 'email'], actors: users(3) })));
    expect(report.userListPaths.map((entry) => entry.path)).toEqual(['$.actors[*]']);
  });
});

describe('percentages, switches and rules as flag systems write them', () => {
  // Flipper's adapter format: one entry per gate, the values beside their gate's key
  // (https://www.flippercloud.io/docs/api: gates [{key, name, value}]).
  const flipper = (i: number) => ({
    key: FLAG,
    state: 'conditional',
    gates: [
      { key: 'boolean', name: 'boolean', value: null },
      { key: 'actors', name: 'actor', value: users(4, 1000 + i * 10) },
      { key: 'percentage_of_actors', name: 'percentage_of_actors', value: String(10 + i) },
      { key: 'groups', name: 'group', value: ['admins'] },
    ],
  });

  it('maps a list inside an array of {key, value} entries with a filter, never merged with its siblings', () => {
    const report = run(Array.from({ length: 8 }, (_, i) => json(flipper(i))));
    expect(report.verdict.result).toBe('feasible');
    expect(report.mapping?.usersPath).toBe("$.gates[?(@.key=='actors')].value[*]");
    expect(report.mapping?.percentagePath).toBe("$.gates[?(@.key=='percentage_of_actors')].value");
    expect(report.userListPaths.map((entry) => entry.path)).not.toContain("$.gates[?(@.key=='groups')].value[*]");
  });

  it('does not cite empty rule arrays as evidence', () => {
    const report = run(Array.from({ length: 5 }, () => json({ name: FLAG, enabled: true, rules: [], segments: [], users: users(3) })));
    expect(report.rulePaths).toEqual([]);
    expect(report.verdict.evidence.join(' ')).not.toContain('rule or segment');
  });
});

describe('"about the flag" means the flag is the subject', () => {
  it('ignores a flag that lists it as a prerequisite, and lists near-miss names as such', () => {
    // LaunchDarkly flag representations name prerequisites by key
    // (https://apidocs.launchdarkly.com/tag/Feature-flags: prerequisites [{key, variation}]).
    const report = run([
      json({ key: 'checkout_v3', prerequisites: [{ key: FLAG, variation: 0 }], targets: [{ values: users(5), variation: 0 }] }),
      json({ key: `${FLAG}_v2`, targets: [{ values: users(5), variation: 0 }] }),
      json({ key: `${FLAG}_shadow`, on: true }),
    ]);
    expect(report.flagDocuments).toBe(0);
    expect(report.nearMisses.sort()).toEqual([`${FLAG}_shadow`, `${FLAG}_v2`]);
    expect(report.verdict.result).toBe('not feasible');
  });

  it('reads a CloudEvents envelope through its subject; its specversion is no user ID', () => {
    // CloudEvents 1.0 (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md): subject, data.
    const report = run(
      Array.from({ length: 6 }, (_, i) =>
        json({ specversion: '1.0', id: randomUUID(), source: '/flags', type: 'flag.updated', subject: FLAG, time: '2026-11-29T10:00:00Z', data: { enabled: true, users: users(3, 2000 + i * 10) } }),
      ),
    );
    expect(report.flagPaths).toEqual(['$.subject']);
    expect(report.mapping?.usersPath).toBe('$.data.users[*]');
  });

  it('finds the flag inside gzipped content', () => {
    const report = run([{ key: 'flags.json.gz', value: gzipSync(JSON.stringify({ flags: { [FLAG]: { users: users(3) } } })) }]);
    expect(report.flagSampleKeys).toEqual(['flags.json.gz']);
    expect(report.mapping?.usersPath).toBe(`$.flags.${FLAG}.users[*]`);
  });
});

describe('malformed is malformed', () => {
  it('counts broken JSON, bytes that are not UTF-8 and truncated gzip, naming where the first were', () => {
    const truncated = gzipSync(JSON.stringify({ name: FLAG, users: users(50) })).subarray(0, 30);
    const report = run([
      { key: null, value: Buffer.from('{"name": "consumer_graph_ingestion", "users": ["user-1"'), where: 'partition 0 offset 17' },
      { key: null, value: Buffer.concat([Buffer.from('{"name": "caf'), Buffer.from([0xe9]), Buffer.from('"}')]), where: 'partition 1 offset 4' },
      { key: 'dump.json.gz', value: truncated },
      json({ name: FLAG, users: users(3) }),
    ]);
    expect(report.malformed.count).toBe(3);
    expect(report.encodings).toMatchObject({ malformed: 3, json: 1 });
    expect(report.malformed.examples.map((example) => example.where)).toEqual(['partition 0 offset 17', 'partition 1 offset 4', 'dump.json.gz']);
    expect(report.malformed.examples[0]?.problem).toMatch(/^not valid JSON/);
    expect(report.malformed.examples[1]?.problem).toBe('not UTF-8 (byte 13)');
    expect(report.malformed.examples[2]?.problem).toMatch(/^gzip that cannot be decompressed/);
  });
});

describe('hostile shapes', () => {
  it('a document nested thousands of levels deep is malformed, not a crash', () => {
    const deep = Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`);
    const report = run([{ key: null, value: deep, where: 'partition 0 offset 9' }, json({ name: FLAG, users: users(3) })]);
    expect(report.malformed.examples).toEqual([{ where: 'partition 0 offset 9', problem: 'nested more than 64 levels deep' }]);
    expect(report.mapping?.usersPath).toBe('$.users[*]');
  });

  it('a map of flags inside an array is read whole, and entries named after users share one path', () => {
    const report = run(
      Array.from({ length: 5 }, (_, i) =>
        json({ items: [{ [FLAG]: { users: users(3, 100 * i) } }], grants: users(40, 1000 * i).map((id) => ({ key: id, value: true })) }),
      ),
    );
    expect(report.flagDocuments).toBe(5);
    // 200 entry names: 20 get a filter path of their own (entry, .key, .value), the rest share [*].
    const grants = report.fields.filter((field) => field.path.startsWith('$.grants'));
    expect(grants.length).toBeLessThanOrEqual(1 + 3 * 21);
    expect(grants.map((field) => field.path)).toContain('$.grants[*].value');
  });
});

import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { ValidationError } from '../../src/errors.js';
import { MappingReader } from '../../src/feeds/extract.js';
import { compilePath, select } from '../../src/feeds/json-path.js';
import { analyze, type Sample } from '../../src/investigate/analyze.js';
import type { MappingConfig } from '../../src/investigate/mapping.js';

// Issue 15 groundwork: the mapping `investigate` prints is the feed's configuration, and reading
// documents through it gives back the users they carry.

const FLAG = 'consumer_graph_ingestion';
const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
const json = (value: unknown): Sample => ({ key: null, value: Buffer.from(JSON.stringify(value)) });
const users = (n: number, from: number) => Array.from({ length: n }, (_, i) => `user-${from + i}`);

/** The mapping investigate infers from `documents`, through JSON as the CLI prints it. */
function mappingOf(documents: unknown[]): MappingConfig {
  const report = analyze(documents.map(json), { source: 'test', flag: FLAG, idPattern });
  return JSON.parse(JSON.stringify(report.mapping)) as MappingConfig;
}

describe('JSONPath subset', () => {
  it('selects fields, quoted names, every element and filtered entries', () => {
    const document = { a: { "b'c": [{ key: 'x', value: [1, 2] }, { key: 'y', value: [3] }] } };
    expect(select(document, compilePath("$.a['b\\'c'][?(@.key=='x')].value[*]"))).toEqual([1, 2]);
    expect(select(document, compilePath("$.a['b\\'c'][*].key"))).toEqual(['x', 'y']);
    expect(select(document, compilePath('$.missing.deeper'))).toEqual([]);
  });

  it('refuses what it cannot read, naming the part', () => {
    expect(() => compilePath('a.b')).toThrow('must start with $');
    expect(() => compilePath('$..deep')).toThrow('cannot read "..deep"');
  });
});

describe('reading documents through the mapping investigation infers', () => {
  it('Flipper snapshots: the actors gate, the percentage string; other flags unrelated', () => {
    const flipper = (i: number, key = FLAG) => ({ key, gates: [{ key: 'actors', value: users(3, 1000 + 10 * i) }, { key: 'percentage_of_actors', value: String(10 + i) }, { key: 'groups', value: ['admins'] }] });
    const reader = new MappingReader(mappingOf(Array.from({ length: 8 }, (_, i) => flipper(i))), FLAG);
    expect(reader.read(flipper(3))).toMatchObject({ type: 'snapshot', users: users(3, 1030), enabled: null, percentage: 13 });
    expect(reader.read(flipper(3, 'dark_mode'))).toEqual({ type: 'unrelated' });
  });

  it('CloudEvents deltas: adds and removes by the operation field', () => {
    const event = (i: number, operation: string) => ({ specversion: '1.0', subject: FLAG, id: `e-${i}`, data: { user_id: `user-${5000 + i}`, operation } });
    const reader = new MappingReader(mappingOf(Array.from({ length: 8 }, (_, i) => event(i, i % 3 ? 'added' : 'removed'))), FLAG);
    expect(reader.read(event(42, 'added'))).toEqual({ type: 'add', users: ['user-5042'] });
    expect(reader.read(event(43, 'removed'))).toEqual({ type: 'remove', users: ['user-5043'] });
    expect(reader.read(event(44, 'paused'))).toMatchObject({ type: 'other' });
  });

  it('Unleash: users joined in one string are split', () => {
    const toggle = (i: number) => ({ name: FLAG, enabled: true, strategies: [{ name: 'userWithId', parameters: { userIds: users(3, 2000 + 10 * i).join(',') } }] });
    const reader = new MappingReader(mappingOf(Array.from({ length: 6 }, (_, i) => toggle(i))), FLAG);
    expect(reader.read(toggle(9))).toMatchObject({ type: 'snapshot', users: users(3, 2090), enabled: true, percentage: null });
  });

  it('a map of flags: the flag key is the filter', () => {
    const map = (i: number) => ({ flags: { [FLAG]: { on: true, users: users(2, 3000 + 10 * i) }, other: { on: true, users: users(5, 9000) } } });
    const reader = new MappingReader(mappingOf(Array.from({ length: 4 }, (_, i) => map(i))), FLAG);
    expect(reader.read(map(7))).toMatchObject({ type: 'snapshot', users: users(2, 3070) });
    expect(reader.read({ flags: { other: { users: ['user-1'] } } })).toEqual({ type: 'unrelated' });
  });
});

describe('strategies.kafkaTopic in the config', () => {
  it('accepts the mapping investigate printed, as it is', () => {
    const mapping = mappingOf(Array.from({ length: 8 }, (_, i) => ({ subject: FLAG, data: { user_id: `user-${i}01`, op: i % 2 ? 'add' : 'remove' } })));
    const config = loadConfig({ env: {}, overrides: { strategies: { kafkaTopic: { enabled: true, mapping } } } });
    expect(config.strategies.kafkaTopic).toMatchObject({ enabled: true, shadow: true, topic: 'feature-flipper-flags', mapping: { kind: 'delta', usersPath: '$.data.user_id' } });
  });

  it('refuses an enabled feed without a mapping, and a path it cannot read', () => {
    const refusal = (kafkaTopic: unknown) => {
      try {
        loadConfig({ env: {}, overrides: { strategies: { kafkaTopic } } });
        return [];
      } catch (error) {
        return (error as ValidationError).problems;
      }
    };
    expect(refusal({ enabled: true }).join('\n')).toContain('strategies.kafkaTopic: enabled needs a mapping');
    expect(refusal({ mapping: { kind: 'snapshot', flagNamePath: '$..name', usersPath: '$.users[*]' } }).join('\n')).toContain('strategies.kafkaTopic.mapping.flagNamePath');
  });
});

describe('the digests of a snapshot cover the flag alone', () => {
  it('in a map of flags, another flag changing its rules or salt changes neither digest of ours', () => {
    const map = (otherRules: unknown) => ({ flags: { [FLAG]: { on: true, users: users(2, 3000), segments: ['beta'] }, other: { on: true, users: users(5, 9000), ...(otherRules as object) } } });
    const reader = new MappingReader(mappingOf(Array.from({ length: 4 }, (_, i) => ({ flags: { [FLAG]: { on: true, users: users(2, 3000 + 10 * i) }, other: { on: true, users: users(5, 9000) } } }))), FLAG);
    const before = reader.read(map({}));
    const after = reader.read(map({ segments: ['everyone'], salt: 'new-salt' }));
    expect(before.type).toBe('snapshot');
    expect(after).toMatchObject({ rulesDigest: (before as { rulesDigest: string }).rulesDigest, bucketingDigest: null });
    // Our own flag's segments still count.
    const ours = reader.read({ flags: { [FLAG]: { on: true, users: users(2, 3000), segments: ['everyone'] }, other: { on: true, users: users(5, 9000) } } });
    expect(ours).toMatchObject({ type: 'snapshot' });
    expect((ours as { rulesDigest: string }).rulesDigest).not.toBe((before as { rulesDigest: string }).rulesDigest);
  });
});

describe('which documents are about the flag, without filters', () => {
  it('a name field must hold the flag itself: another flag whose name contains it is unrelated', () => {
    const mapping: MappingConfig = { kind: 'snapshot', flagNamePath: '$.key', usersPath: '$.actors[*]', usersSeparator: null, percentagePath: null, enabledPath: null, operationPath: null, addValues: [], removeValues: [], filters: [] };
    const reader = new MappingReader(mapping, FLAG);
    expect(reader.read({ key: FLAG, actors: ['user-1'] })).toMatchObject({ type: 'snapshot', users: ['user-1'] });
    expect(reader.read({ key: `${FLAG}_v2`, actors: ['user-v2'] })).toEqual({ type: 'unrelated' });
    expect(reader.read({ key: `old_${FLAG}`, actors: ['user-v2'] })).toEqual({ type: 'unrelated' });
  });

  it('a path ending in the flag name (a map of flags) needs only to exist', () => {
    const mapping: MappingConfig = { kind: 'snapshot', flagNamePath: `$.flags.${FLAG}`, usersPath: `$.flags.${FLAG}.users[*]`, usersSeparator: null, percentagePath: null, enabledPath: null, operationPath: null, addValues: [], removeValues: [], filters: [] };
    const reader = new MappingReader(mapping, FLAG);
    expect(reader.read({ flags: { [FLAG]: { users: ['user-1'] } } })).toMatchObject({ type: 'snapshot', users: ['user-1'] });
    expect(reader.read({ flags: { [`${FLAG}_v2`]: { users: ['user-2'] } } })).toEqual({ type: 'unrelated' });
  });
});

describe('documents holding several flags in one array', () => {
  it('reads only the users of the flag\'s own element (the mapping investigate infers for [{name, actors}])', () => {
    const day = (i: number) => [{ name: FLAG, actors: users(4, 8500 + i * 10) }, { name: 'dark_mode', actors: users(3, 9900) }];
    const mapping = mappingOf(Array.from({ length: 4 }, (_, i) => day(i)));
    const reader = new MappingReader(mapping, FLAG);
    expect(reader.read(day(7))).toMatchObject({ type: 'snapshot', users: users(4, 8570) });
    expect(reader.read([{ name: 'dark_mode', actors: users(3, 9900) }])).toEqual({ type: 'unrelated' });
  });

  it('judges each element by its own name when flagNamePath runs through the array', () => {
    const mapping: MappingConfig = { kind: 'snapshot', flagNamePath: '$[*].name', usersPath: '$[*].actors[*]', usersSeparator: null, percentagePath: '$[*].percentage', enabledPath: null, operationPath: null, addValues: [], removeValues: [], filters: [] };
    const reader = new MappingReader(mapping, FLAG);
    const document = [{ name: 'other', actors: ['user-1'], percentage: 90 }, { name: FLAG, actors: ['user-2'], percentage: 5 }];
    expect(reader.read(document)).toMatchObject({ type: 'snapshot', users: ['user-2'], percentage: 5 });
  });
});

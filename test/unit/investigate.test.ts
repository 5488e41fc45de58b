import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { analyze, type Sample } from '../../src/investigate/analyze.js';
import { classify, isProtobuf } from '../../src/investigate/encodings.js';

const FLAG = 'consumer_graph_ingestion';
const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
const json = (value: unknown, key: string | null = null): Sample => ({ key, value: Buffer.from(JSON.stringify(value)) });
const run = (samples: Sample[]) => analyze(samples, { source: 'test', flag: FLAG, idPattern });

/** Confluent wire format: magic byte 0, a 4-byte schema id, then the Avro body. */
const confluent = (schemaId: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([0]), Buffer.from([0, 0, 0, schemaId]), body]);
/** Protobuf: field 1 (varint 150), field 2 (length-delimited "flag"). */
const protobuf = Buffer.from([0x08, 0x96, 0x01, 0x12, 0x04, ...Buffer.from('flag')]);

describe('classify', () => {
  it.each([
    ['json', Buffer.from('{"a":1}')],
    ['ndjson', Buffer.from('{"a":1}\n{"a":2}\n')],
    ['yaml', Buffer.from('flag: x\nenabled: true\n')],
    ['csv', Buffer.from('user_id,flag\nu1,x\nu2,x\n')],
    ['confluent-framed', confluent(7, Buffer.from([2, 4, 6]))],
    ['protobuf', protobuf],
    ['text', Buffer.from('hello there')],
    ['binary', Buffer.from([0xff, 0xfe, 0x07, 0x00])],
    ['empty', Buffer.alloc(0)],
  ])('recognises %s', (encoding, bytes) => {
    expect(classify(bytes).encoding).toBe(encoding);
  });

  it('looks inside gzip and reads Confluent schema ids', () => {
    const zipped = classify(gzipSync('{"flag":"x"}'));
    expect(zipped.encoding).toBe('gzip');
    expect(zipped.inner?.encoding).toBe('json');
    expect(classify(confluent(42, Buffer.from([1]))).schemaId).toBe(42);
    expect(isProtobuf(Buffer.from([0x08]))).toBe(false);
  });
});

describe('analyze: message families', () => {
  const users = (n: number, from = 1000) => Array.from({ length: n }, (_, i) => `user-${from + i}`);

  it('full snapshots with a user list: feasible, with the list path and a mapping', () => {
    const samples = Array.from({ length: 20 }, (_, i) =>
      json({ name: i % 4 === 0 ? 'other_flag' : FLAG, enabled: true, percentage: 10, gates: { actors: users(5, i * 10) }, updated_at: '2026-11-28T10:00:00Z' }, `flag:${i}`),
    );
    const report = run(samples);
    expect(report.verdict.result).toBe('feasible');
    expect(report.flagPaths).toEqual(['$.name']);
    expect(report.userListPaths[0]).toEqual({ path: '$.gates.actors[*]', percentOfFlagDocuments: 100 });
    expect(report.mapping).toEqual({
      kind: 'snapshot',
      flagNamePath: '$.name',
      usersPath: '$.gates.actors[*]',
      usersSeparator: null,
      percentagePath: '$.percentage',
      enabledPath: '$.enabled',
      operationPath: null,
      addValues: [],
      removeValues: [],
      filters: [{ path: '$.name', equals: FLAG }],
    });
    expect(report.verdict.evidence.join(' ')).toContain('per-user lists present at $.gates.actors[*] in 100%');
    const actors = report.fields.find((f) => f.path === '$.gates.actors[*]');
    expect(actors?.examples.every((e) => e === '<redacted: user id>')).toBe(true);
    expect(report.timestampPaths).toContain('$.updated_at');
  });

  it('per-user delta events: feasible through the user field', () => {
    const report = run(users(30).map((id, i) => json({ flag: FLAG, user_id: id, action: i % 3 ? 'enable' : 'disable', ts: 1_764_000_000_000 + i })));
    expect(report.verdict.result).toBe('feasible');
    expect(report.mapping).toMatchObject({ kind: 'delta', usersPath: '$.user_id', operationPath: '$.action', addValues: ['enable'], removeValues: ['disable'], filters: [{ path: '$.flag', equals: FLAG }] });
    expect(report.verdict.evidence.join(' ')).toContain('one user per document (per-user events)');
    expect(report.verdict.evidence.join(' ')).toContain('$.action says add (enable) or remove (disable)');
  });

  it('names rule and segment structures', () => {
    const report = run([json({ flag: FLAG, rules: [{ clauses: [{ attribute: 'country', op: 'in', values: ['US'] }] }], segments: ['beta'] })]);
    expect(report.rulePaths).toEqual(['$.rules', '$.rules[*].clauses', '$.segments']);
    expect(report.verdict.evidence.join(' ')).toContain('users they enable can only be found by polling');
  });

  it('percentage-only rollout changes: unclear, good for triggering polling only', () => {
    const report = run(Array.from({ length: 10 }, (_, i) => json({ feature: FLAG, rollout_percent: i * 10, enabled: true })));
    expect(report.verdict.result).toBe('unclear');
    expect(report.mapping).toMatchObject({ usersPath: null, percentagePath: '$.rollout_percent', enabledPath: '$.enabled' });
    expect(report.verdict.evidence.join(' ')).toContain('usable to trigger polling, not to enumerate users');
  });

  it('Confluent-framed Avro: unclear until decoded, naming the schema ids', () => {
    const report = run(Array.from({ length: 5 }, () => ({ key: null, value: confluent(13, Buffer.from([1, 2, 3])) })));
    expect(report.verdict.result).toBe('unclear');
    expect(report.schemaIds).toEqual([13]);
    expect(report.verdict.evidence[0]).toContain('Confluent-framed, schema ids 13');
  });

  it('one big map of flags: the target flag’s subtree only', () => {
    const report = run([json({ features: { [FLAG]: { on: true, users: users(4) }, other: { on: true, users: users(50, 5000) } } })]);
    expect(report.flagPaths).toEqual([`$.features.${FLAG}`]);
    expect(report.mapping?.usersPath).toBe(`$.features.${FLAG}.users[*]`);
  });

  it('counts malformed and empty messages, and says when the flag never appears', () => {
    const report = run([{ key: null, value: Buffer.from('{"broken": ') }, { key: null, value: Buffer.alloc(0) }, json({ flag: 'another' })]);
    expect(report.encodings).toMatchObject({ malformed: 1, empty: 1, json: 1 });
    expect(report.verdict.result).toBe('not feasible');
  });

  it('redacts secrets unless asked to show values', () => {
    const doc = json({ flag: FLAG, api_token: 'abc', note: 'plain' });
    expect(run([doc]).fields.find((f) => f.path === '$.api_token')?.examples).toEqual(['<redacted: secret?>']);
    const shown = analyze([doc], { source: 't', flag: FLAG, idPattern, showValues: true });
    expect(shown.fields.find((f) => f.path === '$.api_token')?.examples).toEqual(['abc']);
  });
});

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { keyPatterns } from '../../src/investigate/bucket.js';
import { tempDir } from '../helpers/files.js';
import { writeFileSync } from 'node:fs';
import { awsEnv, putObject, uniqueName, valkeyClient, valkeyUrl } from '../helpers/services.js';

// `ff-detector investigate s3` against the local S3 server, with bucket layouts nobody tuned for.

const BIN = path.resolve(import.meta.dirname, '../../bin/ff-detector');
const FLAG = 'consumer_graph_ingestion';

interface BucketJson {
  objects: number;
  keyPatterns: Array<{ pattern: string; objects: number }>;
  flagObjects: string[];
  encodings: Record<string, number>;
  verdict: { result: string; evidence: string[] };
  mapping: Record<string, string | null> | null;
  schema: { type: string; properties?: Record<string, unknown> } | null;
  knownIdMatches?: Array<{ path: string; sampled: number; known: number; loaded: number }>;
}

async function investigate(bucket: string, extra: string[] = [], moreEnv: Record<string, string> = {}): Promise<BucketJson> {
  const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, ...awsEnv(), ...moreEnv };
  const { stdout } = await promisify(execFile)(BIN, ['investigate', 's3', '--bucket', bucket, '--format', 'json', ...extra], { env, cwd: tempDir() });
  return JSON.parse(stdout) as BucketJson;
}

describe('investigate s3 (CLI, local S3 server)', () => {
  it('one JSON per flag: finds flags/{name}.json, the user list, and judges C feasible', async () => {
    const bucket = uniqueName('ff-flags');
    await putObject(bucket, `flags/${FLAG}.json`, JSON.stringify({ key: FLAG, state: 'on', actors: ['user-1001', 'user-1002', 'user-1003'], percentage_of_actors: 20 }));
    for (const name of ['search_v2', 'dark_mode', 'checkout']) await putObject(bucket, `flags/${name}.json`, JSON.stringify({ key: name, state: 'off', actors: [] }));
    const report = await investigate(bucket);
    expect(report.objects).toBe(4);
    expect(report.keyPatterns).toEqual([{ pattern: 'flags/{name}.json', objects: 4, bytes: expect.any(Number) }]);
    expect(report.flagObjects).toEqual([`flags/${FLAG}.json`]);
    expect(report.verdict.result).toBe('feasible');
    expect(report.mapping).toMatchObject({ flagNamePath: '$.key', usersPath: '$.actors[*]', percentagePath: '$.percentage_of_actors' });
  });

  it('confirms ID fields against the known set and loaded_users, and infers a JSON Schema', async () => {
    const bucket = uniqueName('ff-known');
    const prefix = uniqueName('known');
    await putObject(bucket, `flags/${FLAG}.json`, JSON.stringify({ key: FLAG, actors: ['user-7001', 'user-7002', 'user-7003'] }));
    const valkey = valkeyClient();
    await valkey.sadd(`${prefix}:known`, 'user-7001');
    await valkey.set(`${prefix}:loaded:user-7003`, '1', 'EX', 60);
    await valkey.quit();
    const config = path.join(tempDir(), 'c.yaml');
    writeFileSync(config, `state:\n  knownSetKey: ${prefix}:known\n  loadedKeyPrefix: "${prefix}:loaded:"\n`);
    const report = await investigate(bucket, ['--config', config], { VALKEY_URL: valkeyUrl() });
    expect(report.knownIdMatches).toEqual([{ path: '$.actors[*]', sampled: 3, known: 1, loaded: 1 }]);
    expect(report.verdict.evidence).toContain('1 known and 1 loaded users among 3 sampled IDs at $.actors[*]');
    expect(report.schema).toMatchObject({ type: 'object', properties: { key: { type: 'string' }, actors: { type: 'array', items: { type: 'string' } } } });
  });

  it('one big JSON map, gzipped: the flag’s own subtree', async () => {
    const bucket = uniqueName('ff-map');
    const map = { features: { [FLAG]: { enabled: true, users: ['user-2001', 'user-2002'] }, other: { enabled: true, users: ['user-9'] } } };
    await putObject(bucket, 'snapshots/2026-11-28/all-flags.json.gz', gzipSync(JSON.stringify(map)));
    const report = await investigate(bucket);
    expect(report.encodings).toEqual({ gzip: 1 });
    expect(report.verdict.result).toBe('feasible');
    expect(report.mapping?.usersPath).toBe(`$.features.${FLAG}.users[*]`);
  });

  it('NDJSON user lists per flag', async () => {
    const bucket = uniqueName('ff-ndjson');
    await putObject(bucket, `users/${FLAG}.ndjson`, Array.from({ length: 20 }, (_, i) => JSON.stringify({ flag: FLAG, user_id: `user-${3000 + i}` })).join('\n'));
    const report = await investigate(bucket);
    expect(report.encodings).toEqual({ ndjson: 1 });
    expect(report.verdict.result).toBe('feasible');
    expect(report.mapping?.usersPath).toBe('$.user_id');
  });

  it('a bucket without the flag is not feasible; a missing bucket is a clear error', async () => {
    const bucket = uniqueName('ff-other');
    await putObject(bucket, 'config/app.yaml', 'name: checkout\nenabled: true\n');
    expect((await investigate(bucket)).verdict.result).toBe('not feasible');
    await expect(investigate(uniqueName('ff-missing'))).rejects.toThrow(/bucket does not exist/);
  });
});

describe('key patterns', () => {
  it('generalises numbers, UUIDs and sibling names', () => {
    const at = new Date();
    const patterns = keyPatterns([
      { key: 'snapshots/2026/11/28/flags.json', size: 10, lastModified: at },
      { key: 'snapshots/2026/11/29/flags.json', size: 20, lastModified: at },
      { key: 'exports/3f2b8c1e-9d4a-4b6f-8e21-7a5c0d9e1f23.csv', size: 5, lastModified: at },
    ]);
    expect(patterns).toEqual([
      { pattern: 'snapshots/{n}/{n}/{n}/flags.json', objects: 2, bytes: 30 },
      { pattern: 'exports/{uuid}.csv', objects: 1, bytes: 5 },
    ]);
  });
});

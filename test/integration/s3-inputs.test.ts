import type { S3Client} from '@aws-sdk/client-s3';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { FileCandidateSource } from '../../src/candidates/file-source.js';
import { loadFlagRules } from '../../src/flags/load-rules.js';
import { ReloadingRulesChecker } from '../../src/flags/reloading-checker.js';
import { S3ObjectStore } from '../../src/inputs/s3-object-store.js';
import { silentLogger } from '../../src/logger.js';
import { tempDir } from '../helpers/files.js';
import { putObject, s3Client, uniqueName } from '../helpers/services.js';

const client = s3Client();
const objectStore = new S3ObjectStore(client);
afterAll(() => client.destroy());

async function readIds(location: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const batch of new FileCandidateSource({ location, batchSize: 1000 }, { objectStore }).batches()) ids.push(...batch.ids);
  return ids;
}

const loadRules = (location: string) =>
  loadFlagRules({ location, expectedFlag: 'f', idPattern: /^[a-z0-9-]+$/, logger: silentLogger() }, { objectStore });

describe('S3 inputs against the local S3 server', () => {
  it('streams candidates from plain and gzipped objects', async () => {
    const bucket = uniqueName('b');
    const ids = Array.from({ length: 5000 }, (_, i) => `u${i}`);
    await putObject(bucket, 'plain.txt', ids.join('\n'));
    await putObject(bucket, 'dir/zipped.txt.gz', gzipSync(ids.join('\n')));
    expect(await readIds(`s3://${bucket}/plain.txt`)).toEqual(ids);
    expect(await readIds(`s3://${bucket}/dir/zipped.txt.gz`)).toEqual(ids);
  });

  it('names the URI when the bucket is missing', async () => {
    const uri = `s3://${uniqueName('nobucket')}/users.txt`;
    await expect(readIds(uri)).rejects.toThrow(`cannot read ${uri}: bucket does not exist`);
  });

  it('names the URI when the key is missing', async () => {
    const bucket = uniqueName('b');
    await putObject(bucket, 'other.txt', 'x');
    await expect(readIds(`s3://${bucket}/missing.txt`)).rejects.toThrow(`cannot read s3://${bucket}/missing.txt: object does not exist`);
  });

  it('names the URI when a gzip object is truncated or corrupt', async () => {
    const bucket = uniqueName('b');
    const whole = gzipSync(Array.from({ length: 20_000 }, (_, i) => `user-${i}`).join('\n'));
    await putObject(bucket, 'cut.gz', whole.subarray(0, whole.length - 100));
    const corrupt = Buffer.from(whole);
    corrupt.fill(0x41, 20, 60);
    await putObject(bucket, 'corrupt.gz', corrupt);
    await expect(readIds(`s3://${bucket}/cut.gz`)).rejects.toThrow(`s3://${bucket}/cut.gz: corrupt or truncated gzip data`);
    await expect(readIds(`s3://${bucket}/corrupt.gz`)).rejects.toThrow(`s3://${bucket}/corrupt.gz: corrupt or truncated gzip data`);
  });

  it('reads rules from S3 with a segment referenced relative to the rules object', async () => {
    const bucket = uniqueName('b');
    await putObject(bucket, 'flags/team.txt', 'm1\nm2\n');
    await putObject(bucket, 'flags/rules.yaml', 'flag: f\nenabled: true\nsegments:\n  team: team.txt\n');
    const snapshot = await loadRules(`s3://${bucket}/flags/rules.yaml`);
    expect(snapshot.evaluateBatch(['m1', 'm3'])).toEqual(['enabled', 'disabled']);
    expect(snapshot.sources).toEqual([`s3://${bucket}/flags/rules.yaml`, `s3://${bucket}/flags/team.txt`]);
  });
});

describe('S3 access denied (adapter boundary)', () => {
  it('turns AccessDenied into a clear error naming the URI', async () => {
    const denying = { send: () => Promise.reject(new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: {}, message: 'Access Denied' })) };
    const store = new S3ObjectStore(denying as unknown as S3Client);
    await expect(store.open({ bucket: 'prod-feature-flipper', key: 'flags.json' })).rejects.toThrow('cannot read s3://prod-feature-flipper/flags.json: access denied');
    await expect(store.etag({ bucket: 'prod-feature-flipper', key: 'flags.json' })).rejects.toThrow('access denied');
  });
});

describe('ReloadingRulesChecker', () => {
  it('reloads S3 rules when an ETag changes, and keeps the last good rules after a bad edit', async () => {
    const bucket = uniqueName('b');
    const location = `s3://${bucket}/rules.yaml`;
    await putObject(bucket, 'team.txt', 'm1\n');
    await putObject(bucket, 'rules.yaml', 'flag: f\nenabled: true\nusers: [u1]\nsegments:\n  team: team.txt\n');
    const checker = new ReloadingRulesChecker(() => loadRules(location), { objectStore }, silentLogger());
    expect(await checker.refresh()).toBe(true);
    expect(await checker.check(['u1', 'u2', 'm1', 'm2'])).toEqual(['enabled', 'disabled', 'enabled', 'disabled']);
    expect(await checker.refresh()).toBe(false);

    await putObject(bucket, 'rules.yaml', 'flag: f\nenabled: true\nusers: [u2]\nsegments:\n  team: team.txt\n');
    expect(await checker.refresh()).toBe(true);
    expect(await checker.check(['u1', 'u2'])).toEqual(['disabled', 'enabled']);

    await putObject(bucket, 'team.txt', 'm2\n'); // a referenced list changes too
    expect(await checker.refresh()).toBe(true);
    expect(await checker.check(['m1', 'm2'])).toEqual(['disabled', 'enabled']);

    await putObject(bucket, 'rules.yaml', 'flag: f\nenabled: sometimes\n');
    expect(await checker.refresh()).toBe(false);
    expect(await checker.check(['u2'])).toEqual(['enabled']);
  });

  it('reloads a local rules file when it changes', async () => {
    const file = path.join(tempDir(), 'rules.yaml');
    writeFileSync(file, 'flag: f\nenabled: true\nusers: [u1]\n');
    const checker = new ReloadingRulesChecker(() => loadRules(file), {}, silentLogger());
    expect(await checker.check(['u1'])).toEqual(['enabled']);
    writeFileSync(file, 'flag: f\nenabled: false\nusers: [u1]\n# longer, so the size changes too\n');
    expect(await checker.refresh()).toBe(true);
    expect(await checker.check(['u1'])).toEqual(['disabled']);
  });
});

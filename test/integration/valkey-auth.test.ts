import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { PollingFixture } from '../helpers/polling.js';
import { PrivateCluster } from '../helpers/private-cluster.js';
import { awsEnv, createQueue, drainQueue, uniqueName, userIdsOf, valkeyClusterUrl } from '../helpers/services.js';

// What ElastiCache and MemoryDB ask of a client: TLS (rediss://) and ACL users, on a cluster.

const run = promisify(execFile);
const clusterPorts = [17001, 17002, 17003, 17004, 17005, 17006];

/** `detect` against `valkeyUrl` as a cluster; the fixture's own keys and a queue of its own. */
async function detectOnCluster(valkeyUrl: string, env: Record<string, string> = {}) {
  const fixture = new PollingFixture(`{${uniqueName('auth')}}`);
  const queueUrl = await createQueue();
  const config = path.join(fixture.dir, 'c.yaml');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(config, `state:\n  valkeyCluster: true\n  knownSetKey: "${fixture.knownKey}"\n  detectorKeyPrefix: "${fixture.prefix}:d:"\nenqueue:\n  rateLimit: 1000\n`);
  const result = await runCli(['detect', '--config', config, '--candidates', fixture.writeCandidates(['a-1', 'a-2', 'a-3']), '--flags', fixture.writeRules(['a-1', 'a-3'])], {
    env: { ...awsEnv(), VALKEY_URL: valkeyUrl, SQS_QUEUE_URL: queueUrl, ...env },
  });
  return { result, sent: userIdsOf(await drainQueue(queueUrl)) };
}

describe('an ACL user on the cluster', () => {
  const user = uniqueName('ffd').replace(/-/g, '');
  beforeAll(async () => {
    // ACLs are per node in a cluster: every node gets the user.
    for (const port of clusterPorts) await run('valkey-cli', ['-p', String(port), 'ACL', 'SETUSER', user, 'on', '>s3cret-pw', '~*', '&*', '+@all']);
  });
  afterAll(async () => {
    for (const port of clusterPorts) await run('valkey-cli', ['-p', String(port), 'ACL', 'DELUSER', user]);
  });

  it('runs with the user and password from the URL', async () => {
    const seed = new URL(valkeyClusterUrl());
    const { result, sent } = await detectOnCluster(`redis://${user}:s3cret-pw@${seed.host}`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.summary).toMatchObject({ status: 'ok', enqueued: 2 });
    expect(sent.sort()).toEqual(['a-1', 'a-3']);
  });

  it('a wrong password fails the run clearly, without the password in the error', async () => {
    const seed = new URL(valkeyClusterUrl());
    const { result, sent } = await detectOnCluster(`redis://${user}:wrong-pw@${seed.host}`);
    expect(result.code).toBe(1); // not a process that dies mid-run without its summary
    expect(String(result.summary.error)).toMatch(/Valkey connect failed .*WRONGPASS/);
    expect(result.stderr).not.toContain('wrong-pw');
    expect(sent).toEqual([]);
  });
});

describe('a cluster that speaks TLS only (rediss://)', () => {
  let cluster: PrivateCluster | undefined;
  let ca = '';
  beforeAll(async () => {
    const dir = tempDir('ffd-tls-');
    ca = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', ca, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
    cluster = await PrivateCluster.start(18121, { cert: ca, key });
  }, 60_000);
  afterAll(() => cluster?.stop());

  it('runs over TLS, the certificate checked against the seed host name', async () => {
    const port = new URL((cluster as PrivateCluster).url()).port;
    const { result, sent } = await detectOnCluster(`rediss://localhost:${port}`, { NODE_EXTRA_CA_CERTS: ca });
    expect(result.code, result.stderr).toBe(0);
    expect(result.summary).toMatchObject({ status: 'ok', enqueued: 2 });
    expect(sent.sort()).toEqual(['a-1', 'a-3']);
  });

  it('refuses a server whose certificate it does not trust', async () => {
    const port = new URL((cluster as PrivateCluster).url()).port;
    const { result, sent } = await detectOnCluster(`rediss://localhost:${port}`);
    expect(result.code).toBe(1);
    expect(String(result.summary.error)).toMatch(/Valkey/);
    expect(sent).toEqual([]);
  });
});

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { awsEnv, uniqueName, valkeyClient, valkeyUrl } from '../helpers/services.js';

/** A config whose keys are this test's own, so runs can be checked for what they wrote. */
function configFor(prefix: string, extra = ''): string {
  const file = path.join(tempDir(), 'c.yaml');
  writeFileSync(file, `state:\n  knownSetKey: ${prefix}:known\n  detectorKeyPrefix: "${prefix}:d:"\n${extra}`);
  return file;
}

async function knownSetSize(prefix: string): Promise<number> {
  const valkey = valkeyClient();
  try {
    return await valkey.scard(`${prefix}:known`);
  } finally {
    await valkey.quit();
  }
}

const userFile = (): string => {
  const file = path.join(tempDir(), 'users.txt');
  writeFileSync(file, 'user-0001\nuser-0002\n');
  return file;
};

describe('Valkey state never pairs with the stdout sink by accident', () => {
  it.each([
    ['unset', {}],
    ['empty', { SQS_QUEUE_URL: '' }],
  ])('with SQS_QUEUE_URL %s, detect refuses to start (exit 2), prints no message and marks nobody', async (_, queueEnv) => {
    const prefix = uniqueName('sink');
    const result = await runCli(['detect', '--config', configFor(prefix)], { env: { ...awsEnv(), VALKEY_URL: valkeyUrl(), ...queueEnv } });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('sqs.queueUrl: not set (SQS_QUEUE_URL unset or empty) while the state is in Valkey');
    expect(result.stderr).toContain('--sink stdout');
    expect(await knownSetSize(prefix)).toBe(0);
  });

  it('the daemon and backfill refuse it too', async () => {
    const prefix = uniqueName('sink');
    const env = { ...awsEnv(), VALKEY_URL: valkeyUrl(), ADMIN_PORT: '0' };
    const daemon = await runCli(['run', '--config', configFor(prefix)], { env });
    expect(daemon.code).toBe(2);
    expect(daemon.stderr).toContain('SQS_QUEUE_URL unset or empty');
    const backfill = await runCli(['backfill', '--user-file', userFile(), '--config', configFor(prefix)], { env });
    expect(backfill.code).toBe(2);
    expect(backfill.stdout).toBe('');
  });

  it('runs when stdout is chosen explicitly (--sink stdout or sink: stdout) or for --dry-run', async () => {
    const env = { ...awsEnv(), VALKEY_URL: valkeyUrl() };
    const dryPrefix = uniqueName('sink');
    const dry = await runCli(['detect', '--dry-run', '--config', configFor(dryPrefix)], { env });
    expect(dry.code).toBe(0);
    expect(await knownSetSize(dryPrefix)).toBe(0);

    const flagPrefix = uniqueName('sink');
    const byFlag = await runCli(['detect', '--sink', 'stdout', '--config', configFor(flagPrefix)], { env });
    expect(byFlag.code).toBe(0);
    expect(byFlag.summary.enqueued).toBeGreaterThan(0);
    expect(await knownSetSize(flagPrefix)).toBe(byFlag.summary.enqueued);

    const configPrefix = uniqueName('sink');
    const byConfig = await runCli(['detect', '--config', configFor(configPrefix, 'sink: stdout\n')], { env });
    expect(byConfig.code).toBe(0);
    expect(await knownSetSize(configPrefix)).toBe(byConfig.summary.enqueued);
  });

  it('sink: sqs without a queue is a configuration error', async () => {
    const result = await runCli(['detect', '--sink', 'sqs']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('sink "sqs" needs a queue URL');
  });

  it('the embedded default (file state, no queue) still writes to stdout', async () => {
    const result = await runCli(['detect']);
    expect(result.code).toBe(0);
    expect(result.summary.enqueued).toBeGreaterThan(0);
  });
});

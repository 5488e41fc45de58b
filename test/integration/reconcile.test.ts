import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, valkeyClient, valkeyUrl, waitFor } from '../helpers/services.js';

// Reconcile (issue 11, item 3): known users outside the candidate window are re-checked too.

const daemons = daemonsForTests(afterEach);
const users = (n: number) => Array.from({ length: n }, (_, i) => `user-${i}`);

/** 20 known users of whom the rules now enable 15; no candidates at all (they left the window). */
async function deployment(daemonYaml = '') {
  const fixture = new PollingFixture();
  const valkey = valkeyClient();
  await valkey.sadd(fixture.knownKey, ...users(20));
  const config = [
    `candidates:\n  path: ${fixture.writeCandidates([])}`,
    `flags:\n  rules: ${fixture.writeRules(users(15))}`,
    `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"`,
    daemonYaml,
  ].join('\n');
  const configFile = path.join(fixture.dir, 'c.yaml');
  writeFileSync(configFile, config);
  return { fixture, valkey, config, configFile, env: { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: await createQueue() } };
}

describe('ff-detector reconcile', () => {
  it('re-checks every known user and forgets the disabled; --dry-run changes nothing', async () => {
    const { fixture, valkey, configFile, env } = await deployment();
    const dry = await runCli(['reconcile', '--config', configFile, '--dry-run'], { env });
    expect(dry.summary).toMatchObject({ strategy: 'reconcile', status: 'ok', evaluated: 20, enabled: 15, disabled: 5, forgotten: 5 });
    expect(await valkey.scard(fixture.knownKey)).toBe(20);
    const real = await runCli(['reconcile', '--config', configFile], { env });
    expect(real.code, real.stderr).toBe(0);
    expect(real.summary).toMatchObject({ status: 'ok', forgotten: 5 });
    expect((await valkey.smembers(fixture.knownKey)).sort()).toEqual(users(15).sort());
    await valkey.quit();
  });

  it('runs on the daemon\'s reconcile schedule', async () => {
    const { fixture, valkey, config, env } = await deployment('daemon:\n  schedule: "0 0 1 1 *"\n  reconcileSchedule: "* * * * * *"');
    const daemon = await DaemonProcess.start(config, env);
    daemons.push(daemon);
    await waitFor(async () => (await valkey.scard(fixture.knownKey)) === 15, 'a scheduled reconcile to forget the disabled');
    const runs = await daemon.get<{ lastRuns: Array<{ strategy: string; status: string }> }>('/status');
    expect(runs.lastRuns.some((run) => run.strategy === 'reconcile' && run.status === 'ok')).toBe(true);
    await valkey.quit();
  });
});

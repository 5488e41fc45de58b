import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, valkeyClient, valkeyUrl, waitFor } from '../helpers/services.js';

// No mass forgetting without a person (issue 11, item 2): a rules change that switches the flag
// off for everyone would remove every known user, and re-backfill them all later.

const daemons = daemonsForTests(afterEach);
const users = (n: number) => Array.from({ length: n }, (_, i) => `user-${i}`);

/** 150 known users, and rules that now disable all of them. */
async function switchedOff() {
  const fixture = new PollingFixture();
  const valkey = valkeyClient();
  await valkey.sadd(fixture.knownKey, ...users(150));
  const config = [
    `candidates:\n  path: ${fixture.writeCandidates(users(150))}`,
    `flags:\n  rules: ${path.join(fixture.dir, 'off.yaml')}`,
    `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"`,
    'daemon:\n  schedule: "0 0 1 1 *"',
  ].join('\n');
  writeFileSync(path.join(fixture.dir, 'off.yaml'), 'flag: consumer_graph_ingestion\nenabled: false\n');
  writeFileSync(path.join(fixture.dir, 'c.yaml'), config);
  const env = { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: await createQueue() };
  return { fixture, valkey, config, configFile: path.join(fixture.dir, 'c.yaml'), env };
}

describe('the forget guard', () => {
  it('detect holds the forgets (exit 1, nobody forgotten); --allow-mass-forget forgets them', async () => {
    const { fixture, valkey, configFile, env } = await switchedOff();
    const held = await runCli(['detect', '--config', configFile], { env });
    expect(held.code).toBe(1);
    expect(held.summary).toMatchObject({ status: 'held', forgotten: 0, forgetHeld: 150 });
    expect(held.stderr).toContain('forgetting held: 150 of the 150 known users');
    expect(await valkey.scard(fixture.knownKey)).toBe(150);

    const released = await runCli(['detect', '--config', configFile, '--allow-mass-forget'], { env });
    expect(released.code).toBe(0);
    expect(released.summary).toMatchObject({ status: 'ok', forgotten: 150 });
    expect(await valkey.scard(fixture.knownKey)).toBe(0);
    await valkey.quit();
  });

  it('the daemon shows the hold in /status and metrics; POST /admin/forget-hold/release lets the next run forget', async () => {
    const { fixture, valkey, config, env } = await switchedOff();
    const daemon = await DaemonProcess.start(config, env);
    daemons.push(daemon);
    await waitFor(async () => (await daemon.status()).role === 'leader', 'leadership');
    expect((await daemon.post('/runs')).status).toBe(202);
    await waitFor(async () => (await daemon.status()).lastRuns.length === 1, 'the run to finish');
    const status = await daemon.get<{ forgetHold: { users: number; reason: string } | null }>('/status');
    expect(status.forgetHold).toMatchObject({ users: 150 });
    expect(await (await fetch(`${daemon.admin}/metrics`)).text()).toMatch(/ff_detector_forget_held_users\{strategy="polling"\} 150/);
    expect(await valkey.scard(fixture.knownKey)).toBe(150);

    expect((await daemon.post('/admin/forget-hold/release')).status).toBe(202);
    expect((await daemon.post('/runs')).status).toBe(202);
    await waitFor(async () => (await daemon.status()).lastRuns.length === 2, 'the second run to finish');
    expect((await daemon.status()).lastRuns[0]).toMatchObject({ status: 'ok', forgotten: 150 });
    expect(await valkey.scard(fixture.knownKey)).toBe(0);
    expect((await daemon.get<{ forgetHold: unknown }>('/status')).forgetHold).toBeNull();
    await valkey.quit();
  });
});

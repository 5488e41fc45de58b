import type { Browser } from 'playwright-core';
import YAML from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consolePage, launchBrowser, screenshot } from '../helpers/browser.js';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, uniqueName, valkeyClient, valkeyUrl, waitFor } from '../helpers/services.js';
import { DELTA_MAPPING, delta, FeedFixture, kafkaBrokers, TopicWriter } from '../helpers/topic-feed.js';

// The console's safety and feed parts: the forget guard held and released from the page, and a
// daemon following a real flag topic (shadow mode) with the lag gate reading a real worker group.

const TOKEN = 'console-test-token-0123456789';
const daemons = daemonsForTests(afterEach);
let browser: Browser;
const writer = new TopicWriter();

beforeAll(async () => {
  browser = await launchBrowser();
  await writer.connect();
});
afterAll(async () => {
  await browser.close();
  await writer.close();
});

describe('the console\'s safety and feed parts', () => {
  it('shows the feed in shadow mode, its agreement with the run started from the page, the lag gate\'s reading and the known set', async () => {
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic, 1);
    const workerTopic = uniqueName('purchases');
    await writer.createTopic(workerTopic, 1);
    await writer.send(workerTopic, [{ value: 'a purchase' }, { value: 'another' }, { value: 'a third' }]);
    const workerGroup = uniqueName('worker');

    const feedUsers = ['feed-a', 'feed-b'];
    const config = YAML.parse(fixture.config({ mapping: DELTA_MAPPING, rules: fixture.writeRules({ users: [...feedUsers, 'poll-only'] }), candidates: fixture.writeCandidates([...feedUsers, 'poll-only']), shadow: true, debounceSeconds: 3600 })) as Record<string, unknown>;
    config.admin = { token: TOKEN };
    config.safety = { consumerLag: { enabled: true, brokers: kafkaBrokers().split(','), groups: [{ group: workerGroup, topic: workerTopic }] } };
    const daemon = await DaemonProcess.start(YAML.stringify(config), { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: await createQueue(), KAFKAJS_NO_PARTITIONER_WARNING: '1' });
    daemons.push(daemon);
    await waitFor(() => daemon.log.includes('following the flag topic'), 'the feed to join its consumer group');

    const { page, problems } = await consolePage(browser);
    await page.goto(`${daemon.admin}/`);
    await page.fill('#token', TOKEN);
    await page.click('#use-token');
    await page.locator('#feeds td', { hasText: 'kafka-topic' }).waitFor();
    expect(await page.locator('#feeds td', { hasText: /^shadow$/ }).count()).toBe(1);

    await writer.send(fixture.topic, feedUsers.map((user) => delta(user, 'add')));
    await page.locator('#feeds td', { hasText: /^revision \d+/ }).waitFor();
    await page.click('#start-run');
    await page.locator('#runs-table td', { hasText: /^ok$/ }).waitFor({ timeout: 30_000 });
    await page.locator('#feeds td', { hasText: /^both 2 · only polling 1 · only feed 0/ }).waitFor();
    await page.locator('#lag-gate td', { hasText: workerGroup }).waitFor();
    expect(await page.locator('#lag-gate tbody tr').innerText()).toMatch(new RegExp(`${workerGroup}\\s+${workerTopic}\\s+3\\s+no`));
    await page.locator('#known-users', { hasText: /^3$/ }).waitFor();
    await screenshot(page, 'console-feeds.png');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows a held forget guard and releases it from the page; the next run forgets', async () => {
    const fixture = new PollingFixture();
    const valkey = valkeyClient();
    const known = Array.from({ length: 150 }, (_, i) => `held-user-${i}`);
    await valkey.sadd(fixture.knownKey, ...known);
    const config = [
      `candidates:\n  path: ${fixture.writeCandidates(known)}`,
      `flags:\n  rules: ${fixture.writeRules([])}`,
      `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"`,
      'daemon:\n  schedule: "0 0 1 1 *"',
      `admin:\n  token: ${TOKEN}`,
    ].join('\n');
    const daemon = await DaemonProcess.start(config, { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: await createQueue() });
    daemons.push(daemon);
    await waitFor(async () => (await daemon.status()).role === 'leader', 'leadership');

    const { page, problems } = await consolePage(browser);
    await page.goto(`${daemon.admin}/`);
    await page.locator('#guard-state', { hasText: 'no guard is holding' }).waitFor();
    expect(await page.locator('#release-guard').isDisabled()).toBe(true);
    await page.fill('#token', TOKEN);
    await page.click('#use-token');
    await page.click('#start-run');
    await page.locator('#runs-table td', { hasText: /^held$/ }).waitFor({ timeout: 30_000 });
    await page.locator('#guard-state', { hasText: 'held 150 forgets' }).waitFor();
    expect(await page.locator('#release-guard').isEnabled()).toBe(true);
    expect(await valkey.scard(fixture.knownKey)).toBe(150);

    await page.click('#release-guard');
    await page.locator('#notice', { hasText: 'release the held guard: accepted' }).waitFor();
    await page.click('#start-run');
    await page.locator('#runs-table tbody tr:first-child td', { hasText: /^ok$/ }).waitFor({ timeout: 30_000 });
    expect(await page.locator('#runs-table tbody tr:first-child').innerText()).toMatch(/\s150\s/);
    await page.locator('#guard-state', { hasText: 'no guard is holding' }).waitFor();
    expect(await valkey.scard(fixture.knownKey)).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
    await valkey.quit();
  });
});

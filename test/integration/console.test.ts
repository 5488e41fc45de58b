import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consolePage, launchBrowser, progressOf, screenshot } from '../helpers/browser.js';
import { DaemonProcess, daemonsForTests } from '../helpers/daemon.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, drainQueue, putObject, uniqueName, userIdsOf, valkeyUrl, waitFor } from '../helpers/services.js';

// The operator's console in headless Chromium, against `ff-detector run` processes on real
// Valkey and SQS: what an operator sees and does, through the page only.

const TOKEN = 'console-test-token-0123456789';
const daemons = daemonsForTests(afterEach);
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
});

const users = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

function configFor(fixture: PollingFixture, enabled: string[], rateLimit: number): string {
  return [
    `candidates:\n  path: ${fixture.writeCandidates(enabled)}`,
    `flags:\n  rules: ${fixture.writeRules(enabled)}`,
    `state:\n  knownSetKey: ${fixture.knownKey}\n  loadedKeyPrefix: "${fixture.loadedPrefix}"\n  detectorKeyPrefix: "${fixture.prefix}:detector:"`,
    `enqueue:\n  rateLimit: ${rateLimit}\n  budget: 0`,
    'daemon:\n  schedule: "0 0 1 1 *"\n  leaderTtlMs: 3000',
    `admin:\n  token: ${TOKEN}`,
    'sqs:\n  maxBacklog: 0',
  ].join('\n');
}

async function startDaemon(config: string, queueUrl: string, env: Record<string, string> = {}): Promise<DaemonProcess> {
  const daemon = await DaemonProcess.start(config, { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl, ...env });
  daemons.push(daemon);
  return daemon;
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

async function useToken(page: Page, token: string): Promise<void> {
  await page.fill('#token', token);
  await page.click('#use-token');
  await page.locator('#token-state', { hasText: 'token set' }).waitFor();
}

describe('the console', () => {
  it('refuses actions without the token and says so; with it, runs a detection to the end, starts and cancels a backfill of pasted IDs and runs one from S3', async () => {
    const fixture = new PollingFixture();
    const enabled = users('console-user', 120);
    const queueUrl = await createQueue();
    const daemon = await startDaemon(configFor(fixture, enabled, 20), queueUrl);
    await waitFor(async () => (await daemon.status()).role === 'leader', 'leadership');
    const { page, problems } = await consolePage(browser);

    const response = await page.goto(`${daemon.admin}/`);
    const policy = response?.headers()['content-security-policy'] ?? '';
    expect(policy).toContain("script-src 'self'");
    expect(policy).not.toContain('unsafe-inline');
    expect(await page.locator('[onclick], [onsubmit], [onload], [onerror]').count()).toBe(0);
    await page.locator('#connection', { hasText: 'flag consumer_graph_ingestion' }).waitFor();
    await page.locator('#replicas td', { hasText: 'leader' }).waitFor();

    // Without the token: refused, the page says why, nothing starts.
    await page.click('#start-run');
    await page.locator('#notice.error', { hasText: 'refused: missing or wrong admin token' }).waitFor();
    await page.fill('#backfill-ids', 'console-backfill-0');
    await page.click('#start-backfill');
    await page.locator('#notice.error', { hasText: 'start a backfill: refused' }).waitFor();
    expect((await daemon.status()).lastRuns).toEqual([]);
    expect((await daemon.get<{ job: unknown }>('/admin/backfill/status')).job).toBeNull();

    // A wrong token is refused the same way; the right one is kept for the browser session.
    await useToken(page, 'not-the-token-at-all-000');
    await page.click('#start-run');
    await page.locator('#notice.error', { hasText: 'refused' }).waitFor();
    await useToken(page, TOKEN);
    await page.reload();
    expect(await text(page, '#token-state')).toContain('token set');

    // A run: the bar moves while it sends, ends full, and the run is in the chart and the table.
    await page.click('#start-run');
    await page.locator('#notice', { hasText: 'start a run: accepted' }).waitFor();
    await page.locator('#run-figures', { hasText: 'users/s' }).waitFor();
    await waitFor(async () => {
      const fill = await progressOf(page, 'run-progress');
      return fill > 0 && fill < 1 && (await text(page, '#run-state')).startsWith('run ');
    }, 'the progress bar part-way');
    await page.locator('#runs-table td', { hasText: /^ok$/ }).waitFor({ timeout: 30_000 });
    expect(await progressOf(page, 'run-progress')).toBe(1);
    expect(await text(page, '#runs-table tbody tr')).toContain('120');
    expect(await page.locator('#runs-chart svg g.run rect.series-enqueued').count()).toBe(1);
    await page.locator('#known-users', { hasText: '120' }).waitFor();
    expect(userIdsOf(await drainQueue(queueUrl)).sort()).toEqual([...enabled].sort());

    // A backfill from pasted IDs: started, then cancelled from the page.
    await page.fill('#backfill-ids', users('console-backfill', 200).join('\n'));
    await page.click('#start-backfill');
    await page.locator('#notice', { hasText: 'start a backfill: accepted' }).waitFor();
    await page.locator('#backfill-status', { hasText: 'running' }).waitFor();
    await waitFor(async () => (await progressOf(page, 'backfill-progress')) > 0, 'the backfill to send');
    await screenshot(page, 'console.png');
    await page.click('#cancel-backfill');
    await page.locator('#backfill-status', { hasText: /^cancelled$/ }).waitFor({ timeout: 30_000 });
    expect(await progressOf(page, 'backfill-progress')).toBeLessThan(1);

    // A backfill from a user file in S3, to its end.
    const bucket = uniqueName('console');
    await putObject(bucket, 'users.txt', 'from-s3-a\nfrom-s3-b\nfrom-s3-c\n');
    await page.fill('#backfill-ids', '');
    await page.fill('#backfill-uri', `s3://${bucket}/users.txt`);
    await page.click('#start-backfill');
    await page.locator('#backfill-state', { hasText: `(s3://${bucket}/users.txt)` }).waitFor();
    await page.locator('#backfill-status', { hasText: /^ok$/ }).waitFor({ timeout: 30_000 });
    expect(await progressOf(page, 'backfill-progress')).toBe(1);

    // What the API returns is shown as text, never parsed as markup.
    await page.fill('#backfill-uri', 's3://no-such-bucket/<img src=x id=injected>.txt');
    await page.click('#start-backfill');
    await page.getByText('<img src=x id=injected>').first().waitFor({ timeout: 30_000 });
    expect(await page.locator('#injected').count()).toBe(0);

    expect(problems).toEqual([]);
    await page.close();
  });

  it('on a follower, shows the leader\'s run as it goes (read from Valkey) and cancels it there', async () => {
    const fixture = new PollingFixture();
    const enabled = users('replica-user', 400);
    const queueUrl = await createQueue();
    const config = configFor(fixture, enabled, 20);
    const [a, b] = [await startDaemon(config, queueUrl), await startDaemon(config, queueUrl)] as [DaemonProcess, DaemonProcess];
    await waitFor(async () => [(await a.status()).role, (await b.status()).role].includes('leader'), 'a leader');
    const [leader, follower] = (await a.status()).role === 'leader' ? [a, b] : [b, a];
    const { page, problems } = await consolePage(browser);
    await page.goto(`${follower.admin}/`);
    await useToken(page, TOKEN);
    await waitFor(async () => (await page.locator('#replicas tbody tr').count()) === 2, 'both replicas listed');
    expect(await text(page, '#leader')).toContain('leader:');

    const started = await fetch(`${leader.admin}/runs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` } });
    expect(started.status).toBe(202);
    await waitFor(async () => {
      const fill = await progressOf(page, 'run-progress');
      return fill > 0 && fill < 1;
    }, 'the follower\'s page to show the leader\'s run part-way');
    expect(await text(page, '#run-state')).toContain(` on ${(await leader.get<{ replica: string }>('/status')).replica},`);

    await page.click('#cancel-run');
    await page.locator('#notice', { hasText: 'cancel the run: accepted' }).waitFor();
    await page.locator('#runs-table td', { hasText: /^cancelled$/ }).waitFor({ timeout: 30_000 });
    const sent = userIdsOf(await drainQueue(queueUrl));
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.length).toBeLessThan(enabled.length);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('bound beyond loopback, shows nothing but the token form until the token is given', async () => {
    const fixture = new PollingFixture();
    const daemon = await startDaemon(configFor(fixture, users('open-user', 3), 20), await createQueue(), { ADMIN_HOST: '0.0.0.0' });
    const port = new URL(daemon.admin).port;
    const { page, problems } = await consolePage(browser);
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.locator('#connection', { hasText: 'status unavailable: refused: missing or wrong admin token' }).waitFor();
    expect(await page.locator('#replicas tr').count()).toBe(0);
    await useToken(page, TOKEN);
    await page.locator('#replicas td', { hasText: 'leader' }).waitFor();
    expect(await text(page, '#connection')).toContain('flag consumer_graph_ingestion');
    expect(problems).toEqual([]);
    await page.close();
  });
});

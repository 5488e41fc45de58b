import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Where tests keep what a person may want to look at afterwards (screenshots); not committed. */
export const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

/** Debian's chromium (scripts/install-chromium.sh installs it), or CHROMIUM_PATH. */
function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('chromium is missing: run scripts/install-chromium.sh (apt-get install chromium) or set CHROMIUM_PATH');
  }
}

export function launchBrowser(): Promise<Browser> {
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
}

/** A page that records every script error and Content-Security-Policy violation it meets. */
export async function consolePage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A refused request logs "Failed to load resource" as an error; the page reports those itself.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console error: ${message.text()}`);
  });
  return { page, problems };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The progress bar's fill, 0…1. */
export function progressOf(page: Page, id: string): Promise<number> {
  // Runs in the page: typed by hand, the tests are compiled without the DOM's types.
  return page.$eval(`#${id}`, (bar) => {
    const progress = bar as unknown as { value: number; max: number };
    return progress.value / progress.max;
  });
}

// What the browser tests share: their environment — KEFU_URL (required), CHROMIUM (default
// /usr/bin/chromium), SCREENSHOT_DIR —, failing with a message, and one headless Chromium
// (DESIGN.md's flags) around a test.

import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE = (process.env.KEFU_URL || '').replace(/\/+$/, '');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = process.env.SCREENSHOT_DIR || join(tmpdir(), 'kefu-screenshots');
export const WAIT = 10_000;

/** Ends the test with `FAIL: message` and status 1. */
export function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

/** Checks the environment, makes the screenshot folder and starts headless Chromium. */
export async function launch() {
  if (!BASE) fail('set KEFU_URL, e.g. KEFU_URL=http://127.0.0.1:38123');
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

/** Runs `test`, closes the browser, and says `ok: done` — or fails with the error. */
export async function finish(browser, test, done) {
  try {
    await test();
  } catch (error) {
    await browser.close();
    fail(error instanceof Error ? error.stack || error.message : String(error));
  }
  await browser.close();
  console.log(`ok: ${done}`);
}

/**
 * Watches pages for script errors and console errors: `watch(page, who)` (also sets the page's
 * default timeout), `check(where)` throws with everything seen so far. Console errors that
 * `expected` matches — the failed requests a test makes on purpose, which Chromium logs — are
 * not problems.
 */
export function watcher(expected) {
  const problems = [];
  const watch = (page, who) => {
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (error) => problems.push(`${who}: page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !(expected && expected.test(message.text()))) {
        problems.push(`${who}: console error: ${message.text()} (${message.location().url || 'no url'})`);
      }
    });
  };
  const check = (where) => {
    if (problems.length) throw new Error(`${where}:\n  ${problems.join('\n  ')}`);
  };
  return { watch, check };
}

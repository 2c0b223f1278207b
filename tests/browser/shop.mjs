// The demo shop and the chat widget in a real headless Chromium: a visitor picks a category,
// types a budget, picks a preference, gets product cards, reloads the page and finds the same
// transcript again (resume). Once in English and once in Chinese.
//
//   KEFU_URL=http://127.0.0.1:38123 SCREENSHOT_DIR=/tmp/shots node tests/browser/shop.mjs
//
// Env: KEFU_URL (required), CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR (default:
// $TMPDIR/kefu-screenshots). Exits 0 on success, 1 with a message on failure.

import { join } from 'node:path';
import { BASE, SHOTS, WAIT, fail, finish, launch } from './harness.mjs';


// Labels of flows/library/guided-shopping.flow.json.
const PASSES = [
  { lang: 'en', category: 'Phones', preference: 'Camera', addToCart: /^Add .+ to cart$/, shot: 'shop-chat-en.png' },
  { lang: 'zh-CN', category: '手机', preference: '拍照', addToCart: /^加入购物车：/, shot: 'shop-chat-zh.png' },
];


const browser = await launch();
await finish(browser, async () => {
  for (const pass of PASSES) await run(pass);
}, 'the shop chat works and resumes in en and zh-CN');

async function run(pass) {
  const step = (what) => console.log(`[${pass.lang}] ${what}`);
  // A new context per pass: its own localStorage, so each pass starts a new conversation.
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: pass.lang });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()} (${message.location().url || 'no url'})`);
  });
  const check = (where) => {
    if (problems.length) throw new Error(`${pass.lang}, ${where}:\n  ${problems.join('\n  ')}`);
  };

  // Playwright's CSS selectors pierce the widget's open shadow root.
  const messages = page.locator('[data-kefu="message"]');
  const choice = (label) =>
    page.locator('[data-kefu="choice"]:not([disabled])').filter({ hasText: label instanceof RegExp ? label : new RegExp(`^${escape(label)}$`) });
  const waitFor = async (locator, what) => {
    try {
      await locator.first().waitFor({ state: 'visible', timeout: WAIT });
    } catch {
      throw new Error(`${pass.lang}: timed out after ${WAIT / 1000} s waiting for ${what}\n${await transcript(page)}`);
    }
  };

  step('open the shop');
  await page.goto(`${BASE}/demo?lang=${encodeURIComponent(pass.lang)}`);
  await waitFor(page.locator('[data-shop="product"]'), 'the product grid');
  await waitFor(page.locator('[data-kefu="launcher"]'), 'the chat launcher');

  step('open the widget with the "need help choosing" button');
  await page.locator('[data-shop="help"]').first().click();
  await waitFor(page.locator('[data-kefu="panel"]'), 'the chat panel');
  const focused = await page.evaluate(() => document.querySelector('kefu-widget')?.shadowRoot?.activeElement?.dataset.kefu);
  if (focused !== 'input') throw new Error(`${pass.lang}: opening the widget should focus the input, focus is on ${focused}`);

  step(`pick "${pass.category}"`);
  await waitFor(choice(pass.category), `the category button "${pass.category}"`);
  await choice(pass.category).click();
  await waitFor(page.locator('[data-kefu="message"][data-type="ask"][data-expect="input"]'), 'the budget question');

  step('type the budget 4000');
  await page.locator('[data-kefu="input"]').fill('4000');
  await page.locator('[data-kefu="send"]').click();
  await waitFor(page.locator('[data-kefu="message"][data-sender="visitor"][data-state="sent"]').filter({ hasText: /^4000$/ }), 'the acknowledged budget');

  step(`pick "${pass.preference}"`);
  await waitFor(choice(pass.preference), `the preference button "${pass.preference}"`);
  await choice(pass.preference).click();

  step('wait for product cards');
  // Only the cards of a product list: the "quick" welcome variant shows a carousel of categories.
  await waitFor(page.locator('[data-kefu="products"] [data-kefu="card"]'), 'product cards');
  await waitFor(choice(pass.addToCart), 'the "add to cart" buttons');
  await page.waitForTimeout(500); // let receipts and scrolling settle before the picture
  await page.screenshot({ path: join(SHOTS, pass.shot) });
  step(`saved ${join(SHOTS, pass.shot)}`);
  const before = await messages.count();
  const cardsBefore = await page.locator('[data-kefu="products"] [data-kefu="card"]').count();
  check('before the reload');

  step(`reload (${before} messages) and reopen the widget`);
  await page.reload();
  await waitFor(page.locator('[data-kefu="launcher"]'), 'the chat launcher after the reload');
  await page.evaluate(() => window.kefuWidget.open());
  try {
    await page.waitForFunction(
      (n) => document.querySelector('kefu-widget')?.shadowRoot?.querySelectorAll('[data-kefu="message"]').length === n,
      before,
      { timeout: WAIT },
    );
  } catch {
    throw new Error(`${pass.lang}: after the reload the transcript has ${await messages.count()} messages, expected ${before}\n${await transcript(page)}`);
  }
  const cardsAfter = await page.locator('[data-kefu="products"] [data-kefu="card"]').count();
  if (cardsAfter !== cardsBefore) throw new Error(`${pass.lang}: ${cardsAfter} product cards after the reload, expected ${cardsBefore}`);
  await waitFor(choice(pass.addToCart), 'the live "add to cart" buttons after the reload');
  const state = await page.evaluate(() => window.kefuWidget.state);
  if (state.connection !== 'open' || state.pending !== 0) throw new Error(`${pass.lang}: widget state after the reload: ${JSON.stringify(state)}`);
  await page.waitForTimeout(300);
  check('after the reload');
  step(`resumed with the same ${before} messages`);
  await context.close();
}

function escape(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The widget's transcript as text, for failure messages. */
async function transcript(page) {
  try {
    const lines = await page.evaluate(() =>
      [...(document.querySelector('kefu-widget')?.shadowRoot?.querySelectorAll('[data-kefu="message"],[data-kefu="error"]') ?? [])].map(
        (e) => `  ${e.dataset.sender || 'error'}${e.dataset.seq ? ' #' + e.dataset.seq : ''}: ${e.textContent.replace(/\s+/g, ' ').slice(0, 120)}`,
      ),
    );
    const status = await page.evaluate(() => document.querySelector('kefu-widget')?.shadowRoot?.querySelector('[data-kefu="status"]')?.textContent);
    return `widget status: ${status}\ntranscript:\n${lines.join('\n') || '  (empty)'}`;
  } catch (error) {
    return `(no transcript: ${error.message})`;
  }
}

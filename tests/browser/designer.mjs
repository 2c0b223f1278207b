// The flow designer in a real headless Chromium, with the mouse only: an admin signs in, creates
// a flow, drags a message, a buttons step and an end step from the palette onto the canvas,
// connects the exits by dragging, fills the inspector, sees a validation error appear (an exit
// left open) and disappear (once it is connected), checks undo/redo, previews the flow in the
// browser, saves and publishes it, then chats with the published version in the demo shop and
// sees that conversation counted by the analytics overlay; last, the designer in Chinese.
// Screenshots of the editor, the preview, the shop and the Chinese editor.
//
//   KEFU_URL=http://127.0.0.1:38123 KEFU_ADMIN_PASSWORD=… SCREENSHOT_DIR=/tmp/shots node tests/browser/designer.mjs
//
// Env: KEFU_URL and KEFU_ADMIN_PASSWORD (the password of `admin`) are required; CHROMIUM
// (default /usr/bin/chromium), SCREENSHOT_DIR.

import { join } from 'node:path';
import { BASE, SHOTS, WAIT, fail, finish, launch, watcher } from './harness.mjs';

const PASSWORD = process.env.KEFU_ADMIN_PASSWORD || '';

if (!PASSWORD) fail('set KEFU_ADMIN_PASSWORD (the password of the account `admin`)');

const browser = await launch();
await finish(browser, () => run(), 'a flow was built with the mouse, previewed, published and chatted with in the shop');

async function run() {
  const step = (what) => console.log(`- ${what}`);
  // Signing in starts with /api/auth/me answering 401: expected.
  const { watch, check } = watcher(/401/);

  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-US' });
  const page = await context.newPage();
  watch(page, 'designer');

  step('the designer asks to sign in and comes back after it');
  await page.goto(`${BASE}/designer`);
  await page.click('[data-test=designer-sign-in]');
  await page.fill('[data-test=login-login]', 'admin');
  await page.fill('[data-test=login-password]', PASSWORD);
  await page.click('[data-test=login-submit]');
  await page.waitForURL(/\/designer$/);
  await page.locator('[data-test=flow-table] [data-test=open-flow][data-flow=guided-shopping]').waitFor();
  check('signing in');

  const id = `spring-${Date.now().toString(36)}`;
  step(`a new flow ${id}`);
  await page.fill('[data-test=new-flow-id]', id);
  await page.fill('[data-test=new-flow-name]', 'Spring sale');
  await page.click('[data-test=new-flow-create]');
  await page.locator('[data-test=node-start]').waitFor();
  await expectText(page, '[data-test=flow-title]', /Spring sale/);

  const canvas = await page.locator('[data-test=canvas]').boundingBox();
  const drop = async (kind, x, y) => {
    const item = await page.locator(`[data-test=palette-${kind}]`).boundingBox();
    await page.mouse.move(item.x + item.width / 2, item.y + item.height / 2);
    await page.mouse.down();
    await page.mouse.move(canvas.x + x / 2, canvas.y + y / 2, { steps: 4 });
    await page.mouse.move(canvas.x + x, canvas.y + y, { steps: 8 });
    await page.mouse.up();
  };
  const connect = async (from, port, to) => {
    const a = await page.locator(`[data-test="port-${from}-${port}"]`).boundingBox();
    const b = await page.locator(`[data-test=node-${to}]`).boundingBox();
    await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
    await page.mouse.down();
    await page.mouse.move(b.x + b.width / 2, b.y + 30, { steps: 10 });
    await page.mouse.up();
    await page.locator(`g.arrow[data-from="${from}"][data-port="${port}"][data-to="${to}"]`).waitFor();
  };

  step('drags a message, a buttons step and an end step onto the canvas');
  // The new flow's start step sits in the middle of the canvas: the new steps go in a row above.
  await drop('message', 150, 130);
  await page.locator('[data-test=node-message]').waitFor();
  await drop('choice', 420, 130);
  await page.locator('[data-test=node-choice]').waitFor();
  await drop('end', 690, 130);
  await page.locator('[data-test=node-end]').waitFor();
  check('dropping steps');

  step('connects start → message → buttons by dragging from the exits');
  await connect('start', 'next', 'message');
  await connect('message', 'next', 'choice');

  step('an open exit is an error in the problems panel');
  await page.click('[data-test=tab-problems]');
  const choiceProblem = page.locator('[data-test=problem]').filter({ hasText: 'choice' });
  await choiceProblem.first().waitFor();
  await expectText(page, '[data-test=problem-count]', /[1-9]/);
  await page.locator('[data-test=node-choice] [data-test=node-errors]').waitFor();

  step('clicking the problem selects the step; connecting its exits clears the error');
  await choiceProblem.first().click();
  await page.locator('[data-test=node-choice].selected').waitFor();
  await connect('choice', 'yes', 'end');
  await connect('choice', 'no', 'end');
  await page.click('[data-test=tab-problems]');
  await page.locator('[data-test=no-problems]').waitFor();
  await page.locator('[data-test=node-choice] [data-test=node-errors]').waitFor({ state: 'detached' });

  step('undo takes the last arrow away and brings the error back; redo restores it');
  await page.click('[data-test=undo]');
  await page.locator('g.arrow[data-from=choice][data-port=no]').waitFor({ state: 'detached' });
  await page.locator('[data-test=problem]').first().waitFor();
  await page.click('[data-test=redo]');
  await page.locator('g.arrow[data-from=choice][data-port=no]').waitFor();
  await page.locator('[data-test=no-problems]').waitFor();

  step('fills the inspector: the message and the question, in both languages');
  await page.locator('[data-test=node-message] .node-head').click();
  await page.click('[data-test=tab-inspector]');
  await fillField(page, 'parts[0]-en', 'Welcome to our spring sale!');
  await fillField(page, 'parts[0]-zh-CN', '欢迎参加春季促销！');
  await page.locator('[data-test=node-message] .node-summary').filter({ hasText: 'Welcome to our spring sale!' }).waitFor();
  await page.locator('[data-test=node-choice] .node-head').click();
  await fillField(page, 'prompt-en', 'Would you like 10% off?');
  await fillField(page, 'options[0].label-en', 'Yes please');
  await page.screenshot({ path: join(SHOTS, 'designer-editor.png') });
  check('editing');

  step('previews the flow in the browser');
  await page.click('[data-test=tab-preview]');
  await page.click('[data-test=preview-start]');
  await page.locator('[data-test=preview-bot]').filter({ hasText: 'Welcome to our spring sale!' }).waitFor();
  await page.locator('[data-test=preview-bot]').filter({ hasText: 'Would you like 10% off?' }).waitFor();
  await page.locator('[data-test=preview-choice]').filter({ hasText: 'Yes please' }).click();
  await page.locator('[data-test=preview-note]').filter({ hasText: /ended/ }).waitFor();
  await page.screenshot({ path: join(SHOTS, 'designer-preview.png') });

  step('saves, then publishes version 1 with a note');
  await page.click('[data-test=save]');
  await expectText(page, '[data-test=save-state]', /All changes saved/);
  await page.click('[data-test=publish]');
  await page.fill('[data-test=publish-note]', 'First spring sale greeting');
  await page.click('[data-test=publish-confirm]');
  await expectText(page, '[data-test=published-version]', /^v1$/);
  await page.click('[data-test=tab-versions]');
  await page.locator('[data-test=version-row]').filter({ hasText: 'First spring sale greeting' }).waitFor();
  check('publishing');

  step('a visitor chats with the published flow in the demo shop');
  const visitor = await (await browser.newContext({ viewport: { width: 1100, height: 820 }, locale: 'en' })).newPage();
  watch(visitor, 'visitor');
  await visitor.goto(`${BASE}/demo?lang=en&flow=${id}`);
  await visitor.locator('[data-shop="help"]').first().click();
  await visitor.locator('[data-kefu="message"]').filter({ hasText: 'Welcome to our spring sale!' }).first().waitFor();
  await visitor.locator('[data-kefu="choice"]:not([disabled])').filter({ hasText: /^Yes please$/ }).first().click();
  await visitor.locator('[data-kefu="message"]').filter({ hasText: 'Yes please' }).first().waitFor();
  // The flow ends after the button: the widget says so and shows no typing dots.
  await visitor.locator('[data-kefu="ended"]').waitFor();
  await visitor.locator('[data-kefu="typing"]').waitFor({ state: 'hidden' });
  await visitor.screenshot({ path: join(SHOTS, 'designer-shop.png') });
  check('chatting in the shop');

  step('the analytics overlay counts that conversation on the canvas');
  await page.click('[data-test=analytics]');
  await page.locator('[data-test=node-message] [data-test=node-stats][data-visits="1"][data-drop-off="0"]').waitFor();
  await page.locator('[data-test=node-end] [data-test=node-stats][data-visits="1"]').waitFor();
  await page.locator('g.arrow[data-from=choice][data-port=yes] .arrow-stats').filter({ hasText: /^1$/ }).waitFor();

  step('the designer speaks Chinese');
  await page.click('[data-test=lang-switch]');
  await expectText(page, '[data-test=tab-inspector]', /属性/);
  await page.locator('[data-test=palette-choice]').filter({ hasText: '按钮选项' }).waitFor();
  await page.screenshot({ path: join(SHOTS, 'designer-zh.png') });
  check('analytics and Chinese');
}

async function fillField(page, field, text) {
  const box = page.locator(`[data-test="field-${field}"]`);
  await box.click();
  await box.fill(text);
  // The inspector applies a field when it is left: one edit, one undo step.
  await box.press('Tab');
}

async function expectText(page, selector, pattern) {
  await page.waitForFunction(
    ([s, source, flags]) => new RegExp(source, flags).test(document.querySelector(s)?.textContent ?? ''),
    [selector, pattern.source, pattern.flags],
    { timeout: WAIT },
  );
}

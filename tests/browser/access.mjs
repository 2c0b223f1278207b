// Access control in a real headless Chromium: department sandboxes in the console's customer
// panel, then the admin's access page.
//
// a. A regular customer (li.na, ?customer= in the demo shop) asks for a person; the `sales` agent
//    claims the conversation and sees her phone and name masked (sales' sandbox), and the page
//    never holds her phone number. A VIP (wang.xiaoming, the shop's default customer) asks for a
//    person; the `agent` agent (team support) claims it and sees phone and email masked.
// b. An admin opens the access page: the policies in force, a save refused with a located
//    problem (in Chinese), a save that goes through, a save refused because someone else saved
//    meanwhile, "can agent / sales read li.na, and why", a grant created and revoked, and the
//    audit trail searched by person with its export link.
//
//   KEFU_URL=http://127.0.0.1:38123 KEFU_ADMIN_PASSWORD=… SCREENSHOT_DIR=/tmp/shots node tests/browser/access.mjs
//
// Env: KEFU_URL and KEFU_ADMIN_PASSWORD (the password of `admin`) are required; CHROMIUM
// (default /usr/bin/chromium), SCREENSHOT_DIR. The demo accounts `agent` / `agent` (support) and
// `sales` / `sales` must exist (kefu creates them at first start), and the server must run the
// bundled policies and connectors over the demo catalogue.

import { join } from 'node:path';
import { BASE, SHOTS, WAIT, fail, finish, launch, watcher } from './harness.mjs';

const ADMIN_PASSWORD = process.env.KEFU_ADMIN_PASSWORD || '';

const LI_NA = { email: 'li.na@example.com', phone: '13987655678', name: '李娜', nameEn: 'Li Na' };
const WANG = { email: 'wang.xiaoming@example.com', phone: '13812341234' };

if (!ADMIN_PASSWORD) fail('set KEFU_ADMIN_PASSWORD (the password of the account `admin`)');

const browser = await launch();
await finish(browser, () => run(), 'departments see masked customers, and the admin edited policies, checked, granted and audited');

function step(what) {
  console.log(`- ${what}`);
}

async function run() {
  // Expected refusals: /api/auth/me before signing in (401), a policy text with a problem
  // (422), a save over someone else's (409), a grant the server refuses (400). Chromium logs
  // each failed request.
  const { watch, check } = watcher(/status of (401|422|409|400)/);

  // a. Department sandboxes.
  const liNa = await handOff(LI_NA.email, watch);
  const sales = await claimAndOpen('sales', 'sales', watch);
  const salesPanel = await panel(sales.page);
  step(`the sales agent's customer panel: ${JSON.stringify(salesPanel)}`);
  expect(salesPanel.phone === '139****5678', `sales sees li.na's phone masked: ${salesPanel.phone}`);
  expect(salesPanel.name && salesPanel.name.startsWith('李') && !salesPanel.name.includes(LI_NA.name)
    && !salesPanel.name.includes(LI_NA.nameEn), `sales sees li.na's name masked: ${salesPanel.name}`);
  expect(salesPanel.level === 'regular', `the panel is li.na's record: ${salesPanel.level}`);
  const salesHtml = await sales.page.content();
  expect(!salesHtml.includes(LI_NA.phone), 'the sales console page never holds li.na\'s phone number');
  expect(!salesHtml.includes(LI_NA.name), 'the sales console page never holds li.na\'s full name');
  await sales.page.waitForTimeout(300);
  await sales.page.screenshot({ path: join(SHOTS, 'access-panel-sales.png') });
  step(`saved ${join(SHOTS, 'access-panel-sales.png')}`);

  const wang = await handOff(WANG.email, watch);
  const support = await claimAndOpen('agent', 'agent', watch);
  const supportPanel = await panel(support.page);
  step(`the support agent's customer panel: ${JSON.stringify(supportPanel)}`);
  expect(supportPanel.phone === '138****1234', `support sees the VIP's phone masked: ${supportPanel.phone}`);
  expect(supportPanel.email === 'w***@example.com', `support sees the VIP's email masked: ${supportPanel.email}`);
  expect(supportPanel.level === 'VIP', `the panel is wang.xiaoming's record: ${supportPanel.level}`);
  const panelHtml = await support.page.locator('[data-test=customer-panel]').evaluate((e) => e.outerHTML);
  expect(!panelHtml.includes(WANG.email), 'the support customer panel does not hold the VIP\'s email');
  const supportHtml = await support.page.content();
  expect(!supportHtml.includes(WANG.phone), 'the support console page never holds the VIP\'s phone number');
  // The visitor's identity is the conversation's own data (what the widget sent), not the
  // customer record: say where it shows up outside the panel, if anywhere.
  const elsewhere = await support.page.evaluate((email) => [...document.querySelectorAll('[data-test]')]
    .filter((e) => e.textContent.includes(email) && !e.querySelector('[data-test]') && !e.closest('[data-test=customer-panel]'))
    .map((e) => e.getAttribute('data-test')), WANG.email);
  step(elsewhere.length
    ? `note: the VIP's email appears outside the customer panel, in: ${[...new Set(elsewhere)].join(', ')}`
    : 'the VIP\'s email appears nowhere in the support console');
  await support.page.waitForTimeout(300);
  await support.page.screenshot({ path: join(SHOTS, 'access-panel-support.png') });
  step(`saved ${join(SHOTS, 'access-panel-support.png')}`);
  check('after the department sandboxes');
  for (const context of [liNa, sales.context, wang, support.context]) await context.close();

  // b. The admin's access page.
  await accessPage(watch);
  check('at the end');
}

// A visitor of the demo shop, signed in as `customer`, opens the chat and asks for a person.
async function handOff(customer, watch) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 820 }, locale: 'en' });
  const shop = await context.newPage();
  watch(shop, `visitor ${customer}`);
  step(`visitor ${customer} opens the shop's chat and asks for a person`);
  await shop.goto(`${BASE}/demo?lang=en&customer=${encodeURIComponent(customer)}`);
  await shop.locator('[data-shop="help"]').first().click();
  await shop.locator('[data-kefu="choice"]:not([disabled])').filter({ hasText: /^Phones$/ }).first().click();
  await shop.locator('[data-kefu="message"][data-type="ask"][data-expect="input"]').first().waitFor();
  await shop.locator('[data-kefu="input"]').fill('agent');
  await shop.locator('[data-kefu="send"]').click();
  await shop.locator('[data-kefu="message"]').filter({ hasText: /ahead of you|next in line/ }).first().waitFor();
  return context;
}

async function signIn(page, login, password) {
  await page.goto(`${BASE}/console`);
  await page.fill('[data-test=login-login]', login);
  await page.fill('[data-test=login-password]', password);
  await page.click('[data-test=login-submit]');
  await page.waitForFunction(() => /Connected|已连接/.test(document.querySelector('[data-test=ws-status]')?.textContent ?? ''));
}

// An agent signs in, opens the waiting conversation, claims it and opens it again from "Mine"
// (the customer panel is decided when the conversation is read: now it is theirs).
async function claimAndOpen(login, password, watch) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US' });
  const page = await context.newPage();
  watch(page, login);
  step(`${login} signs in to the console and claims the waiting conversation`);
  await signIn(page, login, password);
  const row = page.locator('[data-test=conv-row][data-status=waiting]').first();
  await row.waitFor();
  const id = await row.getAttribute('data-id');
  await row.click();
  await page.locator('[data-test=bubble][data-sender=visitor]').filter({ hasText: 'agent' }).first().waitFor();
  // Not theirs yet: whatever the panel says, the phone numbers are not in the page.
  const before = await page.content();
  expect(!before.includes(LI_NA.phone) && !before.includes(WANG.phone), `${login}: no phone number before claiming`);
  await page.click('[data-test=action-claim]');
  await page.locator('[data-test=action-resolve]').waitFor();
  await page.click('[data-test=tab-mine]');
  await page.locator(`[data-test=conv-row][data-id="${id}"]`).click();
  try {
    await page.locator('[data-test=customer-panel] tr').first().waitFor();
  } catch (error) {
    const why = await page.locator('[data-test=customer-error]').allInnerTexts();
    throw new Error(`${login} sees no customer record after claiming: ${why.join(' / ') || error.message}`);
  }
  return { context, page };
}

// The customer panel's fields, by name.
async function panel(page) {
  return page.$$eval('[data-test=customer-panel] tr', (rows) => Object.fromEntries(
    rows.map((row) => [row.querySelector('th')?.textContent.trim(), row.querySelector('td')?.textContent.trim()]),
  ));
}

async function accessPage(watch) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  const admin = await context.newPage();
  watch(admin, 'admin');
  step('the admin signs in and opens the access page');
  await signIn(admin, 'admin', ADMIN_PASSWORD);
  await admin.click('[data-test=access-button]');
  await admin.locator('[data-test=access-page]').waitFor();
  const editor = admin.locator('[data-test=policies-editor]');
  await admin.waitForFunction(() => document.querySelector('[data-test=policies-editor]')?.value.includes('policy "admins"'));
  const original = await editor.inputValue();
  const source = admin.locator('[data-test=policies-source]');
  expect((await source.getAttribute('data-source')) === 'bundled', `the bundled policies are in force: ${await source.innerText()}`);
  const revisionBefore = Number(await admin.locator('[data-test=policies-revision]').getAttribute('data-revision'));

  step('in Chinese: the headings are Chinese');
  await admin.click('[data-test=lang-switch]');
  await admin.waitForFunction(() => document.querySelector('[data-test=policies-title]')?.textContent === '访问策略');
  const headings = await admin.$$eval('[data-test=access-page] h2', (h) => h.map((e) => e.textContent));
  expect(headings.includes('临时授权') && headings.includes('审计日志'), `the access page speaks Chinese: ${headings}`);

  step('a typo in an effect is refused with its line and column');
  const typo = 'effect      = "alow"';
  expect(original.includes('effect      = "allow"'), 'the admins policy says effect = "allow"');
  const broken = original.replace('effect      = "allow"', typo);
  await editor.fill(broken);
  await admin.locator('[data-test=policies-unsaved]').waitFor();
  await admin.click('[data-test=policies-save]');
  const problem = admin.locator('[data-test=policy-problem]').first();
  await problem.waitFor();
  const line = Number(await problem.getAttribute('data-line'));
  const column = Number(await problem.getAttribute('data-column'));
  const problemText = await problem.innerText();
  const typoLine = broken.split('\n').findIndex((l) => l.includes(typo)) + 1;
  step(`the problem: ${problemText}`);
  expect(new RegExp(`^${line}:${column} `).test(problemText), `the problem reads line:column message: ${problemText}`);
  expect(line === typoLine, `the problem is on the typo's line ${typoLine}: ${problemText}`);
  expect(/alow/.test(problemText), `the problem names the wrong value: ${problemText}`);
  step('clicking the problem puts the caret there');
  await problem.locator('button').click();
  const caret = await editor.evaluate((e) => ({ at: e.selectionStart, focused: document.activeElement === e }));
  const lines = broken.split('\n');
  const expected = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + [...lines[line - 1]].slice(0, column - 1).join('').length;
  expect(caret.focused && caret.at === expected, `the caret is at ${line}:${column} (${expected}): ${JSON.stringify(caret)}`);
  const still = await admin.locator('[data-test=policies-revision]').getAttribute('data-revision');
  expect(Number(still) === revisionBefore, `nothing was saved: revision ${still}`);
  await admin.waitForTimeout(300);
  await admin.screenshot({ path: join(SHOTS, 'access-policies.png') });
  step(`saved ${join(SHOTS, 'access-policies.png')}`);

  step('fixed, the text is saved as a new revision');
  await editor.fill(`# Edited on the access page by the browser test.\n${original}`);
  await admin.click('[data-test=policies-save]');
  await admin.locator('[data-test=policies-saved]').waitFor();
  const revision = Number(await admin.locator('[data-test=policies-revision]').getAttribute('data-revision'));
  expect(revision === revisionBefore + 1, `the revision went up by one: ${revisionBefore} → ${revision}`);
  expect((await source.getAttribute('data-source')) === 'database', `the saved policies are in force: ${await source.innerText()}`);
  const saved = await admin.locator('[data-test=policies-saved]').innerText();
  expect(saved.includes(String(revision)), `the new revision is shown: ${saved}`);
  expect(await admin.locator('[data-test=policies-unsaved]').count() === 0, 'nothing is left unsaved');

  step('someone else saves meanwhile: the next save is refused until the text is loaded again');
  const elsewhere = await admin.evaluate(async () => {
    const { csrf } = await (await fetch('/api/auth/me')).json();
    const current = await (await fetch('/api/admin/policies')).json();
    const answer = await fetch('/api/admin/policies', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ text: `${current.text}\n# Saved elsewhere.\n`, revision: current.revision }),
    });
    return answer.status;
  });
  expect(elsewhere === 200, `the other save went through: ${elsewhere}`);
  await editor.fill(`${await editor.inputValue()}\n# A second edit.\n`);
  await admin.click('[data-test=policies-save]');
  await admin.locator('[data-test=policies-conflict]').waitFor();
  await admin.click('[data-test=policies-load]');
  await admin.waitForFunction((r) => document.querySelector('[data-test=policies-revision]')?.dataset.revision === String(r), revision + 1);
  expect((await editor.inputValue()).includes('# Saved elsewhere.'), 'the text loaded again is the other save\'s');

  await admin.click('[data-test=lang-switch]');
  await admin.waitForFunction(() => document.querySelector('[data-test=policies-title]')?.textContent === 'Policies');

  // `agent` (support) never served li.na; `sales` did (in part a).
  step('can agent read li.na? No: agent never served her');
  let answer = await checkAccess(admin, 'agent', `customers::${LI_NA.email}`);
  expect(answer.allowed === 'false' && answer.verdict === 'Denied', `agent may not read li.na: ${JSON.stringify(answer)}`);
  expect(answer.explanation.includes(`customers::${LI_NA.email}`) && /deny/.test(answer.explanation), `the explanation says why: ${answer.explanation}`);
  expect(answer.outcomes.includes('condition_false'), `the served-customers policy's condition is false: ${answer.outcomes}`);
  step('can sales read li.na? Yes: sales served her');
  answer = await checkAccess(admin, 'sales', `customers::${LI_NA.email}`);
  expect(answer.allowed === 'true' && answer.verdict === 'Allowed', `sales may read li.na: ${JSON.stringify(answer)}`);
  expect(/Decided by: \S+/.test(answer.decidedBy), `the deciding policy is named: ${answer.decidedBy}`);

  step('a grant the server refuses shows its reason');
  await admin.fill('[data-test=grant-subject]', 'sales');
  await admin.fill('[data-test=grant-actions]', 'read');
  await admin.fill('[data-test=grant-resource]', 'customers::*');
  await admin.click('[data-test=grant-create]');
  const refused = admin.locator('[data-test=grant-error]');
  await refused.waitFor();
  step(`refused: ${await refused.innerText()}`);
  expect(/is not a subject/.test(await refused.innerText()), 'the server\'s reason is shown');

  step('a grant for agent:sales on customers::* for 1 hour is listed as active, then revoked');
  await admin.fill('[data-test=grant-subject]', 'agent:sales');
  await admin.selectOption('[data-test=grant-duration]', { label: '1 hour' });
  await admin.fill('[data-test=grant-reason]', 'browser test');
  await admin.click('[data-test=grant-create]');
  const grant = admin.locator('[data-test=grant-row]').filter({ hasText: 'agent:sales' });
  await grant.first().waitFor();
  expect(await admin.locator('[data-test=grant-error]').count() === 0, 'the refusal is gone');
  expect((await grant.first().getAttribute('data-active')) === 'true', 'the grant is active');
  const status = await grant.first().locator('[data-test=grant-status]').innerText();
  expect(status === 'Active', `the grant says Active: ${status}`);
  const expires = await grant.first().innerText();
  step(`the grant: ${expires.replace(/\s+/g, ' ')}`);
  await grant.first().locator('[data-test=grant-revoke]').click();
  await admin.waitForFunction(() => ![...document.querySelectorAll('[data-test=grant-row]')].some((r) => r.textContent.includes('agent:sales')));

  step('the audit trail, searched by person: sales read li.na');
  await admin.fill('[data-test=audit-actor]', 'sales');
  await admin.click('[data-test=audit-search]');
  try {
    await admin.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-test=audit-row]')];
      return rows.length > 0 && rows.every((r) => r.dataset.actor === 'sales');
    });
  } catch (error) {
    const shown = await admin.$$eval('[data-test=audit-row]', (r) => r.map((e) => `${e.dataset.actor} ${e.dataset.action} ${e.dataset.resource}`));
    const why = await admin.locator('[data-test=audit-error], [data-test=audit-empty]').allInnerTexts();
    throw new Error(`the search by sales shows only sales' records: ${why.join(' / ')}\n  ${shown.join('\n  ')}`);
  }
  const rows = await admin.$$eval('[data-test=audit-row]', (r) => r.map((e) => ({ ...e.dataset })));
  step(`${rows.length} records by sales: ${rows.map((r) => `${r.action} ${r.resource} ${r.decision}`).join('; ')}`);
  // Opened before claiming, the panel was refused; after claiming, allowed (newest first, so
  // the allowed read comes before the denied one).
  const reads = rows.filter((r) => r.action === 'read' && r.resource === `customers::${LI_NA.email}`);
  const allowedAt = reads.findIndex((r) => r.decision === 'allow');
  const deniedAt = reads.findIndex((r) => r.decision === 'deny');
  expect(allowedAt >= 0 && deniedAt > allowedAt, `sales' read of li.na was denied before the claim and allowed after it: ${JSON.stringify(reads)}`);
  const seqs = rows.map((r) => Number(r.seq));
  expect(seqs.every((s, i) => i === 0 || s < seqs[i - 1]), `newest first: ${seqs}`);
  const href = await admin.locator('[data-test=audit-export]').getAttribute('href');
  expect(href === '/api/admin/audit/export?actor=sales', `the export link carries the filters: ${href}`);
  const exported = await admin.evaluate(async (url) => (await fetch(url)).text(), href);
  const exportedLines = exported.trim().split('\n').map((l) => JSON.parse(l));
  expect(exportedLines.length >= rows.length && exportedLines.every((l) => l.record.actor === 'sales'), `the export holds sales' records: ${exportedLines.length}`);
  await admin.locator('[data-test=audit-title]').evaluate((e) => e.closest('.panel').scrollIntoView({ block: 'start' }));
  await admin.waitForTimeout(300);
  await admin.screenshot({ path: join(SHOTS, 'access-audit.png') });
  step(`saved ${join(SHOTS, 'access-audit.png')}`);
  await context.close();
}

// Fills "can X do Y on Z" and returns what the page shows.
async function checkAccess(admin, login, resource) {
  await admin.fill('[data-test=check-login]', login);
  await admin.fill('[data-test=check-action]', 'read');
  await admin.fill('[data-test=check-resource]', resource);
  await admin.fill('[data-test=check-ip]', '10.1.2.3');
  await admin.click('[data-test=check-run]');
  // The answer to this question (the previous one's may still be on the page).
  const result = admin.locator(`[data-test=check-result][data-subject="${login}"][data-resource="${resource}"]`);
  await result.waitFor();
  const answer = {
    allowed: await result.getAttribute('data-allowed'),
    verdict: (await result.locator('[data-test=check-verdict]').innerText()).trim(),
    decidedBy: await result.locator('[data-test=check-decided-by]').innerText(),
    explanation: await result.locator('[data-test=check-explanation]').innerText(),
    outcomes: await result.locator('[data-test=check-matched]').evaluateAll((r) => r.map((e) => e.dataset.outcome)),
  };
  step(`explanation:\n${answer.explanation}`);
  return answer;
}

function expect(condition, what) {
  if (!condition) throw new Error(what);
}

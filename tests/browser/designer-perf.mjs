// Frame times of the flow designer on a 1,000-step flow, in headless Chromium (a benchmark, not a
// test: it prints figures for docs/benchmarks.md and asserts nothing about time).
//
// It signs in as admin, creates a flow, saves a generated 1,000-step draft through the API, opens
// it, and measures with requestAnimationFrame timestamps (the Performance API's clock):
//   - load: from opening the flow until every step is on the page;
//   - pan: the background dragged for 120 pointer moves, one per frame;
//   - drag: one step dragged for 120 pointer moves;
//   - select: a rubber band over ~100 steps.
//
//   KEFU_URL=http://127.0.0.1:8080 KEFU_ADMIN_PASSWORD=… node tests/browser/designer-perf.mjs

import { chromium } from 'playwright-core';

const BASE = (process.env.KEFU_URL || '').replace(/\/+$/, '');
const PASSWORD = process.env.KEFU_ADMIN_PASSWORD || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEPS = Number(process.env.STEPS || 1000);
if (!BASE || !PASSWORD) {
  console.error('set KEFU_URL and KEFU_ADMIN_PASSWORD');
  process.exit(1);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
});
const page = await (await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: 'en-US' })).newPage();
page.setDefaultTimeout(60_000);
page.on('pageerror', (e) => console.error('page error:', e.message));

await page.goto(`${BASE}/console`);
await page.fill('[data-test=login-login]', 'admin');
await page.fill('[data-test=login-password]', PASSWORD);
await page.click('[data-test=login-submit]');
await page.waitForSelector('[data-test=ws-status]');

const id = `perf-${Date.now().toString(36)}`;
await page.goto(`${BASE}/designer`);
await page.fill('[data-test=new-flow-id]', id);
await page.click('[data-test=new-flow-create]');
await page.waitForSelector('[data-test=node-start]');

// A generated flow: a chain of messages with a buttons step every tenth, in a grid.
const saved = await page.evaluate(async ({ id, steps }) => {
  const me = await (await fetch('/api/auth/me')).json();
  const draft = await (await fetch(`/api/flows/${id}/draft`)).json();
  const doc = draft.document;
  const nodes = [{ id: 'start', kind: 'start' }];
  const edges = [];
  const positions = { start: { x: 0, y: 0 } };
  let previous = ['start', 'next'];
  for (let i = 1; i < steps - 1; i++) {
    const nid = `s${i}`;
    const choice = i % 10 === 0;
    nodes.push(choice
      ? { id: nid, kind: 'choice', prompt: `Question ${i}?`, options: [{ id: 'a', label: 'A' }, { id: 'b', label: 'B' }] }
      : { id: nid, kind: 'message', parts: [{ type: 'text', text: `Message number ${i}` }] });
    positions[nid] = { x: (i % 25) * 300, y: Math.floor(i / 25) * 160 };
    edges.push({ from: previous[0], port: previous[1], to: nid });
    if (choice) {
      edges.push({ from: nid, port: 'b', to: nid === 's1' ? 'start' : `s${i - 1}` });
      previous = [nid, 'a'];
    } else {
      previous = [nid, 'next'];
    }
  }
  nodes.push({ id: 'end', kind: 'end' });
  positions.end = { x: 0, y: Math.ceil(steps / 25) * 160 };
  edges.push({ from: previous[0], port: previous[1], to: 'end' });
  doc.nodes = nodes;
  doc.edges = edges;
  doc.layout = { nodes: positions };
  const r = await fetch(`/api/flows/${id}/draft`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf },
    body: JSON.stringify({ revision: draft.revision, document: doc }),
  });
  return r.status + ' ' + (await r.text()).slice(0, 200);
}, { id, steps: STEPS });
if (!saved.startsWith('200')) {
  console.error('saving the generated flow failed:', saved);
  process.exit(1);
}

// Frame timestamps collected in the page.
await page.evaluate(() => {
  window.kefuFrames = [];
  const tick = (t) => { window.kefuFrames.push(t); requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
});
const frames = async (action) => {
  await page.evaluate(() => { window.kefuFrames = []; });
  await action();
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const t = await page.evaluate(() => window.kefuFrames.slice());
  const d = t.slice(1).map((x, i) => x - t[i]).sort((a, b) => a - b);
  const q = (p) => d[Math.min(d.length - 1, Math.floor(p * d.length))];
  const total = t[t.length - 1] - t[0];
  return { frames: d.length, fps: +(1000 * d.length / total).toFixed(1), p50: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), max: +d[d.length - 1].toFixed(1) };
};

const t0 = await page.evaluate(() => performance.now());
await page.reload();
await page.waitForFunction((n) => document.querySelectorAll('[data-node]').length >= n, STEPS);
const loaded = await page.evaluate((t0) => performance.now(), t0);
// performance.now() restarts with the reload: its value is the time since navigation started.
console.log(`steps on the page: ${await page.locator('[data-node]').count()}`);
console.log(`load (navigation start → every step drawn): ${loaded.toFixed(0)} ms`);
await page.evaluate(() => {
  window.kefuFrames = [];
  const tick = (t) => { window.kefuFrames.push(t); requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
});

const canvas = await page.locator('[data-test=canvas]').boundingBox();
const moves = async (from, to, n) => {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  for (let i = 1; i <= n; i++) {
    await page.mouse.move(from.x + (to.x - from.x) * i / n, from.y + (to.y - from.y) * i / n);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(r)));
  }
  await page.mouse.up();
};

// The view is "fit to screen": all 1,000 steps are on the screen at once, the most to draw.
const pan = await frames(() => moves({ x: canvas.x + 1500, y: canvas.y + 900 }, { x: canvas.x + 900, y: canvas.y + 500 }, 120));
console.log('pan  ', JSON.stringify(pan));
const node = await page.locator('[data-test=node-s30] .node-head').boundingBox();
console.log(`zoom: ${await page.evaluate(() => document.querySelector('.world').style.transform)}`);
const drag = await frames(() => moves({ x: node.x + 20, y: node.y + 10 }, { x: node.x + 420, y: node.y + 210 }, 120));
console.log('drag ', JSON.stringify(drag));
await page.keyboard.down('Shift');
// From the canvas' corner (the margin fit leaves, where no step is) to its middle.
const band = await frames(() => moves({ x: canvas.x + 4, y: canvas.y + 4 }, { x: canvas.x + canvas.width / 2, y: canvas.y + canvas.height / 2 }, 60));
await page.keyboard.up('Shift');
console.log('band ', JSON.stringify(band), 'selected:', await page.locator('.node.selected').count());
await browser.close();

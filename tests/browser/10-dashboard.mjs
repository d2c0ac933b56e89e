#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The dashboard in a real headless Chromium against the real daemon: the
// runs page lists runs, filters and follows them; the run page's charts
// take new steps without a reload; a NaN step's alert shows within two
// seconds; the heatmap has a row per layer; zoom fetches a range; the
// layer table sorts; the compare view overlays runs; the theme toggles;
// no errors reach the console; and after the daemon restarts the page
// reconnects by itself.  Saves the run page's screenshot (build/screenshots, or docs/ by make screenshots).

import path from 'node:path';
import fs from 'node:fs';
import { browser, BUILD, Daemon, rng, sleep, Tap, trainingSteps, until } from './lib.mjs';

// Screenshots go under the build folder; `make screenshots` writes docs/.
const SHOTS = process.env.GW_SCREENSHOT_DIR || path.join(BUILD, 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

const t = new Tap();
const guard = setTimeout(() => t.bail('timed out after 170 s'), 170000);
const d = new Daemon();
let b = null;

const RUN = 'vit-s-lr3e-4';
const RUN2 = 'vit-s-lr1e-3';
const LAYERS = ['patch_embed.proj.weight'];
for (let i = 0; i < 6; i++) {
  for (const p of ['attn.qkv.weight', 'attn.proj.weight', 'mlp.fc1.weight', 'mlp.fc2.weight']) {
    LAYERS.push(`blocks.${i}.${p}`);
  }
}
LAYERS.push('head.weight');

function meta(lr) {
  return {
    project: 'vision',
    config: { model: 'vit-s', lr, batch: 256, optimizer: 'adamw' },
    layers: Object.fromEntries(LAYERS.map((n, i) => [n, { depth: i, numel: 1000 * (i + 1) }])),
  };
}

async function attr(page, sel, name) {
  return page.evaluate(([s, n]) => document.querySelector(s)?.getAttribute(n) ?? null, [sel, name]);
}

async function main() {
  await d.start();
  const rand = rng(7);
  const steps = trainingSteps(LAYERS, 0, 300, rand, { spikeAt: 200, extras: true });
  for (let i = 0; i < steps.length; i += 100) {
    await d.post({ run: RUN, meta: meta(3e-4), steps: steps.slice(i, i + 100) });
  }
  await d.post({ run: RUN2, meta: meta(1e-3), steps: trainingSteps(LAYERS, 0, 250, rng(9)) });
  await d.post({ run: 'mlp-baseline', meta: { project: 'mnist' }, steps: [{ step: 0, loss: 2.3 }, { step: 1, loss: 2.1 }] });
  const fin = await fetch(`${d.url}/api/v1/runs/mlp-baseline/finish`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"status":"finished"}' });
  t.is(fin.status, 200, 'setup: a finished run');

  b = await browser();
  const { page } = b;

  // ---- runs page ----
  await page.goto(`${d.url}/`);
  const row = await page.waitForSelector(`tr[data-run="${RUN}"]`, { timeout: 10000 }).catch(() => null);
  t.ok(row, 'the runs page lists the run');
  t.is(await page.textContent(`tr[data-run="${RUN}"] .last-step`), '299', 'the run\'s last step is shown');
  t.is((await page.textContent(`tr[data-run="mlp-baseline"] .badge.st-finished`))?.trim(), 'finished',
    'a finished run shows its status');
  t.ok(await until(() => page.evaluate(() => document.querySelector('.conn')?.dataset.state === 'live'), 5000),
    'the stream is connected');
  const runsShown = () => page.evaluate(() =>
    [...document.querySelectorAll('tbody tr')].map((r) => r.dataset.run).sort().join(','));
  await page.selectOption('.f-project', 'mnist');
  t.ok(await until(async () => (await runsShown()) === 'mlp-baseline', 8000), 'filter by project',
    await runsShown());
  await page.selectOption('.f-project', '');
  await page.selectOption('.f-status', 'running');
  t.ok(await until(async () => (await runsShown()) === [RUN2, RUN].sort().join(','), 8000), 'filter by status',
    await runsShown());
  await page.selectOption('.f-status', '');
  await d.post({ run: RUN, steps: trainingSteps(LAYERS, 300, 310, rand) });
  t.ok(await until(async () => (await page.textContent(`tr[data-run="${RUN}"] .last-step`)) === '309', 8000),
    'the runs page follows new steps live');
  await d.post({ run: 'fresh-run', meta: { project: 'vision' }, steps: [{ step: 0, loss: 1 }] });
  t.ok(await page.waitForSelector('tr[data-run="fresh-run"]', { timeout: 2000 }).catch(() => null),
    'a new run appears without a reload');

  // ---- run page ----
  await page.click(`a[href="#/run/${RUN}"]`);
  t.ok(await until(async () => Number(await attr(page, '[data-chart=loss]', 'data-points')) > 0, 8000),
    'the run page draws the loss');
  t.ok(Number(await attr(page, '[data-chart=grad]', 'data-points')) > 0, 'and the gradient norm');
  t.ok(Number(await attr(page, '[data-chart=lr]', 'data-points')) > 0, 'and the learning rate');
  t.ok(Number(await attr(page, '[data-chart=clip]', 'data-points')) > 0, 'and the clip rate');
  t.ok(await page.evaluate(() => /points clipped/.test(document.querySelector('.clip-summary').textContent)),
    'clip events are counted');
  t.is(await attr(page, '[data-chart=loss]', 'data-last'), '309', 'the charts end at the last step');
  await page.evaluate(() => { window.noReload = 42; });
  for (let s = 310; s < 340; s += 10) await d.post({ run: RUN, steps: trainingSteps(LAYERS, s, s + 10, rand) });
  t.ok(await until(async () => (await attr(page, '[data-chart=loss]', 'data-last')) === '339', 8000),
    'posting steps updates the run page\'s charts without a reload');
  t.ok(await until(async () => (await attr(page, '[data-chart=grad]', 'data-last')) === '339', 8000),
    'the gradient chart too');
  t.is(await page.evaluate(() => window.noReload), 42, 'the page was not reloaded');

  const rows = await until(async () => Number(await attr(page, '.hm-canvas', 'data-rows')), 8000);
  t.is(rows, LAYERS.length, 'the heatmap has a row per layer');
  t.ok(Number(await attr(page, '.hm-canvas', 'data-cols')) > 1, 'and columns of steps');
  t.ok(await page.evaluate(() => {
    const c = document.querySelector('.hm-canvas');
    const ctx = c.getContext('2d');
    const px = ctx.getImageData(Math.round(c.width * 0.6), Math.round(c.height * 0.3), 1, 1).data;
    return px[3] === 255 && !(px[0] === px[1] && px[1] === px[2]); // a coloured cell
  }), 'the heatmap is painted');
  await page.locator('.hm-canvas').scrollIntoViewIfNeeded();
  const box = await page.locator('.hm-canvas').boundingBox();
  await page.mouse.move(box.x + box.width * 0.6, box.y + 10);
  t.ok(await until(() => page.evaluate(() => {
    const tip = document.querySelector('.hm-tip');
    return !tip.hidden && /max \d/.test(tip.textContent) && tip.textContent.includes('patch_embed.proj.weight');
  }), 2000), 'the heatmap shows the value under the cursor');

  t.is(await page.evaluate(() => document.querySelectorAll('.layers-table tbody tr').length), LAYERS.length,
    'the layer table has every layer');
  await page.click('.layers-table th[data-sort=latest]');
  t.ok(await page.evaluate(() => {
    const v = [...document.querySelectorAll('.layers-table tbody tr td:nth-child(3)')].map((td) => Number(td.textContent));
    return v.length > 2 && v.every((x, i) => i === 0 || v[i - 1] >= x);
  }), 'the layer table sorts by latest norm');
  await page.fill('.layer-filter', 'mlp.fc1');
  t.is(await page.evaluate(() => document.querySelectorAll('.layers-table tbody tr').length), 6,
    'the layer table filters');
  await page.fill('.layer-filter', '');

  // A NaN loss: the detector fires "nonfinite" at once; the page shows it.
  const t0 = Date.now();
  await d.post({ run: RUN, steps: [{ step: 340, loss: 'NaN', grad_norm: 1.1,
    layers: { 'head.weight': 'NaN', 'blocks.5.mlp.fc2.weight': 'Infinity' } }] });
  const shown = await until(() => page.evaluate(() =>
    !!document.querySelector('.alert-list li[data-kind="nonfinite"][data-state="firing"]')), 2000, 10);
  const ms = Date.now() - t0;
  const api = await d.get(`/api/v1/alerts?run=${RUN}`);
  t.ok(shown, `the NaN step's alert appears within 2 s (${ms} ms)`,
    `alerts in the API: ${JSON.stringify(api.body)}`);
  t.ok(await page.evaluate(() => !document.querySelector('.banner').hidden &&
    /nonfinite/.test(document.querySelector('.banner').textContent)), 'the firing alert is in the banner');
  t.ok(await page.evaluate(() => {
    const e = document.querySelectorAll('.banner [data-kind=nonfinite]');
    return e.length === 1 && e[0].textContent.includes('head.weight') && e[0].textContent.includes('blocks.5.mlp.fc2.weight');
  }), 'an alert on several tensors is shown once, with its tensors',
    await page.evaluate(() => document.querySelector('.banner').textContent));
  t.ok(await until(() => page.evaluate(() =>
    document.querySelector('.layers-table tr[data-layer="head.weight"]')?.classList.contains('nonfinite')), 2000),
  'the layer table marks the non-finite layer');

  // Zoom: drag across the loss chart; the page fetches that range.
  await page.locator('[data-chart=loss]').scrollIntoViewIfNeeded();
  const over = await page.locator('[data-chart=loss] .u-over').boundingBox();
  await page.mouse.move(over.x + over.width * 0.3, over.y + over.height / 2);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.55, over.y + over.height / 2, { steps: 6 });
  await page.mouse.up();
  t.ok(await until(() => page.evaluate(() => /from=\d+&to=\d+/.test(location.hash)), 2000),
    'dragging on a chart zooms (the range is in the URL)');
  const zoomed = await until(async () => {
    const cols = Number(await attr(page, '.hm-canvas', 'data-cols'));
    const text = await page.textContent('.range-text');
    return /^Steps/.test(text.trim()) && cols > 0 ? text : null;
  }, 8000);
  t.ok(zoomed, 'the zoomed range is fetched and shown', zoomed);
  await page.click('.rangebar .reset');
  t.ok(await until(async () => /live/.test(await page.textContent('.range-text')), 8000), 'back to the whole run');

  // Screenshot for the README (light), smoothed as people look at it.
  await page.evaluate(() => {
    const s = document.querySelector('.smooth');
    s.value = '0.6';
    s.dispatchEvent(new Event('input', { bubbles: true }));
  });
  t.ok(await until(() => page.evaluate(() => document.querySelectorAll('[data-group=metrics] .chart-card').length === 3), 3000),
    'the run\'s metrics have charts');
  await page.mouse.move(0, 0);
  await sleep(300);
  await page.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });

  // ---- compare ----
  await page.goto(`${d.url}/#/compare?runs=${RUN},${RUN2}`);
  t.ok(await until(async () => Number(await attr(page, '[data-chart=grad]', 'data-points')) > 0, 8000),
    'the compare view overlays the runs');
  t.ok(await page.evaluate(([a, c]) => {
    const txt = document.querySelector('[data-chart=loss] .u-legend').textContent;
    return txt.includes(a) && txt.includes(c);
  }, [RUN, RUN2]), 'with one series per run');

  // ---- theme ----
  await page.goto(`${d.url}/#/run/${RUN}`);
  await page.waitForSelector('[data-chart=loss][data-points]', { timeout: 5000 });
  await page.click('.theme-btn');
  t.is(await page.evaluate(() => document.documentElement.dataset.theme), 'light', 'the theme toggles to light');
  await page.click('.theme-btn');
  t.is(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'and to dark');
  t.ok(await page.evaluate(() => getComputedStyle(document.body).backgroundColor !== 'rgb(246, 247, 249)'),
    'dark colours apply');
  await page.waitForSelector('[data-chart=loss][data-points]', { timeout: 5000 });
  await sleep(500);
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-dark.png') });
  await page.click('.theme-btn');

  t.ok(b.errors.length === 0, 'no errors in the browser console', ...b.errors);

  // ---- the daemon restarts: the page reconnects by itself ----
  await page.goto(`${d.url}/#/run/${RUN}`);
  await page.waitForSelector('[data-chart=loss][data-points]', { timeout: 5000 });
  await d.stop();
  t.ok(await until(() => page.evaluate(() => document.querySelector('.conn').dataset.state !== 'live'), 5000),
    'the page notices the daemon has gone');
  await d.start();
  t.ok(await until(() => page.evaluate(() => document.querySelector('.conn').dataset.state === 'live'), 8000),
    'and reconnects when it is back');
  await d.post({ run: RUN, steps: trainingSteps(LAYERS, 341, 351, rand) });
  // Through the stream at once, or the page's refetch when the steps came
  // before its subscription: 10 s covers both on a loaded machine.
  t.ok(await until(async () => (await attr(page, '.run-page', 'data-last-step')) === '350', 10000),
    'new steps show after the restart without a reload',
    `last step shown: ${await attr(page, '.run-page', 'data-last-step')}`);
}

try {
  await main();
} catch (e) {
  t.ok(false, 'no exception', e && e.stack ? e.stack : e, d.log());
} finally {
  clearTimeout(guard);
  if (b) await b.close().catch(() => {});
  await d.cleanup();
}
t.done();

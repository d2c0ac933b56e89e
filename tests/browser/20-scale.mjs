#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The dashboard stays responsive on a big run: a loss and a gradient norm
// over 1,000,000 steps and 1,000 layers (every 1,000th step), with a metric
// (every 10th step), a loss scale, and weight and update norms of every
// layer (every 10,000th step) for the run page's other charts.  The run page
// must load in seconds with a heatmap row per layer, keep its DOM small
// (charts and the heatmap draw on canvases from downsampled answers, the
// layer table shows 200 rows until asked), zoom by fetching, take a live
// step, and leave the browser's main thread free.

import { browser, Daemon, sleep, Tap, until } from './lib.mjs';

const t = new Tap();
const guard = setTimeout(() => t.bail('timed out after 170 s'), 170000);
const d = new Daemon();
let b = null;

const RUN = 'big-1m';
const NL = 1000;
const STEPS = 1000000;
const names = Array.from({ length: NL }, (_, i) => `model.layers.${String(i).padStart(4, '0')}.weight`);

async function attr(page, sel, name) {
  return page.evaluate(([s, n]) => document.querySelector(s)?.getAttribute(n) ?? null, [sel, name]);
}

async function main() {
  await d.start();
  const t0 = Date.now();
  // Scalars on every step, in requests of 50,000 steps.
  for (let s0 = 0; s0 < STEPS; s0 += 50000) {
    const steps = [];
    for (let s = s0; s < s0 + 50000; s++) {
      const st = { step: s, loss: 2.5 * Math.exp(-s / 200000) + 0.3 + 0.05 * Math.sin(s / 977),
        grad_norm: 1 + 0.5 * Math.sin(s / 3001) + (s > 700000 && s < 702000 ? 20 : 0) };
      if (s % 10 === 0) st.metrics = { accuracy: 0.9 - 0.8 * Math.exp(-s / 150000) + 0.01 * Math.sin(s / 513) };
      if (s % 1000 === 0) st.loss_scale = 2 ** (16 - Math.floor(s / 250000));
      steps.push(st);
    }
    await d.post({ run: RUN, steps, ...(s0 === 0 ? { meta: { project: 'scale' } } : {}) });
  }
  // Every layer on every 1,000th step, compact form, 100 steps a request.
  for (let s0 = 0; s0 < STEPS; s0 += 100000) {
    const steps = [];
    for (let s = s0; s < s0 + 100000; s += 1000) {
      const st = { step: s, layers: names.map((_, i) => 0.01 * (1 + i / 100) * (1 + 0.3 * Math.sin(s / 50000 + i))) };
      if (s % 10000 === 0) {
        st.weights = names.map((_, i) => 10 + i / 100 + s / 1e5);
        st.updates = names.map((_, i) => 1e-3 * (1 + i / 1000) * (1 + 0.2 * Math.sin(s / 30000)));
      }
      steps.push(st);
    }
    await d.post({ run: RUN, layer_names: names, steps });
  }
  t.diag(`ingested 3,301,000 points in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  b = await browser();
  const { page } = b;
  const tl = Date.now();
  await page.goto(`${d.url}/#/run/${RUN}`);
  const rows = await until(async () => Number(await attr(page, '.hm-canvas', 'data-rows')), 20000, 50);
  const pts = await until(async () => Number(await attr(page, '[data-chart=loss]', 'data-points')), 5000, 50);
  const mpts = await until(async () => Number(await attr(page, '[data-chart="metric:accuracy"]', 'data-points')), 5000, 50);
  const wpts = await until(async () => Number(await attr(page, '[data-chart=weights]', 'data-points')), 5000, 50);
  const loadMs = Date.now() - tl;
  const timing = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/api/v1/'))
    .map((e) => `${new URL(e.name).pathname.split('/').slice(-1)[0]} ${e.duration.toFixed(0)} ms`).join(', '));
  t.diag(`requests: ${timing}`);
  t.is(rows, NL, 'the heatmap has a row for each of 1,000 layers');
  t.ok(pts > 100 && pts <= 8000, `the loss chart holds a downsampled ${pts} points, not 1,000,000`);
  t.ok(mpts > 100 && mpts <= 8000, `the metric's chart holds a downsampled ${mpts} of 100,000 points`);
  t.ok(wpts === 100, `the weight norm chart is drawn (${wpts} points)`);
  t.is(await page.evaluate(() => document.querySelectorAll('[data-chart=weights] .u-legend .u-series').length), 7,
    'with 6 of the 1,000 tensors');
  t.ok(Number(await attr(page, '[data-chart=update-ratio]', 'data-points')) === 100, 'the update ratio chart too');
  t.ok(Number(await attr(page, '[data-chart=loss-scale]', 'data-points')) > 100, 'and the loss scale');
  t.ok(await page.evaluate(() => document.querySelector('.layers-table').classList.contains('has-u')),
    'the layer table has the weight and update columns');
  t.ok(loadMs < 10000, `the run page is drawn in ${loadMs} ms`);
  const cols = Number(await attr(page, '.hm-canvas', 'data-cols'));
  t.ok(cols > 50 && cols <= 2000, `the heatmap is ${cols} buckets wide`);
  t.ok(await page.evaluate(() => !!document.querySelector('.alert-list')), 'the page is whole');
  const nodes = await page.evaluate(() => document.getElementsByTagName('*').length);
  t.ok(nodes < 6000, `the DOM stays small (${nodes} elements)`);
  t.is(await page.evaluate(() => document.querySelectorAll('.layers-table tbody tr').length), 200,
    'the layer table shows 200 of 1,000 rows');
  t.ok(/Show all 1000/.test(await page.textContent('.show-all')), 'and offers the rest');

  // The main thread answers within a frame or two.
  const frame = await page.evaluate(() => new Promise((resolve) => {
    const a = performance.now();
    requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - a), 0));
  }));
  t.ok(frame < 250, `the page answers in ${frame.toFixed(0)} ms`);

  // Zoom: a drag fetches the range, downsampled again.
  await page.locator('[data-chart=grad]').scrollIntoViewIfNeeded();
  const over = await page.locator('[data-chart=grad] .u-over').boundingBox();
  const tz = Date.now();
  await page.mouse.move(over.x + over.width * 0.69, over.y + over.height / 2);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.72, over.y + over.height / 2, { steps: 4 });
  await page.mouse.up();
  const zoomed = await until(async () => {
    const text = await page.textContent('.range-text');
    return /^Steps/.test(text.trim()) ? text : null;
  }, 8000);
  const ok = await until(async () => {
    const first = Number(await page.evaluate(() => {
      const u = document.querySelector('[data-chart=grad]');
      return u.dataset.points;
    }));
    return first > 0;
  }, 5000);
  t.ok(await until(async () => {
    const last = Number(await attr(page, '[data-chart="metric:accuracy"]', 'data-last'));
    return last > 600000 && last < 800000;
  }, 8000), 'the metric chart is fetched for the range too');
  t.ok(zoomed && ok, `zooming to ${zoomed ? zoomed.trim().split(' of ')[0] : '?'} takes ${Date.now() - tz} ms`);
  await page.click('.rangebar .reset');
  await until(async () => /live/.test(await page.textContent('.range-text')), 8000);

  // A live step at the end shows without a reload.
  await sleep(300);
  await d.post({ run: RUN, steps: [{ step: STEPS, loss: 0.31, grad_norm: 1.2 }] });
  t.ok(await until(async () => (await attr(page, '[data-chart=loss]', 'data-last')) === String(STEPS), 3000),
    'a new step shows at once on the big run');
  t.ok(b.errors.length === 0, 'no errors in the browser console', ...b.errors);
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

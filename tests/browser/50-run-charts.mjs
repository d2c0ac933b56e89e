#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The run page's charts beyond the training four, in a real headless
// Chromium against the real daemon: a run with custom metrics, weight and
// update norms, a loss scale and one loss of 1e30 gets a chart per metric
// and per group; the loss chart's y-range leaves the 1e30 out and marks
// it at the edge, and a click on the mark takes it in; the smoothing
// slider smooths the drawn line (the raw one stays faint behind); the
// x-axis shows wall and relative time and the choice survives a reload;
// the Clipping chart of a run that never clips says so, with no ticks;
// the banner shows a grouped alert once, with its tensors; a metric sent
// later gets its chart without a reload.

import { browser, Daemon, rng, sleep, Tap, until } from './lib.mjs';

const t = new Tap();
const guard = setTimeout(() => t.bail('timed out after 120 s'), 120000);
const d = new Daemon();
let b = null;

const RUN = 'charts-run';
const LAYERS = ['embed.weight', 'block.0.weight', 'block.1.weight', 'head.weight'];
const N = 400;
const SPIKE = 250; // the step whose loss is 1e30
const T0 = 1764000000;

function steps(rand, from, to) {
  const out = [];
  for (let s = from; s < to; s++) {
    const g = 0.8 + 0.4 * rand();
    const st = {
      step: s,
      time: T0 + s * 0.5,
      loss: s === SPIKE ? 1e30 : 2.3 * Math.exp(-s / 120) + 0.3 + 0.15 * rand(),
      grad_norm: g,
      lr: 1e-3,
      layers: Object.fromEntries(LAYERS.map((n, i) => [n, g * 0.1 * (i + 1) * (0.9 + 0.2 * rand())])),
      weights: Object.fromEntries(LAYERS.map((n, i) => [n, (i + 1) * (10 + s / 100)])),
      loss_scale: s < 200 ? 65536 : 32768,
      skipped: s === 200,
      metrics: { accuracy: Math.min(0.95, 0.1 + s / 500 + 0.05 * rand()), throughput: 1000 + 50 * rand() },
    };
    if (s % 10 === 0) {
      st.updates = Object.fromEntries(LAYERS.map((n, i) => [n, 1e-3 * (i + 1) * (0.8 + 0.4 * rand())]));
      st.metrics.val_loss = 2.5 * Math.exp(-s / 150) + 0.4;
    }
    out.push(st);
  }
  return out;
}

const chart = (page, name, expr) => page.evaluate(([n, e]) => {
  const el = [...document.querySelectorAll('.chart-card')].find((c) => c.dataset.chart === n)?.querySelector('.chart');
  if (!el || !el.gwChart) return null;
  // eslint-disable-next-line no-new-func
  return new Function('c', 'el', `return (${e});`)(el.gwChart, el);
}, [name, expr]);

/** Sum of |differences| along a drawn column: how rough the line is. */
const ROUGH = `(() => { const ys = c.u.data[c.u.data.length - 1]; let s = 0, p = null;
  for (const v of ys) { if (v === null) continue; if (p !== null) s += Math.abs(v - p); p = v; } return s; })()`;

async function main() {
  await d.start();
  const rand = rng(11);
  const all = steps(rand, 0, N);
  for (let i = 0; i < all.length; i += 100) {
    await d.post({ run: RUN, meta: { project: 'charts' }, steps: all.slice(i, i + 100) });
  }

  b = await browser();
  const { page } = b;
  await page.goto(`${d.url}/#/run/${RUN}`);
  t.ok(await until(() => chart(page, 'loss', 'Number(el.closest(".chart-card").dataset.points)'), 8000),
    'the run page draws the loss');

  // ---- a chart per metric, and the groups ----
  const metrics = await until(async () => {
    const m = await page.evaluate(() => [...document.querySelectorAll('[data-group=metrics] .chart-card')]
      .map((c) => `${c.querySelector('h2').textContent}:${Number(c.dataset.points) > 0}`));
    return m.length ? m : null;
  }, 5000);
  t.is((metrics || []).join(','), 'accuracy:true,throughput:true,val_loss:true', 'a chart per metric, each drawn');
  const pts = (id) => page.evaluate((i) => Number([...document.querySelectorAll('.chart-card')]
    .find((c) => c.dataset.chart === i)?.dataset.points || 0), id);
  t.ok(await pts('weights') > 0, 'a weight norm chart');
  t.ok(await page.evaluate((l) => {
    const txt = document.querySelector('[data-chart=weights] .u-legend')?.textContent || '';
    return l.every((n) => txt.includes(n));
  }, LAYERS), 'with a line per tensor');
  t.ok(await pts('update-ratio') > 0, 'an update / weight ratio chart');
  const ur = await chart(page, 'update-ratio', 'c.raw[4].filter((v) => v !== null)');
  t.ok(ur && ur.length > 10 && ur.every((v) => v > 1e-5 && v < 1e-3),
    'whose values are update norm over weight norm', JSON.stringify(ur?.slice(0, 5)));
  t.ok(await pts('loss-scale') > 0, 'a loss scale chart');
  t.ok(await page.evaluate(() => document.querySelector('.layers-table').classList.contains('has-w') &&
    getComputedStyle(document.querySelector('.layers-table th.col-u')).display !== 'none'),
  'the layer table shows weight norm and update ratio columns');
  const wcell = await page.evaluate(() =>
    document.querySelector('.layers-table tr[data-layer="head.weight"] td.col-w')?.textContent);
  t.is(wcell, String(Number((4 * (10 + (N - 1) / 100)).toPrecision(4))), 'with the latest weight norm');

  // ---- the outlier ----
  t.is(await chart(page, 'loss', 'el.dataset.outliers'), '1', 'the 1e30 loss is an outlier');
  const ymax = await chart(page, 'loss', 'c.u.scales.y.max');
  t.ok(ymax > 2 && ymax < 10, `the loss chart's y-range leaves it out (max ${ymax})`);
  t.ok(await page.isVisible('[data-chart=loss] .outlier-btn'), 'and says so');
  // The mark at the top edge: click it.
  const mark = await chart(page, 'loss', `(() => { const r = c.u.over.getBoundingClientRect();
    return { x: r.left + c.u.valToPos(${SPIKE}, 'x'), y: r.top + 3 }; })()`);
  const px = await page.evaluate(([x, y]) => {
    const cv = document.querySelector('[data-chart=loss] canvas');
    const r = cv.getBoundingClientRect();
    const k = cv.width / r.width;
    const p = cv.getContext('2d').getImageData(Math.round((x - r.left) * k), Math.round((y - r.top) * k), 1, 1).data;
    return [...p];
  }, [mark.x, mark.y]);
  t.ok(px[3] > 0 && px[0] > px[2], 'the outlier is marked at the top edge', JSON.stringify(px));
  await page.mouse.click(mark.x, mark.y);
  t.ok(await until(async () => (await chart(page, 'loss', 'c.u.scales.y.max')) >= 1e30, 8000),
    'a click on the mark takes it into the y-range');
  t.is(await chart(page, 'loss', 'el.dataset.outliersShown'), 'true', 'and the chart says it is shown');
  await page.click('[data-chart=loss] .outlier-btn');
  t.ok(await until(async () => (await chart(page, 'loss', 'c.u.scales.y.max')) < 10, 8000),
    'the button leaves it out again');

  // ---- smoothing ----
  const rough0 = await chart(page, 'loss', ROUGH);
  const img0 = await chart(page, 'loss', 'c.u.ctx.canvas.toDataURL()');
  await page.evaluate(() => {
    const s = document.querySelector('.smooth');
    s.value = '0.9';
    s.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await sleep(200);
  const rough1 = await chart(page, 'loss', ROUGH);
  t.ok(rough1 > 0 && rough1 < rough0 * 0.5, `smoothing smooths the drawn loss (roughness ${rough0?.toFixed(2)} -> ${rough1?.toFixed(2)})`);
  t.ok(await chart(page, 'loss', 'c.u.series.length === 3 && c.u.series[1].alpha < 1 && c.u.series[2].alpha === 1'),
    'the raw line stays, faint, behind the smoothed one');
  t.ok((await chart(page, 'loss', 'c.u.ctx.canvas.toDataURL()')) !== img0, 'the drawn picture changes');
  t.ok((await chart(page, 'metric:throughput', ROUGH)) < (await chart(page, 'metric:throughput',
    'c.raw[1].reduce((a, v, i, ys) => a + (i ? Math.abs(v - ys[i - 1]) : 0), 0)')) * 0.5,
  'the metric charts are smoothed too');
  t.is(await page.textContent('.smooth-val'), '0.90', 'the slider shows its weight');

  // ---- the x-axis ----
  const xt = () => chart(page, 'loss', 'el.dataset.xticks');
  t.ok(/^\d+( \d+)+$/.test(await xt()), 'by step, the x-axis has whole steps', await xt());
  await page.selectOption('.xmode', 'wall');
  t.ok(await until(async () => /^\d\d:\d\d:\d\d( \d\d:\d\d:\d\d)+$/.test(await xt()), 8000),
    'wall time labels the x-axis with clock times', await xt());
  const lastX = await chart(page, 'loss', 'c.u.data[0][c.u.data[0].length - 1]');
  t.ok(Math.abs(lastX - (T0 + (N - 1) * 0.5)) < 1, 'at the steps\' times', lastX);
  await page.selectOption('.xmode', 'rel');
  t.ok(await until(async () => /^0s( \d+m?\d*s?)+/.test(await xt()) && /\b1m/.test(await xt()), 8000),
    'relative time labels it with durations from the start', await xt());
  t.ok(await page.evaluate(() => /[?&]x=rel\b/.test(location.hash)), 'the choice is in the URL');
  await page.goto(`${d.url}/#/run/${RUN}`);
  await page.reload();
  t.ok(await until(async () => (await page.inputValue('.xmode')) === 'rel' && /\b1m/.test(await xt() || ''), 8000),
    'and remembered across a reload', await xt());
  t.is(await page.inputValue('.smooth'), '0.9', 'the smoothing too');
  await page.selectOption('.xmode', 'step');
  t.ok(await until(async () => /^\d+( \d+)+$/.test(await xt()), 8000), 'back to steps');

  // ---- the empty Clipping chart ----
  const clip = await page.evaluate(() => {
    const el = document.querySelector('[data-chart=clip] .chart');
    return { empty: el.classList.contains('is-empty'),
      text: el.querySelector('.chart-empty')?.innerText, x: el.dataset.xticks, y: el.dataset.yticks,
      plot: getComputedStyle(el.querySelector('.uplot')).visibility };
  });
  t.ok(clip.empty && /No clipping reported/.test(clip.text || ''), 'the empty Clipping chart says so', JSON.stringify(clip));
  t.ok(clip.x === '' && clip.y === '' && clip.plot === 'hidden', 'and draws no ticks', JSON.stringify(clip));

  // ---- a grouped alert, once in the banner ----
  await d.post({ run: RUN, steps: [{ step: N, loss: 0.4, grad_norm: 1, metrics: { late_metric: 1 },
    layers: { 'embed.weight': 'NaN', 'block.0.weight': 'NaN', 'head.weight': 'Infinity', 'block.1.weight': 0.1 } }] });
  await d.post({ run: RUN, steps: [{ step: N + 1, loss: 0.4, grad_norm: 1,
    layers: { 'embed.weight': 'NaN', 'block.1.weight': 'NaN', 'head.weight': 0.1, 'block.0.weight': 0.1 } }] });
  const banner = await until(() => page.evaluate(() => {
    const el = document.querySelector('.banner');
    return !el.hidden && el.querySelector('[data-kind=nonfinite]') ? el.innerText : null;
  }), 3000);
  const entries = await page.evaluate(() => document.querySelectorAll('.banner [data-kind=nonfinite]').length);
  const api = await d.get(`/api/v1/alerts?run=${RUN}&state=firing`);
  t.is(entries, 1, 'the banner shows the non-finite alert once', banner, JSON.stringify(api.body));
  t.ok(banner && ['embed.weight', 'block.0.weight', 'head.weight'].every((n) => banner.includes(n)),
    'listing its tensors', banner);
  const kinds = await page.evaluate(() => [...document.querySelectorAll('.banner [data-kind]')].map((e) => e.dataset.kind));
  t.is(new Set(kinds).size, kinds.length, 'no kind twice in the banner', kinds.join(','));

  // A metric first sent while the page is open gets its chart (the series list is read again).
  t.ok(await until(() => page.evaluate(() => [...document.querySelectorAll('[data-group=metrics] h2')]
    .some((h) => h.textContent === 'late_metric')), 15000), 'a metric that appears later gets a chart');

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

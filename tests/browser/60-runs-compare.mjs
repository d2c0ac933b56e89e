#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Run metadata in a real headless Chromium against the real daemon, on
// runs with a 12-key nested config and custom metrics: the run page's
// config table shows every key and value, whole, and its filter narrows
// it; the compare page lists exactly the config keys that differ, draws a
// chart for a shared custom metric and a weight norm, and marks one run's
// non-finite loss and its alert under the loss chart; the runs page shows
// duration and steps/s, a chosen config column (remembered over a
// reload), tags and a note edited in the page (kept by the daemon: a
// reload shows them), and groups by project.  Saves the compare page's
// screenshot (build/screenshots, or docs/ by make screenshots).

import fs from 'node:fs';
import path from 'node:path';
import { browser, BUILD, Daemon, sleep, Tap, until } from './lib.mjs';

const SHOTS = process.env.GW_SCREENSHOT_DIR || path.join(BUILD, 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

const t = new Tap();
const guard = setTimeout(() => t.bail('timed out after 150 s'), 150000);
const d = new Daemon();
let b = null;

const A = 'gpt-s-lr3e-4';
const B = 'gpt-s-lr1e-3';
const C = 'vit-tiny';
const LONG = 'A long description of this run that goes on and on, well past any column width, ' +
  'so that the table must wrap it rather than cut it: '.repeat(3) + 'the end.';

function config(lr, seed, dropout) {
  return {
    model: { name: 'gpt-s', layers: 12, heads: 8, dropout },
    optim: { name: 'adamw', lr, betas: [0.9, 0.95], weight_decay: 0.1 },
    data: { dataset: 'openwebtext', seq_len: 1024 },
    seed,
    description: LONG,
  };
}
// The 12 dotted keys and their texts as the page must show them.
function flat(c) {
  const out = {};
  const walk = (o, p) => {
    for (const [k, v] of Object.entries(o)) {
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, p ? `${p}.${k}` : k);
      else out[p ? `${p}.${k}` : k] = typeof v === 'string' ? v : JSON.stringify(v);
    }
  };
  walk(c, '');
  return out;
}
const CFG_A = config(3e-4, 1, 0.1);
const CFG_B = config(1e-3, 2, 0);
const DIFFERING = ['model.dropout', 'optim.lr', 'seed'];

function steps(from, to, nanAt, pace = 80) {
  const out = [];
  for (let s = from; s < to; s++) {
    out.push({
      step: s,
      loss: s === nanAt ? 'NaN' : 2.5 * Math.exp(-s / pace) + 0.3,
      grad_norm: (80 / pace) * (1 + 0.1 * Math.sin(s)),
      lr: 3e-4,
      layers: { 'head.weight': 0.1 * (80 / pace) },
      weights: { 'head.weight': 10 + s / 100 },
      metrics: { val_acc: 0.9 - 0.4 * Math.exp(-s / pace), tokens_per_s: 1000 + s },
    });
  }
  return out;
}

async function runsShown(page) {
  return page.evaluate(() => [...document.querySelectorAll('tbody tr[data-run]')].map((r) => r.dataset.run));
}

async function main() {
  await d.start();
  // Two requests 1.2 s apart, so duration and steps/s have something to show.
  await d.post({ run: A, meta: { project: 'nlp', config: CFG_A }, steps: steps(0, 100) });
  await d.post({ run: B, meta: { project: 'nlp', config: CFG_B }, steps: steps(0, 100, -1, 40) });
  await d.post({ run: C, meta: { project: 'vision', config: { model: { name: 'vit-tiny' }, seed: 3 } },
    steps: steps(0, 50) });
  await sleep(1200);
  await d.post({ run: A, steps: steps(100, 200) });
  await d.post({ run: B, steps: steps(100, 200, 150, 40) });
  t.ok(await until(async () => (await d.get(`/api/v1/alerts?run=${B}`)).body.alerts.some((a) => a.kind === 'nonfinite'),
    5000), 'setup: run B\'s NaN loss raised an alert');
  t.is(Object.keys(flat(CFG_A)).length, 12, 'setup: the config has 12 keys');

  b = await browser();
  const { page } = b;

  // ---- the run page's config table ----
  await page.goto(`${d.url}/#/run/${A}`);
  await page.waitForSelector('.config-table tbody tr', { timeout: 10000 }).catch(() => null);
  const table = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('.config-table tbody tr')]
    .map((tr) => [tr.querySelector('.k').textContent, tr.querySelector('.v').textContent])));
  const want = flat(CFG_A);
  t.is(Object.keys(table).length, 12, 'the config table has a row for each of the 12 keys');
  const wrong = Object.entries(want).filter(([k, v]) => table[k] !== v);
  t.ok(wrong.length === 0, 'every key shows its whole value (nested keys dotted, lists as JSON, the long one uncut)',
    JSON.stringify(wrong), JSON.stringify(table));
  const wraps = await page.evaluate(() => {
    const td = document.querySelector('.config-table tr[data-key="description"] .v');
    return td && td.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(td).lineHeight || '16') &&
      td.scrollWidth <= td.clientWidth + 1;
  });
  t.ok(wraps, 'the long value wraps onto several lines');
  await page.fill('.config-filter', 'optim');
  const filtered = await until(async () => {
    const keys = await page.evaluate(() => [...document.querySelectorAll('.config-table tbody tr')].map((tr) => tr.dataset.key));
    return keys.length === 4 ? keys : null;
  }, 2000);
  t.is(JSON.stringify(filtered), JSON.stringify(['optim.name', 'optim.lr', 'optim.betas', 'optim.weight_decay']),
    'the filter keeps the keys that match');
  await page.fill('.config-filter', 'openweb');
  t.ok(await until(async () => JSON.stringify(await page.evaluate(() =>
    [...document.querySelectorAll('.config-table tbody tr')].map((tr) => tr.dataset.key))) === '["data.dataset"]', 2000),
  'and matches values too');

  // ---- compare ----
  await page.goto(`${d.url}/#/compare?runs=${A},${B}`);
  const diff = await until(async () => {
    const keys = await page.evaluate(() => [...document.querySelectorAll('.diff-table tbody tr')].map((tr) => tr.dataset.key));
    return keys.length ? keys : null;
  }, 8000);
  t.is(JSON.stringify([...(diff || [])].sort()), JSON.stringify(DIFFERING), 'the diff lists exactly the differing keys');
  const lrRow = await page.evaluate(() => [...document.querySelectorAll('.diff-table tr[data-key="optim.lr"] td.v')]
    .map((td) => td.textContent));
  t.is(JSON.stringify(lrRow), JSON.stringify(['0.0003', '0.001']), 'with each run\'s value');
  const metric = await until(() => page.evaluate(() => {
    const c = document.querySelector('[data-series="metric:val_acc"]');
    return c && Number(c.dataset.points) > 0 ? c.textContent : null;
  }), 8000);
  t.ok(metric, 'a chart of the shared custom metric val_acc, with points');
  t.ok(await page.evaluate(() => Number(document.querySelector('[data-series="metric:tokens_per_s"]')?.dataset.points) > 0 &&
    Number(document.querySelector('[data-series="layer_weight:head.weight"]')?.dataset.points) > 0 &&
    Number(document.querySelector('[data-series="lr:lr"]')?.dataset.points) > 0),
  'and of the other metric, the weight norm and the learning rate');
  t.ok(await page.evaluate(([a, c]) => {
    const txt = document.querySelector('[data-series="metric:val_acc"] .u-legend')?.textContent || '';
    return txt.includes(a) && txt.includes(c);
  }, [A, B]), 'one series per run on it');
  const marks = await until(() => page.evaluate(() => [...document.querySelectorAll('[data-chart=loss] .mark')]
    .map((m) => ({ run: m.dataset.run, nonfinite: Number(m.dataset.nonfinite), alerts: Number(m.dataset.alerts),
      text: m.textContent.replace(/\s+/g, ' ') }))), 5000);
  t.ok(marks && marks.length === 1 && marks[0].run === B && marks[0].nonfinite >= 1 && marks[0].alerts >= 1 &&
    marks[0].text.includes('150'), 'under the loss chart: B\'s non-finite step 150 and its alert, nothing for A',
  JSON.stringify(marks));
  await sleep(300);
  await page.screenshot({ path: path.join(SHOTS, 'compare.png'), fullPage: false });

  // ---- the runs page ----
  await page.goto(`${d.url}/`);
  await page.waitForSelector(`tr[data-run="${A}"]`, { timeout: 10000 });
  const api = (await d.get('/api/v1/runs')).body.runs.find((r) => r.run === A);
  const secs = api.last_seen - api.started_at;
  const cells = await page.evaluate((k) => {
    const tr = document.querySelector(`tr[data-run="${k}"]`);
    return { duration: tr.querySelector('.duration').textContent, rate: tr.querySelector('.rate').textContent };
  }, A);
  t.is(cells.duration, `${Math.round(secs)} s`, `duration: ${secs.toFixed(2)} s from first to latest request`);
  const rate = Number(cells.rate);
  t.ok(secs > 1 && Math.abs(rate - 199 / secs) / (199 / secs) < 0.01, 'steps/s: 199 steps over that time',
    `shown ${cells.rate}, want ${199 / secs}`);

  await page.fill('.col-key', 'optim.lr');
  await page.click('.col-add');
  const col = () => page.evaluate(() => Object.fromEntries([...document.querySelectorAll('tbody tr[data-run]')]
    .map((tr) => [tr.dataset.run, tr.querySelector('td.cfg-val[data-key="optim.lr"]')?.textContent ?? null])));
  t.is(JSON.stringify(await col()), JSON.stringify({ [B]: '0.001', [A]: '0.0003', [C]: '–' }),
    'a chosen config column shows each run\'s value');
  await page.reload();
  await page.waitForSelector(`tr[data-run="${A}"]`, { timeout: 10000 });
  t.ok(await until(async () => (await col())[A] === '0.0003', 8000), 'and is still there after a reload');

  // Tags and a note, edited in the page; a second page follows by the stream.
  const other = await b.ctx.newPage();
  await other.goto(`${d.url}/`);
  await other.waitForSelector(`tr[data-run="${A}"]`, { timeout: 10000 });
  // A step while it watches: the daemon now knows the run's status and health as sent,
  // so only the change of tags can make it send the run again.
  t.ok(await until(() => other.evaluate(() => document.querySelector('.conn')?.dataset.state === 'live'), 5000),
    'setup: the second page is live');
  await d.post({ run: A, steps: steps(200, 201) });
  t.ok(await until(async () => (await other.textContent(`tr[data-run="${A}"] .last-step`)) === '200', 8000),
    'setup: the second page follows run A');
  await page.click(`tr[data-run="${A}"] .edit-meta`);
  await page.fill('.meta-tags', 'baseline, keep , baseline');
  await page.fill('.meta-note', 'first try\nwith warmup');
  await page.click('.meta-save');
  t.ok(await until(() => page.evaluate((k) => [...document.querySelectorAll(`tr[data-run="${k}"] .tag-chip`)]
    .map((c) => c.textContent).join(',') === 'baseline,keep', A), 3000), 'the saved tags show in the row');
  const stored = (await d.get(`/api/v1/runs/${A}`)).body;
  t.is(JSON.stringify([stored.tags, stored.note]), JSON.stringify([['baseline', 'keep'], 'first try\nwith warmup']),
    'the daemon has them');
  t.ok(await until(() => other.evaluate((k) => [...document.querySelectorAll(`tr[data-run="${k}"] .tag-chip`)]
    .map((c) => c.textContent).join(',') === 'baseline,keep', A), 3000),
  'another open runs page shows them without a reload (the stream\'s run message)');
  await other.close();
  await page.click(`tr[data-run="${B}"] .edit-meta`);
  await page.fill('.meta-tags', Array.from({ length: 33 }, (_, i) => `t${i}`).join(','));
  await page.click('.meta-save');
  t.ok(await until(() => page.evaluate(() => {
    const e = document.querySelector('.meta-error');
    return e && !e.hidden && e.textContent.includes('33 tags');
  }), 3000), 'too many tags: the daemon\'s refusal shows in the dialog');
  await page.click('.meta-cancel');
  t.is(JSON.stringify((await d.get(`/api/v1/runs/${B}`)).body.tags), '[]', 'and nothing was stored');
  await page.reload();
  await page.waitForSelector(`tr[data-run="${A}"] .tag-chip`, { timeout: 10000 }).catch(() => null);
  const after = await page.evaluate((k) => {
    const tr = document.querySelector(`tr[data-run="${k}"]`);
    return { tags: [...tr.querySelectorAll('.tag-chip')].map((c) => c.textContent), note: tr.querySelector('.note').title };
  }, A);
  t.is(JSON.stringify(after), JSON.stringify({ tags: ['baseline', 'keep'], note: 'first try\nwith warmup' }),
    'after a reload the tags and the note are still shown');
  await page.fill('.f-text', 'keep');
  t.ok(await until(async () => JSON.stringify(await runsShown(page)) === JSON.stringify([A]), 8000),
    'the text filter finds a run by its tag', JSON.stringify(await runsShown(page)));
  await page.fill('.f-text', '');

  // Grouping.
  await page.selectOption('.group-by', 'project');
  const groups = await until(async () => {
    const g = await page.evaluate(() => [...document.querySelectorAll('tbody tr')].map((tr) =>
      (tr.classList.contains('group-row') ? `#${tr.dataset.group}` : tr.dataset.run)));
    return g.length === 5 ? g : null;
  }, 2000);
  t.is(JSON.stringify(groups), JSON.stringify(['#nlp', A, B, '#vision', C]), 'grouped by project, each group under its header');
  await page.selectOption('.group-by', 'cfg:seed');
  const bySeed = await until(() => page.evaluate(() => [...document.querySelectorAll('tbody tr.group-row')]
    .map((tr) => tr.dataset.group).join(',')), 2000);
  t.is(bySeed, '1,2,3', 'and by a config key');

  // The column goes as it came, and stays gone.
  await page.selectOption('.group-by', '');
  await page.click('th.cfg-col[data-key="optim.lr"] .col-remove');
  t.ok(await until(() => page.evaluate(() => !document.querySelector('th.cfg-col') && !document.querySelector('td.cfg-val')), 2000),
    'removing the column takes it away');
  await page.reload();
  await page.waitForSelector(`tr[data-run="${A}"]`, { timeout: 10000 });
  t.ok(await page.evaluate(() => !document.querySelector('th.cfg-col') && document.querySelector('.group-by').value === ''),
    'and after a reload it is still gone, the grouping off');

  // The one refused PATCH above is logged by Chromium as a failed resource; nothing else may be.
  const others = b.errors.filter((e) => !/status of 400/.test(e));
  t.ok(others.length === 0 && b.errors.length <= 1, 'no other errors in the browser console', ...b.errors);
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

#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The dashboard's pure modules in Node, without a browser: the EMA
// smoothing, the outlier-proof y-range, the step/time map of the x-axis,
// the banner's grouping of alerts and the update ratio of the weight charts.

import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { Tap, TOP } from './lib.mjs';

const t = new Tap();
const web = (f) => import(pathToFileURL(path.join(TOP, 'web', f)).href);
const { ema } = await web('smooth.js');
const { findOutliers } = await web('outliers.js');
const { TimeMap, fmtDur, xAxis } = await web('xaxis.js');
const { groupAlerts, bannerHtml } = await web('banner.js');

// ---- smooth.js ----
t.is(JSON.stringify(ema([1, 2, 3], 0)), '[1,2,3]', 'EMA with weight 0 is the series');
t.is(ema([5, 5, 5], 0.9)[0], 5, 'EMA is debiased: its first point is the first value');
const sm = ema([0, 10, NaN, null, 10], 0.5);
t.ok(sm[2] === null && sm[3] === null && sm[4] > sm[1], 'EMA leaves NaN and null out as gaps', JSON.stringify(sm));
t.is(ema([1, 1e30, 1], 0.5, (i) => i === 1)[2], 1, 'EMA skips the points it is told to');

// ---- outliers.js ----
const loss = Array.from({ length: 1000 }, (_, i) => 2 * Math.exp(-i / 300) + 0.3);
t.is(findOutliers([loss]), null, 'a decaying loss has no outliers');
const spiked = loss.slice();
spiked[500] = 1e30;
const o = findOutliers([spiked]);
t.ok(o && o.high.has('0:500') && o.high.size === 1 && o.hi < 3, 'one loss of 1e30 is an outlier, the rest the range',
  JSON.stringify(o && { lo: o.lo, hi: o.hi }));
const many = loss.map((v, i) => (i % 20 === 0 ? 1e30 : v));
t.is(findOutliers([many]), null, 'values too many to be rare are not outliers');
const flat = Array.from({ length: 100 }, () => 0.5);
flat[50] = 0.6;
t.is(findOutliers([flat]), null, 'a small bump on a flat line is no outlier');
const g = Array.from({ length: 500 }, (_, i) => 1 + 0.5 * Math.sin(i));
g[100] = 20;
t.is(findOutliers([g], true), null, 'on a log scale a 20x spike stays in range');
g[100] = 1e30;
t.ok(findOutliers([g], true)?.high.has('0:100'), 'but 1e30 does not');
const low = loss.slice();
low[10] = -1e20;
t.ok(findOutliers([low])?.low.has('0:10'), 'an outlier below is found too');

// ---- xaxis.js ----
const m = new TimeMap([0, 10, 20, 30], [100, 105, 110, 200]);
t.is(m.toX(5), 102.5, 'steps map to times between points');
t.is(m.toStep(155), 25, 'and times back to steps');
t.ok(Math.abs(m.toX(40) - (200 + 10 * (100 / 30))) < 1e-9, 'beyond the end at the run\'s mean rate');
const back = new TimeMap([0, 1, 2], [10, 5, 12]);
t.ok(back.toX(1) >= back.toX(0), 'a time that goes back is held');
t.is(fmtDur(90), '1m30s', 'durations: 1m30s');
t.is(fmtDur(7200), '2h', 'durations: 2h');
t.is(xAxis('rel', m, 100).toX(10), 5, 'relative time counts from the run\'s first time');
t.is(xAxis('wall', new TimeMap([], [])).mode, 'step', 'without times the axis stays by step');

// ---- banner.js ----
const alerts = [
  { id: 1, kind: 'vanishing', severity: 'warning', series: 'a.weight', tensors: ['a.weight', 'b.weight'],
    detail: { tensor_count: 60 }, fire_step: 10, message: 'm1' },
  { id: 2, kind: 'vanishing', severity: 'warning', series: 'c.weight', fire_step: 12, message: 'm2' },
  { id: 3, kind: 'nonfinite', severity: 'critical', series: null, tensors: ['x', 'y'], fire_step: 11, message: 'nan' },
];
const gr = groupAlerts(alerts);
t.is(gr.map((x) => x.kind).join(), 'nonfinite,vanishing', 'the banner has one entry a kind, critical first');
t.is(gr[1].tensors.join(), 'a.weight,b.weight,c.weight', 'an entry lists the tensors of all its alerts');
t.is(gr[1].count, 61, 'and counts those a pattern did not list');
const html = bannerHtml(alerts);
t.ok((html.match(/data-kind="vanishing"/g) || []).length === 1 && /and 58 more tensors/.test(html),
  'the banner names three tensors and counts the rest', html);
t.is(bannerHtml([{ kind: '<b>', severity: 'warning', series: '<i>', fire_step: 1, message: '<s>' }]).includes('<i>'),
  false, 'the banner escapes what it shows');

t.done();

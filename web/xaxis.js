// SPDX-License-Identifier: MIT
// The run page's x-axis: by step, by wall time or by time since the run
// began.  Charts keep steps as their unit everywhere else (zoom, alerts,
// the URL); a TimeMap turns steps into seconds and back from the run's
// `time` series, and xAxis() gives a chart what it needs to draw either.

import { fmtInt, when } from './util.js';

const KEY = 'gradwatch.xaxis';
export const XMODES = { step: 'step', wall: 'wall time', rel: 'relative' };

/** The mode the page starts in: ?x= in the URL, else the last one chosen. */
export function loadXMode(params) {
  const m = params.get('x') || localStorage.getItem(KEY) || 'step';
  return m in XMODES ? m : 'step';
}

export function saveXMode(m) {
  localStorage.setItem(KEY, m);
}

/**
 * Steps to seconds by the run's `time` series (piecewise linear between
 * its points, at its end rate beyond them; times that go back are held).
 */
export class TimeMap {
  constructor(steps, times) {
    this.s = [];
    this.t = [];
    let hi = -Infinity;
    for (let i = 0; i < steps.length; i++) {
      const v = times[i];
      if (v === null || !Number.isFinite(v)) continue;
      if (this.s.length && steps[i] <= this.s[this.s.length - 1]) continue;
      hi = Math.max(hi, v);
      this.s.push(steps[i]);
      this.t.push(hi);
    }
    const n = this.s.length;
    const rate = n > 1 ? (this.t[n - 1] - this.t[0]) / (this.s[n - 1] - this.s[0]) : 0;
    this.rate = rate > 0 ? rate : 1;
  }

  get empty() {
    return this.s.length === 0;
  }

  toX(step) {
    const { s, t } = this;
    const n = s.length;
    if (n === 0) return step;
    if (step <= s[0]) return t[0] - (s[0] - step) * this.rate;
    if (step >= s[n - 1]) return t[n - 1] + (step - s[n - 1]) * this.rate;
    let a = 0;
    let b = n - 1;
    while (b - a > 1) {
      const m = (a + b) >> 1;
      if (s[m] <= step) a = m; else b = m;
    }
    const f = (step - s[a]) / (s[b] - s[a]);
    return t[a] + f * (t[b] - t[a]);
  }

  toStep(x) {
    const { s, t } = this;
    const n = s.length;
    if (n === 0) return x;
    if (x <= t[0]) return s[0] - (t[0] - x) / this.rate;
    if (x >= t[n - 1]) return s[n - 1] + (x - t[n - 1]) / this.rate;
    let a = 0;
    let b = n - 1;
    while (b - a > 1) {
      const m = (a + b) >> 1;
      if (t[m] <= x) a = m; else b = m;
    }
    if (t[b] === t[a]) return s[a];
    return s[a] + ((x - t[a]) / (t[b] - t[a])) * (s[b] - s[a]);
  }
}

// Tick increments in seconds for the relative axis.
const DUR_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
  21600, 43200, 86400, 172800, 604800, 2592000];

/** A duration for an axis: 45s, 12m, 1h30m, 2d4h. */
export function fmtDur(s) {
  const neg = s < 0 ? '−' : '';
  let a = Math.round(Math.abs(s));
  if (a < 60) return `${neg}${a}s`;
  if (a < 3600) {
    const m = Math.floor(a / 60);
    a %= 60;
    return `${neg}${m}m${a ? `${a}s` : ''}`;
  }
  if (a < 86400) {
    const h = Math.floor(a / 3600);
    const m = Math.round((a % 3600) / 60);
    return `${neg}${h}h${m ? `${m}m` : ''}`;
  }
  const d = Math.floor(a / 86400);
  const h = Math.round((a % 86400) / 3600);
  return `${neg}${d}d${h ? `${h}h` : ''}`;
}

/** A wall time for an axis at a tick increment of incr seconds. */
function fmtWall(v, incr) {
  const d = new Date(v * 1000);
  const p = (n) => String(n).padStart(2, '0');
  if (incr >= 86400) return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  if (incr >= 60) return `${p(d.getHours())}:${p(d.getMinutes())}`;
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A step number for an axis: 1.2M, 35k, 900. */
export function fmtStep(v) {
  if (v === null || v === undefined) return '';
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Math.round(v));
}

// Whole steps only: an axis over a few steps never shows "0 0 0 1 1".
const STEP_INCRS = [];
for (let e = 1; e <= 1e12; e *= 10) STEP_INCRS.push(e, 2 * e, 5 * e);

/**
 * What a chart needs for an x-axis mode: toX/toStep between steps and the
 * axis unit, whether uPlot treats it as time, tick increments, and the
 * text of a tick (given the increment) and of the legend.  map is a
 * TimeMap (ignored for 'step'), origin the run's first time ('rel').
 */
export function xAxis(mode, map = null, origin = 0) {
  if (mode === 'step' || !map || map.empty) {
    return { mode: 'step', toX: (s) => s, toStep: (x) => x, time: false, incrs: STEP_INCRS,
      tick: (v) => fmtStep(v), legend: (v) => fmtInt(v), label: 'step' };
  }
  if (mode === 'wall') {
    return { mode, toX: (s) => map.toX(s), toStep: (x) => map.toStep(x), time: true, incrs: null,
      tick: (v, incr) => fmtWall(v, incr), legend: (v) => `${when(v)} · step ${fmtInt(map.toStep(v))}`, label: 'time' };
  }
  return { mode: 'rel', toX: (s) => map.toX(s) - origin, toStep: (x) => map.toStep(x + origin), time: false,
    incrs: DUR_INCRS, tick: (v) => fmtDur(v),
    legend: (v) => `${fmtDur(v)} · step ${fmtInt(map.toStep(v + origin))}`, label: 'time' };
}

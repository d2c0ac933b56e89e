// SPDX-License-Identifier: MIT
// Line charts on uPlot for the run and compare views: steps on x, a linear
// or true log y, several series aligned by step, and markers drawn over the
// plot (alert onsets and fires, non-finite values, clip events).  Dragging
// selects a range to zoom into, ctrl+wheel zooms, shift+wheel pans and a
// double click goes back to the whole run: each calls back the view, which
// fetches detail for that range from the daemon.

import uPlot from '/vendor/uPlot.esm.js';
import { css, fmt, severityColor } from './util.js';

/** Per-step values at the given steps (null where a series has none). */
export function alignSeries(list) {
  // list: [{steps, values}], each sorted by step.
  const all = new Set();
  for (const s of list) for (const x of s.steps) all.add(x);
  const xs = Float64Array.from(all).sort();
  const out = [Array.from(xs)];
  const index = new Map();
  out[0].forEach((x, i) => index.set(x, i));
  for (const s of list) {
    const ys = new Array(xs.length).fill(null);
    for (let i = 0; i < s.steps.length; i++) ys[index.get(s.steps[i])] = s.values[i];
    out.push(ys);
  }
  return out;
}

export class LineChart {
  /**
   * el: the container; opts: {series: [{label, color, dash, width}], log,
   * height, sync, onZoom(from, to), onReset(), markers(): {alerts, nonfinite,
   * clips}}.
   */
  constructor(el, opts) {
    this.el = el;
    this.opts = opts;
    this.log = !!opts.log;
    this.data = [[], ...opts.series.map(() => [])];
    this.raw = this.data;
    this.range = null; // [from, to] or null: the data's extent
    this.build();
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(el);
  }

  build() {
    if (this.u) this.u.destroy();
    const fg = css('--fg-dim');
    const grid = css('--grid');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 },
      font: '11px system-ui, sans-serif' };
    const o = this.opts;
    const self = this;
    this.u = new uPlot({
      width: Math.max(200, this.el.clientWidth),
      height: o.height || 190,
      legend: { show: true, live: true },
      cursor: {
        sync: o.sync ? { key: o.sync } : undefined,
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => null },
      },
      select: { show: true },
      scales: {
        x: { time: false, auto: false },
        y: this.log ? { distr: 3, log: 10 } : { auto: true },
      },
      axes: [
        { ...axis, values: (u, vals) => vals.map((v) => fmtStep(v)) },
        { ...axis, size: 56, values: (u, vals) => vals.map((v) => (v === null ? '' : fmt(v))) },
      ],
      series: [
        { label: 'step', value: (u, v) => (v === null ? '–' : fmtStep(v)) },
        ...o.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width || 1.5,
          dash: s.dash,
          spanGaps: true,
          points: { show: false },
          value: (u, v, si, di) => self.legendValue(si, di, v),
        })),
      ],
      hooks: {
        setSelect: [(u) => this.onSelect(u)],
        draw: [(u) => this.drawMarkers(u)],
      },
    }, this.data, this.el);
    this.u.over.addEventListener('dblclick', () => o.onReset && o.onReset());
    this.u.over.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    this.applyRange();
  }

  legendValue(si, di, v) {
    if (di === null || di === undefined) return '–';
    const r = this.raw[si]?.[di];
    if (r !== undefined && r !== null && !Number.isFinite(r)) return fmt(r);
    return v === null ? '–' : fmt(v);
  }

  /** data: [xs, ys...] with raw numbers (NaN/Inf allowed; drawn as markers). */
  setData(data) {
    this.raw = data;
    // uPlot cannot draw non-finite values, nor values <= 0 on a log scale.
    this.data = [data[0], ...data.slice(1).map((ys) => ys.map((v) =>
      (v === null || !Number.isFinite(v) || (this.log && v <= 0) ? null : v)))];
    this.u.setData(this.data, false);
    this.applyRange();
  }

  /** Show [from, to], or the data's extent when from is null. */
  setRange(from, to) {
    this.range = from === null || from === undefined ? null : [from, to];
    this.applyRange();
  }

  applyRange() {
    const xs = this.data[0];
    let r = this.range;
    if (!r) r = xs.length ? [xs[0], xs[xs.length - 1]] : [0, 1];
    if (r[1] <= r[0]) r = [r[0] - 0.5, r[1] + 0.5];
    this.u.setScale('x', { min: r[0], max: r[1] });
  }

  setLog(log) {
    if (this.log === log) return;
    this.log = log;
    this.build();
    this.setData(this.raw);
  }

  resize() {
    const w = Math.max(200, this.el.clientWidth);
    if (Math.abs(w - this.u.width) > 2) this.u.setSize({ width: w, height: this.u.height });
  }

  redraw() {
    this.u.redraw(false, false);
  }

  onSelect(u) {
    const sel = u.select;
    if (sel.width > 4 && this.opts.onZoom) {
      const a = u.posToVal(sel.left, 'x');
      const b = u.posToVal(sel.left + sel.width, 'x');
      this.opts.onZoom(Math.max(0, Math.floor(a)), Math.ceil(b));
    }
    if (sel.width > 0) u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  }

  onWheel(e) {
    if (!(e.ctrlKey || e.metaKey || e.shiftKey) || !this.opts.onZoom) return;
    e.preventDefault();
    const u = this.u;
    const min = u.scales.x.min;
    const max = u.scales.x.max;
    const span = max - min;
    if (e.shiftKey) {
      const d = span * 0.15 * Math.sign(e.deltaY || e.deltaX);
      this.opts.onZoom(Math.max(0, Math.round(min + d)), Math.round(max + d));
      return;
    }
    const at = u.posToVal(e.offsetX, 'x');
    const f = e.deltaY < 0 ? 0.7 : 1 / 0.7;
    const a = at - (at - min) * f;
    const b = at + (max - at) * f;
    this.opts.onZoom(Math.max(0, Math.floor(a)), Math.ceil(b));
  }

  drawMarkers(u) {
    const m = this.opts.markers ? this.opts.markers() : null;
    if (!m) return;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const px = devicePixelRatio || 1;
    const xOf = (step) => u.valToPos(step, 'x', true);
    const inside = (x) => x >= left - 1 && x <= left + width + 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    for (const a of m.alerts || []) {
      const col = severityColor(a.severity);
      for (const [step, dash] of [[a.onset_step, [4 * px, 3 * px]], [a.fire_step, []]]) {
        if (step === null || step === undefined) continue;
        const x = Math.round(xOf(step)) + 0.5;
        if (!inside(x)) continue;
        ctx.strokeStyle = col;
        ctx.globalAlpha = a.state === 'resolved' ? 0.45 : 0.9;
        ctx.lineWidth = px;
        ctx.setLineDash(dash);
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + height);
        ctx.stroke();
      }
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    // Non-finite values: a triangle at the top, pointing down.
    ctx.fillStyle = css('--nonfinite');
    for (const step of m.nonfinite || []) {
      const x = xOf(step);
      if (!inside(x)) continue;
      ctx.beginPath();
      ctx.moveTo(x - 4 * px, top);
      ctx.lineTo(x + 4 * px, top);
      ctx.lineTo(x, top + 7 * px);
      ctx.fill();
    }
    // Clip events: ticks along the bottom.
    ctx.strokeStyle = css('--clip');
    ctx.lineWidth = px;
    for (const step of m.clips || []) {
      const x = Math.round(xOf(step)) + 0.5;
      if (!inside(x)) continue;
      ctx.beginPath();
      ctx.moveTo(x, top + height);
      ctx.lineTo(x, top + height - 6 * px);
      ctx.stroke();
    }
    ctx.restore();
  }

  destroy() {
    this.ro.disconnect();
    this.u.destroy();
  }
}

/** A step number for an axis: 1.2M, 35k, 900. */
export function fmtStep(v) {
  if (v === null || v === undefined) return '';
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Math.round(v));
}

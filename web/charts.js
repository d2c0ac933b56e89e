// SPDX-License-Identifier: MIT
// Line charts on uPlot for the run and compare views: steps (or their wall
// or relative time, xaxis.js) on x, a linear or true log y, several series
// aligned by step, and markers drawn over the plot (alert onsets and
// fires, non-finite values, clip events, outliers at the edge).  A chart
// may smooth its lines (smooth.js: the raw line stays faint behind) and
// leave rare huge outliers out of its y-range (outliers.js; a click puts
// them back); with no data it says so instead of drawing empty ticks.
// Dragging selects a range to zoom into, ctrl+wheel zooms, shift+wheel
// pans and a double click goes back to the whole run: each calls back the
// view, which fetches detail for that range from the daemon.

import uPlot from '/vendor/uPlot.esm.js';
import { findOutliers } from './outliers.js';
import { ema } from './smooth.js';
import { css, esc, fmt, severityColor } from './util.js';
import { fmtStep, xAxis } from './xaxis.js';

export { fmtStep };

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
   * el: the container; opts: {series: [{label, color, dash, width, smooth}],
   * log, height, sync, onZoom(from, to), onReset(), markers(): {alerts,
   * nonfinite, clips, skips}, smooth (the chart takes setSmoothing),
   * outliers (leave rare huge values out of the y-range), empty (the text
   * shown without data)}.  Steps are the unit of every call; setX changes
   * only what the x-axis shows.
   */
  constructor(el, opts) {
    this.el = el;
    this.opts = opts;
    this.log = !!opts.log;
    this.x = xAxis('step');
    this.weight = 0; // smoothing
    this.withOutliers = false;
    this.outl = null;
    this.marks = []; // outliers: {x, up}
    this.empty = false;
    this.raw = [[], ...opts.series.map(() => [])];
    this.range = null; // [from, to] in steps, or null: the data's extent
    el.gwChart = this; // for the browser tests
    el.insertAdjacentHTML('beforeend', `<div class="chart-empty">${esc(opts.empty || 'No data in this range')}</div>
      <button class="btn sm outlier-btn" hidden></button>`);
    this.emptyEl = el.querySelector(':scope > .chart-empty');
    this.noteEl = el.querySelector(':scope > .outlier-btn');
    this.noteEl.addEventListener('click', () => this.toggleOutliers());
    this.data = this.raw;
    this.build();
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(el);
  }

  /** Whether lines are drawn twice: faint raw behind smoothed. */
  smoothing() {
    return !!this.opts.smooth && this.weight > 0;
  }

  /** The drawn columns: which series each is and how it is drawn. */
  columns() {
    const cols = [];
    this.opts.series.forEach((s, i) => {
      if (this.smoothing() && s.smooth !== false) {
        cols.push({ src: i, kind: 'raw', s });
        cols.push({ src: i, kind: 'smooth', s });
      } else {
        cols.push({ src: i, kind: 'plain', s });
      }
    });
    return cols;
  }

  build() {
    if (this.u) this.u.destroy();
    const fg = css('--fg-dim');
    const grid = css('--grid');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 },
      font: '11px system-ui, sans-serif' };
    const o = this.opts;
    const self = this;
    this.cols = this.columns();
    const xa = { ...axis, values: (u, vals, ai, space, incr) => this.ticks('x', vals.map((v) => this.x.tick(v, incr))) };
    if (this.x.incrs) xa.incrs = this.x.incrs;
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
        x: { time: this.x.time, auto: false },
        y: this.log ? { distr: 3, log: 10, range: (u, a, b) => this.yRange(a, b) }
          : { auto: true, range: (u, a, b) => this.yRange(a, b) },
      },
      axes: [
        xa,
        { ...axis, size: 56, values: (u, vals) => this.ticks('y', vals.map((v) => (v === null ? '' : fmt(v)))) },
      ],
      series: [
        { label: this.x.label, value: (u, v) => (v === null ? '–' : this.x.legend(v)) },
        ...this.cols.map((c) => ({
          label: c.kind === 'raw' ? `${c.s.label} (raw)` : c.s.label,
          stroke: c.s.color,
          width: c.kind === 'raw' ? 1 : c.s.width || 1.5,
          alpha: c.kind === 'raw' ? 0.28 : 1,
          dash: c.s.dash,
          spanGaps: true,
          points: { show: false },
          value: (u, v, si, di) => self.legendValue(si, di, v),
        })),
      ],
      hooks: {
        setSelect: [(u) => this.onSelect(u)],
        draw: [(u) => this.drawMarkers(u)],
      },
    }, this.data.length === this.cols.length + 1 ? this.data : [[], ...this.cols.map(() => [])], this.el);
    // A raw line behind a smoothed one has no legend row of its own: the
    // smoothed line's row gives both values.
    const rows = this.u.root.querySelectorAll('.u-legend .u-series');
    this.cols.forEach((c, i) => rows[i + 1]?.classList.toggle('raw', c.kind === 'raw'));
    this.u.over.addEventListener('dblclick', () => o.onReset && o.onReset());
    this.u.over.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    this.u.over.addEventListener('click', (e) => this.onClick(e));
    this.applyRange();
  }

  /** Tick labels as drawn (none on an empty chart), kept on the element for tests. */
  ticks(axis, labels) {
    const out = this.empty ? labels.map(() => '') : labels;
    this.el.dataset[`${axis}ticks`] = out.join(' ').trim();
    return out;
  }

  yRange(dmin, dmax) {
    let lo = dmin;
    let hi = dmax;
    if (this.outl && !this.withOutliers) {
      lo = this.outl.lo;
      hi = this.outl.hi;
    }
    if (lo === null || hi === null || !Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) {
      return this.log ? [1, 10] : [0, 1];
    }
    return this.log ? uPlot.rangeLog(lo, hi, 10, true) : uPlot.rangeNum(lo, hi, 0.1, true);
  }

  legendValue(si, di, v) {
    if (di === null || di === undefined) return '–';
    const c = this.cols[si - 1];
    const r = c ? this.raw[c.src + 1]?.[di] : undefined;
    if (c && c.kind !== 'smooth' && r !== undefined && r !== null) return fmt(r);
    if (c && c.kind === 'smooth' && r !== undefined && r !== null) return `${v === null ? '–' : fmt(v)} (raw ${fmt(r)})`;
    return v === null ? '–' : fmt(v);
  }

  /** data: [steps, ys...] with raw numbers (NaN/Inf allowed; drawn as markers). */
  setData(data) {
    this.raw = data;
    this.loaded = true;
    const log = this.log;
    // uPlot cannot draw non-finite values, nor values <= 0 on a log scale.
    const clean = data.slice(1).map((ys) => ys.map((v) =>
      (v === null || !Number.isFinite(v) || (log && v <= 0) ? null : v)));
    this.empty = clean.every((ys) => ys.every((v) => v === null));
    this.outl = this.opts.outliers && !this.empty ? findOutliers(clean, log) : null;
    const xs = this.x.mode === 'step' ? data[0] : data[0].map((s) => this.x.toX(s));
    const out = this.outl;
    const hide = out && !this.withOutliers;
    this.marks = [];
    let drawn = clean;
    if (out) {
      // Outliers are drawn beyond the edge (the line leaves the plot
      // there), never at 1e30: a canvas does not take such coordinates.
      const span = log ? Math.max(Math.log10(out.hi / out.lo), 0.5) : Math.max(out.hi - out.lo, Math.abs(out.hi), 1e-12);
      const above = log ? out.hi * 10 ** (3 * span) : out.hi + 3 * span;
      const below = log ? out.lo / 10 ** (3 * span) : out.lo - 3 * span;
      drawn = clean.map((ys, c) => ys.map((v, i) => {
        const k = `${c}:${i}`;
        const up = out.high.has(k);
        if (!up && !out.low.has(k)) return v;
        this.marks.push({ x: xs[i], up, v });
        return hide ? (up ? above : below) : v;
      }));
    }
    const skip = (c) => (hide ? (i) => out.high.has(`${c}:${i}`) || out.low.has(`${c}:${i}`) : null);
    this.data = [xs, ...this.cols.map((c) => (c.kind === 'smooth'
      ? ema(clean[c.src], this.weight, skip(c.src)) : drawn[c.src]))];
    this.u.setData(this.data, false);
    this.applyRange();
    this.el.classList.toggle('is-empty', this.empty);
    const n = this.marks.length;
    this.el.dataset.outliers = String(n);
    this.el.dataset.outliersShown = String(n > 0 && this.withOutliers);
    this.noteEl.hidden = n === 0;
    this.noteEl.textContent = this.withOutliers
      ? `${n} outlier${n > 1 ? 's' : ''} in scale · leave out`
      : `${n} outlier${n > 1 ? 's' : ''} off scale ▲ · include`;
    this.noteEl.title = this.marks.slice(0, 10).map((m) => fmt(m.v)).join(', ');
  }

  /** Put the outliers into the y-range, or leave them out again. */
  toggleOutliers() {
    this.withOutliers = !this.withOutliers;
    this.setData(this.raw);
  }

  /** Smooth with EMA weight w in [0, 1) (charts built with smooth). */
  setSmoothing(w) {
    if (!this.opts.smooth || w === this.weight) return;
    const was = this.smoothing();
    this.weight = w;
    if (was !== this.smoothing()) this.build();
    this.setData(this.raw);
  }

  /** Show the x-axis as xaxis.js's xAxis() describes. */
  setX(xa) {
    this.x = xa;
    this.build();
    this.setData(this.raw);
  }

  /** Show [from, to], or the data's extent when from is null. */
  setRange(from, to) {
    this.range = from === null || from === undefined ? null : [from, to];
    this.applyRange();
  }

  applyRange() {
    const xs = this.data[0];
    let r = this.range ? this.range.map((s) => this.x.toX(s)) : null;
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

  /** Steps from the x-axis' unit, whole and not below 0. */
  zoomTo(a, b) {
    this.opts.onZoom(Math.max(0, Math.floor(this.x.toStep(a))), Math.ceil(this.x.toStep(b)));
  }

  onSelect(u) {
    const sel = u.select;
    if (sel.width > 4 && this.opts.onZoom) {
      this.dragged = true;
      this.zoomTo(u.posToVal(sel.left, 'x'), u.posToVal(sel.left + sel.width, 'x'));
    }
    if (sel.width > 0) u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  }

  /** A click on an outlier's mark at the edge includes the outliers (or leaves them out). */
  onClick(e) {
    if (this.dragged) {
      this.dragged = false;
      return;
    }
    if (!this.marks.length) return;
    const u = this.u;
    const h = u.over.clientHeight;
    const near = this.marks.some((m) => {
      const x = u.valToPos(m.x, 'x');
      const y = this.withOutliers ? u.valToPos(m.v, 'y') : (m.up ? 0 : h);
      return Math.abs(x - e.offsetX) <= 8 && Math.abs(y - e.offsetY) <= 12;
    });
    if (near) this.toggleOutliers();
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
      this.zoomTo(min + d, max + d);
      return;
    }
    const at = u.posToVal(e.offsetX, 'x');
    const f = e.deltaY < 0 ? 0.7 : 1 / 0.7;
    this.zoomTo(at - (at - min) * f, at + (max - at) * f);
  }

  drawMarkers(u) {
    const m = this.opts.markers ? this.opts.markers() : null;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const px = devicePixelRatio || 1;
    const xOf = (step) => u.valToPos(this.x.toX(step), 'x', true);
    const inside = (x) => x >= left - 1 && x <= left + width + 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    for (const a of m?.alerts || []) {
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
    for (const step of m?.nonfinite || []) {
      const x = xOf(step);
      if (!inside(x)) continue;
      ctx.beginPath();
      ctx.moveTo(x - 4 * px, top);
      ctx.lineTo(x + 4 * px, top);
      ctx.lineTo(x, top + 7 * px);
      ctx.fill();
    }
    // Outliers left out of the y-range: a triangle at the edge they lie beyond.
    if (this.marks.length && !this.withOutliers) {
      ctx.fillStyle = css('--outlier');
      for (const o of this.marks) {
        const x = u.valToPos(o.x, 'x', true);
        if (!inside(x)) continue;
        const y = o.up ? top : top + height;
        const d = o.up ? 8 * px : -8 * px;
        ctx.beginPath();
        ctx.moveTo(x, y);
        ctx.lineTo(x - 5 * px, y + d);
        ctx.lineTo(x + 5 * px, y + d);
        ctx.fill();
      }
    }
    // Clip events (and skipped steps): ticks along the bottom.
    for (const [steps, col] of [[m?.clips, '--clip'], [m?.skips, '--warn']]) {
      ctx.strokeStyle = css(col);
      ctx.lineWidth = px;
      for (const step of steps || []) {
        const x = Math.round(xOf(step)) + 0.5;
        if (!inside(x)) continue;
        ctx.beginPath();
        ctx.moveTo(x, top + height);
        ctx.lineTo(x, top + height - 6 * px);
        ctx.stroke();
      }
    }
    ctx.restore();
  }

  destroy() {
    this.ro.disconnect();
    this.u.destroy();
  }
}

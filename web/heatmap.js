// SPDX-License-Identifier: MIT
// The layers-by-steps heatmap of gradient norms: one row per layer, one
// column per step bucket of GET /heatmap (the daemon downsamples, so the
// page never holds more cells than it draws).  The colour is the log of
// the norm on a fixed perceptual ramp; non-finite cells have their own
// colour, empty cells none.  Drawn into an ImageData, one pixel a cell,
// then scaled onto the canvas: 1,000 layers cost the same as ten.

import { num } from './api.js';
import { css, fmt, RAMP } from './util.js';
import { fmtStep } from './charts.js';

const GUTTER_MIN = 90; // px for the layer names, at least
const GUTTER_MAX = 280;
const AXIS = 18; // px for the step axis

export class Heatmap {
  /** opts: {onZoom(from, to), onReset(), onPick(layer)} */
  constructor(el, opts = {}) {
    this.el = el;
    this.opts = opts;
    this.hm = null;
    this.highlight = null;
    el.classList.add('heatmap');
    el.innerHTML = `<canvas class="hm-canvas"></canvas>
      <div class="hm-tip" hidden></div>
      <div class="hm-legend"><span class="hm-lo"></span><span class="hm-ramp"></span>
      <span class="hm-hi"></span><span class="hm-swatch nf"></span> non-finite
      <span class="hm-swatch none"></span> no value</div>`;
    this.canvas = el.querySelector('canvas');
    this.tip = el.querySelector('.hm-tip');
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(el);
    this.bindMouse();
  }

  /** hm: a GET /heatmap answer. */
  setData(hm) {
    this.hm = hm;
    const vals = hm.values.map((row) => row.map(num));
    let lo = Infinity;
    let hi = -Infinity;
    for (const row of vals) {
      for (const v of row) {
        if (v !== null && Number.isFinite(v) && v > 0) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
    if (lo === Infinity) { lo = 1e-3; hi = 1; }
    if (hi <= lo) hi = lo * 10;
    this.vals = vals;
    this.lo = lo;
    this.hi = hi;
    this.canvas.dataset.rows = String(hm.layers.length);
    this.gutter = this.measureGutter(hm.layers);
    this.canvas.dataset.cols = String(hm.steps.length);
    this.image = this.paint();
    this.bitmap = null;
    if (this.image) {
      this.bitmap = new OffscreenCanvas(this.image.width, this.image.height);
      this.bitmap.getContext('2d').putImageData(this.image, 0, 0);
    }
    this.draw();
  }

  /** Room for the longest layer name, within bounds. */
  measureGutter(names) {
    const ctx = this.canvas.getContext('2d');
    ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, monospace';
    let w = 0;
    for (let i = 0; i < names.length; i += Math.max(1, Math.floor(names.length / 400))) {
      w = Math.max(w, ctx.measureText(names[i]).width);
    }
    return Math.round(Math.min(GUTTER_MAX, Math.max(GUTTER_MIN, w + 14)));
  }

  /** One pixel per cell. */
  paint() {
    const rows = this.vals.length;
    const cols = this.hm.steps.length;
    if (!rows || !cols) return null;
    const img = new ImageData(cols, rows);
    const d = img.data;
    const l0 = Math.log10(this.lo);
    const span = Math.log10(this.hi) - l0 || 1;
    const nf = hexRgb(css('--nonfinite'));
    for (let r = 0; r < rows; r++) {
      const row = this.vals[r];
      for (let c = 0; c < cols; c++) {
        const v = row[c];
        const o = (r * cols + c) * 4;
        if (v === null || v === undefined) continue; // transparent
        if (!Number.isFinite(v)) {
          d[o] = nf[0]; d[o + 1] = nf[1]; d[o + 2] = nf[2]; d[o + 3] = 255;
          continue;
        }
        let t = v > 0 ? (Math.log10(v) - l0) / span : 0;
        t = Math.min(1, Math.max(0, t));
        const k = Math.round(t * 255) * 3;
        d[o] = RAMP[k]; d[o + 1] = RAMP[k + 1]; d[o + 2] = RAMP[k + 2]; d[o + 3] = 255;
      }
    }
    return img;
  }

  /** Geometry in CSS px. */
  layout() {
    const rows = this.hm ? this.hm.layers.length : 0;
    const w = Math.max(300, this.el.clientWidth);
    const rowH = rows ? Math.max(0.5, Math.min(16, 560 / rows)) : 16;
    const plotH = Math.max(16, Math.round(rows * rowH));
    const g = this.gutter || GUTTER_MIN;
    return { w, rowH, plotH, h: plotH + AXIS, x0: g, plotW: w - g - 8 };
  }

  /** The step range the columns cover. */
  extent() {
    const hm = this.hm;
    const n = hm.steps.length;
    const from = hm.from ?? hm.steps[0];
    const to = hm.to ?? (hm.steps[n - 1] + (hm.bucket_size || 1) - 1);
    return [from, Math.max(to, from)];
  }

  draw() {
    if (!this.hm) return;
    const L = this.layout();
    const px = devicePixelRatio || 1;
    const cv = this.canvas;
    cv.style.width = `${L.w}px`;
    cv.style.height = `${L.h}px`;
    cv.width = Math.round(L.w * px);
    cv.height = Math.round(L.h * px);
    const ctx = cv.getContext('2d');
    ctx.setTransform(px, 0, 0, px, 0, 0);
    ctx.clearRect(0, 0, L.w, L.h);
    ctx.fillStyle = css('--hm-empty');
    ctx.fillRect(L.x0, 0, L.plotW, L.plotH);
    const hm = this.hm;
    if (this.bitmap) {
      const [from, to] = this.extent();
      const bs = hm.bucket_size || 1;
      const span = to - from + 1;
      const xa = L.x0 + ((hm.steps[0] - from) / span) * L.plotW;
      const xb = L.x0 + ((hm.steps[hm.steps.length - 1] + bs - from) / span) * L.plotW;
      ctx.save();
      ctx.beginPath();
      ctx.rect(L.x0, 0, L.plotW, L.plotH);
      ctx.clip();
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.bitmap, xa, 0, xb - xa, L.plotH);
      ctx.restore();
    }
    // Layer names, as many as fit.
    ctx.fillStyle = css('--fg-dim');
    ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, monospace';
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    const every = Math.max(1, Math.ceil(12 / L.rowH));
    for (let r = 0; r < hm.layers.length; r += every) {
      ctx.fillText(ellipsize(ctx, hm.layers[r], L.x0 - 10), L.x0 - 6, (r + 0.5) * L.rowH);
    }
    if (this.highlight !== null && this.highlight < hm.layers.length) {
      ctx.strokeStyle = css('--fg');
      ctx.lineWidth = 1;
      ctx.strokeRect(L.x0 + 0.5, this.highlight * L.rowH + 0.5, L.plotW - 1, Math.max(1, L.rowH - 1));
    }
    // Step axis.
    const [from, to] = this.extent();
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    ctx.fillStyle = css('--fg-dim');
    const span = to - from + 1;
    for (const s of niceTicks(from, to, Math.max(2, Math.floor(L.plotW / 110)))) {
      const x = L.x0 + ((s - from) / span) * L.plotW;
      ctx.fillText(fmtStep(s), Math.min(Math.max(x, L.x0 + 14), L.x0 + L.plotW - 14), L.plotH + 4);
    }
    const lg = this.el.querySelector('.hm-legend');
    lg.style.marginLeft = `${L.x0}px`;
    lg.querySelector('.hm-lo').textContent = fmt(this.lo);
    lg.querySelector('.hm-hi').textContent = fmt(this.hi);
  }

  /** The cell under (x, y) in CSS px, or null. */
  cellAt(x, y) {
    if (!this.hm || !this.hm.steps.length) return null;
    const L = this.layout();
    if (x < L.x0 || x > L.x0 + L.plotW || y < 0 || y >= L.plotH) return null;
    const r = Math.floor(y / L.rowH);
    const step = this.stepAt(x);
    const hm = this.hm;
    const bs = hm.bucket_size || 1;
    const c = Math.floor((step - hm.steps[0]) / bs);
    if (r < 0 || r >= hm.layers.length || c < 0 || c >= hm.steps.length) return null;
    return { r, c, layer: hm.layers[r], from: hm.steps[c], to: hm.steps[c] + bs - 1, v: this.vals[r][c] };
  }

  stepAt(x) {
    const L = this.layout();
    const [from, to] = this.extent();
    return from + ((x - L.x0) / L.plotW) * (to - from + 1);
  }

  bindMouse() {
    const cv = this.canvas;
    let down = null;
    const pos = (e) => {
      const b = cv.getBoundingClientRect();
      return [e.clientX - b.left, e.clientY - b.top];
    };
    cv.addEventListener('mousemove', (e) => {
      const [x, y] = pos(e);
      const cell = this.cellAt(x, y);
      if (down) {
        this.drawSelection(down[0], x);
      }
      if (!cell) {
        this.tip.hidden = true;
        return;
      }
      const range = cell.from === cell.to ? `step ${fmtInt(cell.from)}` :
        `steps ${fmtInt(cell.from)}–${fmtInt(cell.to)}`;
      const val = cell.v === null || cell.v === undefined ? 'no value' : fmt(cell.v);
      this.tip.innerHTML = '';
      const b = document.createElement('b');
      b.textContent = cell.layer;
      this.tip.append(b, document.createElement('br'), `${range}: max ${val}`);
      this.tip.hidden = false;
      const L = this.layout();
      this.tip.style.left = `${Math.min(x + 14, L.w - 260)}px`;
      this.tip.style.top = `${y + 14}px`;
    });
    cv.addEventListener('mouseleave', () => {
      this.tip.hidden = true;
    });
    cv.addEventListener('mousedown', (e) => {
      const [x] = pos(e);
      if (x >= this.layout().x0) down = [x];
    });
    window.addEventListener('mouseup', this.onUp = (e) => {
      if (!down) return;
      const [x] = pos(e);
      const a = Math.min(down[0], x);
      const b = Math.max(down[0], x);
      down = null;
      this.draw();
      if (b - a > 4 && this.opts.onZoom) {
        this.opts.onZoom(Math.max(0, Math.floor(this.stepAt(a))), Math.ceil(this.stepAt(b)));
      }
    });
    cv.addEventListener('click', (e) => {
      const [x, y] = pos(e);
      if (this.hm && x < this.layout().x0) {
        const r = Math.floor(y / this.layout().rowH);
        if (r >= 0 && r < this.hm.layers.length && this.opts.onPick) this.opts.onPick(this.hm.layers[r]);
      }
    });
    cv.addEventListener('dblclick', () => this.opts.onReset && this.opts.onReset());
  }

  drawSelection(x0, x1) {
    this.draw();
    const ctx = this.canvas.getContext('2d');
    const L = this.layout();
    ctx.fillStyle = 'rgba(127,127,127,0.25)';
    ctx.fillRect(Math.min(x0, x1), 0, Math.abs(x1 - x0), L.plotH);
  }

  setHighlight(layer) {
    this.highlight = this.hm && layer !== null ? this.hm.layers.indexOf(layer) : null;
    if (this.highlight === -1) this.highlight = null;
    this.draw();
  }

  destroy() {
    this.ro.disconnect();
    window.removeEventListener('mouseup', this.onUp);
  }
}

/** Round step numbers (1, 2 or 5 times a power of ten apart) in [a, b]. */
function niceTicks(a, b, n) {
  const raw = Math.max(1, (b - a) / n);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const out = [];
  for (let s = Math.ceil(a / step) * step; s <= b; s += step) out.push(s);
  return out;
}

function fmtInt(v) {
  return Math.round(v).toLocaleString('en-US');
}

function hexRgb(c) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c.trim());
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 255];
}

function ellipsize(ctx, s, w) {
  if (ctx.measureText(s).width <= w) return s;
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`…${s.slice(s.length - mid)}`).width <= w) lo = mid;
    else hi = mid - 1;
  }
  return `…${s.slice(s.length - lo)}`;
}

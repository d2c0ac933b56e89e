// SPDX-License-Identifier: MIT
// The run page: loss, global gradient norm (log), learning rate and
// clipping charts with alert and non-finite markers, then a chart for each
// other scalar the run sends (rungroups.js); smoothing and the x-axis (step,
// wall or relative time) for all of them; the layers-by-steps heatmap; the
// layer table; the alert banner (banner.js) and timeline.  Everything shown comes
// downsampled from GET /points and /heatmap for the range in view; zooming
// or panning refetches that range.  While the whole run is in view the
// stream's steps are appended at once and the detail is refetched every
// few seconds; alerts and status changes show as they arrive.

import { api, download, num, seriesOf } from './api.js';
import { bannerHtml } from './banner.js';
import { alignSeries, LineChart } from './charts.js';
import { ConfigTable } from './config_table.js';
import { Heatmap } from './heatmap.js';
import { clipEvents } from './clip.js';
import { layersOf, layerTrends } from './layers.js';
import { ChartGroups } from './rungroups.js';
import { smoothText } from './smooth.js';
import { loadXMode, saveXMode, TimeMap, xAxis, XMODES } from './xaxis.js';
import { ago, alertWhere, css, debounce, esc, fmt, fmtInt, median, throttle, when } from './util.js';

const SCALARS = ['loss', 'grad_norm', 'lr', 'clip_pre_norm', 'clip_max_norm'];
const TABLE_ROWS = 200; // rows shown before "show all"
const SMOOTH_KEY = 'gradwatch.smooth';

export class RunView {
  constructor(el, ctx, key, params) {
    this.el = el;
    this.ctx = ctx;
    this.key = key;
    this.run = null;
    this.kinds = new Set();
    this.layers = new Map(); // name -> {name, order, latest, step, depth, numel}
    this.alerts = new Map();
    this.pts = {};
    this.hm = null;
    this.pick = null; // a layer overlaid on the gradient chart
    this.sort = { key: 'order', dir: 1 };
    this.showAll = false;
    const from = params.get('from');
    const to = params.get('to');
    this.range = from !== null && to !== null ? [Number(from), Number(to)] : null;
    this.xmode = loadXMode(params);
    this.smoothing = Math.min(0.99, Math.max(0, Number(localStorage.getItem(SMOOTH_KEY)) || 0));
    this.tmap = new TimeMap([], []);
    this.t0 = null; // the run's first wall time, for the relative axis
    this.series = [];
    this.seq = 0;
    this.dirty = false;
    this.drawCharts = throttle(() => this.renderCharts(), 200);
    this.drawTable = throttle(() => this.renderTable(), 1000);
    this.refetch = throttle(() => this.loadDetail(), 2500);
    this.loadSoon = debounce(() => this.loadDetail(), 120);
    this.seriesSoon = throttle(() => this.reloadSeries(), 10000);
    this.markup();
    this.config = new ConfigTable(this.el.querySelector('.run-page'), ctx, key);
    this.off = ctx.stream.on((m) => this.onMessage(m));
    ctx.stream.setSubscriptions([key]);
    this.clock = setInterval(() => this.renderFacts(), 1000);
    this.load();
  }

  markup() {
    this.el.innerHTML = `
      <section class="page run-page">
        <header class="run-head">
          <div class="crumbs"><a href="#/">Runs</a><span class="sep">/</span>
            <h1 class="run-key">${esc(this.key)}</h1></div>
          <div class="facts"></div>
          <div class="actions">
            <a class="btn" href="#/compare?runs=${encodeURIComponent(this.key)}">Compare…</a>
            <button class="btn export-btn">Export CSV</button>
          </div>
        </header>
        <div class="banner" hidden></div>
        <div class="rangebar">
          <span class="range-text"></span>
          <span class="spacer"></span>
          <label class="viewctl" title="Exponential moving average; the raw line stays faint behind">Smoothing
            <input type="range" class="smooth" min="0" max="0.99" step="0.01" value="${this.smoothing}" aria-label="Smoothing">
            <span class="smooth-val">${smoothText(this.smoothing)}</span></label>
          <label class="viewctl">x-axis <select class="xmode" aria-label="x-axis">${Object.entries(XMODES).map(([k, v]) =>
    `<option value="${k}"${k === this.xmode ? ' selected' : ''}>${v}</option>`).join('')}</select></label>
          <span class="hint" title="drag to zoom · ctrl+wheel zooms · shift+wheel pans · double-click: whole run">drag to zoom · double-click: whole run</span>
          <button class="btn sm pan-left" title="Pan left">◀</button>
          <button class="btn sm zoom-out" title="Zoom out">−</button>
          <button class="btn sm pan-right" title="Pan right">▶</button>
          <button class="btn sm reset" title="Whole run, live">Whole run</button>
        </div>
        <div class="charts">
          <div class="card chart-card" data-chart="loss">
            <div class="card-head"><h2>Loss</h2><span class="spacer"></span>
              <label class="toggle"><input type="checkbox" class="log-loss"> log</label></div>
            <div class="chart"></div></div>
          <div class="card chart-card" data-chart="grad">
            <div class="card-head"><h2>Global gradient norm</h2><span class="tag">log</span>
              <span class="spacer"></span><span class="dim pick-note"></span></div>
            <div class="chart"></div></div>
          <div class="card chart-card" data-chart="lr">
            <div class="card-head"><h2>Learning rate</h2><span class="spacer"></span>
              <label class="toggle"><input type="checkbox" class="log-lr" checked> log</label></div>
            <div class="chart"></div></div>
          <div class="card chart-card" data-chart="clip">
            <div class="card-head"><h2>Clipping</h2><span class="spacer"></span>
              <span class="dim clip-summary"></span></div>
            <div class="chart"></div></div>
        </div>
        <div class="groups"></div>
        <div class="card heat-card">
          <div class="card-head"><h2>Gradient norm per layer</h2>
            <span class="dim hm-note"></span></div>
          <div class="hm"></div>
        </div>
        <div class="two-col">
          <div class="card layers-card">
            <div class="card-head"><h2>Layers</h2><span class="dim layer-count"></span><span class="spacer"></span>
              <input type="search" class="layer-filter" placeholder="Filter layers…" aria-label="Filter layers"></div>
            <div class="table-wrap"><table class="grid layers-table">
              <thead><tr>
                <th data-sort="order" class="num">#</th><th data-sort="name">Layer</th>
                <th data-sort="latest" class="num">Latest norm</th>
                <th data-sort="weight" class="num col-w" title="Latest weight norm">Weight</th>
                <th data-sort="uratio" class="num col-u" title="Latest update norm over the weight norm">Update / weight</th>
                <th data-sort="ratio" class="num" title="Latest norm over the median layer's">× median</th>
                <th data-sort="trend" class="num" title="Recent norm over the norm before it">Trend</th>
              </tr></thead><tbody></tbody></table></div>
            <button class="btn sm show-all" hidden></button>
          </div>
          <div class="card alerts-card">
            <div class="card-head"><h2>Alerts</h2><span class="dim alert-count"></span></div>
            <div class="timeline"></div>
            <ol class="alert-list"></ol>
          </div>
        </div>
      </section>`;
    const q = (s) => this.el.querySelector(s);
    const sync = `gw-run-${Math.random()}`;
    const zoom = { sync, onZoom: (a, b) => this.zoom(a, b), onReset: () => this.zoom(null) };
    const chart = (name, opts) => new LineChart(q(`[data-chart=${name}] .chart`), { ...zoom, ...opts });
    this.zoomOpts = zoom;
    this.charts = {
      loss: chart('loss', { series: [{ label: 'loss', color: css('--s1') }], smooth: true, outliers: true,
        empty: 'No loss reported in this range', markers: () => this.markers('loss') }),
      grad: this.gradChart(q, zoom),
      lr: chart('lr', { series: [{ label: 'lr', color: css('--s3') }], log: true, height: 150,
        empty: 'No learning rate reported', markers: () => this.markers(null) }),
      clip: chart('clip', { series: [{ label: 'clipped %', color: css('--clip') }], height: 150,
        empty: 'No clipping reported', markers: () => this.markers(null) }),
    };
    this.groups = new ChartGroups(q('.groups'), zoom, () => [...this.alerts.values()]);
    for (const c of Object.values(this.charts)) c.setSmoothing(this.smoothing);
    q('.smooth').addEventListener('input', (e) => this.setSmoothing(Number(e.target.value)));
    q('.xmode').addEventListener('change', (e) => this.setXMode(e.target.value));
    this.heat = new Heatmap(q('.hm'), {
      onZoom: (a, b) => this.zoom(a, b),
      onReset: () => this.zoom(null),
      onPick: (name) => this.setPick(name),
    });
    q('.log-loss').addEventListener('change', (e) => this.charts.loss.setLog(e.target.checked));
    q('.log-lr').addEventListener('change', (e) => this.charts.lr.setLog(e.target.checked));
    q('.reset').addEventListener('click', () => this.zoom(null));
    q('.zoom-out').addEventListener('click', () => this.zoomOut());
    q('.pan-left').addEventListener('click', () => this.pan(-0.5));
    q('.pan-right').addEventListener('click', () => this.pan(0.5));
    q('.export-btn').addEventListener('click', () =>
      download(`runs/${encodeURIComponent(this.key)}/export?format=csv`, `${this.key}.csv`).catch((e) => this.ctx.fail(e)));
    q('.layer-filter').addEventListener('input', () => this.renderTable());
    q('.show-all').addEventListener('click', () => { this.showAll = !this.showAll; this.renderTable(); });
    q('.layers-table thead').addEventListener('click', (e) => {
      const th = e.target.closest('th[data-sort]');
      if (!th) return;
      const k = th.dataset.sort;
      this.sort = { key: k, dir: this.sort.key === k ? -this.sort.dir : (k === 'name' || k === 'order' ? 1 : -1) };
      this.renderTable();
    });
    q('.layers-table tbody').addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-layer]');
      if (tr) this.setPick(this.pick === tr.dataset.layer ? null : tr.dataset.layer);
    });
    q('.alert-list').addEventListener('click', (e) => {
      const li = e.target.closest('li[data-id]');
      if (li) this.focusAlert(Number(li.dataset.id));
    });
    q('.timeline').addEventListener('click', (e) => {
      const bar = e.target.closest('[data-id]');
      if (bar) this.focusAlert(Number(bar.dataset.id));
    });
  }

  gradChart(q, zoom) {
    const series = [
      { label: 'grad norm', color: css('--s2') },
      { label: 'clip max', color: css('--clip'), dash: [5, 4], width: 1, smooth: false },
    ];
    if (this.pick) series.push({ label: this.pick, color: css('--s4'), width: 1.2 });
    const c = new LineChart(q('[data-chart=grad] .chart'), {
      ...zoom, series, log: true, smooth: true, outliers: true, empty: 'No gradient norm reported in this range',
      markers: () => this.markers('grad_norm'),
    });
    c.setSmoothing(this.smoothing);
    if (this.xaxis && this.xaxis.mode !== 'step') c.setX(this.xaxis);
    return c;
  }

  /** Every line chart on the page. */
  allCharts() {
    return [...Object.values(this.charts), ...this.groups.list()];
  }

  setSmoothing(w) {
    this.smoothing = w;
    localStorage.setItem(SMOOTH_KEY, String(w));
    this.el.querySelector('.smooth-val').textContent = smoothText(w);
    for (const c of this.allCharts()) c.setSmoothing(w);
  }

  setXMode(m) {
    this.xmode = m;
    if (m === 'step') this.tmap = new TimeMap([], []); // fetched again for a time axis
    saveXMode(m);
    this.writeHash();
    this.applyX();
    if (m !== 'step' && this.tmap.empty) this.loadDetail(); // the times come with the points
  }

  /** Give the charts the x-axis of the mode, once the run's times are known. */
  applyX() {
    const xa = xAxis(this.xmode, this.tmap, this.t0 ?? 0);
    const note = this.el.querySelector('.xmode');
    note.title = this.xmode !== 'step' && xa.mode === 'step' ? 'this run sends no wall times: by step' : '';
    if (this.xaxis && this.xaxis.mode === xa.mode && xa.mode === 'step') return;
    this.xaxis = xa;
    for (const c of this.allCharts()) {
      c.setX(xa);
      c.setRange(...(this.range || [null, null]));
    }
  }

  writeHash() {
    const p = new URLSearchParams();
    if (this.range) {
      p.set('from', this.range[0]);
      p.set('to', this.range[1]);
    }
    if (this.xmode !== 'step') p.set('x', this.xmode);
    const qs = p.toString();
    history.replaceState(null, '', `#/run/${encodeURIComponent(this.key)}${qs ? `?${qs}` : ''}`);
  }

  // ---- data ---------------------------------------------------------------

  async load() {
    try {
      const [run, alerts] = await Promise.all([
        api(`runs/${encodeURIComponent(this.key)}`),
        api('alerts', { run: this.key }),
      ]);
      this.setRun(run);
      this.applySeries(run);
      if (this.kinds.has('time') && this.t0 === null) {
        const t = await api(`runs/${encodeURIComponent(this.key)}/points`, { series: 'time', max: 2 });
        const v = seriesOf(t, 'time').values.filter(Number.isFinite);
        if (v.length) this.t0 = Math.min(...v);
      }
      this.alerts.clear();
      for (const a of alerts.alerts) this.alerts.set(a.id, a);
      this.renderAlerts();
      await this.loadDetail();
    } catch (e) {
      if (e.status === 404) {
        this.el.querySelector('.facts').innerHTML = '<span class="dim">No such run (yet): it appears as soon as it sends a step.</span>';
        return;
      }
      this.ctx.fail(e);
    }
  }

  /** Take the run's series list: the scalar kinds, the layers and their columns, the chart groups. */
  applySeries(run) {
    this.series = run.series;
    this.kinds = new Set(run.series.map((s) => s.kind)); // scalar series are named by kind
    const t = layersOf(run.series, this.layers);
    this.layers = t.layers;
    this.hasW = t.hasW;
    this.hasU = t.hasU;
    this.groups.setSeries(run.series, this.pick, { smoothing: this.smoothing, x: this.xaxis || xAxis('step') });
  }

  /** The series list again (a metric may appear later): at most every 10 s while steps come. */
  async reloadSeries() {
    if (!this.run) return;
    try {
      const run = await api(`runs/${encodeURIComponent(this.key)}`);
      const sig = this.groups.sig;
      const kinds = [...this.kinds].join();
      this.applySeries(run);
      this.renderTable();
      if (sig !== this.groups.sig || kinds !== [...this.kinds].join()) this.loadDetail();
    } catch (e) {
      this.ctx.fail(e);
    }
  }

  async loadDetail() {
    if (!this.run) return;
    const seq = ++this.seq;
    const [from, to] = this.range || [undefined, undefined];
    const width = this.el.querySelector('.charts').clientWidth || 1200;
    const max = Math.max(400, Math.min(4000, Math.round(width * 1.5)));
    const names = SCALARS.filter((n) => this.kinds.has(n));
    if (this.pick) names.push(`layer_grad:${this.pick}`);
    if (this.kinds.has('time') && this.xmode !== 'step') names.push('time'); // only for a time axis
    names.push(...this.groups.names());
    const nl = Math.max(1, this.layers.size);
    const buckets = Math.max(50, Math.min(Math.round(width - 180), Math.floor(400000 / nl)));
    const k = encodeURIComponent(this.key);
    try {
      const [pts, hm] = await Promise.all([
        names.length ? api(`runs/${k}/points`, { series: names.join(','), from, to, max }) : { series: {} },
        this.layers.size ? api(`runs/${k}/heatmap`, { from, to, buckets }) : null,
      ]);
      if (seq !== this.seq) return; // a newer range was asked for meanwhile
      this.pts = {};
      for (const n of SCALARS) this.pts[n] = seriesOf(pts, n);
      this.pts.pick = this.pick ? seriesOf(pts, `layer_grad:${this.pick}`) : null;
      this.downsampled = Object.values(pts.series).some((s) => s.downsampled);
      const time = seriesOf(pts, 'time');
      if (time.steps.length) {
        const was = this.tmap.empty;
        this.tmap = new TimeMap(time.steps, time.values);
        if (this.xmode !== 'step') {
          if (was || !this.xaxis || this.xaxis.mode === 'step') this.applyX();
          else this.xaxis = xAxis(this.xmode, this.tmap, this.t0 ?? 0);
          for (const c of this.allCharts()) c.x = this.xaxis;
        }
      }
      this.groups.render(pts);
      this.hm = hm;
      if (hm) {
        this.heat.setData(hm);
        this.heat.setHighlight(this.pick);
        this.computeTrends();
      }
      this.renderCharts();
      this.renderTable();
      this.renderRange();
    } catch (e) {
      if (seq === this.seq) this.ctx.fail(e);
    }
  }

  setRun(run) {
    this.run = { ...this.run, ...run };
    this.renderFacts();
  }

  // ---- live ---------------------------------------------------------------

  onMessage(m) {
    if (m.type === 'open' || m.type === 'resync') {
      this.load();
      return;
    }
    if (m.type === 'run' && m.run.run === this.key) {
      const fresh = !this.run;
      this.setRun(m.run);
      if (fresh) this.load();
      return;
    }
    if (m.type === 'alert' && m.alert.run === this.key) {
      this.alerts.set(m.alert.id, m.alert);
      this.renderAlerts();
      this.drawCharts();
      return;
    }
    if (m.type === 'step' && m.run === this.key) this.onStep(m);
  }

  onStep(m) {
    if (!this.run) {
      this.load();
      return;
    }
    if (this.run.last_step === null || m.step > this.run.last_step) this.run.last_step = m.step;
    this.run.last_seen = Date.now() / 1000;
    this.renderFacts();
    let newLayer = false;
    for (const [name, v] of Object.entries(m.layers || {})) {
      let l = this.layers.get(name);
      if (!l) {
        l = { name, order: this.layers.size, latest: null, step: null, depth: null, numel: null, trend: null };
        this.layers.set(name, l);
        newLayer = true;
      }
      if (l.step === null || m.step >= l.step) {
        l.latest = num(v);
        l.step = m.step;
      }
    }
    if (newLayer) this.renderTable();
    else this.drawTable();
    const add = { loss: m.loss, grad_norm: m.grad_norm, lr: m.lr,
      clip_pre_norm: m.clip?.pre_norm, clip_max_norm: m.clip?.max_norm };
    for (const [n, v] of Object.entries(add)) {
      if (v !== undefined && v !== null) this.kinds.add(n);
    }
    if (this.range) return; // looking at the past: the view stays put
    for (const [n, v] of Object.entries(add)) {
      if (v === undefined || v === null) continue;
      const s = this.pts[n] || (this.pts[n] = { steps: [], values: [] });
      const last = s.steps.length ? s.steps[s.steps.length - 1] : -1;
      if (m.step > last) {
        s.steps.push(m.step);
        s.values.push(num(v));
      }
    }
    this.drawCharts();
    this.refetch();
    this.seriesSoon();
  }

  // ---- range --------------------------------------------------------------

  extent() {
    const r = this.run || {};
    return [r.first_step ?? 0, Math.max(r.last_step ?? 0, r.first_step ?? 0)];
  }

  zoom(from, to) {
    if (from === null || from === undefined) {
      this.range = null;
    } else {
      const [lo, hi] = this.extent();
      from = Math.max(lo, Math.min(from, hi));
      to = Math.min(hi, Math.max(to, from));
      if (to - from < 4) {
        const c = (from + to) / 2;
        from = Math.max(lo, Math.floor(c - 2));
        to = Math.min(hi, Math.ceil(c + 2));
      }
      this.range = from <= lo && to >= hi ? null : [from, to];
    }
    this.writeHash();
    for (const c of this.allCharts()) c.setRange(...(this.range || [null, null]));
    this.renderRange();
    this.loadSoon();
  }

  zoomOut() {
    const [lo, hi] = this.extent();
    if (!this.range) return;
    const [a, b] = this.range;
    const span = b - a;
    this.zoom(Math.max(lo, Math.floor(a - span / 2)), Math.min(hi, Math.ceil(b + span / 2)));
  }

  pan(f) {
    if (!this.range) return;
    const [lo, hi] = this.extent();
    const [a, b] = this.range;
    const span = b - a;
    let d = Math.round(span * f);
    if (a + d < lo) d = lo - a;
    if (b + d > hi) d = hi - b;
    this.zoom(a + d, b + d);
  }

  focusAlert(id) {
    const a = this.alerts.get(id);
    if (!a) return;
    const [lo, hi] = this.extent();
    const start = a.onset_step ?? a.fire_step;
    const end = a.resolve_step ?? Math.min(hi, a.fire_step + Math.max(50, a.fire_step - start));
    const pad = Math.max(20, Math.round((end - start) * 0.5));
    this.zoom(Math.max(lo, start - pad), Math.min(hi, end + pad));
  }

  setPick(name) {
    this.pick = name;
    this.charts.grad.destroy();
    this.charts.grad = this.gradChart((s) => this.el.querySelector(s),
      { sync: this.charts.loss.opts.sync, onZoom: (a, b) => this.zoom(a, b), onReset: () => this.zoom(null) });
    this.charts.grad.setRange(...(this.range || [null, null]));
    this.el.querySelector('.pick-note').textContent = name ? `with ${name} (click it again to remove)` : '';
    this.heat.setHighlight(name);
    this.groups.setSeries(this.series, name, { smoothing: this.smoothing, x: this.xaxis || xAxis('step') });
    this.renderTable();
    this.loadDetail();
  }

  // ---- rendering ----------------------------------------------------------

  markers(name) {
    const nonfinite = [];
    const s = name ? this.pts[name] : null;
    if (s) {
      for (let i = 0; i < s.steps.length; i++) {
        const v = s.values[i];
        if (v !== null && !Number.isFinite(v)) nonfinite.push(s.steps[i]);
      }
    }
    return {
      alerts: [...this.alerts.values()],
      nonfinite,
      clips: name === 'grad_norm' ? this.clipEvents().steps : [],
    };
  }

  clipEvents() {
    return clipEvents(this.pts.clip_pre_norm || { steps: [], values: [] }, this.pts.clip_max_norm || { steps: [], values: [] });
  }

  renderCharts() {
    const p = this.pts;
    const e = { steps: [], values: [] };
    const set = (name, list) => {
      const data = alignSeries(list);
      this.charts[name].setData(data);
      const card = this.el.querySelector(`[data-chart=${name}]`);
      const xs = data[0];
      card.dataset.points = String(xs.length);
      card.dataset.last = xs.length ? String(xs[xs.length - 1]) : '';
      return xs.length;
    };
    set('loss', [p.loss || e]);
    const grad = [p.grad_norm || e, p.clip_max_norm || e];
    if (this.pick) grad.push(p.pick || e);
    set('grad', grad);
    set('lr', [p.lr || e]);
    const clip = this.clipEvents();
    set('clip', [{ steps: clip.xs, values: clip.rate }]);
    const note = this.el.querySelector('.clip-summary');
    note.textContent = clip.total
      ? `${clip.steps.length} of ${fmtInt(clip.total)} points clipped (rolling rate)`
      : 'no clipping reported';
    for (const n of ['lr', 'clip']) {
      const has = n === 'lr' ? (p.lr?.steps.length ?? 0) > 0 : clip.total > 0;
      this.el.querySelector(`[data-chart=${n}]`).classList.toggle('muted', !has);
    }
    for (const c of this.groups.list()) c.redraw();
    for (const c of this.allCharts()) c.setRange(...(this.range || [null, null]));
  }

  renderFacts() {
    const r = this.run;
    if (!r) return;
    const cfg = r.config && typeof r.config === 'object'
      ? Object.entries(r.config).slice(0, 8).map(([k, v]) => `${esc(k)}=${esc(typeof v === 'object' ? JSON.stringify(v) : v)}`).join(' ')
      : '';
    this.el.querySelector('.facts').innerHTML = `
      ${r.project ? `<span class="fact"><span class="dim">project</span> ${esc(r.project)}</span>` : ''}
      <span class="badge st-${esc(r.status)}">${esc(r.status)}</span>
      <span class="badge h-${esc(r.health)}">${esc(r.health)}</span>
      <span class="fact"><span class="dim">step</span> <b class="last-step">${fmtInt(r.last_step)}</b></span>
      <span class="fact"><span class="dim">seen</span> ${ago(r.last_seen)}</span>
      <span class="fact"><span class="dim">points</span> ${fmtInt(r.points)}</span>
      ${r.dropped ? `<span class="fact warn-text"><span class="dim">dropped</span> ${fmtInt(r.dropped)}</span>` : ''}
      ${cfg ? `<span class="fact cfg dim" title="${esc(JSON.stringify(r.config))}">${cfg}</span>` : ''}`;
    this.el.querySelector('.run-page').dataset.lastStep = String(r.last_step ?? '');
  }

  renderRange() {
    const [lo, hi] = this.extent();
    const t = this.el.querySelector('.range-text');
    const ds = this.downsampled ? ' · downsampled' : '';
    if (this.range) {
      t.innerHTML = `Steps <b>${fmtInt(this.range[0])}–${fmtInt(this.range[1])}</b> of ${fmtInt(lo)}–${fmtInt(hi)}${ds} · <span class="dim">paused</span>`;
    } else {
      t.innerHTML = `All steps <b>${fmtInt(lo)}–${fmtInt(hi)}</b>${ds} · <span class="live-text">live</span>`;
    }
    const hm = this.hm;
    this.el.querySelector('.hm-note').textContent = hm
      ? `${hm.layers.length} layers × ${hm.steps.length} buckets of ${fmtInt(hm.bucket_size || 1)} step${hm.bucket_size > 1 ? 's' : ''} · log colour, max per bucket`
      : 'no per-layer gradients reported';
  }

  computeTrends() {
    layerTrends(this.hm, this.layers);
  }

  renderTable() {
    const list = [...this.layers.values()];
    const med = median(list.map((l) => l.latest).filter((v) => v !== null && Number.isFinite(v) && v > 0));
    for (const l of list) l.ratio = l.latest !== null && Number.isFinite(l.latest) && med > 0 ? l.latest / med : null;
    const text = (this.el.querySelector('.layer-filter').value || '').trim().toLowerCase();
    let rows = text ? list.filter((l) => l.name.toLowerCase().includes(text)) : list;
    const { key, dir } = this.sort;
    const val = (l) => {
      const v = l[key];
      if (key === 'name') return v;
      if (v === null || v === undefined) return -Infinity;
      return Number.isNaN(v) ? Infinity : v; // non-finite first when descending
    };
    rows = rows.slice().sort((a, b) => {
      const x = val(a);
      const y = val(b);
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    const shown = this.showAll ? rows : rows.slice(0, TABLE_ROWS);
    const table = this.el.querySelector('.layers-table');
    table.classList.toggle('has-w', !!this.hasW);
    table.classList.toggle('has-u', !!this.hasU);
    const tbody = table.querySelector('tbody');
    tbody.innerHTML = shown.map((l) => {
      const nf = l.latest !== null && !Number.isFinite(l.latest);
      const ratio = l.ratio === null ? '–' : fmt(l.ratio);
      const far = l.ratio !== null && (l.ratio > 10 || l.ratio < 0.1);
      let trend = '<span class="dim">–</span>';
      if (l.trend !== null && l.trend !== undefined) {
        const up = l.trend > 1.5;
        const down = l.trend < 1 / 1.5;
        trend = `<span class="${up ? 'up' : down ? 'down' : 'dim'}">${up ? '↗' : down ? '↘' : '→'} ×${fmt(l.trend)}</span>`;
      }
      return `<tr data-layer="${esc(l.name)}" class="${nf ? 'nonfinite' : ''} ${this.pick === l.name ? 'picked' : ''}">
        <td class="num dim">${l.order + 1}</td>
        <td class="mono name" title="${esc(l.name)}${l.numel ? ` · ${fmtInt(l.numel)} parameters` : ''}">${esc(l.name)}</td>
        <td class="num">${fmt(l.latest)}</td>
        <td class="num col-w">${fmt(l.weight ?? null)}</td>
        <td class="num col-u">${fmt(l.uratio ?? null)}</td>
        <td class="num ${far ? 'warn-text' : ''}">${ratio}</td>
        <td class="num">${trend}</td></tr>`;
    }).join('');
    for (const th of this.el.querySelectorAll('.layers-table th[data-sort]')) {
      th.classList.toggle('sorted', th.dataset.sort === key);
      th.dataset.dir = th.dataset.sort === key ? (dir > 0 ? 'asc' : 'desc') : '';
    }
    this.el.querySelector('.layer-count').textContent = `${list.length} · median latest ${fmt(med)}`;
    const more = this.el.querySelector('.show-all');
    more.hidden = rows.length <= TABLE_ROWS;
    more.textContent = this.showAll ? `Show the first ${TABLE_ROWS}` : `Show all ${rows.length}`;
  }

  renderAlerts() {
    const list = [...this.alerts.values()].sort((a, b) =>
      (a.state === b.state ? 0 : a.state === 'firing' ? -1 : 1) || b.fire_step - a.fire_step);
    const firing = list.filter((a) => a.state === 'firing');
    const [lo, hi] = this.extent();
    const span = Math.max(1, hi - lo);
    const pos = (s) => `${(100 * (Math.min(Math.max(s, lo), hi) - lo)) / span}%`;
    this.el.querySelector('.alert-count').textContent =
      list.length ? `${firing.length} firing · ${list.length - firing.length} resolved` : 'none';
    this.el.querySelector('.timeline').innerHTML = list.length ? list.slice(0, 40).map((a) => {
      const end = a.resolve_step ?? hi;
      const left = pos(a.onset_step ?? a.fire_step);
      const w = `max(3px, calc(${pos(end)} - ${left}))`;
      return `<div class="lane" title="${esc(a.kind)}${a.series ? ` · ${esc(a.series)}` : ''}">
        <span class="bar sev-${esc(a.severity)} ${a.state}" data-id="${a.id}" style="left:${left};width:${w}"></span>
        <span class="fire-tick" style="left:${pos(a.fire_step)}"></span></div>`;
    }).join('') : '';
    this.el.querySelector('.alert-list').innerHTML = list.map((a) => `
      <li data-id="${a.id}" data-kind="${esc(a.kind)}" data-state="${esc(a.state)}" class="sev-${esc(a.severity)} ${esc(a.state)}">
        <div class="a-head"><span class="dot"></span><b>${esc(a.kind)}</b>
          <span class="dim">${alertWhere(a)}</span>
          <span class="spacer"></span>
          <span class="badge ${a.state === 'firing' ? 'h-' + esc(a.severity) : 'st-finished'}">${a.state === 'firing' ? esc(a.severity) : 'resolved'}</span></div>
        <div class="a-msg">${esc(a.message)}</div>
        <div class="a-steps dim">fired at step ${fmtInt(a.fire_step)}${a.onset_step !== null && a.onset_step !== a.fire_step ? ` (onset ${fmtInt(a.onset_step)})` : ''}
          · ${when(a.fired_at)}${a.state === 'resolved' ? ` · resolved at step ${fmtInt(a.resolve_step)}` : ''}</div>
      </li>`).join('') || '<li class="none dim">No alerts for this run.</li>';
    const banner = this.el.querySelector('.banner');
    banner.hidden = firing.length === 0;
    const worst = firing.some((a) => a.severity === 'critical') ? 'critical' : 'warning';
    banner.className = `banner sev-${worst}`;
    banner.hidden = firing.length === 0;
    banner.innerHTML = bannerHtml(firing);
  }

  destroy() {
    this.off();
    this.config.destroy();
    clearInterval(this.clock);
    for (const f of [this.drawCharts, this.drawTable, this.refetch, this.loadSoon, this.seriesSoon]) f.cancel();
    for (const c of Object.values(this.charts)) c.destroy();
    this.groups.destroy();
    this.heat.destroy();
    this.seq++;
  }
}

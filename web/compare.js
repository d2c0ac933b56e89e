// SPDX-License-Identifier: MIT
// The compare view: several runs overlaid by step, one colour per run, on
// every chart they share (loss, gradient norm, learning rate, metrics,
// weight norms, ...: compare_series.js), each with the runs' alert
// onsets and fires and their non-finite values marked, and listed per run
// under the chart; above them the config keys that differ
// (compare_diff.js).  The runs are chosen from a list and kept in the URL
// (#/compare?runs=a,b); the view follows their streams and refetches
// (downsampled, for the range in view) when they move.

import { api, seriesOf } from './api.js';
import { alignSeries, LineChart } from './charts.js';
import { renderDiff } from './compare_diff.js';
import { nonfiniteSteps, sharedSeries } from './compare_series.js';
import { debounce, esc, fmtInt, PALETTE, throttle } from './util.js';

const MAX_RUNS = PALETTE.length;
const MARKS_SHOWN = 5; // non-finite steps listed per run and chart

export class CompareView {
  constructor(el, ctx, params) {
    this.el = el;
    this.ctx = ctx;
    this.keys = (params.get('runs') || '').split(',').map((s) => s.trim()).filter(Boolean).slice(0, MAX_RUNS);
    this.range = null;
    this.all = [];
    this.details = []; // GET /runs/{run} per key (null when it failed)
    this.alerts = []; // alerts per key
    this.shared = [];
    this.charts = {};
    this.seq = 0;
    this.setupSeq = 0;
    this.refetch = throttle(() => this.loadData(), 2500);
    this.loadSoon = debounce(() => this.loadData(), 120);
    el.innerHTML = `
      <section class="page compare-page">
        <div class="toolbar"><h1>Compare runs</h1><span class="dim cmp-note"></span><span class="spacer"></span>
          <button class="btn sm reset">Whole runs</button></div>
        <div class="compare-grid">
          <aside class="card pick">
            <div class="card-head"><h2>Runs</h2><span class="spacer"></span>
              <input type="search" class="f-text" placeholder="Filter…" aria-label="Filter runs"></div>
            <ul class="pick-list"></ul>
          </aside>
          <div class="compare-main">
            <div class="card diff-card">
              <div class="card-head"><h2>Config differences</h2><span class="dim diff-note"></span></div>
              <div class="table-wrap"><table class="grid diff-table"><thead></thead><tbody></tbody></table></div>
              <p class="empty dim" hidden>The configs are the same.</p>
            </div>
            <div class="compare-charts"></div>
            <p class="dim more-note" hidden></p>
          </div>
        </div>
      </section>`;
    this.el.querySelector('.f-text').addEventListener('input', () => this.renderPick());
    this.el.querySelector('.reset').addEventListener('click', () => this.zoom(null));
    this.el.querySelector('.compare-charts').addEventListener('change', (e) => {
      const card = e.target.closest('[data-chart]');
      if (card && e.target.matches('.log-toggle')) this.charts[card.dataset.chart]?.setLog(e.target.checked);
    });
    this.el.querySelector('.pick-list').addEventListener('change', (e) => {
      const key = e.target.closest('li')?.dataset.run;
      if (!key) return;
      if (e.target.checked && this.keys.length < MAX_RUNS) this.keys.push(key);
      else this.keys = this.keys.filter((k) => k !== key);
      history.replaceState(null, '', `#/compare?runs=${this.keys.map(encodeURIComponent).join(',')}`);
      this.setup();
    });
    this.off = ctx.stream.on((m) => {
      if (m.type === 'open' || m.type === 'resync') this.loadRuns();
      else if (m.type === 'step' && this.keys.includes(m.run) && !this.range) this.refetch();
      else if (m.type === 'alert' && this.keys.includes(m.alert.run)) this.addAlert(m.alert);
    });
    this.loadRuns();
  }

  async loadRuns() {
    try {
      this.all = (await api('runs')).runs;
      this.renderPick();
      this.setup();
    } catch (e) {
      this.ctx.fail(e);
    }
  }

  renderPick() {
    const text = (this.el.querySelector('.f-text').value || '').toLowerCase();
    const list = this.all.filter((r) => !text || r.run.toLowerCase().includes(text) || this.keys.includes(r.run));
    this.el.querySelector('.pick-list').innerHTML = list.map((r) => {
      const i = this.keys.indexOf(r.run);
      return `<li data-run="${esc(r.run)}"><label>
        <input type="checkbox" ${i >= 0 ? 'checked' : ''} ${i < 0 && this.keys.length >= MAX_RUNS ? 'disabled' : ''}>
        <span class="swatch" style="background:${i >= 0 ? PALETTE[i] : 'transparent'}"></span>
        <span class="mono">${esc(r.run)}</span><span class="spacer"></span>
        <span class="dim">${fmtInt(r.last_step)}</span></label></li>`;
    }).join('');
  }

  /** The runs' whole configs, series lists and alerts; then the diff and the charts. */
  async setup() {
    const seq = ++this.setupSeq;
    this.ctx.stream.setSubscriptions(this.keys);
    this.renderPick();
    this.el.querySelector('.cmp-note').textContent = this.keys.length
      ? `${this.keys.length} run${this.keys.length > 1 ? 's' : ''} by step` : 'pick runs on the left';
    const one = (k) => Promise.all([
      api(`runs/${encodeURIComponent(k)}`).catch(() => null),
      api('alerts', { run: k }).then((a) => a.alerts).catch(() => []),
    ]);
    const got = await Promise.all(this.keys.map(one));
    if (seq !== this.setupSeq) return;
    this.details = got.map((g) => g[0]);
    this.alerts = got.map((g) => g[1]);
    renderDiff(this.el.querySelector('.diff-card'), this.keys, this.details);
    this.buildCharts();
    this.loadData();
  }

  buildCharts() {
    for (const c of Object.values(this.charts)) c.destroy();
    this.charts = {};
    const { charts, more } = sharedSeries(this.details);
    this.shared = charts.map((s, i) => ({ ...s, card: s.kind === 'loss' ? 'loss' : s.kind === 'grad_norm' ? 'grad' : `s${i}` }));
    const box = this.el.querySelector('.compare-charts');
    box.innerHTML = this.shared.map((s) => `
      <div class="card chart-card" data-chart="${s.card}" data-series="${esc(s.id)}">
        <div class="card-head"><h2>${esc(s.title)}</h2><span class="dim mono">${s.kind === 'metric' ? 'metric' : ''}</span>
          <span class="spacer"></span>
          <label class="toggle"><input type="checkbox" class="log-toggle" ${s.log ? 'checked' : ''}> log</label></div>
        <div class="chart"></div><div class="marks"></div></div>`).join('');
    const more_ = this.el.querySelector('.more-note');
    more_.hidden = more === 0;
    more_.textContent = `${more} more shared series not drawn`;
    const sync = `gw-cmp-${Math.random()}`;
    const z = { sync, onZoom: (a, b) => this.zoom(a, b), onReset: () => this.zoom(null) };
    const series = this.keys.map((k, i) => ({ label: k, color: PALETTE[i] }));
    for (const s of this.shared) {
      const el = box.querySelector(`[data-chart="${s.card}"] .chart`);
      this.charts[s.card] = new LineChart(el, { ...z, series, height: s.kind === 'loss' || s.kind === 'grad_norm' ? 260 : 180,
        log: s.log, markers: () => this.markers(s) });
    }
  }

  /** Every run's alerts (onset dashed, fire solid) and the non-finite steps of s. */
  markers(s) {
    return {
      alerts: this.alerts.flat(),
      nonfinite: (s.pts || []).flatMap((p) => nonfiniteSteps(p)),
    };
  }

  addAlert(a) {
    const i = this.keys.indexOf(a.run);
    if (i < 0) return;
    this.alerts[i] = [...(this.alerts[i] || []).filter((x) => x.id !== a.id), a];
    for (const s of this.shared) this.renderMarks(s);
    for (const c of Object.values(this.charts)) c.redraw();
  }

  /** Under a chart, per run: its non-finite steps there and the onsets of its alerts about it. */
  renderMarks(s) {
    const el = this.el.querySelector(`[data-chart="${s.card}"] .marks`);
    if (!el) return;
    el.innerHTML = this.keys.map((k, i) => {
      const nf = nonfiniteSteps(s.pts?.[i]);
      const al = (this.alerts[i] || []).filter((a) => a.series === s.name || (s.kind === 'loss' && !a.series));
      if (!nf.length && !al.length) return '';
      const steps = nf.slice(0, MARKS_SHOWN).map(fmtInt).join(', ') + (nf.length > MARKS_SHOWN ? ` and ${nf.length - MARKS_SHOWN} more` : '');
      const onsets = al.map((a) => `<span class="chip sev-${esc(a.severity)}" title="${esc(a.message)}">${esc(a.kind)} from ${fmtInt(a.onset_step)}</span>`).join(' ');
      return `<span class="mark" data-run="${esc(k)}" data-nonfinite="${nf.length}" data-alerts="${al.length}">
        <span class="swatch" style="background:${PALETTE[i]}"></span><span class="mono">${esc(k)}</span>
        ${nf.length ? `<span class="nonfinite-text">non-finite at ${steps}</span>` : ''} ${onsets}</span>`;
    }).join('');
  }

  async loadData() {
    const seq = ++this.seq;
    const [from, to] = this.range || [undefined, undefined];
    const max = Math.max(400, Math.min(3000, this.el.clientWidth));
    const shared = this.shared;
    try {
      const answers = await Promise.all(this.keys.map((k, i) => {
        const ids = shared.filter((s) => s.runs.includes(i)).map((s) => s.id);
        if (!ids.length) return null;
        return api(`runs/${encodeURIComponent(k)}/points`, { series: ids.join(','), from, to, max }).catch(() => null);
      }));
      if (seq !== this.seq || shared !== this.shared) return;
      for (const s of shared) {
        s.pts = answers.map((a) => seriesOf(a, s.id));
        const data = alignSeries(s.pts);
        const chart = this.charts[s.card];
        chart.setData(data);
        chart.setRange(...(this.range || [null, null]));
        this.el.querySelector(`[data-chart="${s.card}"]`).dataset.points = String(data[0].length);
        this.renderMarks(s);
      }
    } catch (e) {
      if (seq === this.seq) this.ctx.fail(e);
    }
  }

  zoom(from, to) {
    this.range = from === null || from === undefined ? null : [from, to];
    for (const c of Object.values(this.charts)) c.setRange(...(this.range || [null, null]));
    this.loadSoon();
  }

  destroy() {
    this.off();
    this.refetch.cancel();
    this.loadSoon.cancel();
    for (const c of Object.values(this.charts)) c.destroy();
    this.seq++;
    this.setupSeq++;
  }
}

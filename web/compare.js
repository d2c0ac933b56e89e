// SPDX-License-Identifier: MIT
// The compare view: several runs overlaid by step, loss and global gradient
// norm (log), one colour per run.  The runs are chosen from a list and kept
// in the URL (#/compare?runs=a,b); the view follows their streams and
// refetches (downsampled, for the range in view) when they move.

import { api, seriesOf } from './api.js';
import { alignSeries, LineChart } from './charts.js';
import { debounce, esc, fmtInt, PALETTE, throttle } from './util.js';

const MAX_RUNS = PALETTE.length;

export class CompareView {
  constructor(el, ctx, params) {
    this.el = el;
    this.ctx = ctx;
    this.keys = (params.get('runs') || '').split(',').map((s) => s.trim()).filter(Boolean).slice(0, MAX_RUNS);
    this.range = null;
    this.all = [];
    this.seq = 0;
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
          <div class="compare-charts">
            <div class="card chart-card" data-chart="loss"><div class="card-head"><h2>Loss</h2><span class="spacer"></span>
              <label class="toggle"><input type="checkbox" class="log-loss"> log</label></div><div class="chart"></div></div>
            <div class="card chart-card" data-chart="grad"><div class="card-head"><h2>Global gradient norm</h2>
              <span class="tag">log</span></div><div class="chart"></div></div>
          </div>
        </div>
      </section>`;
    this.el.querySelector('.f-text').addEventListener('input', () => this.renderPick());
    this.el.querySelector('.reset').addEventListener('click', () => this.zoom(null));
    this.el.querySelector('.log-loss').addEventListener('change', (e) => this.charts.loss.setLog(e.target.checked));
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

  setup() {
    if (this.charts) for (const c of Object.values(this.charts)) c.destroy();
    const sync = `gw-cmp-${Math.random()}`;
    const z = { sync, onZoom: (a, b) => this.zoom(a, b), onReset: () => this.zoom(null) };
    const series = this.keys.map((k, i) => ({ label: k, color: PALETTE[i] }));
    const q = (s) => this.el.querySelector(s);
    this.charts = {
      loss: new LineChart(q('[data-chart=loss] .chart'), { ...z, series, height: 260, log: q('.log-loss').checked }),
      grad: new LineChart(q('[data-chart=grad] .chart'), { ...z, series, height: 260, log: true }),
    };
    this.ctx.stream.setSubscriptions(this.keys);
    this.renderPick();
    this.el.querySelector('.cmp-note').textContent = this.keys.length
      ? `${this.keys.length} run${this.keys.length > 1 ? 's' : ''} by step` : 'pick runs on the left';
    this.loadData();
  }

  async loadData() {
    const seq = ++this.seq;
    const [from, to] = this.range || [undefined, undefined];
    const max = Math.max(400, Math.min(3000, this.el.clientWidth));
    try {
      const answers = await Promise.all(this.keys.map((k) =>
        api(`runs/${encodeURIComponent(k)}/points`, { series: 'loss,grad_norm', from, to, max }).catch(() => null)));
      if (seq !== this.seq) return;
      for (const [name, field] of [['loss', 'loss'], ['grad', 'grad_norm']]) {
        const data = alignSeries(answers.map((a) => seriesOf(a, field)));
        this.charts[name].setData(data);
        this.charts[name].setRange(...(this.range || [null, null]));
        const card = this.el.querySelector(`[data-chart=${name}]`);
        card.dataset.points = String(data[0].length);
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
    for (const c of Object.values(this.charts || {})) c.destroy();
    this.seq++;
  }
}

// SPDX-License-Identifier: MIT
// The runs page: every run with its status, health, last step, last seen
// and firing alerts, filtered by project, status and name, kept live by
// the stream (subscribed to "*"): run messages replace a row, step
// messages move its last step, alert messages change its alerts.

import { api } from './api.js';
import { ago, esc, fmtInt, throttle } from './util.js';

export class RunsView {
  constructor(el, ctx) {
    this.el = el;
    this.ctx = ctx;
    this.runs = new Map(); // key -> run
    this.firing = new Map(); // key -> Map(alert id -> alert)
    this.selected = new Set();
    this.filter = { project: '', status: '', text: '' };
    this.render = throttle(() => this.renderRows(), 250);
    this.reload = throttle(() => this.load(), 1000);
    el.innerHTML = `
      <section class="page runs-page">
        <div class="toolbar">
          <h1>Runs</h1>
          <input type="search" class="f-text" placeholder="Filter runs…" aria-label="Filter runs">
          <select class="f-project" aria-label="Project"><option value="">All projects</option></select>
          <select class="f-status" aria-label="Status">
            <option value="">Any status</option><option>running</option><option>stalled</option>
            <option>finished</option><option>failed</option>
          </select>
          <span class="spacer"></span>
          <span class="summary"></span>
          <button class="btn compare-btn" disabled>Compare selected</button>
        </div>
        <div class="table-wrap">
          <table class="grid runs-table">
            <thead><tr>
              <th class="sel"></th><th>Run</th><th>Project</th><th>Status</th><th>Health</th>
              <th class="num">Last step</th><th>Last seen</th><th class="num">Points</th><th>Firing alerts</th>
            </tr></thead>
            <tbody></tbody>
          </table>
          <p class="empty" hidden>No runs yet. Point a training loop at this daemon
            (<code>POST /api/v1/ingest</code>) and it appears here at once.</p>
        </div>
      </section>`;
    this.tbody = el.querySelector('tbody');
    el.querySelector('.f-text').addEventListener('input', (e) => { this.filter.text = e.target.value; this.render(); });
    el.querySelector('.f-project').addEventListener('change', (e) => { this.filter.project = e.target.value; this.render(); });
    el.querySelector('.f-status').addEventListener('change', (e) => { this.filter.status = e.target.value; this.render(); });
    el.querySelector('.compare-btn').addEventListener('click', () => {
      location.hash = `#/compare?runs=${[...this.selected].map(encodeURIComponent).join(',')}`;
    });
    this.tbody.addEventListener('change', (e) => {
      if (!e.target.matches('input[type=checkbox]')) return;
      const key = e.target.closest('tr').dataset.run;
      if (e.target.checked) this.selected.add(key);
      else this.selected.delete(key);
      this.updateCompare();
    });
    this.off = ctx.stream.on((m) => this.onMessage(m));
    ctx.stream.setSubscriptions(['*']);
    this.clock = setInterval(() => this.tickAges(), 1000);
    this.load();
  }

  async load() {
    try {
      const [runs, alerts] = await Promise.all([api('runs'), api('alerts', { state: 'firing' })]);
      this.runs.clear();
      for (const r of runs.runs) this.runs.set(r.run, r);
      this.firing.clear();
      for (const a of alerts.alerts) this.addAlert(a);
      this.renderProjects();
      this.renderRows();
    } catch (e) {
      this.ctx.fail(e);
    }
  }

  addAlert(a) {
    if (!this.firing.has(a.run)) this.firing.set(a.run, new Map());
    const m = this.firing.get(a.run);
    if (a.state === 'firing') m.set(a.id, a);
    else m.delete(a.id);
  }

  onMessage(m) {
    switch (m.type) {
      case 'open':
      case 'resync':
        this.load();
        break;
      case 'run': {
        const old = this.runs.get(m.run.run);
        this.runs.set(m.run.run, { ...old, ...m.run });
        if (!old) this.renderProjects();
        this.render();
        break;
      }
      case 'step': {
        const r = this.runs.get(m.run);
        if (!r) {
          this.reload(); // a run we have not seen yet
          break;
        }
        if (r.last_step === null || m.step > r.last_step) r.last_step = m.step;
        r.last_seen = Date.now() / 1000;
        this.render();
        break;
      }
      case 'alert':
        this.addAlert(m.alert);
        this.render();
        break;
      default:
        break;
    }
  }

  renderProjects() {
    const sel = this.el.querySelector('.f-project');
    const have = new Set([...sel.options].map((o) => o.value));
    const projects = [...new Set([...this.runs.values()].map((r) => r.project).filter(Boolean))].sort();
    for (const p of projects) {
      if (!have.has(p)) sel.add(new Option(p, p));
    }
  }

  visible() {
    const f = this.filter;
    const text = f.text.trim().toLowerCase();
    return [...this.runs.values()]
      .filter((r) => (!f.project || r.project === f.project) && (!f.status || r.status === f.status) &&
        (!text || r.run.toLowerCase().includes(text) || (r.project || '').toLowerCase().includes(text)))
      .sort((a, b) => (b.last_seen || 0) - (a.last_seen || 0));
  }

  renderRows() {
    const rows = this.visible();
    const now = Date.now() / 1000;
    const html = rows.map((r) => {
      const alerts = [...(this.firing.get(r.run)?.values() || [])];
      const chips = alerts.map((a) => `<span class="chip sev-${esc(a.severity)}" title="${esc(a.message)}">${esc(a.kind)}${a.series ? ` · ${esc(a.tensors && a.tensors.length > 1 ? `${a.tensors.length} tensors` : a.series)}` : ''}</span>`).join('');
      return `<tr data-run="${esc(r.run)}">
        <td class="sel"><input type="checkbox" aria-label="Select ${esc(r.run)}" ${this.selected.has(r.run) ? 'checked' : ''}></td>
        <td class="run"><a href="#/run/${encodeURIComponent(r.run)}">${esc(r.run)}</a></td>
        <td class="dim">${esc(r.project || '–')}</td>
        <td><span class="badge st-${esc(r.status)}">${esc(r.status)}</span></td>
        <td><span class="badge h-${esc(r.health)}">${esc(r.health)}</span></td>
        <td class="num last-step">${fmtInt(r.last_step)}</td>
        <td class="ago" data-t="${r.last_seen ?? ''}">${ago(r.last_seen, now)}</td>
        <td class="num dim">${fmtInt(r.points)}</td>
        <td class="alerts">${chips || '<span class="dim">–</span>'}</td>
      </tr>`;
    }).join('');
    this.tbody.innerHTML = html;
    this.el.querySelector('.empty').hidden = this.runs.size !== 0;
    const firing = [...this.firing.values()].reduce((n, m) => n + m.size, 0);
    this.el.querySelector('.summary').textContent =
      `${rows.length} of ${this.runs.size} runs · ${firing} alert${firing === 1 ? '' : 's'} firing`;
    this.updateCompare();
  }

  tickAges() {
    const now = Date.now() / 1000;
    for (const td of this.tbody.querySelectorAll('td.ago')) {
      if (td.dataset.t) td.textContent = ago(Number(td.dataset.t), now);
    }
  }

  updateCompare() {
    const b = this.el.querySelector('.compare-btn');
    b.disabled = this.selected.size < 2;
    b.textContent = this.selected.size ? `Compare ${this.selected.size} selected` : 'Compare selected';
  }

  destroy() {
    this.off();
    this.render.cancel();
    this.reload.cancel();
    clearInterval(this.clock);
  }
}

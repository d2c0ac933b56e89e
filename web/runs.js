// SPDX-License-Identifier: MIT
// The runs page: every run with its status, health, last step, last seen,
// duration, steps a second, firing alerts, tags and note, and the config
// keys the user chose as columns (runs_columns.js); filtered by project,
// status and text, grouped by project or a config key, kept live by the
// stream (subscribed to "*"): run messages replace a row, step messages
// move its last step, alert messages change its alerts.  Tags and notes
// are edited in a dialog (runs_meta.js).

import { api } from './api.js';
import { configValue, flattenConfig } from './config_flat.js';
import { RunsChoices } from './runs_columns.js';
import { MetaEditor } from './runs_meta.js';
import { ago, esc, fmt, fmtInt, throttle } from './util.js';

const KEYS_OFFERED = 300; // config keys offered for columns and grouping

/** Seconds as "45 s", "12 min", "3 h 05 min", "2 d 4 h". */
export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s) || s < 0) return '–';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  const h = Math.floor(s / 3600);
  if (h < 48) return `${h} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** A run's seconds from its first to its latest request, and its steps a second over them. */
export function pace(r) {
  const secs = r.last_seen != null && r.started_at != null ? r.last_seen - r.started_at : null;
  const steps = r.last_step != null && r.first_step != null ? r.last_step - r.first_step : null;
  return { secs, rate: secs > 0 && steps > 0 ? steps / secs : null };
}

export class RunsView {
  constructor(el, ctx) {
    this.el = el;
    this.ctx = ctx;
    this.runs = new Map(); // key -> run
    this.firing = new Map(); // key -> Map(alert id -> alert)
    this.selected = new Set();
    this.full = new Map(); // key -> whole config, for runs listed with a cut one
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
        <div class="toolbar choices-bar"></div>
        <div class="table-wrap">
          <table class="grid runs-table">
            <thead></thead>
            <tbody></tbody>
          </table>
          <p class="empty" hidden>No runs yet. Point a training loop at this daemon
            (<code>POST /api/v1/ingest</code>) and it appears here at once.</p>
        </div>
      </section>`;
    this.tbody = el.querySelector('tbody');
    this.choices = new RunsChoices(el.querySelector('.choices-bar'), () => this.renderRows());
    this.editor = new MetaEditor(el.querySelector('.runs-page'), ctx, (run) => {
      this.runs.set(run.run, { ...this.runs.get(run.run), ...run });
      this.renderRows();
    });
    el.querySelector('thead').addEventListener('click', (e) => {
      const b = e.target.closest('.col-remove');
      if (b) this.choices.removeColumn(b.closest('th').dataset.key);
    });
    this.tbody.addEventListener('click', (e) => {
      const b = e.target.closest('.edit-meta');
      const r = b && this.runs.get(b.closest('tr').dataset.run);
      if (r) this.editor.open(r);
    });
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
      this.renderKeys();
      this.renderRows();
    } catch (e) {
      this.ctx.fail(e);
    }
  }

  /** The config keys of the listed runs, offered as columns and groupings. */
  renderKeys() {
    const keys = new Set();
    for (const r of this.runs.values()) {
      for (const [k] of flattenConfig(this.full.get(r.run) || r.config)) {
        if (keys.size < KEYS_OFFERED) keys.add(k);
      }
    }
    this.choices.setKeys([...keys].sort());
  }

  /** Config key's value of r; a run listed with a cut config is fetched whole once. */
  configOf(r, key) {
    const v = configValue(this.full.get(r.run) || r.config, key);
    if (v === undefined && r.config_partial && !this.full.has(r.run)) {
      this.full.set(r.run, r.config); // once, even if it fails
      api(`runs/${encodeURIComponent(r.run)}`).then((whole) => {
        this.full.set(r.run, whole.config);
        this.render();
      }).catch((e) => this.ctx.fail(e));
    }
    return v;
  }

  /** The group of r: its project, or its value of a config key. */
  groupOf(r) {
    const g = this.choices.group;
    if (g === 'project') return r.project || '(no project)';
    if (g.startsWith('cfg:')) {
      const v = this.configOf(r, g.slice(4));
      return v === undefined ? '(not set)' : v;
    }
    return null;
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
        this.full.delete(m.run.run); // the message's config is whole
        if (!old) {
          this.renderProjects();
          this.renderKeys();
        }
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
        (!text || [r.run, r.project || '', r.note || '', ...(r.tags || [])].some((s) => s.toLowerCase().includes(text))))
      .sort((a, b) => (b.last_seen || 0) - (a.last_seen || 0));
  }

  renderHead() {
    const cols = this.choices.columns;
    this.el.querySelector('thead').innerHTML = `<tr>
      <th class="sel"></th><th>Run</th><th>Project</th><th>Status</th><th>Health</th>
      <th class="num">Last step</th><th>Last seen</th><th class="num">Duration</th><th class="num">Steps/s</th>
      <th class="num">Points</th><th>Firing alerts</th>
      ${cols.map((k) => `<th class="cfg-col" data-key="${esc(k)}"><span class="mono">${esc(k)}</span>
        <button class="col-remove" type="button" title="Remove this column" aria-label="Remove column ${esc(k)}">×</button></th>`).join('')}
      <th>Tags</th><th>Note</th></tr>`;
    return 13 + cols.length;
  }

  rowHtml(r, now) {
    const alerts = [...(this.firing.get(r.run)?.values() || [])];
    const chips = alerts.map((a) => `<span class="chip sev-${esc(a.severity)}" title="${esc(a.message)}">${esc(a.kind)}${a.series ? ` · ${esc(a.tensors && a.tensors.length > 1 ? `${a.tensors.length} tensors` : a.series)}` : ''}</span>`).join('');
    const { secs, rate } = pace(r);
    const cfg = this.choices.columns.map((k) => {
      const v = this.configOf(r, k);
      return `<td class="mono cfg-val" data-key="${esc(k)}">${v === undefined ? '<span class="dim">–</span>' : esc(v)}</td>`;
    }).join('');
    const tags = (r.tags || []).map((t) => `<span class="tag-chip">${esc(t)}</span>`).join('');
    return `<tr data-run="${esc(r.run)}">
        <td class="sel"><input type="checkbox" aria-label="Select ${esc(r.run)}" ${this.selected.has(r.run) ? 'checked' : ''}></td>
        <td class="run"><a href="#/run/${encodeURIComponent(r.run)}">${esc(r.run)}</a></td>
        <td class="dim">${esc(r.project || '–')}</td>
        <td><span class="badge st-${esc(r.status)}">${esc(r.status)}</span></td>
        <td><span class="badge h-${esc(r.health)}">${esc(r.health)}</span></td>
        <td class="num last-step">${fmtInt(r.last_step)}</td>
        <td class="ago" data-t="${r.last_seen ?? ''}">${ago(r.last_seen, now)}</td>
        <td class="num duration">${fmtDuration(secs)}</td>
        <td class="num rate">${rate === null ? '–' : fmt(rate)}</td>
        <td class="num dim">${fmtInt(r.points)}</td>
        <td class="alerts">${chips || '<span class="dim">–</span>'}</td>
        ${cfg}
        <td class="tags">${tags}</td>
        <td class="note-cell"><div class="note-wrap"><span class="note" title="${esc(r.note || '')}">${esc(r.note || '')}</span>
          <button class="btn sm edit-meta" type="button" title="Edit tags and note" aria-label="Edit tags and note of ${esc(r.run)}">✎</button></div></td>
      </tr>`;
  }

  renderRows() {
    const rows = this.visible();
    const now = Date.now() / 1000;
    const ncol = this.renderHead();
    let html;
    if (this.choices.group) {
      const groups = new Map();
      for (const r of rows) {
        const g = this.groupOf(r);
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push(r);
      }
      html = [...groups.keys()].sort().map((g) => {
        const rs = groups.get(g);
        return `<tr class="group-row" data-group="${esc(g)}"><td colspan="${ncol}"><b>${esc(g)}</b>
          <span class="dim">· ${rs.length} run${rs.length === 1 ? '' : 's'}</span></td></tr>${rs.map((r) => this.rowHtml(r, now)).join('')}`;
      }).join('');
    } else {
      html = rows.map((r) => this.rowHtml(r, now)).join('');
    }
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

// SPDX-License-Identifier: MIT
// The run page's config card: the run's whole config (GET
// /api/v1/runs/{run}, never the runs list's cut one) as a table of dotted
// keys and their values, long values wrapped, with a filter box that
// matches keys and values.  A stream `run` message for the run (which
// carries its whole config) refreshes it.

import { api } from './api.js';
import { flattenConfig } from './config_flat.js';
import { esc } from './util.js';

export class ConfigTable {
  /** Appends the card to parent; key is the run's. */
  constructor(parent, ctx, key) {
    this.ctx = ctx;
    this.key = key;
    this.rows = [];
    this.card = document.createElement('div');
    this.card.className = 'card config-card';
    this.card.innerHTML = `
      <div class="card-head"><h2>Config</h2><span class="dim config-count"></span><span class="spacer"></span>
        <input type="search" class="config-filter" placeholder="Filter keys and values…" aria-label="Filter config"></div>
      <div class="table-wrap"><table class="grid config-table">
        <thead><tr><th>Key</th><th>Value</th></tr></thead><tbody></tbody></table></div>
      <p class="empty dim" hidden>This run sent no config (<code>meta.config</code>).</p>`;
    parent.appendChild(this.card);
    this.card.querySelector('.config-filter').addEventListener('input', () => this.render());
    this.off = ctx.stream.on((m) => {
      if (m.type === 'run' && m.run.run === key && m.run.config !== undefined) this.set(m.run.config);
    });
    this.load();
  }

  async load() {
    try {
      const run = await api(`runs/${encodeURIComponent(this.key)}`);
      this.set(run.config);
    } catch (e) {
      if (e.status !== 404) this.ctx.fail(e);
    }
  }

  set(config) {
    this.rows = flattenConfig(config);
    this.render();
  }

  render() {
    const text = this.card.querySelector('.config-filter').value.trim().toLowerCase();
    const rows = this.rows.filter(([k, v]) => !text || k.toLowerCase().includes(text) || v.toLowerCase().includes(text));
    this.card.querySelector('tbody').innerHTML = rows.map(([k, v]) =>
      `<tr data-key="${esc(k)}"><td class="mono k">${esc(k)}</td><td class="mono v">${esc(v)}</td></tr>`).join('');
    this.card.querySelector('.config-count').textContent = text
      ? `${rows.length} of ${this.rows.length} keys` : `${this.rows.length} key${this.rows.length === 1 ? '' : 's'}`;
    this.card.querySelector('.empty').hidden = this.rows.length !== 0;
  }

  destroy() {
    this.off();
  }
}

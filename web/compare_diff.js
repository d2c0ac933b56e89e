// SPDX-License-Identifier: MIT
// The compare page's config diff: the config keys (dotted, as the run
// page shows them) whose values are not the same in every run compared,
// one column a run in its colour, a missing key as a dash.  Reads the
// whole configs (GET /api/v1/runs/{run}), never the runs list's cut ones.

import { diffConfigs, flattenConfig } from './config_flat.js';
import { esc, PALETTE } from './util.js';

/** Fill card (a .diff-card) for keys and their runs' answers (null: not loaded). */
export function renderDiff(card, keys, runs) {
  const configs = runs.map((r) => r?.config ?? null);
  const rows = runs.length > 1 ? diffConfigs(configs) : [];
  const total = new Set(configs.flatMap((c) => flattenConfig(c).map(([k]) => k))).size;
  card.querySelector('.diff-note').textContent = runs.length < 2 ? 'pick two runs or more'
    : `${rows.length} of ${total} key${total === 1 ? '' : 's'} differ`;
  card.querySelector('thead').innerHTML = `<tr><th>Key</th>${keys.map((k, i) =>
    `<th><span class="swatch" style="background:${PALETTE[i]}"></span> ${esc(k)}</th>`).join('')}</tr>`;
  card.querySelector('tbody').innerHTML = rows.map((r) => `<tr data-key="${esc(r.key)}">
    <td class="mono k">${esc(r.key)}</td>${r.values.map((v) =>
      `<td class="mono v">${v === undefined ? '<span class="dim">–</span>' : esc(v)}</td>`).join('')}</tr>`).join('');
  card.querySelector('.empty').hidden = !(runs.length > 1 && rows.length === 0);
}

// SPDX-License-Identifier: MIT
// The run page's banner of firing alerts: one entry per kind of trouble,
// however many alerts of that kind fire (a pattern alert already names
// all its tensors; two alerts of one kind, e.g. on two tensors, are merged
// here), each with its tensors listed.  Pure HTML from alerts.

import { esc, fmtInt } from './util.js';

const SEV = { info: 0, warning: 1, critical: 2 };
const SHOWN = 4; // entries before "and N more"
const NAMES = 3; // tensors named in an entry before "and N more"

/** Firing alerts grouped by kind: [{kind, severity, alerts, tensors, count}], worst first. */
export function groupAlerts(firing) {
  const by = new Map();
  for (const a of firing) {
    let g = by.get(a.kind);
    if (!g) {
      g = { kind: a.kind, severity: a.severity, alerts: [], tensors: [], seen: new Set(), extra: 0 };
      by.set(a.kind, g);
    }
    g.alerts.push(a);
    if ((SEV[a.severity] ?? 0) > (SEV[g.severity] ?? 0)) g.severity = a.severity;
    const names = Array.isArray(a.tensors) && a.tensors.length ? a.tensors : (a.series ? [a.series] : []);
    for (const t of names) {
      if (!g.seen.has(t)) {
        g.seen.add(t);
        g.tensors.push(t);
      }
    }
    // A pattern lists up to 50 tensors; its detail counts them all.
    const d = typeof a.detail === 'string' ? safeParse(a.detail) : a.detail;
    const total = Number(d?.tensor_count);
    if (Number.isFinite(total) && total > names.length) g.extra += total - names.length;
  }
  const list = [...by.values()].map((g) => ({
    kind: g.kind, severity: g.severity, alerts: g.alerts, tensors: g.tensors,
    count: g.tensors.length + g.extra,
  }));
  list.sort((a, b) => (SEV[b.severity] ?? 0) - (SEV[a.severity] ?? 0) ||
    Math.max(...b.alerts.map((x) => x.fire_step)) - Math.max(...a.alerts.map((x) => x.fire_step)));
  return list;
}

function safeParse(s) {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

/** The banner's HTML for the firing alerts ('' when none). */
export function bannerHtml(firing) {
  const groups = groupAlerts(firing);
  const items = groups.slice(0, SHOWN).map((g) => {
    const latest = g.alerts.reduce((x, y) => (y.fire_step > x.fire_step ? y : x));
    let where = '';
    if (g.count > 0) {
      const named = g.tensors.slice(0, NAMES).map((t) => esc(t)).join(', ');
      const more = g.count - Math.min(NAMES, g.tensors.length);
      where = ` on <span class="tensors" title="${esc(g.tensors.join(', '))}">${named}</span>` +
        (more > 0 ? ` and ${fmtInt(more)} more tensor${more > 1 ? 's' : ''}` : '');
    }
    const n = g.alerts.length > 1 ? ` <span class="dim">(${g.alerts.length} alerts)</span>` : '';
    return `<span class="b-item sev-${esc(g.severity)}" data-kind="${esc(g.kind)}" data-tensors="${g.count}">` +
      `<b>${esc(g.kind)}</b>${where}${n}: ${esc(latest.message)}</span>`;
  });
  if (groups.length > SHOWN) items.push(`<span>and ${groups.length - SHOWN} more kinds</span>`);
  return items.join('');
}

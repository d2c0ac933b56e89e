// SPDX-License-Identifier: MIT
// Small helpers shared by the dashboard's views: number and time formats,
// HTML escaping, throttling, the theme's colours and the heatmap's scale.

/** Escape s for HTML text and attribute values. */
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

/** A number for people: 4 significant digits, exponents when far from 1. */
/**
 * Where an alert is, as HTML: its series, or for a pattern (an alert that
 * lists its `tensors`) the first tensor and how many more, all of them in
 * the title.  '' for a run-level alert.
 */
export function alertWhere(a) {
  const t = Array.isArray(a.tensors) ? a.tensors : [];
  if (t.length > 1) {
    return `<span class="mono" title="${esc(t.join(', '))}">${esc(t[0])}</span> and ${t.length - 1} more tensor${t.length > 2 ? 's' : ''}`;
  }
  return a.series ? `<span class="mono">${esc(a.series)}</span>` : '';
}

export function fmt(v) {
  if (v === null || v === undefined) return '–';
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '−Inf';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** An integer with thin grouping: 1 234 567. */
export function fmtInt(v) {
  if (v === null || v === undefined) return '–';
  return Math.round(v).toLocaleString('en-US').replace(/,/g, '\u2009');
}

/** "12 s ago", "5 min ago", "3 h ago", else the date. */
export function ago(t, now = Date.now() / 1000) {
  if (t === null || t === undefined) return '–';
  const d = Math.max(0, now - t);
  if (d < 2) return 'now';
  if (d < 90) return `${Math.round(d)} s ago`;
  if (d < 5400) return `${Math.round(d / 60)} min ago`;
  if (d < 129600) return `${Math.round(d / 3600)} h ago`;
  return new Date(t * 1000).toISOString().slice(0, 16).replace('T', ' ');
}

/** A wall time as "YYYY-MM-DD HH:MM:SS" (local). */
export function when(t) {
  if (t === null || t === undefined) return '–';
  const d = new Date(t * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** fn at most once every ms, trailing call kept. */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  const wrapped = () => {
    const wait = last + ms - Date.now();
    if (wait > 0) {
      if (!timer) timer = setTimeout(() => { timer = null; wrapped(); }, wait);
      return;
    }
    last = Date.now();
    fn();
  };
  wrapped.cancel = () => { clearTimeout(timer); timer = null; };
  return wrapped;
}

/** fn once things have been quiet for ms. */
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** The value of a CSS custom property of the document, e.g. css('--fg'). */
export function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Colours for alert severities (from the stylesheet). */
export function severityColor(sev) {
  return css(sev === 'critical' ? '--crit' : sev === 'warning' ? '--warn' : '--info');
}

/** Distinct line colours for overlaid runs. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2',
  '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#8cd17d'];

// Viridis, sampled at nine points (perceptually uniform, colour-blind safe).
const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142],
  [33, 144, 141], [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];

/** 256 RGB triples of the heatmap's ramp, low to high. */
export const RAMP = (() => {
  const out = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (VIRIDIS.length - 1);
    const k = Math.min(Math.floor(t), VIRIDIS.length - 2);
    const f = t - k;
    for (let c = 0; c < 3; c++) {
      out[i * 3 + c] = Math.round(VIRIDIS[k][c] * (1 - f) + VIRIDIS[k + 1][c] * f);
    }
  }
  return out;
})();

/** The ramp as a CSS gradient, for legends. */
export function rampGradient() {
  const stops = [];
  for (let i = 0; i <= 8; i++) {
    const k = Math.round((i / 8) * 255) * 3;
    stops.push(`rgb(${RAMP[k]},${RAMP[k + 1]},${RAMP[k + 2]}) ${i * 12.5}%`);
  }
  return `linear-gradient(to right, ${stops.join(',')})`;
}

/** Median of the finite numbers in a (NaN if none). */
export function median(a) {
  const v = a.filter(Number.isFinite).sort((x, y) => x - y);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Parse "#/path?x=1" into {parts: ['path'], params: URLSearchParams}. */
export function parseHash(hash) {
  const h = (hash || '#/').replace(/^#\/?/, '');
  const [path, query] = h.split('?');
  return {
    parts: path.split('/').filter(Boolean).map(decodeURIComponent),
    params: new URLSearchParams(query || ''),
  };
}

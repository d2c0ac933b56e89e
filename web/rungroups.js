// SPDX-License-Identifier: MIT
// The run page's charts beyond the training four, grouped by what they
// show: a chart per custom metric; weight norms and the update-to-weight
// ratio of a few tensors; the optimizer's state (Adam's ratio); the
// mixed-precision loss scale with its skipped steps.  A group appears when
// the run has its series.  The view asks names() what to fetch with its
// other series and hands render() the /points answer.

import { num, seriesOf } from './api.js';
import { alignSeries, LineChart } from './charts.js';
import { css, esc, fmtInt, PALETTE } from './util.js';

const TOP = 6; // tensors overlaid on a tensor chart

/** The `top` names of list with the largest key(name), finite first. */
function largest(names, key, top) {
  const k = (n) => {
    const v = key(n);
    return v === null || v === undefined || Number.isNaN(v) ? -Infinity : v;
  };
  return names.slice().sort((a, b) => k(b) - k(a)).slice(0, top);
}

/** Each update point over the weight norm at its step (or the latest before it). */
export function updateRatio(upd, w) {
  const steps = [];
  const values = [];
  let j = 0;
  let cur = null;
  for (let i = 0; i < upd.steps.length; i++) {
    while (j < w.steps.length && w.steps[j] <= upd.steps[i]) cur = w.values[j++];
    const u = upd.values[i];
    if (u === null || cur === null) continue;
    steps.push(upd.steps[i]);
    values.push(Number.isFinite(u) && Number.isFinite(cur) && cur > 0 ? u / cur : (Number.isNaN(cur) ? NaN : u / cur));
  }
  return { steps, values };
}

export class ChartGroups {
  /**
   * el: the container; zoom: {sync, onZoom, onReset} for every chart;
   * alerts(): the run's alerts, for the markers.
   */
  constructor(el, zoom, alerts) {
    this.el = el;
    this.zoom = zoom;
    this.alerts = alerts;
    this.specs = [];
    this.charts = new Map(); // spec.id -> LineChart
    this.sig = '';
    this.data = new Map(); // spec.id -> [{steps, values}] as last drawn
    this.skips = [];
    this.chosen = new Map(); // spec id -> {total, names}: kept while the tensors stay the same
  }

  /** The tensors a chart overlays: chosen once, again only when the run's tensors change. */
  choose(id, all, key) {
    const prev = this.chosen.get(id);
    if (prev && prev.total === all.length) return prev.names;
    const names = largest(all, key, TOP);
    this.chosen.set(id, { total: all.length, names });
    return names;
  }

  /**
   * Decide the charts from the run's series (GET /runs/{run}), with the
   * picked layer added to the tensor charts; rebuilds only on a change.
   */
  setSeries(series, pick, opts) {
    const by = (kind) => series.filter((s) => s.kind === kind);
    const last = new Map(series.map((s) => [`${s.kind}:${s.name}`, num(s.last_value)]));
    const specs = [];
    for (const s of by('metric').sort((a, b) => a.name.localeCompare(b.name))) {
      specs.push({ id: `metric:${s.name}`, group: 'metrics', title: s.name, smooth: true,
        lines: [{ label: s.name, fetch: `metric:${s.name}` }] });
    }
    const tensors = (kind) => by(kind).map((s) => s.name);
    const withPick = (names, all) => (pick && all.includes(pick) && !names.includes(pick) ? [...names, pick] : names);
    const wt = tensors('layer_weight');
    if (wt.length) {
      const names = withPick(this.choose('weights', wt, (n) => last.get(`layer_weight:${n}`)), wt);
      specs.push({ id: 'weights', group: 'weights', title: 'Weight norm', smooth: true, log: true, total: wt.length,
        lines: names.map((n) => ({ label: n, fetch: `layer_weight:${n}` })) });
    }
    const up = tensors('layer_update').filter((n) => wt.includes(n));
    if (up.length) {
      const ratio = (n) => last.get(`layer_update:${n}`) / last.get(`layer_weight:${n}`);
      const names = withPick(this.choose('update-ratio', up, ratio), up);
      specs.push({ id: 'update-ratio', group: 'weights', title: 'Update / weight norm', smooth: true, log: true,
        total: up.length, lines: names.map((n) => ({ label: n, fetch: `layer_update:${n}`, over: `layer_weight:${n}` })) });
    }
    const ad = tensors('layer_adam_ratio');
    if (ad.length) {
      const names = withPick(this.choose('adam-ratio', ad, (n) => last.get(`layer_adam_ratio:${n}`)), ad);
      specs.push({ id: 'adam-ratio', group: 'optimizer', title: 'Adam ratio ‖g‖² / Σv', smooth: true, log: true,
        total: ad.length, lines: names.map((n) => ({ label: n, fetch: `layer_adam_ratio:${n}` })) });
    }
    if (by('loss_scale').length) {
      specs.push({ id: 'loss-scale', group: 'scale', title: 'Loss scale', log: true, skips: by('skipped').length > 0,
        lines: [{ label: 'loss scale', fetch: 'loss_scale' }] });
    }
    const sig = JSON.stringify(specs);
    if (sig === this.sig) return;
    this.sig = sig;
    this.specs = specs;
    this.build(opts);
  }

  build(opts) {
    for (const c of this.charts.values()) c.destroy();
    this.charts.clear();
    const groups = [['metrics', 'Metrics'], ['weights', 'Weight norms'], ['optimizer', 'Optimizer state'],
      ['scale', 'Loss scale']];
    this.el.innerHTML = groups.map(([g, title]) => {
      const specs = this.specs.filter((s) => s.group === g);
      if (!specs.length) return '';
      return `<section class="chart-group" data-group="${g}"><h3>${title}</h3><div class="charts">${specs.map((s, i) => `
        <div class="card chart-card" data-chart="${esc(s.id)}" data-i="${i}"><div class="card-head"><h2>${esc(s.title)}</h2>
          ${s.log ? '<span class="tag">log</span>' : ''}<span class="spacer"></span>
          <span class="dim">${s.total > s.lines.length ? `${s.lines.length} of ${fmtInt(s.total)} tensors (largest latest; pick a layer to add it)` : ''}</span></div>
          <div class="chart"></div></div>`).join('')}</div></section>`;
    }).join('');
    for (const s of this.specs) {
      const card = [...this.el.querySelectorAll('.chart-card')].find((c) => c.dataset.chart === s.id);
      const many = s.lines.length > 1;
      const chart = new LineChart(card.querySelector('.chart'), {
        ...this.zoom,
        height: 170,
        log: !!s.log,
        smooth: !!s.smooth,
        outliers: s.id !== 'loss-scale',
        empty: 'Nothing reported in this range',
        series: s.lines.map((l, i) => ({ label: l.label, color: many ? PALETTE[i % PALETTE.length] : css('--s3'),
          width: many ? 1.2 : 1.5 })),
        markers: () => this.markers(s),
      });
      chart.card = card;
      this.charts.set(s.id, chart);
      if (opts) {
        chart.setSmoothing(opts.smoothing);
        if (opts.x.mode !== 'step') chart.setX(opts.x);
      }
    }
  }

  /** The series to fetch with GET /points, as ?series= names. */
  names() {
    const out = [];
    for (const s of this.specs) {
      for (const l of s.lines) {
        out.push(l.fetch);
        if (l.over) out.push(l.over);
      }
      if (s.skips) out.push('skipped');
    }
    return [...new Set(out)];
  }

  /** Draw the /points answer. */
  render(pts) {
    const sk = seriesOf(pts, 'skipped');
    this.skips = sk.steps.filter((_, i) => sk.values[i] > 0);
    for (const s of this.specs) {
      const list = s.lines.map((l) => (l.over ? updateRatio(seriesOf(pts, l.fetch), seriesOf(pts, l.over))
        : seriesOf(pts, l.fetch)));
      this.data.set(s.id, list);
      const data = alignSeries(list);
      const chart = this.charts.get(s.id);
      chart.setData(data);
      chart.card.dataset.points = String(data[0].length);
      chart.card.dataset.last = data[0].length ? String(data[0][data[0].length - 1]) : '';
    }
  }

  markers(spec) {
    const nonfinite = [];
    for (const s of this.data.get(spec.id) || []) {
      for (let i = 0; i < s.steps.length; i++) {
        const v = s.values[i];
        if (v !== null && !Number.isFinite(v)) nonfinite.push(s.steps[i]);
      }
    }
    return { alerts: this.alerts(), nonfinite, skips: spec.skips ? this.skips : [] };
  }

  list() {
    return [...this.charts.values()];
  }

  destroy() {
    for (const c of this.charts.values()) c.destroy();
    this.charts.clear();
  }
}

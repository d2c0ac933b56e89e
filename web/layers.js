// SPDX-License-Identifier: MIT
// The layer table's rows: each tensor with its latest gradient norm, its
// weight norm and update-to-weight ratio where the run sends them (from
// GET /runs/{run}'s series), and its recent trend (from the heatmap).
// Pure: the run page renders them.

import { num } from './api.js';
import { median } from './util.js';

/**
 * The rows from a run's series list, in the order of first appearance;
 * old: the rows before, whose trends are kept.  Returns {layers (a Map of
 * name -> row), hasW, hasU (whether weight and update norms were sent)}.
 */
export function layersOf(series, old = new Map()) {
  const layers = new Map();
  let order = 0;
  const layer = (name) => {
    let l = layers.get(name);
    if (!l) {
      l = { name, order: order++, latest: null, step: null, depth: null, numel: null,
        trend: old.get(name)?.trend ?? null };
      layers.set(name, l);
    }
    return l;
  };
  for (const s of series) {
    if (s.kind !== 'layer_grad') continue;
    Object.assign(layer(s.name), { latest: num(s.last_value), step: s.last_step,
      depth: s.depth ?? null, numel: s.numel ?? null });
  }
  const upd = new Map();
  let hasW = false;
  for (const s of series) {
    if (s.kind === 'layer_weight') {
      layer(s.name).weight = num(s.last_value);
      hasW = true;
    }
    if (s.kind === 'layer_update') upd.set(s.name, num(s.last_value));
  }
  for (const [name, u] of upd) {
    const l = layer(name);
    l.uratio = u !== null && l.weight !== undefined && l.weight !== null ? u / l.weight : null;
  }
  return { layers, hasW, hasU: upd.size > 0 };
}

/** Each row's trend: the median of its last third of heatmap cells over the third before. */
export function layerTrends(hm, layers) {
  hm.layers.forEach((name, r) => {
    const l = layers.get(name);
    if (!l) return;
    const row = hm.values[r].map(num).filter((v) => v !== null && Number.isFinite(v) && v > 0);
    if (row.length < 6) {
      l.trend = null;
      return;
    }
    const third = Math.floor(row.length / 3);
    const recent = median(row.slice(row.length - third));
    const before = median(row.slice(row.length - 2 * third, row.length - third));
    l.trend = before > 0 ? recent / before : null;
  });
}

// SPDX-License-Identifier: MIT
// Exponential moving average for the run page's smoothing slider, as
// TensorBoard draws it: debiased (the first points are not dragged towards
// zero), skipping what it cannot average (null, NaN, infinities and the
// points a chart marks as outliers), which stay gaps in the smoothed line.

/**
 * The EMA of ys with weight w in [0, 1): each point is w times the one
 * before plus (1 - w) times its value, divided by 1 - w^n.  skip(i) true
 * leaves point i out (null in the answer).  w = 0 returns ys' finite values.
 */
export function ema(ys, w, skip = null) {
  const out = new Array(ys.length).fill(null);
  let acc = 0;
  let norm = 0;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (v === null || v === undefined || !Number.isFinite(v) || (skip && skip(i))) continue;
    acc = acc * w + (1 - w) * v;
    norm = norm * w + (1 - w);
    out[i] = acc / norm;
  }
  return out;
}

/** The slider's weight as text: "off" at 0, else two decimals. */
export function smoothText(w) {
  return w > 0 ? w.toFixed(2) : 'off';
}

// SPDX-License-Identifier: MIT
// A chart's y-range that ignores rare, huge outliers: one loss of 1e30
// must not flatten a million ordinary points to a line at zero.  Pure:
// numbers in, a range and the outlying points out; charts.js draws the
// outliers as marks at the plot's edge and lets a click include them.

const MIN_POINTS = 20; // fewer points: every one counts
const RARE = 0.01; // at most this share of the points may be outliers
const FENCE = 2; // outside [q01 - FENCE*span, q99 + FENCE*span]
const SQUASH = 5; // ...and only if keeping them would shrink the rest 5x

/**
 * Outliers of the finite values in columns (arrays of numbers or null),
 * judged on log10 of the positive values when log.  Returns null when
 * there are none worth leaving out, else {lo, hi, high, low}: lo..hi the
 * range of the other values (in the values' own units), high and low two
 * Sets of "column:index" keys of the values above and below it.
 */
export function findOutliers(columns, log = false) {
  const f = log ? (v) => (v > 0 ? Math.log10(v) : NaN) : (v) => v;
  let n = 0;
  for (const ys of columns) for (const v of ys) if (v !== null && Number.isFinite(f(v))) n++;
  if (n < MIN_POINTS) return null;
  const all = new Float64Array(n);
  let k = 0;
  for (const ys of columns) {
    for (const v of ys) {
      if (v === null) continue;
      const x = f(v);
      if (Number.isFinite(x)) all[k++] = x;
    }
  }
  all.sort();
  const q = (p) => all[Math.floor(p * (n - 1))];
  const a = q(0.01);
  const b = q(0.99);
  const span = b - a;
  const lf = a - FENCE * span;
  const hf = b + FENCE * span;
  // The values inside the fences, and how many lie outside.
  let i0 = 0;
  while (i0 < n && all[i0] < lf) i0++;
  let i1 = n - 1;
  while (i1 >= i0 && all[i1] > hf) i1--;
  const out = i0 + (n - 1 - i1);
  if (out === 0 || out > Math.max(1, Math.floor(RARE * n))) return null;
  const keptLo = all[i0];
  const keptHi = all[i1];
  const mid = all[n >> 1];
  const keptSpan = Math.max(keptHi - keptLo, log ? 0.1 : 0.1 * Math.abs(mid), 1e-300);
  if (all[n - 1] - all[0] < SQUASH * keptSpan) return null;
  const high = new Set();
  const low = new Set();
  columns.forEach((ys, c) => ys.forEach((v, i) => {
    if (v === null) return;
    const x = f(v);
    if (!Number.isFinite(x)) return;
    if (x > keptHi) high.add(`${c}:${i}`);
    else if (x < keptLo) low.add(`${c}:${i}`);
  }));
  const back = log ? (x) => 10 ** x : (x) => x;
  return { lo: back(keptLo), hi: back(keptHi), high, low };
}

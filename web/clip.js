// SPDX-License-Identifier: MIT
// Clip events from the run's clip_pre_norm and clip_max_norm series: the
// steps whose pre-clip norm exceeded the max norm, and a rolling clip rate
// for the Clipping chart.  Pure.

/** pre, mx: {steps, values}, sorted by step; returns {steps, rate, xs, total}. */
export function clipEvents(pre, mx) {
  const steps = [];
  const flags = [];
  let j = 0;
  let cur = null;
  for (let i = 0; i < pre.steps.length; i++) {
    while (j < mx.steps.length && mx.steps[j] <= pre.steps[i]) cur = mx.values[j++];
    const p = pre.values[i];
    const clipped = cur !== null && Number.isFinite(cur) && p !== null && p > cur;
    flags.push(clipped ? 1 : 0);
    if (clipped) steps.push(pre.steps[i]);
  }
  const win = Math.max(5, Math.min(100, Math.round(flags.length / 40)));
  const rate = [];
  let sum = 0;
  for (let i = 0; i < flags.length; i++) {
    sum += flags[i];
    if (i >= win) sum -= flags[i - win];
    rate.push((100 * sum) / Math.min(i + 1, win));
  }
  return { steps, rate, xs: pre.steps, total: flags.length };
}

// SPDX-License-Identifier: MIT
// Which charts the compare page draws: every series but the per-layer
// gradient norms (the run page's heatmap has those) that at least two of
// the runs have (all of a single run's), loss and gradient norm first,
// then the learning rate and the other scalars, the metrics, the weight
// norms.  Pure.

const ORDER = ['loss', 'grad_norm', 'lr', 'clip_pre_norm', 'clip_max_norm', 'loss_scale', 'skipped',
  'time', 'metric', 'layer_weight'];
export const MAX_CHARTS = 48;

const TITLES = { loss: 'Loss', grad_norm: 'Global gradient norm', lr: 'Learning rate',
  clip_pre_norm: 'Norm before clipping', clip_max_norm: 'Clip threshold', loss_scale: 'Loss scale',
  skipped: 'Skipped steps', time: 'Step time' };

/**
 * runs: GET /api/v1/runs/{run} answers.  [{id: "kind:name" (for
 * ?series=), kind, name, title, log, runs: [indices of the runs that
 * have it]}], at most MAX_CHARTS, and how many more there were.
 */
export function sharedSeries(runs) {
  const found = new Map();
  runs.forEach((r, i) => {
    for (const s of r?.series || []) {
      if (s.kind === 'layer_grad' || !ORDER.includes(s.kind) || s.name.includes(',')) continue;
      const id = `${s.kind}:${s.name}`;
      if (!found.has(id)) found.set(id, { id, kind: s.kind, name: s.name, runs: [] });
      if (!found.get(id).runs.includes(i)) found.get(id).runs.push(i);
    }
  });
  const need = Math.min(2, runs.length);
  const all = [...found.values()].filter((s) => s.runs.length >= need)
    .sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((s) => ({
      ...s,
      title: s.kind === 'layer_weight' ? `${s.name} · weight norm` : TITLES[s.kind] || s.name,
      log: s.kind === 'grad_norm' || s.kind === 'layer_weight',
    }));
  return { charts: all.slice(0, MAX_CHARTS), more: Math.max(0, all.length - MAX_CHARTS) };
}

/** Steps of s ({steps, values}) whose value is non-finite. */
export function nonfiniteSteps(s) {
  const out = [];
  for (let i = 0; i < (s?.steps.length || 0); i++) {
    const v = s.values[i];
    if (v !== null && !Number.isFinite(v)) out.push(s.steps[i]);
  }
  return out;
}

// SPDX-License-Identifier: MIT
// A run's config as flat rows: nested objects' keys joined with dots
// ({"optim": {"lr": 3e-4}} is "optim.lr"), every other value (a number, a
// string, an array, null) as the text a person reads.  Pure; the run
// page's config table, the compare page's diff and the runs page's config
// columns all read configs through it, so they agree on keys and values.

/** [[key, text], ...] of config in its order; [] when it is not an object. */
export function flattenConfig(config) {
  const out = [];
  const walk = (o, prefix) => {
    for (const [k, v] of Object.entries(o)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) walk(v, key);
      else out.push([key, configText(v)]);
    }
  };
  if (config && typeof config === 'object' && !Array.isArray(config)) walk(config, '');
  return out;
}

/** A config value as text: strings as they are, anything else as JSON. */
export function configText(v) {
  if (v === undefined) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The value at a dotted key of config (as configText), or undefined. */
export function configValue(config, key) {
  for (const [k, v] of flattenConfig(config)) if (k === key) return v;
  return undefined;
}

/**
 * The keys whose values are not the same in every config (a key missing
 * from some counts as different): [{key, values: [text or undefined per
 * config]}], in the order of first appearance.
 */
export function diffConfigs(configs) {
  const flat = configs.map((c) => new Map(flattenConfig(c)));
  const keys = [];
  const seen = new Set();
  for (const m of flat) {
    for (const k of m.keys()) {
      if (!seen.has(k)) {
        seen.add(k);
        keys.push(k);
      }
    }
  }
  const out = [];
  for (const key of keys) {
    const values = flat.map((m) => m.get(key));
    if (values.some((v) => v !== values[0])) out.push({ key, values });
  }
  return out;
}

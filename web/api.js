// SPDX-License-Identifier: MIT
// The HTTP API (docs/API.md): GET and write helpers that send the token when
// there is one and turn the wire's non-finite strings back into numbers.

const TOKEN_KEY = 'gradwatch.token';

/** Thrown on a 401: the caller asks for the token and tries again. */
export class AuthError extends Error {}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

function headers() {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** GET /api/v1/<path>?<params> as JSON; params with empty values are left out. */
export async function api(path, params = {}, signal = undefined) {
  const url = new URL(`/api/v1/${path}`, location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  return answer(await fetch(url, { headers: headers(), signal }));
}

/** A write: method (PATCH, POST) of body as JSON to /api/v1/<path>; the answer as JSON. */
export async function apiWrite(method, path, body) {
  return answer(await fetch(`/api/v1/${path}`, {
    method,
    headers: { ...headers(), 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  }));
}

/** r's JSON body, or an Error with the daemon's message and r.status (AuthError on a 401). */
async function answer(r) {
  if (r.status === 401) throw new AuthError('this gradwatchd needs a token');
  let body = null;
  try {
    body = await r.json();
  } catch {
    body = null;
  }
  if (!r.ok) {
    const e = new Error(body?.message || `${r.status} ${r.statusText}`);
    e.status = r.status;
    throw e;
  }
  return body;
}

/** Download an export (it needs the token header, so no plain link). */
export async function download(path, filename) {
  const r = await fetch(`/api/v1/${path}`, { headers: headers() });
  if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
  const blob = await r.blob();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/** A wire number: a number, or "NaN" / "Infinity" / "-Infinity"; null stays null. */
export function num(v) {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return null;
}

/** A series answer of /points with its values as numbers. */
export function seriesOf(answer, name) {
  const s = answer?.series?.[name];
  if (!s) return { steps: [], values: [] };
  return { steps: s.steps, values: s.values.map(num), downsampled: !!s.downsampled };
}

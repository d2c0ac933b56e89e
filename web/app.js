// SPDX-License-Identifier: MIT
// The dashboard's entry point: finds the stream through GET /api/v1/info
// (asking for the token once if the daemon wants one), keeps the stream
// connected, and mounts the view the URL's hash names: #/ (runs),
// #/run/<key> (one run), #/compare?runs=a,b (several).

import { api, AuthError, setToken } from './api.js';
import { CompareView } from './compare.js';
import { RunView } from './run.js';
import { RunsView } from './runs.js';
import { Stream } from './stream.js';
import { parseHash } from './util.js';

const THEME_KEY = 'gradwatch.theme';
const stream = new Stream();
const ctx = { stream, fail, info: null };
let view = null;
let asking = null;

function $(s) {
  return document.querySelector(s);
}

function mount() {
  if (view) view.destroy();
  view = null;
  const el = $('#view');
  el.innerHTML = '';
  const { parts, params } = parseHash(location.hash);
  let nav = 'runs';
  if (parts[0] === 'run' && parts[1]) {
    view = new RunView(el, ctx, parts[1], params);
    document.title = `${parts[1]} · gradwatch`;
    nav = '';
  } else if (parts[0] === 'compare') {
    view = new CompareView(el, ctx, params);
    document.title = 'Compare · gradwatch';
    nav = 'compare';
  } else {
    view = new RunsView(el, ctx);
    document.title = 'gradwatch';
  }
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
}

/** Show an error for a few seconds (or ask for the token on a 401). */
function fail(e) {
  if (e instanceof AuthError) {
    askToken().then(() => {
      stream.restart();
      mount();
    });
    return;
  }
  if (e && e.name === 'AbortError') return;
  toast(e && e.message ? e.message : String(e));
}

function toast(text) {
  const t = $('.toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

/** Ask for the token once; every caller waits for the same answer. */
function askToken() {
  if (asking) return asking;
  const d = $('.token-dialog');
  asking = new Promise((resolve) => {
    d.querySelector('form').onsubmit = (e) => {
      e.preventDefault();
      setToken(d.querySelector('input').value.trim());
      d.close();
      asking = null;
      resolve();
    };
    d.showModal();
    d.querySelector('input').focus();
  });
  return asking;
}

function applyTheme(mode) {
  if (mode === 'light' || mode === 'dark') document.documentElement.dataset.theme = mode;
  else delete document.documentElement.dataset.theme;
  $('.theme-btn').textContent = mode === 'light' ? '☀ light' : mode === 'dark' ? '☾ dark' : '◐ auto';
}

function setupTheme() {
  applyTheme(localStorage.getItem(THEME_KEY) || 'auto');
  $('.theme-btn').addEventListener('click', () => {
    const order = ['auto', 'light', 'dark'];
    const cur = localStorage.getItem(THEME_KEY) || 'auto';
    const next = order[(order.indexOf(cur) + 1) % order.length];
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
    mount(); // charts and the heatmap take their colours when built
  });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    if ((localStorage.getItem(THEME_KEY) || 'auto') === 'auto') mount();
  });
}

function showConnection(state) {
  const c = $('.conn');
  c.dataset.state = state;
  c.querySelector('.conn-text').textContent =
    state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : 'offline, retrying';
}

async function boot() {
  setupTheme();
  stream.on((m) => {
    if (m.type === 'state') showConnection(m.state);
  });
  for (let delay = 500; ; delay = Math.min(delay * 2, 4000)) {
    try {
      ctx.info = await api('info');
      break;
    } catch (e) {
      if (e instanceof AuthError) {
        await askToken();
        continue;
      }
      showConnection('offline');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  $('.version').textContent = `gradwatchd ${ctx.info.version}`;
  stream.start(ctx.info);
  window.addEventListener('hashchange', mount);
  mount();
}

boot();

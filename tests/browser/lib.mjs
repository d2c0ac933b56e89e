// SPDX-License-Identifier: MIT
// Helpers for the browser tests: TAP output, the real gradwatchd on free
// loopback ports with a scratch database, ingest over HTTP, and Debian's
// Chromium driven headless by playwright-core with a fresh profile.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const TOP = process.env.GW_TOP || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = process.env.GW_BUILD || 'build';
export const BUILD = path.isAbsolute(build) ? build : path.join(TOP, build);
export const CHROMIUM = '/usr/bin/chromium';

/** A minimal TAP producer; done() prints the plan and exits. */
export class Tap {
  constructor() {
    this.n = 0;
    this.failed = 0;
  }

  ok(cond, name, ...diag) {
    this.n += 1;
    console.log(`${cond ? 'ok' : 'not ok'} ${this.n} - ${name}`);
    if (!cond) {
      this.failed += 1;
      for (const d of diag) console.log(`#   ${String(d).replace(/\n/g, '\n#   ')}`);
    }
    return cond;
  }

  is(got, want, name) {
    return this.ok(got === want, name, `got:  ${JSON.stringify(got)}`, `want: ${JSON.stringify(want)}`);
  }

  diag(s) {
    console.log(`# ${s}`);
  }

  done() {
    console.log(`1..${this.n}`);
    process.exit(this.failed ? 1 : 0);
  }

  bail(e) {
    console.log(`Bail out! ${e && e.stack ? e.stack.split('\n').slice(0, 4).join(' | ') : e}`);
    process.exit(1);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll fn() until it returns a truthy value or ms pass; returns the value or null. */
export async function until(fn, ms = 5000, every = 25) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return null;
    await sleep(every);
  }
}

/** gradwatchd on free ports; stop() ends it, start() brings it back on the same ports and database. */
export class Daemon {
  constructor(args = []) {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-browser.'));
    this.db = path.join(this.tmp, 'gw.db');
    this.args = args;
    this.proc = null;
    this.port = 0;
    this.wsPort = 0;
  }

  async start() {
    if (!this.port) {
      this.port = await freePort();
      do this.wsPort = await freePort(); while (this.wsPort === this.port);
    }
    this.url = `http://127.0.0.1:${this.port}`;
    const log = fs.openSync(path.join(this.tmp, 'daemon.log'), 'a');
    this.proc = spawn(path.join(BUILD, 'gradwatchd'), ['--http', `127.0.0.1:${this.port}`,
      '--ws', `127.0.0.1:${this.wsPort}`, '--db', this.db, ...this.args], { stdio: ['ignore', 'ignore', log] });
    fs.closeSync(log);
    const exited = new Promise((r) => this.proc.once('exit', () => r('exit')));
    const ready = await until(async () => {
      try {
        const r = await fetch(`${this.url}/healthz`);
        return r.ok;
      } catch {
        return false;
      }
    }, 10000, 50);
    if (!ready) throw new Error(`gradwatchd did not start: ${this.log()}`);
    this.exited = exited;
    return this;
  }

  log() {
    try {
      return fs.readFileSync(path.join(this.tmp, 'daemon.log'), 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  }

  async stop() {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(t);
  }

  async cleanup() {
    await this.stop();
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  async post(body, headers = {}) {
    const r = await fetch(`${this.url}/api/v1/ingest`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const j = await r.json();
    if (!r.ok) throw new Error(`ingest: ${r.status} ${JSON.stringify(j)}`);
    return j;
  }

  async get(p, headers = {}) {
    const r = await fetch(`${this.url}${p}`, { headers });
    return { status: r.status, body: await r.json().catch(() => null) };
  }
}

/** Chromium headless with a fresh profile; close() removes it. */
export async function browser({ colorScheme = 'light', width = 1400, height = 1000, args = [] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-chromium.'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args],
    viewport: { width, height },
    colorScheme,
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return {
    ctx,
    page,
    errors,
    async close() {
      await ctx.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Seeded pseudo-random numbers (mulberry32), so the pictures repeat. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A step's metrics, weight norms, update norms (every 10th step) and loss scale. */
function extras(layers, s, rand) {
  const out = {
    metrics: { accuracy: Math.min(0.97, 0.1 + 0.85 * (1 - Math.exp(-s / 150)) + 0.03 * rand()),
      tokens_per_s: 41000 + 2500 * rand() },
    weights: Object.fromEntries(layers.map((n, i) => [n, (1 + i / 8) * (12 + s / 60)])),
    loss_scale: 2 ** (16 - Math.floor(s / 120)),
  };
  if (s % 10 === 0) {
    out.updates = Object.fromEntries(layers.map((n, i) => [n, 2e-3 * (1 + i / 8) * (0.7 + 0.6 * rand()) * (1 + s / 200)]));
    out.metrics.val_loss = 2.4 * Math.exp(-s / 240) + 0.45;
  }
  return out;
}

/** Steps [from, to) of a plausible training run over layers (opts: spikeAt, extras). */
export function trainingSteps(layers, from, to, rand, opts = {}) {
  const out = [];
  for (let s = from; s < to; s++) {
    const spike = opts.spikeAt !== undefined && s >= opts.spikeAt && s < opts.spikeAt + 15 ? 6 : 1;
    const g = (0.75 + 0.35 * rand()) * spike;
    const layersObj = {};
    layers.forEach((n, i) => {
      const depthFactor = 0.03 * (1 + 3 * (i / layers.length)) * (1 + 0.2 * Math.sin(s / 90 + i));
      layersObj[n] = g * depthFactor * (0.85 + 0.3 * rand());
    });
    out.push({
      step: s,
      time: 1764000000 + s * 0.5,
      loss: 2.3 * Math.exp(-s / 260) + 0.35 + 0.05 * rand() + (spike > 1 ? 0.4 : 0),
      grad_norm: g,
      lr: 3e-4 * Math.min(1, (s + 1) / 100),
      layers: layersObj,
      clip: { max_norm: 1.05, pre_norm: g },
      ...(opts.extras ? extras(layers, s, rand) : {}),
    });
  }
  return out;
}

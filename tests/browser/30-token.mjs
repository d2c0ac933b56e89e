#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The dashboard against a daemon with a token: the page itself loads
// without one, asks for the token once, keeps it (localStorage), sends it
// on every API request and on the stream (?token=), and so lists runs and
// follows them live; after a reload it does not ask again.

import fs from 'node:fs';
import path from 'node:path';
import { browser, Daemon, Tap, until } from './lib.mjs';

const t = new Tap();
const guard = setTimeout(() => t.bail('timed out after 90 s'), 90000);
const TOKEN = 'tok-4f1c9a7e-browser';
let d = null;
let b = null;

async function main() {
  const tokenFile = path.join(fs.mkdtempSync('/tmp/gw-token.'), 'token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  d = new Daemon(['--token-file', tokenFile]);
  await d.start();
  const auth = { Authorization: `Bearer ${TOKEN}` };
  await d.post({ run: 'secret-run', meta: { project: 'p' }, steps: [{ step: 0, loss: 1 }] }, auth);
  t.is((await d.get('/api/v1/runs')).status, 401, 'the API wants the token');
  const page0 = await fetch(`${d.url}/`);
  t.is(page0.status, 200, 'the dashboard\'s page does not');

  b = await browser();
  const { page } = b;
  await page.goto(`${d.url}/`);
  const dialog = await page.waitForSelector('.token-dialog[open]', { timeout: 5000 }).catch(() => null);
  t.ok(dialog, 'the page asks for the token');
  await page.fill('.token-dialog input', TOKEN);
  await page.click('.token-dialog button[type=submit]');
  t.ok(await page.waitForSelector('tr[data-run="secret-run"]', { timeout: 5000 }).catch(() => null),
    'with it, the runs page lists the run');
  t.ok(await until(() => page.evaluate(() => document.querySelector('.conn').dataset.state === 'live'), 5000),
    'and the stream accepts it');
  await d.post({ run: 'secret-run', steps: [{ step: 1, loss: 0.9 }, { step: 2, loss: 0.8 }] }, auth);
  t.ok(await until(async () => (await page.textContent('tr[data-run="secret-run"] .last-step')) === '2', 8000),
    'new steps arrive over the stream');
  t.is(await page.evaluate(() => localStorage.getItem('gradwatch.token')), TOKEN, 'the token is kept');
  await page.reload();
  t.ok(await page.waitForSelector('tr[data-run="secret-run"]', { timeout: 5000 }).catch(() => null),
    'after a reload the runs show');
  t.ok(await page.evaluate(() => !document.querySelector('.token-dialog').open), 'without asking again');
  // 401s before the token was given are the expected ones; anything else is an error.
  const errors = b.errors.filter((e) => !/401/.test(e));
  t.ok(errors.length === 0, 'no other errors in the browser console', ...errors);
  fs.rmSync(path.dirname(tokenFile), { recursive: true, force: true });
}

try {
  await main();
} catch (e) {
  t.ok(false, 'no exception', e && e.stack ? e.stack : e, d ? d.log() : '');
} finally {
  clearTimeout(guard);
  if (b) await b.close().catch(() => {});
  if (d) await d.cleanup();
}
t.done();

// SPDX-License-Identifier: MIT
// The runs page's editor of a run's tags and note: a dialog that sends
// PATCH /api/v1/runs/{run} and hands the answer (the run, annotated) back;
// the daemon's refusal (too many or too long tags, too long a note) shows
// in the dialog, which stays open.

import { apiWrite, AuthError } from './api.js';
import { esc } from './util.js';

export const TAGS_MAX = 32; // docs/API.md's limits, checked again by the daemon
export const NOTE_BYTES = 4096;

/** "a, b ,a,," as ["a", "b"]: trimmed, empty ones dropped, first of each kept. */
export function parseTags(text) {
  return [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
}

export class MetaEditor {
  /** The dialog goes into parent; onSaved(run) gets the daemon's answer. */
  constructor(parent, ctx, onSaved) {
    this.ctx = ctx;
    this.onSaved = onSaved;
    this.run = null;
    this.dialog = document.createElement('dialog');
    this.dialog.className = 'meta-dialog';
    this.dialog.innerHTML = `
      <form>
        <h2>Tags and note of <span class="mono meta-run"></span></h2>
        <label>Tags <span class="dim">(comma-separated, at most ${TAGS_MAX})</span>
          <input type="text" class="meta-tags" autocomplete="off"></label>
        <label>Note <span class="dim">(at most 4 KiB)</span>
          <textarea class="meta-note" rows="5"></textarea></label>
        <p class="meta-error" hidden></p>
        <div class="dialog-actions">
          <button class="btn meta-cancel" type="button">Cancel</button>
          <button class="btn primary meta-save" type="submit">Save</button></div>
      </form>`;
    parent.appendChild(this.dialog);
    this.dialog.querySelector('.meta-cancel').addEventListener('click', () => this.dialog.close());
    this.dialog.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
  }

  open(run) {
    this.run = run.run;
    const q = (s) => this.dialog.querySelector(s);
    q('.meta-run').textContent = run.run;
    q('.meta-tags').value = (run.tags || []).join(', ');
    q('.meta-note').value = run.note || '';
    q('.meta-error').hidden = true;
    this.dialog.showModal();
    q('.meta-tags').focus();
  }

  async save() {
    const q = (s) => this.dialog.querySelector(s);
    const body = { tags: parseTags(q('.meta-tags').value), note: q('.meta-note').value };
    const btn = q('.meta-save');
    btn.disabled = true;
    try {
      const run = await apiWrite('PATCH', `runs/${encodeURIComponent(this.run)}`, body);
      this.dialog.close();
      this.onSaved(run);
    } catch (e) {
      if (e instanceof AuthError) {
        this.dialog.close();
        this.ctx.fail(e);
      } else {
        q('.meta-error').innerHTML = esc(e.message);
        q('.meta-error').hidden = false;
      }
    } finally {
      btn.disabled = false;
    }
  }
}

// SPDX-License-Identifier: MIT
// The runs page's choices that outlive the page: which config keys show
// as columns and how the runs are grouped (by project or by a config
// key), kept in localStorage.  The controls: a key box with the keys the
// listed runs have, an "Add column" button, and the group-by select.

const COLUMNS_KEY = 'gradwatch.runs.columns';
const GROUP_KEY = 'gradwatch.runs.group';
const COLUMNS_MAX = 12;

function stored(name, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(name));
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

export class RunsChoices {
  /** The controls go into toolbar; onChange() after every change. */
  constructor(toolbar, onChange) {
    this.onChange = onChange;
    const cols = stored(COLUMNS_KEY, []);
    this.columns = Array.isArray(cols) ? cols.filter((c) => typeof c === 'string').slice(0, COLUMNS_MAX) : [];
    const g = stored(GROUP_KEY, '');
    this.group = typeof g === 'string' ? g : '';
    this.keys = [];
    const box = document.createElement('span');
    box.className = 'choices';
    box.innerHTML = `
      <input type="text" class="col-key" list="gw-config-keys" placeholder="Config key…" aria-label="Config key to show as a column">
      <datalist id="gw-config-keys"></datalist>
      <button class="btn sm col-add" type="button">Add column</button>
      <select class="group-by" aria-label="Group runs by"></select>`;
    toolbar.appendChild(box);
    this.box = box;
    const add = () => {
      const input = box.querySelector('.col-key');
      const key = input.value.trim();
      input.value = '';
      if (key) this.addColumn(key);
    };
    box.querySelector('.col-add').addEventListener('click', add);
    box.querySelector('.col-key').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') add();
    });
    box.querySelector('.group-by').addEventListener('change', (e) => {
      this.group = e.target.value;
      localStorage.setItem(GROUP_KEY, JSON.stringify(this.group));
      this.onChange();
    });
    this.setKeys([]);
  }

  addColumn(key) {
    if (this.columns.includes(key) || this.columns.length >= COLUMNS_MAX) return;
    this.columns.push(key);
    this.saveColumns();
  }

  removeColumn(key) {
    this.columns = this.columns.filter((c) => c !== key);
    this.saveColumns();
  }

  saveColumns() {
    localStorage.setItem(COLUMNS_KEY, JSON.stringify(this.columns));
    this.setKeys(this.keys);
    this.onChange();
  }

  /** The config keys the runs have (dotted), offered for columns and grouping. */
  setKeys(keys) {
    this.keys = keys;
    const list = this.box.querySelector('datalist');
    list.innerHTML = '';
    for (const k of keys) if (!this.columns.includes(k)) list.appendChild(new Option(k, k));
    const sel = this.box.querySelector('.group-by');
    const opts = [['', 'No grouping'], ['project', 'Group by project']];
    const cfg = [...new Set([...this.columns, ...keys, ...(this.group.startsWith('cfg:') ? [this.group.slice(4)] : [])])];
    for (const k of cfg) opts.push([`cfg:${k}`, `Group by ${k}`]);
    sel.innerHTML = '';
    for (const [v, label] of opts) sel.appendChild(new Option(label, v));
    sel.value = this.group;
  }
}

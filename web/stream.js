// SPDX-License-Identifier: MIT
// The live stream (docs/API.md, "Stream"): one WebSocket to the daemon's
// stream port with subprotocol gradwatch.v1, the token as ?token= when the
// daemon wants one.  It resubscribes and tells the views to refetch after
// every reconnect, and reconnects by itself (backing off to 3 s) when the
// daemon goes away.

import { getToken } from './api.js';

export class Stream {
  constructor() {
    this.info = null;
    this.ws = null;
    this.subs = new Set();
    this.listeners = new Set();
    this.state = 'connecting';
    this.backoff = 250;
    this.timer = null;
    this.stopped = false;
    this.opened = 0; // connections opened so far
  }

  /** Connect using GET /api/v1/info's stream_port and auth. */
  start(info) {
    this.info = info;
    this.connect();
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let u = `${scheme}://${location.hostname}:${this.info.stream_port}/`;
    if (this.info.auth && getToken()) u += `?token=${encodeURIComponent(getToken())}`;
    return u;
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.setState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url(), 'gradwatch.v1');
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 250;
      this.setState('live');
      if (this.subs.size) ws.send(JSON.stringify({ subscribe: [...this.subs] }));
      // After a reconnect the views refetch what they missed meanwhile.
      if (this.opened++ > 0) this.emit({ type: 'open', reconnect: true });
    };
    ws.onmessage = (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      this.emit(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setState('offline');
      this.retry();
    };
    ws.onerror = () => {}; // onclose follows
  }

  retry() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 3000);
  }

  /** Reconnect now (after the token changed). */
  restart() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.backoff = 250;
    this.connect();
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  /** Keep exactly these subscriptions (run keys, or '*'). */
  setSubscriptions(runs) {
    const want = new Set(runs);
    const drop = [...this.subs].filter((r) => !want.has(r));
    const add = [...want].filter((r) => !this.subs.has(r));
    this.subs = want;
    if (drop.length) this.send({ unsubscribe: drop });
    if (add.length) this.send({ subscribe: add });
  }

  /** Call fn(msg) for every message, plus {type:'open'} on each reconnect. */
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(m) {
    for (const fn of [...this.listeners]) {
      try {
        fn(m);
      } catch (e) {
        console.error('stream listener:', e);
      }
    }
  }

  setState(s) {
    this.state = s;
    this.emit({ type: 'state', state: s });
  }
}

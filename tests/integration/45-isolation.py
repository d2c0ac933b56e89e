#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Slow reads never hold up ingest: with more heavy heatmap queries in
flight than there are query workers, and a client stalled mid-export,
an ingest request is still answered at once."""
import json, os, socket, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import Daemon, TAP

t = TAP()
with Daemon() as d:
    names = ["layer%d.weight" % i for i in range(200)]
    for s0 in range(0, 20000, 1000):
        steps = [{"step": s, "loss": 1.0, "layers": [1.0 + (s % 7) * 0.1] * 200} for s in range(s0, s0 + 1000)]
        st, _ = d.post("/api/v1/ingest", {"run": "heavy", "layer_names": names, "steps": steps})
        assert st == 200
    t0 = time.time()
    st, hm = d.get("/api/v1/runs/heavy/heatmap?buckets=2000")
    one = time.time() - t0
    t.is_(len(hm["layers"]), 200, "the heavy run has 200 layers (one heatmap: %.0f ms)" % (one * 1000))

    # A client that asks for an export and never reads it.
    stalled = socket.create_connection(("127.0.0.1", d.port))
    stalled.sendall(b"GET /api/v1/runs/heavy/export?format=csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    done = []
    def heatmap():
        st, _ = d.get("/api/v1/runs/heavy/heatmap?buckets=2000")
        done.append((time.time(), st))
    ts = [threading.Thread(target=heatmap) for _ in range(12)]
    for th in ts:
        th.start()
    time.sleep(0.05)
    t1 = time.time()
    st, body = d.post("/api/v1/ingest", {"run": "light", "steps": [{"step": 0, "loss": 1}]})
    ingest_done = time.time()
    for th in ts:
        th.join()
    last = max(x[0] for x in done)
    t.is_(st, 200, "ingest answered while 12 heatmaps were in flight")
    t.ok(all(x[1] == 200 for x in done), "every heatmap answered 200")
    t.ok(ingest_done < last, "ingest finished (%.0f ms) before the heatmaps (%.0f ms)"
         % ((ingest_done - t1) * 1000, (last - t1) * 1000))
    st, _ = d.get("/healthz")
    t.is_(st, 200, "the daemon still answers with an export stalled")
    stalled.close()
t.done()

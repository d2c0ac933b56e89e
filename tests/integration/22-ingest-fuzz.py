#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Mutated and random ingest bodies: every one gets 200 or a 4xx with an
error code, never a crash, a hang or a 5xx; then the daemon still works."""
import http.client, json, os, random, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import Daemon, TAP

t = TAP()
rng = random.Random(1234)
with Daemon() as d:
    base = json.dumps({"run": "fz", "meta": {"project": "p", "config": {"a": [1, 2, {"b": None}]}},
                       "layer_names": ["a.w", "b.w"],
                       "steps": [{"step": s, "loss": 1.5, "grad_norm": "NaN", "layers": [0.1, None],
                                  "clip": {"max_norm": 1, "pre_norm": 2}, "metrics": {"acc": 0.5}}
                                 for s in range(5)]}).encode()
    bad5xx, statuses = 0, {}
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    for i in range(1500):
        body = bytearray(base)
        kind = i % 4
        if kind == 0:      # flip bytes
            for _ in range(rng.randint(1, 8)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        elif kind == 1:    # truncate
            body = body[:rng.randrange(len(body))]
        elif kind == 2:    # splice a random chunk elsewhere
            a, b = sorted(rng.randrange(len(body)) for _ in range(2))
            c = rng.randrange(len(body))
            body = body[:c] + body[a:b] + body[c:]
        else:              # random bytes
            body = bytearray(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        try:
            conn.request("POST", "/api/v1/ingest", bytes(body), {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        except (ConnectionError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            continue
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if r.status >= 500:
            bad5xx += 1
        elif r.status != 200:
            err = json.loads(data)
            if not (isinstance(err.get("error"), str) and err.get("message")):
                bad5xx += 1
    t.ok(bad5xx == 0, "1500 mutated bodies: only 200 or 4xx with an error and message (%s)" % statuses)
    t.ok(d.alive(), "the daemon survived")
    st, body = d.post("/api/v1/ingest", {"run": "after", "steps": [{"step": 0, "loss": 1}]})
    t.is_(st, 200, "and still ingests")
    # deep nesting, huge numbers, long names
    st, body = d.post_raw("/api/v1/ingest", b'{"run":"x","meta":{"config":' + b'[' * 5000 + b']' * 5000 + b'}}')
    t.is_(st, 400, "5000 levels of nesting are refused")
    st, body = d.post("/api/v1/ingest", {"run": "x", "steps": [{"step": 0, "layers": {"n" * 300: 1}}]})
    t.is_(st, 400, "a 300-byte series name is refused")
    st, body = d.post_raw("/api/v1/ingest", b'{"run":"x","steps":[{"step":0,"loss":1e999}]}')
    t.is_(st, 400, "1e999 is refused")
    t.is_(body.get("error"), "bad_json", "as bad_json")
t.done()

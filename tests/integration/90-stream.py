#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The live stream with a real WebSocket client (tests/lib/wsclient.py)
against the real daemon: the handshake and its subprotocol; subscriptions
(only subscribed runs arrive, "*" gets all, unsubscribe stops them);
coalescing (200 quick steps give far fewer messages, the last step and
every non-finite one included); run and alert messages; a slow client
that stops reading neither slows ingest nor other viewers, and is told
to resync or closed; the token and the Origin check; /metrics counts
viewers."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import TAP, Daemon  # noqa: E402
from wsclient import Closed, HandshakeError, WebSocket  # noqa: E402

t = TAP()


def connect(d, **kw):
    return WebSocket("127.0.0.1", d.ws_port, **kw)


def post(d, run, steps, **extra):
    body = {"run": run, "steps": steps}
    body.update(extra)
    st, ans = d.post("/api/v1/ingest", body)
    if st != 200:
        raise RuntimeError("ingest %s: %s %r" % (run, st, ans))
    return ans


def step(s, loss=1.0, layers=None, **kw):
    o = {"step": s, "loss": loss, "grad_norm": 0.5}
    if layers is not None:
        o["layers"] = layers
    o.update(kw)
    return o


def viewers(d):
    st, body = d.get("/metrics")
    for line in body.decode().splitlines() if isinstance(body, bytes) else []:
        if line.startswith("gradwatch_stream_clients "):
            return int(float(line.split()[1]))
    return -1


with Daemon() as d:
    # ---- handshake -------------------------------------------------------
    a = connect(d)
    t.is_(a.protocol, "gradwatch.v1", "the stream speaks subprotocol gradwatch.v1")
    ack = a.subscribe("run-a")
    t.is_(ack and ack.get("runs"), ["run-a"], "a subscription is acknowledged")
    b = connect(d)
    b.subscribe("*")
    c = connect(d)  # subscribed to nothing
    a.send_json({"subscribe": "bad key!"})
    err = a.drain(2, until=lambda m: m.get("type") == "error")
    t.ok(err and err[-1].get("type") == "error", "a bad subscription gets an error message", err)
    t.is_(viewers(d), 3, "/metrics counts the viewers")
    a.send_json({"subscribe": "x" * 5000})
    err = a.drain(2, until=lambda m: m.get("type") == "error")
    t.ok(err and "too long" in err[-1].get("message", ""), "a message over 4 KiB is refused", err)
    t.ok(a.subscribe("run-a") is not None, "and the connection goes on")

    # ---- subscriptions ---------------------------------------------------
    post(d, "run-a", [step(0), step(1)], meta={"project": "p"})
    post(d, "run-b", [step(0)])
    ma = a.drain(1.0)
    mb = b.drain(1.0)
    mc = c.drain(0.3)
    runs_a = {m.get("run") if m["type"] == "step" else m.get("run", {}).get("run") for m in ma}
    t.is_(runs_a, {"run-a"}, "a client subscribed to one run gets only that run")
    t.ok(any(m["type"] == "step" and m["step"] == 1 for m in ma), "its latest step arrives", ma)
    t.ok(any(m["type"] == "run" and m["run"]["run"] == "run-a" and m["run"]["project"] == "p"
             and m["run"]["status"] == "running" for m in ma),
         "a new run is announced with a run message", ma)
    runs_b = {m["run"] if m["type"] == "step" else m["run"]["run"] for m in mb if m["type"] in ("step", "run")}
    t.is_(runs_b, {"run-a", "run-b"}, "a client subscribed to \"*\" gets every run")
    t.is_(mc, [], "a client subscribed to nothing gets nothing")
    first = [m for m in ma if m["type"] == "step"][0]
    t.ok(first["loss"] == 1.0 and first["grad_norm"] == 0.5 and "layers" in first,
         "a step message carries loss, grad_norm and layers", first)

    a.send_json({"unsubscribe": "run-a"})
    a.drain(1, until=lambda m: m.get("type") == "subscribed")
    post(d, "run-a", [step(2)])
    t.is_([m for m in a.drain(0.6) if m["type"] == "step"], [], "unsubscribe stops the messages")
    c.close()
    b.drain(0.3)

    # ---- coalescing ------------------------------------------------------
    a.subscribe("run-c")
    nonfinite = {37: "NaN", 88: "Infinity", 151: "NaN"}
    t0 = time.time()
    for k in range(0, 200, 10):
        steps = []
        for s in range(k, k + 10):
            layers = {"l1": 0.1, "l2": 0.2}
            loss = 2.0 - s / 200
            if s == 88:
                layers["l2"] = "Infinity"
            elif s in nonfinite:
                loss = nonfinite[s]
            steps.append(step(s, loss=loss, layers=layers))
        post(d, "run-c", steps)
    posted = time.time() - t0
    got = [m for m in a.drain(1.5) if m["type"] == "step"]
    seen = [m["step"] for m in got]
    t.ok(0 < len(got) <= 20 + 3 + 4 * posted,
         "200 quick steps are coalesced (%d step messages in %.2f s)" % (len(got), posted), seen)
    t.ok(199 in seen, "the last step is always sent", seen)
    t.ok(all(s in seen for s in nonfinite), "every non-finite step is sent", seen)
    nf = {m["step"]: m for m in got if m["step"] in nonfinite}
    t.ok(nf.get(37, {}).get("loss") == "NaN" and nf.get(88, {}).get("layers", {}).get("l2") == "Infinity",
         "non-finite values travel as strings", nf)
    t.ok(len(seen) == len(set(seen)), "no step is sent twice", seen)
    # Steps spread over time: at most about four a second per run.
    for s in range(200, 260):
        post(d, "run-c", [step(s)])
        time.sleep(0.02)
    got = [m for m in a.drain(1.0) if m["type"] == "step"]
    t.ok(len(got) <= 12, "a steady stream is held to a few messages a second (%d in ~2 s)" % len(got),
         [m["step"] for m in got])
    t.ok(got and got[-1]["step"] == 259, "and still ends at the latest step", [m["step"] for m in got])

    # ---- alerts ----------------------------------------------------------
    a.subscribe("run-n")
    post(d, "run-n", [step(0), step(1)])
    a.drain(0.5)
    t0 = time.time()
    post(d, "run-n", [step(2, loss="NaN")])
    msgs = a.drain(2, until=lambda m: m["type"] == "alert")
    alerts = [m["alert"] for m in msgs if m["type"] == "alert"]
    t.ok(alerts and alerts[0]["kind"] == "nonfinite" and alerts[0]["state"] == "firing"
         and alerts[0]["run"] == "run-n",
         "a NaN loss's alert arrives as an alert message (%.0f ms)" % ((time.time() - t0) * 1000), msgs)
    more = msgs + a.drain(0.5)
    t.ok(any(m["type"] == "run" and m["run"]["run"] == "run-n" and m["run"]["health"] == "critical"
             for m in more), "the run's health change arrives as a run message", more)
    st, ans = d.post("/api/v1/runs/run-n/finish", {"status": "failed"})
    fin = a.drain(2, until=lambda m: m["type"] == "run" and m["run"]["status"] == "failed")
    t.ok(fin and fin[-1]["type"] == "run" and fin[-1]["run"]["status"] == "failed",
         "finishing a run sends a run message", fin)

    # ---- a slow client ---------------------------------------------------
    layers = ["layer.%03d.weight" % i for i in range(100)]

    def nan_batch(base):
        return [{"step": base + i, "loss": 1.0,
                 "layers": {n: ("NaN" if j == 0 else 0.5) for j, n in enumerate(layers)}}
                for i in range(100)]

    def flood(run, n, pause=0.0):
        t0 = time.time()
        for r in range(n):
            post(d, run, nan_batch(r * 100))
            time.sleep(pause)
        return time.time() - t0

    base = flood("slow-base", 40)  # nobody watching this run
    slow = connect(d, rcvbuf=4096)
    slow.subscribe("*")
    good = connect(d)
    good.subscribe("flood")
    recv = []
    # The other viewer reads as a browser does, while the flood goes on.
    reader = threading.Thread(target=lambda: recv.extend(
        good.drain(30, until=lambda m: m["type"] == "step" and m["step"] == 3999)))
    reader.start()
    # 2,000 NaN steps a second at most, each a message that is never
    # coalesced: a pace a reader in Python keeps up with even when a
    # sanitizer slows the daemon; the stopped reader falls behind anyway.
    slow_time = flood("flood", 40, pause=0.05)
    t.ok(slow_time < 3 * base + 2 + 40 * 0.05,
         "a client that stops reading does not slow ingest (%.2f s vs %.2f s unwatched)" % (slow_time, base))
    reader.join()
    steps_good = [m["step"] for m in recv if m["type"] == "step"]
    t.ok(3999 in steps_good, "another viewer still gets everything (%d step messages)" % len(steps_good))
    t.ok(not any(m["type"] == "resync" for m in recv), "and is never told to resync")
    # Now the slow client reads: it was told to resync, or closed.
    kinds = []
    closed = False
    try:
        while True:
            m = slow.recv_json(2)
            kinds.append(m["type"])
            if m["type"] == "resync":
                break
    except Closed:
        closed = True
    except (socket.timeout, OSError):
        pass
    t.ok("resync" in kinds or closed,
         "the slow client was told to resync or closed (resync: %s, closed: %s, %d messages)"
         % ("resync" in kinds, closed, len(kinds)))
    t.ok(kinds.count("step") < 4000, "it did not get every message queued for it")
    slow.close()
    good.close()
    b.close()
    a.close()
    t.ok(all(d.get("/healthz")[0] == 200 for _ in range(3)), "the daemon is fine")

    # ---- Origin ----------------------------------------------------------
    ok_origin = connect(d, headers={"Origin": "http://127.0.0.1:%d" % d.port})
    t.ok(ok_origin.protocol == "gradwatch.v1", "the dashboard's own Origin is allowed")
    ok_origin.close()
    ok_local = connect(d, host_header="localhost", headers={"Origin": "http://localhost:%d" % d.port})
    t.ok(ok_local.protocol == "gradwatch.v1", "so is http://localhost:<port> when the page used that name")
    ok_local.close()
    for host, bad in ((None, "http://evil.example"), (None, "http://127.0.0.1:1"), (None, "null"),
                      (None, "http://localhost:%d" % d.port),
                      ("evil.example", "http://evil.example:%d" % d.port)):
        try:
            connect(d, host_header=host, headers={"Origin": bad}).close()
            refused = False
        except HandshakeError:
            refused = True
        t.ok(refused, "a foreign Origin is refused: %s%s" % (bad, " (Host %s)" % host if host else ""))

tmp_token = os.path.join(os.environ.get("TMPDIR", "/tmp"), "gw-stream-token.%d" % os.getpid())
with open(tmp_token, "w") as f:
    f.write("s3cret-Token\n")
try:
    with Daemon("--token-file", tmp_token) as d:
        try:
            connect(d).close()
            refused = False
        except HandshakeError:
            refused = True
        t.ok(refused, "with a token, a client without it is refused")
        try:
            connect(d, path="/?token=wrong").close()
            refused = False
        except HandshakeError:
            refused = True
        t.ok(refused, "and one with a wrong token")
        w = connect(d, path="/?token=s3cret-Token")
        t.ok(w.subscribe("*") is not None, "?token= lets the browser in")
        post_ok = d.post("/api/v1/ingest", {"run": "tok", "steps": [step(0)]},
                         {"Authorization": "Bearer s3cret-Token"})[0] == 200
        msgs = w.drain(2, until=lambda m: m["type"] == "step")
        t.ok(post_ok and any(m["type"] == "step" and m["run"] == "tok" for m in msgs),
             "and it gets the stream")
        w.close()
        w = connect(d, headers={"Authorization": "Bearer s3cret-Token"})
        t.ok(w.subscribe("tok") is not None, "an Authorization header works too")
        w.close()
finally:
    os.unlink(tmp_token)

t.done()

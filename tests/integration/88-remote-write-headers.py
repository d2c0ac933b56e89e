#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Remote-write's requests on the wire: what a cluster behind a gateway
# sees.  A recording target on a loopback port takes the requests of
# three targets of one gradwatchd: one with a bearer token and a tenant
# header (Mimir's X-Scope-OrgID), one with basic authentication, one
# that answers 401.  Each request must carry the protocol's headers and
# its target's own, and nothing of another target's; the refused one is
# counted as dropped with its error in /metrics, and the others still
# receive every step.
import base64
import http.server
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import TAP, Daemon, free_port  # noqa: E402

STEPS = 200
t = TAP()
tmp = tempfile.mkdtemp(prefix="gw-rw-headers.")
seen = []       # (path, headers, body length) a request
seen_lock = threading.Lock()


class Target(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with seen_lock:
            seen.append((self.path, self.headers, len(body)))
        status = 401 if self.path == "/deny" else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def requests(path):
    with seen_lock:
        return [(h, n) for p, h, n in seen if p == path]


def metrics(d):
    return d.get("/metrics")[1].decode()


def sample_count(text, target, result):
    want = 'gradwatch_remote_write_samples_total{target="%s",result="%s"}' % (target, result)
    for line in text.splitlines():
        if line.startswith(want):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


port = free_port()
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Target)
threading.Thread(target=server.serve_forever, daemon=True).start()
bearer = os.path.join(tmp, "bearer")
password = os.path.join(tmp, "password")
with open(bearer, "w") as f:
    f.write("rw-token\n")
with open(password, "w") as f:
    f.write("s3cret\n")
base = "http://127.0.0.1:%d" % port
d = Daemon("--remote-write", base + "/tenant name=tenant bearer-file=%s header=X-Scope-OrgID:team-a" % bearer,
           "--remote-write", base + "/basic name=basic user=gw password-file=%s" % password,
           "--remote-write", base + "/deny name=deny", tmp=tmp)
try:
    d.start()
    d.post_steps("rw-headers", [{"step": s, "loss": 1.0 / (s + 1), "grad_norm": 0.5,
                                 "layers": {"fc.weight": 0.1}} for s in range(STEPS)])
    deadline = time.time() + 20
    while time.time() < deadline:
        text = metrics(d)
        # Each step: loss, grad_norm, a layer, gradwatch_step and run_health.
        if all(sample_count(text, tg, res) >= STEPS * 5
               for tg, res in (("tenant", "sent"), ("basic", "sent"), ("deny", "dropped"))):
            break
        time.sleep(0.2)
    text = metrics(d)

    tenant, basic, deny = requests("/tenant"), requests("/basic"), requests("/deny")
    t.ok(tenant and basic and deny, "every target received requests",
         "tenant %d, basic %d, deny %d" % (len(tenant), len(basic), len(deny)))
    for name, got in (("tenant", tenant), ("basic", basic), ("deny", deny)):
        t.ok(all(h["Content-Encoding"] == "snappy" and h["Content-Type"] == "application/x-protobuf"
                 and h["X-Prometheus-Remote-Write-Version"] == "0.1.0" and n > 0 for h, n in got),
             "%s: every request is a snappy protobuf body with the remote-write version" % name)
    t.ok(all(h["Authorization"] == "Bearer rw-token" and h["X-Scope-OrgID"] == "team-a"
             for h, _ in tenant), "tenant: the bearer token and the tenant header on every request")
    want_basic = "Basic " + base64.b64encode(b"gw:s3cret").decode()
    t.ok(all(h["Authorization"] == want_basic and h["X-Scope-OrgID"] is None for h, _ in basic),
         "basic: basic authentication, and no other target's header")
    t.ok(all(h["Authorization"] is None and h["X-Scope-OrgID"] is None for h, _ in deny),
         "deny: no credentials of another target")
    t.is_(sample_count(text, "tenant", "sent"), float(STEPS * 5), "tenant: every sample sent")
    t.is_(sample_count(text, "basic", "sent"), float(STEPS * 5), "basic: every sample sent")
    t.ok(sample_count(text, "deny", "dropped") >= STEPS * 5 and sample_count(text, "deny", "sent") == 0,
         "deny: a 401 drops the samples and counts them as dropped, not sent")
    t.ok('gradwatch_remote_write_last_error{target="deny",error="HTTP 401' in text,
         "deny: /metrics names the 401 as the target's last error")
    t.ok('last_error{target="tenant"' not in text and 'last_error{target="basic"' not in text,
         "the targets that accepted have no error")
    t.ok("rw-token" not in text and "s3cret" not in text, "/metrics shows no secret")
finally:
    d.stop()
    server.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()

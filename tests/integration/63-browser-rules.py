#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Browser safety without a token (the HTTP side, header by header): a
write needs Content-Type application/json (a text/plain POST is what any
page may send without a preflight); a request with an Origin must come
from the dashboard's; the Host must be an address, localhost, the
listening name, an --allow-host name or --external-url's (a DNS-rebound
name is not); /healthz is always answered; with a token the Host rule
is off (a rebound page cannot know the token).  A refused request
changes nothing."""
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import BUILD, Daemon, TAP

STEP = b'{"run": "%s", "steps": [{"step": 0, "loss": 1.0}]}'
t = TAP()


def runs(d):
    return sorted(r["run"] for r in d.get("/api/v1/runs")[1]["runs"])


def code(reply):
    st, body = reply
    return st, body.get("error") if isinstance(body, dict) else body


with Daemon("--allow-host", "gw.example", "--external-url", "https://gw.proxy.example/dash") as d:
    p = d.port
    # Content-Type of writes.
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                  None, "application/jsonp", "text/json"):
        h = {} if ctype is None else {"Content-Type": ctype}
        st = d.request("POST", "/api/v1/ingest", STEP % b"w-plain", h)
        t.is_(code(st), (415, "unsupported_media_type"), "ingest with Content-Type %s: 415" % ctype)
    st = d.request("POST", "/api/v1/runs/w-plain/finish", b'{"status": "finished"}',
                   {"Content-Type": "text/plain"})
    t.is_(code(st), (415, "unsupported_media_type"), "finish with text/plain: 415")
    t.is_(runs(d), [], "none of them wrote anything")
    for ctype in ("application/json", "Application/JSON; charset=utf-8", " application/json ;x=1"):
        st, _ = d.request("POST", "/api/v1/ingest", STEP % b"w-json", {"Content-Type": ctype})
        t.is_(st, 200, "ingest with Content-Type '%s': 200" % ctype)

    # Origin.
    for origin, want in (("http://evil.example", 403), ("null", 403),
                         ("http://127.0.0.1:%d" % p, 200), ("http://localhost:%d" % p, 200),
                         ("http://127.0.0.1:%d/x" % p, 403), ("http://127.0.0.1:1", 403),
                         ("http://gw.example:%d" % p, 200), ("https://gw.proxy.example", 200),
                         ("https://gw.proxy.example:8443", 403), ("http://evil.gw.example:%d" % p, 403)):
        host = origin.split("//")[-1] if origin.startswith("http") else "127.0.0.1:%d" % p
        if host.startswith("127.0.0.1:1") and not host.endswith(str(p)):
            host = "127.0.0.1:%d" % p
        host = host.split("/")[0]
        st, _ = d.request("POST", "/api/v1/ingest", STEP % b"w-origin",
                          {"Content-Type": "application/json", "Origin": origin, "Host": host})
        gst, _ = d.get("/api/v1/runs", {"Origin": origin, "Host": host})
        t.is_((st, gst), (want, want), "Origin %s (Host %s): write and read %d" % (origin, host, want))
    st, _ = d.request("POST", "/api/v1/ingest", STEP % b"w-origin2",
                      {"Content-Type": "application/json", "Origin": "http://127.0.0.1:%d" % p,
                       "Host": "localhost:%d" % p})
    t.is_(st, 403, "an Origin that is not the Host's name: 403")

    # Host.
    for host, want in (("evil.example:%d" % p, 403), ("evil.example", 403), ("127.0.0.1:%d" % p, 200),
                       ("localhost:%d" % p, 200), ("[::1]:%d" % p, 200), ("10.1.2.3", 200),
                       ("gw.example:%d" % p, 200), ("GW.EXAMPLE", 200), ("gw.proxy.example", 200),
                       ("gw.example.evil.example", 403), ("bad host", 403)):
        for path in ("/api/v1/runs", "/", "/metrics"):
            st, _ = d.get(path, {"Host": host})
            t.is_(st, want, "Host %s: %s %d" % (host, path, want))
    st, body = d.get("/api/v1/runs", {"Host": "rebound.example:%d" % p})
    t.ok(st == 403 and "--allow-host" in body["message"], "the refusal says what to do: %s" % body)
    st, _ = d.get("/healthz", {"Host": "evil.example"})
    t.is_(st, 200, "/healthz answers whatever the Host")
    st, _ = d.request("POST", "/api/v1/ingest", STEP % b"w-rebound",
                      {"Content-Type": "application/json", "Host": "evil.example:%d" % p})
    t.is_(runs(d), ["w-json", "w-origin"], "no refused request wrote anything")

tok = os.path.join(os.environ.get("TMPDIR", "/tmp"), "gw-rules-%d.token" % os.getpid())
with open(tok, "w") as f:
    f.write("s3cret-token\n")
try:
    with Daemon("--token-file", tok) as d:
        auth = {"Authorization": "Bearer s3cret-token"}
        st, _ = d.get("/api/v1/runs", {"Host": "evil.example"})
        t.is_(st, 401, "with a token: a rebound name without it gets 401")
        st, _ = d.get("/api/v1/runs", dict(auth, Host="gw.internal.example"))
        t.is_(st, 200, "with it, any Host (the token is the guard)")
        st, _ = d.request("POST", "/api/v1/ingest", STEP % b"t", dict(auth, **{"Content-Type": "text/plain"}))
        t.is_(st, 415, "a write still needs application/json")
        st, _ = d.get("/api/v1/runs", dict(auth, Origin="http://evil.example"))
        t.is_(st, 403, "and a foreign Origin is still refused")
finally:
    os.unlink(tok)

# allow-host is a name, nothing else.
for bad in ("gw.example:80", "http://gw.example", "a b", ""):
    r = subprocess.run([os.path.join(BUILD, "gradwatchd"), "-n", "--allow-host", bad],
                       capture_output=True, text=True)
    t.ok(r.returncode != 0 and "allow-host" in r.stderr, "--allow-host '%s' refused: %s" % (bad, r.stderr.strip()[:100]))
t.done()

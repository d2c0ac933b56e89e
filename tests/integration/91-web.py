#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The dashboard's files over HTTP from the real daemon: the embedded set
("/" is index.html, modules and uPlot with their content types and
Cache-Control), 404 for anything else, no way out through "..", and
--web-root serving a folder (its edits seen at once) with the embedded
set behind it; /api/v1/info tells the page where the stream is."""
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import TAP, Daemon  # noqa: E402

t = TAP()


def raw_get(port, path):
    """GET path exactly as given (no client-side normalising): status and body."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs, body


with Daemon() as d:
    st, h, body = raw_get(d.port, "/")
    t.is_(st, 200, "GET / answers")
    t.is_(h.get("content-type"), "text/html; charset=utf-8", "as HTML")
    t.is_(h.get("cache-control"), "no-cache", "revalidated on every load")
    t.ok(b'<script type="module" src="/app.js">' in body, "the dashboard's page, loading its module")
    for path, ctype in (("/app.js", "text/javascript; charset=utf-8"),
                        ("/run.js", "text/javascript; charset=utf-8"),
                        ("/style.css", "text/css; charset=utf-8"),
                        ("/favicon.svg", "image/svg+xml"),
                        ("/vendor/uPlot.esm.js", "text/javascript; charset=utf-8"),
                        ("/vendor/uPlot.min.css", "text/css; charset=utf-8")):
        st, h, body = raw_get(d.port, path)
        t.ok(st == 200 and h.get("content-type") == ctype and len(body) > 100,
             "%s is served as %s" % (path, ctype), (st, h.get("content-type"), len(body)))
    st, h, body = raw_get(d.port, "/vendor/uPlot.esm.js")
    t.ok(b"export { uPlot as default }" in body, "uPlot is the ES module build from npm")
    for path in ("/nope.js", "/../Makefile", "/%2e%2e/Makefile", "/vendor/../../package.json",
                 "/.git/config"):
        st, _, _ = raw_get(d.port, path)
        t.is_(st, 404, "no such file: %s" % path)
    st, info = d.get("/api/v1/info")
    t.ok(st == 200 and info["stream_port"] == d.ws_port and info["auth"] is False,
         "/api/v1/info gives the stream's port", info)

root = tempfile.mkdtemp(prefix="gw-webroot.")
secret = root + ".secret"
try:
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<p>development</p>")
    with open(secret, "w") as f:
        f.write("secret")
    os.symlink(secret, os.path.join(root, "leak.js"))
    with Daemon("--web-root", root) as d:
        st, _, body = raw_get(d.port, "/")
        t.ok(st == 200 and body == b"<p>development</p>", "--web-root serves the folder", body[:40])
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("<p>edited, longer</p>")
        st, _, body = raw_get(d.port, "/")
        t.is_(body, b"<p>edited, longer</p>", "an edit shows on the next load")
        st, h, body = raw_get(d.port, "/vendor/uPlot.esm.js")
        t.ok(st == 200 and len(body) > 10000, "files absent from the folder come from the binary")
        for path in ("/leak.js", "/../" + os.path.basename(secret), "/%2e%2e/" + os.path.basename(secret)):
            st, _, body = raw_get(d.port, path)
            t.ok(st == 404 and b"secret" not in body, "nothing outside the folder: %s" % path)
    rc = None
    with Daemon("--web-root", os.path.join(root, "missing")) as d:
        pass
except RuntimeError as e:
    rc = str(e)
finally:
    shutil.rmtree(root, ignore_errors=True)
    os.unlink(secret)
t.ok(rc is not None, "a missing web root stops the daemon at start", rc)
t.done()

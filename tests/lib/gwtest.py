# SPDX-License-Identifier: MIT
"""Test helpers: TAP output and a real gradwatchd on free loopback ports
with a scratch database, stopped when the `with` block ends."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.environ.get("GW_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GW_BUILD", "build")
if not os.path.isabs(BUILD):
    BUILD = os.path.join(TOP, BUILD)


class TAP:
    """Minimal TAP producer; done() prints the plan and exits."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, *diag):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name), flush=True)
        if not cond:
            self.failed += 1
            for d in diag:
                print("#   %s" % d, flush=True)
        return cond

    def is_(self, got, want, name):
        return self.ok(got == want, name, "got:  %r" % (got,), "want: %r" % (want,))

    def done(self):
        print("1..%d" % self.n, flush=True)
        raise SystemExit(1 if self.failed else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    """gradwatchd on free ports; `with Daemon() as d:` starts and stops it."""

    def __init__(self, *args, db=None, tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="gw-test.")
        self.own_tmp = tmp is None
        self.db = db or os.path.join(self.tmp, "gw.db")
        self.args = list(args)
        self.proc = None

    def start(self):
        """Start on free ports.  A free port may be taken by another process
        before the daemon binds it: a start that cannot listen is tried
        again on new ports, three times at most."""
        for attempt in range(3):
            self.port = free_port()
            self.ws_port = free_port()
            if self.port == self.ws_port:
                continue
            self.url = "http://127.0.0.1:%d" % self.port
            logname = os.path.join(self.tmp, "daemon.log")
            mark = os.path.getsize(logname) if os.path.exists(logname) else 0
            self.log = open(logname, "ab")
            self.proc = subprocess.Popen(
                [os.path.join(BUILD, "gradwatchd"), "--http", "127.0.0.1:%d" % self.port,
                 "--ws", "127.0.0.1:%d" % self.ws_port, "--db", self.db] + self.args,
                stderr=self.log)
            deadline = time.time() + 10
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.get("/healthz")[0] == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            else:
                raise RuntimeError("gradwatchd did not answer /healthz")
            self.proc = None
            self.log.close()
            with open(logname, "rb") as f:
                f.seek(mark)
                if b"cannot listen" not in f.read():
                    raise RuntimeError("gradwatchd exited at start: see %s" % logname)
        raise RuntimeError("gradwatchd could not listen on three pairs of free ports")

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=10)
        self.proc = None
        self.log.close()
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body, headers or {})
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return r.status, parsed

    def get(self, path, headers=None):
        return self.request("GET", path, None, headers)

    def post(self, path, obj, headers=None):
        return self.post_raw(path, json.dumps(obj).encode(), headers)

    def post_raw(self, path, data, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, data, h)

    def post_steps(self, run, steps, per=100):
        """Ingest steps for run, per steps a request; each must answer 200."""
        for i in range(0, len(steps), per):
            st, body = self.post("/api/v1/ingest", {"run": run, "steps": steps[i:i + per]})
            assert st == 200, (st, body)

    def alerts(self, run):
        return self.get("/api/v1/alerts?run=" + run)[1]["alerts"]


def bench_ingest(d, seconds, conns):
    """Load daemon d with bench/ingest (the client library's compact form)
    for seconds on conns connections: its RESULT line as a dict."""
    out = subprocess.run([os.path.join(BUILD, "bench", "ingest"), "-q", "--url",
                          "127.0.0.1:%d" % d.port, "--pid", str(d.proc.pid), "--form", "compact",
                          "--seconds", str(seconds), "--conns", str(conns)],
                         capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("RESULT")][-1]
    return dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)


def remove_db(db):
    """Remove the database file db and its WAL and shared-memory files."""
    for path in (db, db + "-wal", db + "-shm"):
        if os.path.exists(path):
            os.unlink(path)


def trace(name):
    """The steps of the recorded trace tests/data/traces/NAME.jsonl."""
    with open(os.path.join(TOP, "tests", "data", "traces", name + ".jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]

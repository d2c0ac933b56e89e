# SPDX-License-Identifier: MIT
"""A webhook receiver for tests: an HTTP server on a free loopback port
that records every POST by path, and answers each path as told
("ok", a status code such as 503 or 400, or "hang" until released)."""
import http.server
import json
import threading
import time


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.posts = []            # (time, path, parsed body or raw bytes)
        self.modes = {}            # path -> "ok" | int status | "hang"
        self.release = threading.Event()
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(n)
                try:
                    body = json.loads(data)
                except ValueError:
                    body = data
                with rcv.lock:
                    mode = rcv.modes.get(self.path, "ok")
                    if mode == "ok":
                        rcv.posts.append((time.time(), self.path, body,
                                          dict(self.headers)))
                if mode == "hang":
                    rcv.release.wait(30)
                    return
                status = 200 if mode == "ok" else int(mode)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set_mode(self, path, mode):
        with self.lock:
            self.modes[path] = mode

    def bodies(self, path):
        with self.lock:
            return [b for (_, p, b, _) in self.posts if p == path]

    def received(self, path):
        with self.lock:
            return [(t, b, h) for (t, p, b, h) in self.posts if p == path]

    def wait_for(self, path, pred, timeout=10):
        """The first body posted to path for which pred holds, or None."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, b, _ in self.received(path):
                if pred(b):
                    return t, b
            time.sleep(0.02)
        return None

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

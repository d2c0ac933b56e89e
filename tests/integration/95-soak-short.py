#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/soak.py for 15 seconds: ingest from four writers (runs finishing
and new ones starting), queries and a viewer together give no error, the
viewer stays connected and the WAL stays bounded.  The soak of `make bench`
(BENCH_SOAK, 600 s) also judges memory; 15 s is too short for that, and
this only keeps the script working."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import TOP, TAP

t = TAP()
p = subprocess.run([sys.executable, os.path.join(TOP, "bench", "soak.py"), "--seconds", "15",
                    "--rate", "10", "--run-requests", "40"],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
out = p.stdout.decode(errors="replace")
for line in out.splitlines():
    if not line.startswith("RESULT"):
        print("# " + line)
res = {}
for line in out.splitlines():
    if line.startswith("RESULT bench=soak "):
        res = dict(kv.split("=", 1) for kv in line.split()[1:])
t.is_(p.returncode, 0, "the soak passes")
t.ok(int(res.get("points", 0)) > 0 and int(res.get("runs", 0)) > 4,
     "points were acknowledged and runs finished and started (%s runs)" % res.get("runs"))
t.is_((res.get("errors"), res.get("query_errors")), ("0", "0"), "no ingest or query error")
t.ok(int(res.get("queries", 0)) > 20, "queries ran (%s)" % res.get("queries"))
t.is_(res.get("viewer_connected"), "1", "the viewer stayed connected and was sent steps")
t.done()

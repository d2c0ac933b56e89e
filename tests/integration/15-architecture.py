#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The file list is the architecture (docs/ARCHITECTURE.md): measured from
# the built objects' symbols (a module uses a function another defines),
# no two modules of the daemon or of the client library call each other
# in a circle; SQLite is called only from the storage modules (store*,
# query*); every .c file is under 900 lines; ARCHITECTURE.md names every
# .c file.
import os
import re
import subprocess
import sys

TOP = os.environ.get("GW_TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GW_BUILD") or os.path.join(TOP, "build")
MAX_LINES = 900
# Modules that may call SQLite: storage owns its SQL.
SQL_MODULES = re.compile(r"^(store|query)(_[a-z0-9_]+)?$")

n = 0


def ok(cond, name, diag=()):
    global n
    n += 1
    print(("ok" if cond else "not ok"), n, "-", name)
    for line in diag:
        print("#", line)
    return cond


def symbols(obj):
    """The global functions and data obj defines and those it uses."""
    out = subprocess.run(["nm", obj], capture_output=True, text=True,
                         check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
    return defined, used


def graph(srcdir, objdir):
    mods = {}
    for f in sorted(os.listdir(os.path.join(TOP, srcdir))):
        if f.endswith(".c"):
            obj = os.path.join(objdir, f[:-2] + ".o")
            if not os.path.exists(obj):
                raise SystemExit("Bail out! %s not built (run make)" % obj)
            mods[f[:-2]] = symbols(obj)
    owner = {}
    for m, (defined, _) in mods.items():
        for s in defined:
            owner[s] = m
    edges = {m: {} for m in mods}
    for m, (_, used) in mods.items():
        for s in used:
            o = owner.get(s)
            if o is not None and o != m:
                edges[m].setdefault(o, []).append(s)
    return mods, edges


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def describe(comp, edges):
    lines = []
    for a in comp:
        for b in comp:
            if b in edges[a]:
                lines.append("%s -> %s: %s" % (a, b,
                             ", ".join(sorted(edges[a][b])[:4])))
    return lines


arch = open(os.path.join(TOP, "docs", "ARCHITECTURE.md")).read()
for srcdir, objdir in (("daemon", os.path.join(BUILD, "daemon")),
                       ("client_lib", os.path.join(BUILD, "client_lib"))):
    mods, edges = graph(srcdir, objdir)
    found = cycles(edges)
    diag = []
    for comp in found:
        diag += describe(comp, edges)
    ok(not found, "%s: no modules calling each other in a circle (%d modules)"
       % (srcdir, len(mods)), diag)

    long_files = []
    for m in mods:
        path = os.path.join(TOP, srcdir, m + ".c")
        with open(path) as f:
            lines = sum(1 for _ in f)
        if lines >= MAX_LINES:
            long_files.append("%s.c: %d lines" % (m, lines))
    ok(not long_files, "%s: every .c file under %d lines" % (srcdir, MAX_LINES),
       long_files)

    missing = [m + ".c" for m in mods
               if not re.search(r"\b%s\.c\b" % re.escape(m), arch)]
    ok(not missing, "%s: docs/ARCHITECTURE.md names every .c file" % srcdir,
       missing)

    if srcdir == "daemon":
        callers = []
        for m, (_, used) in mods.items():
            sql = sorted(s for s in used if s.startswith("sqlite3_"))
            if sql and not SQL_MODULES.match(m):
                callers.append("%s.c: %s" % (m, ", ".join(sql[:5])))
        ok(not callers, "daemon: SQLite is called only from store* and query*",
           callers)

print("1..%d" % n)

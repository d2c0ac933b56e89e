#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A database of schema version 2 (0001_init.sql + 0002_notices.sql, raw
little-endian `steps` and `vals` blobs as 0001 describes them), written
here with Python's sqlite3 as gradwatchd 0.1 left it, is migrated to
version 3 by the real gradwatchd: every point comes back bit for bit
through the API (export and points, whole and in ranges that start inside
old chunks), the runs' and series' `points` are distinct counts, the
schema version is 3, alerts and the notice row survive, ingest keeps
working, and a restart changes nothing.  A damaged legacy chunk (a blob of
the wrong length) is reported, never silently dropped."""
import json, math, os, random, re, shutil, sqlite3, struct, sys, tempfile, time
import urllib.parse
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import TOP, Daemon, TAP

t = TAP()
rng = random.Random(20261204)
NOW = time.time()


def f64(b):
    return struct.unpack("<d", b)[0]


def rand_double():
    """A finite double with random bits (sign, exponent and mantissa)."""
    while True:
        v = f64(rng.getrandbits(64).to_bytes(8, "little"))
        if math.isfinite(v):
            return v


def rand_f32(scale=1.0):
    """A float32 widened to double, as PyTorch's norms arrive."""
    v = scale * math.exp(rng.gauss(0, 0.3))
    return struct.unpack("<f", struct.pack("<f", v))[0]


NAN_PAYLOAD = f64(bytes.fromhex("0100000000f8ffff"))    # sign set, payload 1
EDGES = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
         -1.7976931348623157e308, 1.0, -1.0, 0.1, 1e-300, math.nan, math.inf, -math.inf,
         NAN_PAYLOAD, 3.4028234663852886e38, 1.401298464324817e-45]


def key(v):
    """A value's identity: the class for non-finite values, else its bits."""
    if isinstance(v, str):
        return v
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return struct.pack("<d", v).hex()


def vclass(v):
    if math.isnan(v):
        return 1
    if math.isinf(v):
        return 2 if v > 0 else 3
    return 0


# ---- the legacy database ---------------------------------------------------
# runs[key] = {"meta": ..., "series": {(kind, name): [chunk, ...]}}; a chunk
# is a list of (step, value) in ascending steps.  A series' chunks may
# interleave (0001 allows it) but never share a step.
def chunks_of(points, sizes):
    out, i = [], 0
    for n in sizes:
        if i >= len(points):
            break
        out.append(points[i:i + n])
        i += n
    if i < len(points):
        out.append(points[i:])
    return out


def build_runs():
    runs = {}
    # A: consecutive steps, chunks of 50 as the old writer made them, then
    # one of 10,000 (one big request), float32 norms, random doubles with
    # non-finite values, a repeating lr, a clock.
    a = {}
    steps = list(range(12000))
    a[("loss", "loss")] = chunks_of([(s, rand_f32(2.0)) for s in steps], [50] * 40 + [10000])
    gn = [(s, rand_double() if s % 97 else [math.nan, math.inf, -math.inf][s % 3]) for s in steps]
    a[("grad_norm", "grad_norm")] = chunks_of(gn, [50] * 40 + [10000])
    a[("lr", "lr")] = chunks_of([(s, 3e-4 if s < 6000 else 1.5e-4) for s in steps], [50] * 40 + [10000])
    a[("time", "time")] = chunks_of([(s, 1764061200.0 + 0.25 * s + rng.random() * 1e-3) for s in steps],
                                    [50] * 40 + [10000])
    for i in range(3):
        a[("layer_grad", "model.layers.%d.mlp.weight" % i)] = chunks_of(
            [(s, rand_f32(0.01 * (i + 1))) for s in steps], [50] * 40 + [10000])
    a[("layer_weight", "model.layers.0.mlp.weight")] = chunks_of(
        [(s, rand_f32(30.0)) for s in range(0, 12000, 100)], [60, 60])
    runs["legacy-a"] = {"status": "running", "health": "ok", "project": "mig", "series": a}

    # B: steps that are not consecutive: a stride, irregular gaps, two
    # chunks whose ranges interleave (evens and odds), single-point chunks
    # (a trickle), and a jump to a step far beyond the rest.
    b = {}
    b[("loss", "loss")] = chunks_of([(s, rand_f32()) for s in range(0, 5000, 10)], [100] * 5)
    irregular, s = [], 3
    while s < 20000:
        irregular.append((s, rand_double()))
        s += rng.choice([1, 1, 2, 7, 50, 333])
    b[("metric", "eval/accuracy")] = chunks_of(irregular, [rng.randint(1, 60) for _ in range(400)])
    evens = [(s, rand_f32()) for s in range(0, 400, 2)]
    odds = [(s, rand_f32()) for s in range(1, 400, 2)]
    b[("layer_grad", "interleaved.weight")] = [evens, odds]
    b[("grad_norm", "grad_norm")] = [[(s, rand_f32())] for s in range(0, 40, 4)] + \
        [[(5000, 1.5), (5001, 1.25), (2 ** 40, 2.5)]]
    runs["legacy-b"] = {"status": "finished", "health": "ok", "project": "mig", "series": b}

    # C: non-finite values and edge values everywhere, a chunk with no
    # finite value at all, a failed critical run with alerts.
    c = {}
    c[("loss", "loss")] = [[(i, v) for i, v in enumerate(EDGES)],
                           [(100 + i, v) for i, v in enumerate([math.nan, math.nan, math.inf, -math.inf])],
                           [(200 + i, EDGES[i % len(EDGES)] if i % 5 else rand_double()) for i in range(300)]]
    c[("grad_norm", "grad_norm")] = [[(s, [math.inf, rand_f32(), math.nan][s % 3]) for s in range(0, 90, 3)]]
    runs["legacy-c"] = {"status": "failed", "health": "critical", "project": "other", "series": c}
    return runs


def pack_chunk(pts):
    steps = [s for s, _ in pts]
    vals = b"".join(struct.pack("<d", v) for _, v in pts)
    consecutive = steps == list(range(steps[0], steps[0] + len(steps)))
    sblob = None if consecutive else b"".join(struct.pack("<q", s) for s in steps)
    fin = [(v, s) for s, v in pts if math.isfinite(v)]
    mn = min(fin, key=lambda x: x[0]) if fin else (None, None)
    mx = max(fin, key=lambda x: x[0]) if fin else (None, None)
    # First step holding the min / max (0001: the summary's steps).
    if fin:
        mn = (mn[0], min(s for s, v in pts if math.isfinite(v) and v == mn[0]))
        mx = (mx[0], min(s for s, v in pts if math.isfinite(v) and v == mx[0]))
    return (steps[0], steps[-1], len(pts), sblob, vals, mn[0], mn[1], mx[0], mx[1],
            sum(1 for _, v in pts if not math.isfinite(v)))


def write_legacy(path, runs):
    db = sqlite3.connect(path)
    db.execute("PRAGMA page_size = 16384")
    db.execute("PRAGMA journal_mode = WAL")
    for f in ("0001_init.sql", "0002_notices.sql"):
        with open(os.path.join(TOP, "schema", f)) as fh:
            db.executescript(fh.read())
    db.execute("PRAGMA user_version = 2")
    chunk_ids = {}
    for rk, r in runs.items():
        all_steps = [s for ch in r["series"].values() for c in ch for s, _ in c]
        distinct = sum(len(c) for ch in r["series"].values() for c in ch)
        # runs.points counted writes in version 2: resends counted again.
        cur = db.execute(
            "INSERT INTO runs (key, project, status, health, config, meta, first_step, last_step,"
            " started_at, last_seen, points, dropped) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (rk, r["project"], r["status"], r["health"], json.dumps({"lr": 3e-4}),
             json.dumps({"project": r["project"], "config": {"lr": 3e-4}}),
             min(all_steps), max(all_steps), NOW - 3600, NOW - 1, distinct + 1234, 7))
        run_id = cur.lastrowid
        r["id"] = run_id
        for (kind, name), chunks in r["series"].items():
            pts = sorted(p for c in chunks for p in c)
            last_s, last_v = pts[-1]
            cur = db.execute(
                "INSERT INTO series (run_id, kind, name, points, last_step, last_value, last_class,"
                " numel, depth, shape) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (run_id, kind, name, len(pts), last_s, last_v if math.isfinite(last_v) else None,
                 vclass(last_v), 4096 if kind == "layer_grad" else None,
                 1 if kind == "layer_grad" else None, "[64,64]" if kind == "layer_grad" else None))
            sid = cur.lastrowid
            for i, c in enumerate(chunks):
                cur = db.execute(
                    "INSERT INTO chunks (series_id, first_step, last_step, n, steps, vals, min_value,"
                    " min_step, max_value, max_step, nonfinite) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (sid,) + pack_chunk(c))
                chunk_ids[(rk, kind, name, i)] = cur.lastrowid
    # Alerts of run C (one firing with a NaN value, one resolved with +Inf)
    # and a notice of the firing one, already sent.
    c_id = runs["legacy-c"]["id"]
    cur = db.execute(
        "INSERT INTO alerts (run_id, kind, severity, state, series, onset_step, fire_step, fired_at,"
        " value, value_class, baseline, threshold, message, detail) VALUES"
        " (?, 'nonfinite', 'critical', 'firing', 'loss', 11, 11, ?, NULL, 1, 2.5, NULL,"
        " 'loss is NaN at step 11', '{\"first_step\": 11}')", (c_id, NOW - 100))
    alert_firing = cur.lastrowid
    cur = db.execute(
        "INSERT INTO alerts (run_id, kind, severity, state, series, onset_step, fire_step,"
        " resolve_step, fired_at, resolved_at, value, value_class, baseline, threshold, message)"
        " VALUES (?, 'grad_explosion', 'warning', 'resolved', 'grad_norm', 30, 33, 60, ?, ?,"
        " NULL, 2, 1.0, 10.0, 'gradient norm is infinite')", (c_id, NOW - 200, NOW - 150))
    alert_resolved = cur.lastrowid
    body = json.dumps({"id": "x-%d" % alert_firing, "seq": 1, "status": "firing"})
    db.execute(
        "INSERT INTO notices (receiver, alert_id, seq, status, state, created_at, done_at,"
        " attempts, body) VALUES ('webhook', ?, 1, 'firing', 'sent', ?, ?, 1, ?)",
        (alert_firing, NOW - 99, NOW - 98, body))
    db.commit()
    instance = db.execute("SELECT value FROM settings WHERE name = 'instance'").fetchone()[0]
    db.close()
    return chunk_ids, alert_firing, alert_resolved, instance


def expected(runs):
    """{run: {(kind, name): {step: value}}}."""
    out = {}
    for rk, r in runs.items():
        out[rk] = {sk: {s: v for c in chunks for s, v in c} for sk, chunks in r["series"].items()}
    return out


# ---- reading back through the API -----------------------------------------
def export(d, run):
    st, body = d.request("GET", "/api/v1/runs/%s/export?format=jsonl" % run)
    got = {}
    if st != 200:
        return st, got
    text = body.decode() if isinstance(body, bytes) else json.dumps(body)
    for line in text.splitlines():
        if not line.strip():
            continue
        # "-0" is negative zero (JSON numbers are not integers or reals).
        o = json.loads(line, parse_int=lambda x: -0.0 if x == "-0" else int(x))
        got.setdefault((o["kind"], o["series"]), {})[o["step"]] = o["value"]
    return st, got


def same(got, want):
    """'' if the {step: value} maps agree bit for bit, else the first difference."""
    if set(got) != set(want):
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        return "steps differ: %d got, %d want; missing %s, extra %s" % (len(got), len(want), missing, extra)
    for s in sorted(want):
        if key(got[s]) != key(want[s]):
            return "step %d: got %r (%s), want %r (%s)" % (s, got[s], key(got[s]), want[s], key(want[s]))
    return ""


def points(d, run, kind, name, lo=None, hi=None):
    q = {"series": "%s:%s" % (kind, name), "max": "1000000"}
    if lo is not None:
        q["from"] = str(lo)
        q["to"] = str(hi)
    st, body = d.get("/api/v1/runs/%s/points?%s" % (run, urllib.parse.urlencode(q)))
    if st != 200:
        return st, {}, body
    s = body["series"]["%s:%s" % (kind, name)]
    return st, dict(zip(s["steps"], s["values"])), s


def check_all(d, runs, want, label):
    """Every point of every run, by export and by points, whole and in ranges."""
    for rk in runs:
        st, got = export(d, rk)
        bad = ["%s:%s: %s" % (k[0], k[1], same(got.get(k, {}), v)) for k, v in want[rk].items()
               if same(got.get(k, {}), v)]
        extra = sorted(set(got) - set(want[rk]))
        t.ok(st == 200 and not bad and not extra,
             "%s: %s's export gives every point bit for bit (%d series, %d points)"
             % (label, rk, len(want[rk]), sum(len(v) for v in want[rk].values())),
             "HTTP %s" % st, *(bad[:5] + ["extra series %s" % extra] if extra else bad[:5]))
        bad = []
        for (kind, name), pts in want[rk].items():
            st, got, raw = points(d, rk, kind, name)
            why = "HTTP %d %s" % (st, raw) if st != 200 else same(got, pts)
            if why:
                bad.append("%s:%s: %s" % (kind, name, why))
            # Ranges that start and end inside old chunks.
            steps = sorted(pts)
            for _ in range(4):
                i = rng.randrange(len(steps))
                j = min(len(steps) - 1, i + rng.randrange(1, 300))
                lo, hi = steps[i] + (1 if rng.random() < 0.3 and i < j else 0), steps[j]
                sub = {s: v for s, v in pts.items() if lo <= s <= hi}
                st, got, raw = points(d, rk, kind, name, lo, hi)
                why = "HTTP %d %s" % (st, raw) if st != 200 else same(got, sub)
                if why:
                    bad.append("%s:%s [%d, %d]: %s" % (kind, name, lo, hi, why))
        t.ok(not bad, "%s: %s's points come back whole and by range, bit for bit" % (label, rk), *bad[:6])


def check_counts(d, runs, want, label):
    for rk in runs:
        st, r = d.get("/api/v1/runs/%s" % rk)
        total = sum(len(v) for v in want[rk].values())
        t.ok(st == 200 and r.get("points") == total,
             "%s: %s's points is the distinct count %d" % (label, rk, total),
             "got %r" % (r.get("points") if st == 200 else (st, r)))
        bad = []
        for s in (r.get("series") or []) if st == 200 else []:
            k = (s["kind"], s["name"])
            if k not in want[rk]:
                bad.append("unexpected series %s" % (k,))
            elif s["points"] != len(want[rk][k]) or s["last_step"] != max(want[rk][k]):
                bad.append("%s: points %r last_step %r, want %d, %d" % (
                    k, s["points"], s["last_step"], len(want[rk][k]), max(want[rk][k])))
        if st == 200 and len(r.get("series") or []) != len(want[rk]):
            bad.append("%d series, want %d" % (len(r.get("series") or []), len(want[rk])))
        t.ok(st == 200 and not bad, "%s: %s's series keep their counts and last steps" % (label, rk), *bad[:5])


# This binary's version: the number of migrations (version 3 re-encodes
# the legacy chunks; later ones add tables, e.g. 0004's remote-write log).
LATEST = len([f for f in os.listdir(os.path.join(TOP, "schema")) if re.match(r"^[0-9]{4}_.*\.sql$", f)])


def schema_version(d):
    st, info = d.get("/api/v1/info")
    return info.get("schema_version") if st == 200 else (st, info)


def db_query(path, sql, args=()):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


tmp = tempfile.mkdtemp(prefix="gw-migrate.")
try:
    runs = build_runs()
    want = expected(runs)
    path = os.path.join(tmp, "legacy.db")
    chunk_ids, alert_firing, alert_resolved, instance = write_legacy(path, runs)
    pristine = os.path.join(tmp, "pristine.db")
    shutil.copy(path, pristine)
    t.is_(db_query(path, "PRAGMA user_version")[0][0], 2, "the legacy database is at schema version 2")

    # ---- the migration ------------------------------------------------------
    d = Daemon(db=path, tmp=tmp)
    t0 = time.time()
    try:
        d.start()
        started = True
    except RuntimeError as e:
        started = False
        with open(os.path.join(tmp, "daemon.log")) as f:
            print("# " + "\n# ".join(f.read().splitlines()[-20:]))
    t.ok(started, "gradwatchd starts on the version-2 database (%.1f s)" % (time.time() - t0))
    if not started:
        t.done()
    t.is_(schema_version(d), LATEST, "GET /api/v1/info says schema_version %d" % LATEST)
    check_all(d, runs, want, "migrated")
    check_counts(d, runs, want, "migrated")

    st, body = d.get("/api/v1/alerts?run=legacy-c")
    alerts = {a["id"]: a for a in body.get("alerts", [])} if st == 200 else {}
    af, ar = alerts.get(alert_firing, {}), alerts.get(alert_resolved, {})
    t.ok(af.get("kind") == "nonfinite" and af.get("state") == "firing" and af.get("value") == "NaN"
         and af.get("onset_step") == 11 and af.get("message") == "loss is NaN at step 11",
         "the firing alert survives, NaN value and all", "got %r" % af)
    t.ok(ar.get("kind") == "grad_explosion" and ar.get("state") == "resolved"
         and ar.get("value") == "Infinity" and ar.get("resolve_step") == 60,
         "the resolved alert survives, +Infinity value and all", "got %r" % ar)

    # ---- ingest after the migration ------------------------------------------
    layer = "model.layers.1.mlp.weight"
    new_steps = []
    for s in range(12000, 12050):
        new_steps.append({"step": s, "loss": rand_f32(2.0), "grad_norm": rand_f32(),
                          "layers": {layer: rand_f32(0.02)}})
    new_steps.append({"step": 100, "loss": 0.125})          # a resend replaces its value
    st, body = d.post("/api/v1/ingest", {"run": "legacy-a", "steps": new_steps})
    t.is_(st, 200, "ingest into a migrated run is accepted")
    for x in new_steps:
        want["legacy-a"][("loss", "loss")][x["step"]] = x["loss"]
        if "grad_norm" in x:
            want["legacy-a"][("grad_norm", "grad_norm")][x["step"]] = x["grad_norm"]
            want["legacy-a"][("layer_grad", layer)][x["step"]] = x["layers"][layer]
    st, body = d.post("/api/v1/ingest", {"run": "after-migration", "steps": [
        {"step": s, "loss": 1.0 / (s + 1), "grad_norm": "NaN" if s == 7 else 2.0} for s in range(20)]})
    t.is_(st, 200, "ingest into a new run is accepted")
    runs["after-migration"] = {}
    want["after-migration"] = {("loss", "loss"): {s: 1.0 / (s + 1) for s in range(20)},
                               ("grad_norm", "grad_norm"): {s: math.nan if s == 7 else 2.0 for s in range(20)}}
    check_all(d, runs, want, "after ingest")
    check_counts(d, runs, want, "after ingest")
    t.is_(d.stop(), 0, "the daemon stops cleanly after the migration")

    # ---- what is on disk -------------------------------------------------------
    cols = [r[1] for r in db_query(path, "PRAGMA table_info(chunks)")]
    t.ok("data" in cols and "vals" not in cols and "steps" not in cols,
         "chunks hold the new data column and no longer the raw steps and vals", "columns %s" % cols)
    if "data" in cols:
        nulls = db_query(path, "SELECT count(*) FROM chunks WHERE data IS NULL")[0][0]
        t.is_(nulls, 0, "every chunk was re-encoded")
    t.is_(db_query(path, "SELECT value FROM settings WHERE name = 'instance'")[0][0], instance,
          "the database keeps its instance id")
    t.is_(db_query(path, "SELECT receiver, alert_id, seq, state, attempts FROM notices WHERE alert_id = ?",
                   (alert_firing,)), [("webhook", alert_firing, 1, "sent", 1)], "the notice row survives")
    t.is_(db_query(path, "PRAGMA integrity_check"), [("ok",)], "the migrated database passes integrity_check")
    t.is_(db_query(path, "PRAGMA foreign_key_check"), [], "and foreign_key_check")

    # ---- a restart changes nothing ---------------------------------------------
    d.start()
    t.is_(schema_version(d), LATEST, "after a restart the schema version is still %d" % LATEST)
    check_all(d, runs, want, "restarted")
    check_counts(d, runs, want, "restarted")

    # ---- an idle daemon gives older chunks their block summaries --------------
    top = db_query(path, "SELECT max(id) FROM chunks")[0][0]
    cur, deadline = None, time.time() + 15
    while time.time() < deadline:
        row = db_query(path, "SELECT value FROM settings WHERE name = 'blocks_backfilled_through'")
        cur = int(row[0][0]) if row else None
        if cur == top:
            break
        time.sleep(0.2)
    t.is_(cur, top, "an idle daemon looks at every older chunk for block summaries")
    t.ok(db_query(path, "SELECT count(*) FROM chunk_blocks")[0][0] > 0,
         "and writes them for the chunks that can have them")
    check_all(d, runs, want, "backfilled")
    t.is_(d.stop(), 0, "the daemon stops cleanly again")
    with open(os.path.join(tmp, "daemon.log")) as f:
        log = f.read()

    # ---- a damaged legacy chunk is reported ------------------------------------
    # Two chunks of the pristine copy lose their shape: legacy-a's lr chunk 3
    # gets a vals blob 3 bytes short, legacy-b's eval/accuracy chunk 2 a
    # steps blob one step too long.
    bad_path = os.path.join(tmp, "damaged.db")
    shutil.copy(pristine, bad_path)
    bad_vals = chunk_ids[("legacy-a", "lr", "lr", 3)]
    bad_steps = chunk_ids[("legacy-b", "metric", "eval/accuracy", 2)]
    db = sqlite3.connect(bad_path)
    db.execute("UPDATE chunks SET vals = substr(vals, 1, length(vals) - 3) WHERE id = ?", (bad_vals,))
    db.execute("UPDATE chunks SET steps = steps || zeroblob(8) WHERE id = ?", (bad_steps,))
    db.commit()
    db.close()
    bad_tmp = os.path.join(tmp, "damaged")
    os.mkdir(bad_tmp)
    d2 = Daemon(db=bad_path, tmp=bad_tmp)
    try:
        d2.start()
        started = True
    except RuntimeError:
        started = False
        d2.proc.wait(timeout=10)
    with open(os.path.join(bad_tmp, "daemon.log")) as f:
        blog = f.read()
    reported = [cid for cid in (bad_vals, bad_steps)
                if any(("chunk %d" % cid) in line or ("chunk id %d" % cid) in line for line in blog.splitlines())]
    t.ok(len(reported) == 2, "the log names both damaged chunks (ids %d and %d)" % (bad_vals, bad_steps),
         *["log: " + l for l in blog.splitlines()[-10:]])
    if not started:
        # Refusing to start must leave the database as it was.
        t.ok(d2.proc.returncode != 0, "gradwatchd refuses to start on damaged chunks (exit %s)" % d2.proc.returncode)
        t.is_(db_query(bad_path, "PRAGMA user_version")[0][0], 2, "the refused database stays at version 2")
        t.is_(db_query(bad_path, "SELECT length(vals) FROM chunks WHERE id = ?", (bad_vals,))[0][0],
              8 * len(runs["legacy-a"]["series"][("lr", "lr")][3]) - 3, "and keeps the damaged chunk as it was")
        d2.proc = None
        d2.log.close()
    else:
        # Starting means the damaged chunks were set aside, not lost: every
        # other point is there, and the report stays findable.
        t.is_(schema_version(d2), LATEST, "gradwatchd starts on the damaged database, at version %d" % LATEST)
        damaged = {("legacy-a", ("lr", "lr")): runs["legacy-a"]["series"][("lr", "lr")][3],
                   ("legacy-b", ("metric", "eval/accuracy")): runs["legacy-b"]["series"][("metric", "eval/accuracy")][2]}
        bad = []
        for (rk, sk), pts in damaged.items():
            st, got = export(d2, rk)
            rest = {s: v for s, v in want[rk][sk].items() if s not in dict(pts)}
            why = same({s: v for s, v in got.get(sk, {}).items() if s not in dict(pts)}, rest)
            if why:
                bad.append("%s %s: %s" % (rk, sk, why))
        t.ok(not bad, "every point outside the damaged chunks comes back", *bad)
        d2.stop()
finally:
    shutil.rmtree(tmp, ignore_errors=True)
t.done()

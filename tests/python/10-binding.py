#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The ctypes binding against a live gradwatchd: its enums print their
names and compare as their values, every value of every kind arrives
(non-finite ones as such), health and alerts are reported, bad values
are counted and never raise, bad options raise at open, the environment
is read as in C, a run is closed by its `with` block (failed on an
exception) and at exit (failed after a crash), and
`pip install ./client_lib/python` works offline (pip's build isolation
on) and gives a package that works outside the checkout: a wheel tagged
for the platform when it bundles the library (py3-none-any without);
`make install-python PREFIX=...` installs it under the prefix."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwpy import BUILD, PKG, PYTHON, TOP, TAP, Daemon, close_to, env_for_child, require_lib, points  # noqa: E402

require_lib()
import gradwatch  # noqa: E402

t = TAP()
t.ok(os.path.exists(gradwatch.library_path()), "the library is found: %s" % gradwatch.library_path())
t.is_(gradwatch.library_version(), gradwatch.__version__, "its version is the package's")

# ---- the enums print their names and compare as their values ---------------
H, S = gradwatch.Health, gradwatch.Severity
t.is_(str(H.CRITICAL), "Health.CRITICAL", "str() of a Health is its name")
t.is_(f"{H.WARNING}", "Health.WARNING", "so is format()")
t.ok(H.CRITICAL == 3 and H.OK < H.WARNING and isinstance(H.OK, int), "Health is still an IntEnum")
t.is_((str(gradwatch.Status.FULL), f"{gradwatch.Status.OK}", gradwatch.Status.FULL == -3),
      ("Status.FULL", "Status.OK", True), "Status prints its name too")
t.is_((str(S.CRITICAL), f"{S.WARNING}", S.INFO.value), ("Severity.CRITICAL", "Severity.WARNING", "info"),
      "Severity prints its name")
t.ok(S.CRITICAL == "critical" and "warning" == S.WARNING and isinstance(S.INFO, str)
     and {"critical": 1}.get(S.CRITICAL) == 1, "Severity equals the daemon's word for it")
t.is_((S.of("warning"), S.of("dire"), type(S.of("dire"))), (S.WARNING, "dire", str),
      "an unknown severity stays a plain str")
a = gradwatch.Alert(kind="nonfinite", severity=S.CRITICAL, series="fc.weight", onset_step=28,
                    fire_step=30, message="loss is NaN")
t.is_(str(a), "critical nonfinite on fc.weight at step 30 (since 28): loss is NaN", "str(alert) is one line")
t.is_(repr(a), "Alert(kind='nonfinite', severity=Severity.CRITICAL, series='fc.weight', onset_step=28, "
      "fire_step=30, message='loss is NaN')", "repr(alert) names every field")

N = 200


def run_child(code, **env):
    """Run code in a fresh interpreter that imports gradwatch; (rc, out, err)."""
    p = subprocess.run([PYTHON, "-c", code], env=env_for_child(**env), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


with Daemon() as d:
    # ---- every kind of value arrives -------------------------------------------
    with gradwatch.Run(project="py", name="py-all", url=d.url, config={"lr": 0.1, "depth": 3},
                       flush_interval=0.05) as run:
        t.is_(run.key, "py-all", "the run key is the name given")
        fc = run.register_layer("fc.weight", shape=(4, 3), depth=0)
        t.is_(run.register_layer("fc.weight"), fc, "registering a name again gives the same id")
        acc = run.register_metric("accuracy")
        for s in range(N):
            if s % 2:
                run.log(s, loss=1.0 / (s + 1), grad_norm=s * 0.5, lr=0.01, layers={"fc.weight": s * 0.1,
                        "fc.bias": 2.0 + s}, weights={"fc.weight": 3.0}, clip=(1.0, s * 0.5),
                        skipped=False, loss_scale=1024.0, metrics={"accuracy": s / N}, time=1.7e9 + s)
            else:
                run.log_loss(s, 1.0 / (s + 1))
                run.log_grad_norm(s, s * 0.5)
                run.log_lr(s, 0.01)
                run.log_layer_grad(s, fc, s * 0.1)
                run.log_layer_grads(s, [run.register_layer("fc.bias")], [2.0 + s])
                run.log_layer_weight(s, fc, 3.0)
                run.log_clip(s, 1.0, s * 0.5)
                run.log_skipped(s, False, 1024.0)
                run.log_metric(s, acc, s / N)
                run.log_step_time(s, 1.7e9 + s)
        run.log(N, loss=float("nan"), grad_norm=float("inf"), layers={"fc.weight": float("-inf")})
        t.ok(run.flush(5.0), "flush: everything accepted")
        t.is_(run.errors, 0, "no value was refused")
        t.is_(run.dropped, 0, "nothing dropped")
        t.ok(run.health in (gradwatch.Health.OK, gradwatch.Health.WARNING, gradwatch.Health.CRITICAL),
             "health is reported after the first answer (%r)" % run.health)
        t.ok(isinstance(run.alerts, list) and all(isinstance(a, gradwatch.Alert) for a in run.alerts),
             "alerts is a list of Alert")
    t.is_(run.last_status, gradwatch.Status.OK, "closing sent the rest")
    st, info = d.get("/api/v1/runs/py-all")
    t.is_((st, info["status"], info["project"], info["config"]), (200, "finished", "py", {"lr": 0.1, "depth": 3}),
          "the run is finished, with its project and config")
    kinds = {(s["kind"], s["name"]): s["points"] for s in info["series"]}
    want = {("loss", "loss"): N + 1, ("grad_norm", "grad_norm"): N + 1, ("lr", "lr"): N,
            ("layer_grad", "fc.weight"): N + 1, ("layer_grad", "fc.bias"): N,
            ("layer_weight", "fc.weight"): N, ("clip_max_norm", "clip_max_norm"): N,
            ("clip_pre_norm", "clip_pre_norm"): N, ("skipped", "skipped"): N,
            ("loss_scale", "loss_scale"): N, ("metric", "accuracy"): N, ("time", "time"): N + 1}
    t.is_(kinds, want, "every series has every point (the library stamps the last step's time)")
    fcw = [s for s in info["series"] if s["kind"] == "layer_grad" and s["name"] == "fc.weight"][0]
    t.is_((fcw.get("shape"), fcw.get("depth"), fcw.get("numel")), ([4, 3], 0, 12),
          "a layer carries its shape, depth and numel")
    p = points(d, "py-all", "loss,fc.bias,layer_weight:fc.weight,accuracy,time")
    t.ok(p["loss"][0] == list(range(N + 1))
         and all(close_to(v, 1.0 / (s + 1), 1e-12) for s, v in zip(p["loss"][0][:N], p["loss"][1][:N])),
         "the loss arrived exactly, every step in order")
    t.is_(p["loss"][1][N], "NaN", "a NaN loss is stored as NaN")
    g = points(d, "py-all", "grad_norm,fc.weight", "&from=%d" % N)
    t.is_((g["grad_norm"][1], g["fc.weight"][1]), (["Infinity"], ["-Infinity"]), "infinities too")
    t.ok(all(close_to(v, 2.0 + s) for s, v in zip(*p["fc.bias"])), "layer values by name and by id agree")
    t.ok(all(close_to(v, s / N) for s, v in zip(*p["accuracy"])), "metrics arrived")
    t.ok(all(close_to(v, 1.7e9 + s, 1e-12) for s, v in zip(*p["time"]) if s < N), "step times arrived")

    # ---- the hot path never raises ---------------------------------------------
    with gradwatch.Run(name="py-bad", url=d.url) as run:
        run.log_loss(0, 1.0)
        run.log_loss(1, "not a number")
        run.log_loss(2, None)
        run.log_loss(-1, 1.0)
        run.log_layer_grad(3, 999, 1.0)
        run.log_metric(3, 5, 1.0)
        run.log(4, loss=object(), layers={"x" * 300: 1.0})
        run.log(5, clip=(1.0,))
        t.is_(run.register_layer("y" * 300), -1, "a name over 256 bytes is refused with -1")
        try:
            import numpy as np
            run.log_loss(6, np.float32(0.5))
            run.log_grad_norm(6, np.int64(3))
        except ImportError:
            run.log_loss(6, 0.5)
            run.log_grad_norm(6, 3)
        run.log_loss("7", 0.25)
        t.ok(run.flush(5.0), "the good values were accepted")
        t.is_(run.errors, 9, "the nine bad ones were counted, none raised")
    p = points(d, "py-bad", "loss,grad_norm")
    t.is_(p["loss"], ([0, 6, 7], [1.0, 0.5, 0.25]), "numpy scalars and a numeric string were converted")
    t.is_(p["grad_norm"], ([6], [3.0]), "numpy integers too")
    t.is_((run.close(), run.closed), (False, True), "closing twice does nothing")
    run.log_loss(100, 1.0)
    t.is_((run.errors, run.health, run.alerts), (9, gradwatch.Health.UNKNOWN, []),
          "a closed run ignores logging quietly")

    # ---- alerts from the detector ----------------------------------------------
    with gradwatch.Run(name="py-nan", url=d.url, flush_interval=0.05) as run:
        for s in range(30):
            run.log(s, loss=1.0, grad_norm=1.0)
        run.log(30, loss=float("nan"), grad_norm=float("nan"))
        run.flush(5.0)
        t.ok(any(a.kind == "nonfinite" for a in run.alerts), "run.alerts has the nonfinite alert",
             "alerts: %r" % (run.alerts,))
        t.is_(run.health, gradwatch.Health.CRITICAL, "the run is critical")
        a = [a for a in run.alerts if a.kind == "nonfinite"][:1]
        t.ok(a and a[0].severity == "critical" and a[0].fire_step == 30 and a[0].message,
             "with its severity, step and message", "%r" % (a,))
        t.ok(run.alerts and all(isinstance(x.severity, gradwatch.Severity) for x in run.alerts)
             and a and a[0].severity is gradwatch.Severity.CRITICAL,
             "the binding's alerts carry Severity members", "%r" % (run.alerts,))
        t.ok(a and str(a[0]).startswith("critical nonfinite") and "Severity.CRITICAL" in repr(a[0]),
             "and print readably", "%s | %r" % (a[0] if a else None, a))

    # ---- a run left open, or a failed one --------------------------------------
    with gradwatch.Run(name="py-raise", url=d.url) as run:
        pass
    try:
        with gradwatch.Run(name="py-fail", url=d.url) as run:
            run.log_loss(0, 1.0)
            raise KeyError("boom")
    except KeyError:
        pass
    t.is_(d.get("/api/v1/runs/py-fail")[1]["status"], "failed", "an exception leaving `with` marks the run failed")
    rc, out, err = run_child("import gradwatch\nr = gradwatch.Run(name='py-exit')\n"
                             "for s in range(50): r.log(s, loss=s)\n", GRADWATCH_URL=d.url)
    t.is_(rc, 0, "a program that leaves its run open exits 0")
    st, info = d.get("/api/v1/runs/py-exit")
    t.is_((st, info.get("status"), points(d, "py-exit", "loss")["loss"][0]), (200, "finished", list(range(50))),
          "GRADWATCH_URL was used; atexit sent all 50 steps and finished the run")
    rc, out, err = run_child("import gradwatch\nr = gradwatch.Run(name='py-crash')\nr.log(0, loss=1)\n"
                             "raise SystemError('crash')\n", GRADWATCH_URL=d.url)
    t.ok(rc != 0 and "crash" in err, "a crashing program fails")
    t.is_(d.get("/api/v1/runs/py-crash")[1].get("status"), "failed", "and its run is marked failed at exit")

    # ---- errors at open ------------------------------------------------------------
    def open_error(**kw):
        try:
            gradwatch.Run(**kw).close()
        except gradwatch.GradwatchError as e:
            return e.status, str(e)
        return None, ""
    st, msg = open_error(url="ftp://example")
    t.ok(st == gradwatch.Status.INVALID and "url" in msg, "a bad URL raises GradwatchError", msg)
    st, msg = open_error(name="spaces are bad")
    t.ok(st == gradwatch.Status.INVALID and "run" in msg, "a bad run key raises", msg)
    st, msg = open_error(config={"lr": float("nan")})
    t.ok(st == gradwatch.Status.INVALID and "config" in msg, "a config JSON cannot hold raises", msg)
    st, msg = open_error(config="[1, 2]")
    t.ok(st == gradwatch.Status.INVALID and "object" in msg, "a config that is not an object raises", msg)
    rc, out, err = run_child("import gradwatch\nprint('imported')\ngradwatch.Run()\n",
                             GRADWATCH_LIB="/nonexistent/libgradwatch.so.0")
    t.ok(rc != 0 and out.strip() == "imported" and "GradwatchError" in err and "/nonexistent" in err,
         "a bad GRADWATCH_LIB: import works, opening raises and names the path", err[-300:])
    rc, out, err = run_child("import gradwatch\ngradwatch.Run()\n", GRADWATCH_URL="nope")
    t.ok(rc != 0 and "GradwatchError" in err and "nope" in err, "GRADWATCH_URL is validated as in C", err[-200:])

    # ---- pip install, used from elsewhere -----------------------------------------
    # Offline: --no-index, and pip's build isolation on (the package is its
    # own build backend, so there is nothing to fetch).
    tmp = tempfile.mkdtemp(prefix="gw-pip.")
    try:
        src = os.path.join(tmp, "src")
        shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        venv = os.path.join(tmp, "venv")
        subprocess.run([PYTHON, "-m", "venv", "--system-site-packages", venv], check=True, timeout=120)
        vpy = os.path.join(venv, "bin", "python")
        with_lib = dict(os.environ, GRADWATCH_LIB=gradwatch.library_path())
        p = subprocess.run([vpy, "-m", "pip", "install", "-q", "--no-index", "--no-deps", src],
                           capture_output=True, text=True, timeout=300, env=with_lib)
        t.ok(p.returncode == 0, "pip install ./client_lib/python works offline, build isolation and all",
             p.stderr[-500:])
        env = {k: v for k, v in os.environ.items() if k not in ("GRADWATCH_LIB", "PYTHONPATH")}
        env["GRADWATCH_URL"] = d.url
        p = subprocess.run([vpy, "-c", "import gradwatch, os\nprint(gradwatch.library_path())\n"
                            "with gradwatch.Run(name='py-pip') as r: r.log(0, loss=1.5)\n"],
                           capture_output=True, text=True, timeout=60, cwd=tmp, env=env)
        where = p.stdout.strip()
        t.ok(p.returncode == 0 and where.startswith(os.path.join(venv, "lib")),
             "the installed package loads its own copy of the library", where, p.stderr[-300:])
        t.is_(points(d, "py-pip", "loss").get("loss"), ([0], [1.5]), "and sends")

        # The wheel says what it is: platform-specific with the library in it.
        import sysconfig
        import zipfile
        plat = "".join(c if c.isalnum() else "_" for c in sysconfig.get_platform())
        wheels = {}
        for what, e in (("lib", with_lib), ("pure", env)):
            out = os.path.join(tmp, "wheels-" + what)
            p = subprocess.run([PYTHON, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-index",
                                "--no-deps", "-w", out, src], capture_output=True, text=True, timeout=300,
                               env=e, cwd=tmp)
            wheels[what] = (sorted(os.listdir(out)) if p.returncode == 0 else [p.stderr[-300:]], out)
        names = wheels["lib"][0]
        t.is_(names, ["gradwatch-%s-py3-none-%s.whl" % (gradwatch.__version__, plat)],
              "pip wheel --no-build-isolation: with the library bundled, a py3-none-%s wheel" % plat)
        if names and names[0].endswith(".whl"):
            with zipfile.ZipFile(os.path.join(wheels["lib"][1], names[0])) as z:
                t.ok("gradwatch/libgradwatch.so.0" in z.namelist()
                     and b"Root-Is-Purelib: false" in z.read("gradwatch-%s.dist-info/WHEEL" % gradwatch.__version__),
                     "holding libgradwatch.so.0, for platlib", "%r" % z.namelist())
        t.is_(wheels["pure"][0], ["gradwatch-%s-py3-none-any.whl" % gradwatch.__version__],
              "without a library to bundle, a pure py3-none-any one")

        # make install PREFIX=... installs the package too (default build only).
        if os.path.basename(BUILD.rstrip("/")) == "build":
            prefix = os.path.join(tmp, "prefix")
            p = subprocess.run(["make", "-s", "install-python", "PREFIX=" + prefix], cwd=TOP,
                               capture_output=True, text=True, timeout=300,
                               env={k: v for k, v in os.environ.items()
                                    if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "GRADWATCH_LIB")})
            site = [os.path.join(dp) for dp, dn, fn in os.walk(prefix) if "gradwatch" in dn]
            t.ok(p.returncode == 0 and len(site) == 1, "make install-python PREFIX=... puts the package "
                 "under the prefix", p.stdout[-300:], p.stderr[-300:])
            if site:
                env2 = dict(env, PYTHONPATH=site[0])
                p = subprocess.run([PYTHON, "-c", "import gradwatch; print(gradwatch.library_path())"],
                                   capture_output=True, text=True, timeout=60, cwd=tmp, env=env2)
                t.ok(p.returncode == 0 and p.stdout.strip().startswith(site[0]),
                     "and it loads the library installed with it", p.stdout, p.stderr[-300:])
        else:
            t.ok(True, "# SKIP make install-python is checked in the default build only")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
t.done()

# SPDX-License-Identifier: MIT
"""What the torch_*.py examples share (not an example itself): gradwatch
imported from the checkout when it is not installed, the options every
example takes, and the end of a run: flush, a one-line summary with the
firing alerts, close (failed when stopped on critical) and the exit code."""
import argparse
import os
import sys

try:
    import gradwatch
except ImportError:         # from a checkout: the package beside the C library
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "client_lib", "python"))
    import gradwatch
import gradwatch.torch
import torch

__all__ = ["finish", "gradwatch", "options", "torch"]


def options(doc, steps):
    """The options every torch_*.py example takes."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--url", help="the daemon (default: $GRADWATCH_URL, else http://127.0.0.1:7070)")
    ap.add_argument("--run", help="the run key (default: made from the script's name and the time)")
    ap.add_argument("--project", default="examples")
    ap.add_argument("--steps", type=int, default=steps, help="optimizer steps (%(default)s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--close-timeout", type=float, default=5.0, help="seconds to wait at the end (%(default)s)")
    ap.add_argument("--stop-on-critical", action="store_true",
                    help="stop (exit 2, run failed) as soon as the run is critical, before its update")
    ap.add_argument("--step-ms", type=float, default=0,
                    help="pause after each step, like a larger model's step time (%(default)s ms)")
    ap.add_argument("-q", "--quiet", action="store_true", help="only the summary line")
    return ap


def finish(run, w, steps_done, stopped, args, extra=""):
    """Flush, print the summary line (and the firing alerts), close; the exit code."""
    run.flush(args.close_timeout)
    alerts = run.alerts
    print("summary: run=%s steps=%d health=%s alerts=%s%s" % (
        run.key, steps_done, run.health.name.lower(),
        ",".join("%s@%d" % (a.kind, a.fire_step) for a in alerts) or "none", extra), flush=True)
    if not args.quiet:
        for a in alerts:
            print("  %s" % a)
    w.remove()
    if not run.close(args.close_timeout, failed=stopped is not None):
        print("note: not everything reached the daemon (%s)" % run.last_status.name, file=sys.stderr)
    if stopped is not None:
        print("stopped at step %d: %s" % (stopped.step, stopped), file=sys.stderr)
        return 2
    return 0

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A run's tags and note (PATCH /api/v1/runs/{run}): set, changed one at a
time, cleared; every kind of bad body is a 400 that names the fault and
changes nothing; an unknown run is a 404, a write without
Content-Type: application/json a 415, one without the token a 401; both
show in the runs list, in the run and after a restart of the daemon,
and ingest never touches them."""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import Daemon, TAP  # noqa: E402

t = TAP()
JSON = {"Content-Type": "application/json"}


def patch(d, run, obj, headers=None, raw=None):
    h = dict(JSON)
    h.update(headers or {})
    body = raw if raw is not None else json.dumps(obj).encode()
    return d.request("PATCH", "/api/v1/runs/" + run, body, h)


def meta_of(d, run):
    st, body = d.get("/api/v1/runs/" + run)
    return (body.get("tags"), body.get("note")) if st == 200 else (st, body)


def listed(d, run, query=""):
    st, body = d.get("/api/v1/runs" + query)
    for r in body["runs"] if st == 200 else []:
        if r["run"] == run:
            return r.get("tags"), r.get("note")
    return None


def refused(d, body, want_code, fragment, what, raw=None):
    before = meta_of(d, "a")
    st, err = patch(d, "a", body, raw=raw)
    msg = err.get("message", "") if isinstance(err, dict) else repr(err)
    t.ok(st == 400 and err.get("error") == want_code and fragment in msg,
         "%s: 400 %s naming %r" % (what, want_code, fragment), "got %r %r" % (st, err))
    t.is_(meta_of(d, "a"), before, "%s: tags and note unchanged" % what)


tmp = tempfile.mkdtemp(prefix="gw-test.")
db = os.path.join(tmp, "gw.db")
with Daemon(db=db, tmp=tmp) as d:
    for run in ("a", "b"):
        st, _ = d.post("/api/v1/ingest", {"run": run, "meta": {"project": "p", "config": {"lr": 0.1}},
                                          "steps": [{"step": 0, "loss": 2.0}]})
        t.is_(st, 200, "setup: run %s" % run)
    t.is_(meta_of(d, "a"), ([], ""), "a run never annotated has no tags and an empty note")
    t.is_(listed(d, "a"), ([], ""), "and the runs list says the same")

    st, run = patch(d, "a", {"tags": ["baseline", "lr-sweep"], "note": "the first try\nsecond line"})
    t.is_(st, 200, "PATCH tags and note: 200")
    t.is_((run.get("run"), run.get("tags"), run.get("note")),
          ("a", ["baseline", "lr-sweep"], "the first try\nsecond line"), "the answer is the run, annotated")
    t.is_(meta_of(d, "a"), (["baseline", "lr-sweep"], "the first try\nsecond line"), "GET the run shows them")
    t.is_(listed(d, "a"), (["baseline", "lr-sweep"], "the first try\nsecond line"), "the runs list shows them")
    t.is_(listed(d, "a", "?config=1"), (["baseline", "lr-sweep"], "the first try\nsecond line"),
          "the runs list with ?config=1 too")
    t.is_(listed(d, "b"), ([], ""), "another run is untouched")

    st, _ = patch(d, "a", {"note": "only the note"})
    t.is_((st, meta_of(d, "a")), (200, (["baseline", "lr-sweep"], "only the note")),
          "a note alone leaves the tags as they are")
    st, _ = patch(d, "a", {"tags": ["x"]})
    t.is_((st, meta_of(d, "a")), (200, (["x"], "only the note")), "tags alone leave the note as it is")

    # The limits, at and over.
    at = ["t%02d-" % i + "y" * 60 for i in range(32)]
    t.ok(all(len(s.encode()) == 64 for s in at), "setup: 32 tags of 64 bytes")
    st, _ = patch(d, "a", {"tags": at, "note": "\u00e9" * 2048})
    t.is_((st, meta_of(d, "a")), (200, (at, "\u00e9" * 2048)), "32 tags of 64 bytes and a 4096-byte note are taken")
    st, _ = patch(d, "a", {"tags": ["x"], "note": "n"})
    t.is_(st, 200, "setup: back to a short tag and note")

    refused(d, None, "bad_json", "invalid JSON", "a body that is not JSON", raw=b'{"tags": [')
    refused(d, None, "bad_json", "invalid JSON", "an empty body", raw=b'')
    refused(d, None, "bad_json", "duplicate", "a key given twice",
            raw=b'{"note": "a", "note": "b"}')
    refused(d, ["a"], "bad_request", "object", "an array at the top level")
    refused(d, {}, "bad_request", "\"tags\", \"note\"", "an empty object")
    refused(d, {"tags": ["a"], "colour": "red"}, "bad_request", "colour", "an unknown key")
    refused(d, {"tags": "a,b"}, "bad_request", "tags: expected an array", "tags as a string")
    refused(d, {"tags": ["a", 1]}, "bad_request", "tags[1]: expected a string", "a tag that is a number")
    refused(d, {"tags": ["a", ""]}, "bad_request", "tags[1]", "an empty tag")
    refused(d, {"tags": ["z" * 65]}, "bad_request", "64", "a tag of 65 bytes")
    refused(d, {"tags": ["\u00e9" * 33]}, "bad_request", "66", "a tag of 33 characters, 66 bytes")
    refused(d, {"tags": ["t%d" % i for i in range(33)]}, "bad_request", "33 tags", "33 tags")
    refused(d, {"tags": ["a", "b", "a"]}, "bad_request", "tags[2]", "a tag given twice")
    refused(d, {"tags": ["a\tb"]}, "bad_request", "control", "a tag with a tab")
    refused(d, {"note": 5}, "bad_request", "note: expected a string", "a note that is a number")
    refused(d, {"note": "n" * 4097}, "bad_request", "4096", "a note of 4097 bytes")
    refused(d, {"tags": ["fine"], "note": "n" * 4097}, "bad_request", "note",
            "good tags beside a bad note")

    st, err = patch(d, "nosuch", {"tags": ["a"]})
    t.is_((st, err.get("error")), (404, "not_found"), "an unknown run: 404 not_found")
    t.is_(listed(d, "nosuch"), None, "and no run is made")
    st, err = patch(d, "a", {"tags": ["a"]}, headers={"Content-Type": "text/plain"})
    t.is_((st, err.get("error")), (415, "unsupported_media_type"), "text/plain: 415")
    t.is_(meta_of(d, "a"), (["x"], "n"), "and nothing changed")
    st, err = d.request("POST", "/api/v1/runs/a", b'{"tags": ["a"]}', JSON)
    t.is_(st, 405, "POST to a run: 405")
    t.is_(meta_of(d, "a"), (["x"], "n"), "and nothing changed")

    # Ingest, meta included, and finish never touch tags or note.
    st, _ = d.post("/api/v1/ingest", {"run": "a", "meta": {"project": "p", "config": {"lr": 0.2}},
                                      "steps": [{"step": 1, "loss": 1.5}]})
    t.is_(st, 200, "more steps with a new meta")
    st, _ = d.post("/api/v1/runs/a/finish", {"status": "finished"})
    t.is_(st, 200, "finish the run")
    t.is_(meta_of(d, "a"), (["x"], "n"), "tags and note survive ingest and finish")

    st, _ = patch(d, "b", {"tags": ["keep", "me"], "note": "b's note"})
    t.is_(st, 200, "annotate run b")
    st, _ = patch(d, "a", {"tags": None, "note": None})
    t.is_((st, meta_of(d, "a")), (200, ([], "")), "null clears tags and note")
    t.is_(d.stop(), 0, "the daemon stops cleanly")

    d.start()
    t.is_(meta_of(d, "b"), (["keep", "me"], "b's note"), "after a restart: b's tags and note")
    t.is_(listed(d, "b"), (["keep", "me"], "b's note"), "after a restart: in the runs list")
    t.is_(meta_of(d, "a"), ([], ""), "after a restart: a stays cleared")

token = os.path.join(tmp, "token")
with open(token, "w") as f:
    f.write("s3cret-token-for-tags\n")
os.chmod(token, 0o600)
with Daemon("--token-file", token) as d:
    auth = {"Authorization": "Bearer s3cret-token-for-tags"}
    st, _ = d.post("/api/v1/ingest", {"run": "c", "steps": [{"step": 0, "loss": 1.0}]}, headers=auth)
    t.is_(st, 200, "with a token: setup run c")
    st, err = patch(d, "c", {"tags": ["a"]})
    t.is_((st, err.get("error")), (401, "unauthorized"), "with a token: PATCH without it is a 401")
    st, err = patch(d, "c", {"tags": ["a"]}, headers={"Authorization": "Bearer wrong"})
    t.is_(st, 401, "with a token: PATCH with a wrong one is a 401")
    st, body = d.get("/api/v1/runs/c", headers=auth)
    t.is_(body.get("tags"), [], "and nothing changed")
    st, body = patch(d, "c", {"tags": ["a"]}, headers=auth)
    t.is_((st, body.get("tags")), (200, ["a"]), "with the token: 200")
shutil.rmtree(tmp, ignore_errors=True)
t.done()

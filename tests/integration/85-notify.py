#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Alerts leave the page: a real Alertmanager (Debian's, on free loopback
ports, routing to a webhook of this test), a webhook and a Slack webhook
hear a run go NaN within 2 s of the ingest answer and hear it resolve;
re-sends never page twice; a notice that failed while its receiver was
down is delivered after a kill -9 of the daemon and a restart, in order;
a refused notice is dropped without blocking the next; a receiver that
hangs does not hold up ingest; /metrics shows health, alerts and
deliveries and passes promtool's lint."""
import json, os, shutil, signal, subprocess, sys, tempfile, time, urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import BUILD, Daemon, TAP, free_port
from receiver import Receiver

t = TAP()
tmp = tempfile.mkdtemp(prefix="gw-notify.")
rcv = Receiver()


class Alertmanager:
    """prometheus-alertmanager on a free port, routing everything to rcv's /am."""

    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        conf = os.path.join(tmp, "am.yml")
        with open(conf, "w") as f:
            f.write("""route:
  receiver: hook
  group_by: [alertname, run]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s/am
        send_resolved: true
""" % rcv.url)
        self.log = open(os.path.join(tmp, "am.log"), "wb")
        self.proc = subprocess.Popen(
            ["prometheus-alertmanager", "--config.file=" + conf,
             "--storage.path=" + os.path.join(tmp, "am-data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--cluster.listen-address="], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(self.url + "/-/ready", timeout=1).status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("Alertmanager did not become ready: see %s" % self.log.name)

    def alerts(self):
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


am = Alertmanager()
conf = os.path.join(tmp, "gw.conf")
with open(conf, "w") as f:
    f.write("notify-resend 1\nnotify-max-backoff 1\nnotify-timeout 2\n")
d = Daemon("-c", conf, "--alertmanager", am.url,
           "--webhook", rcv.url + "/hook",
           "--webhook", rcv.url + "/crit severity=critical project=other name=crit-only",
           "--slack-webhook", rcv.url + "/slack", tmp=tmp)
d.start()

FAST = {"detector": {"nonfinite.resolve_steps": 5}}


def ingest(run, steps, project="cifar"):
    t0 = time.time()
    st, body = d.post("/api/v1/ingest", {"run": run, "meta": dict(FAST, project=project),
                                         "steps": steps})
    assert st == 200, (st, body)
    return time.time() - t0, time.time()


def healthy(a, b):
    return [{"step": s, "loss": 2.0 - s * 0.001, "grad_norm": 1.0 + (s % 3) * 0.01,
             "layers": {"fc.weight": 0.5}} for s in range(a, b)]


def nan_step(s):
    return [{"step": s, "loss": "NaN", "grad_norm": 1.0, "layers": {"fc.weight": 0.5}}]


def metrics():
    with urllib.request.urlopen(d.url + "/metrics", timeout=5) as r:
        return r.read().decode()


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            got = head[len(name):].strip("{}")
            if ",".join(sorted(got.split(","))) == want or (not labels and not got):
                return float(value)
    return None


def notices(path, run):
    return [b for b in rcv.bodies(path) if isinstance(b, dict) and b["run"]["run"] == run]


# ---- a run goes NaN: every receiver hears within 2 s ------------------------
ingest("r1", healthy(0, 50))
_, answered = ingest("r1", nan_step(50))
hit = rcv.wait_for("/hook", lambda b: b["run"]["run"] == "r1" and b["status"] == "firing")
t.ok(hit is not None, "the webhook gets a firing notice")
if hit:
    t.ok(hit[0] - answered < 2.0, "within 2 s of the ingest answer (%.3f s)" % (hit[0] - answered))
    n = hit[1]
    api = d.get("/api/v1/alerts?run=r1")[1]["alerts"]
    t.is_(n["alert"], [a for a in api if a["kind"] == "nonfinite"][0],
          "the notice's alert is the object /api/v1/alerts gives")
    t.is_((n["version"], n["seq"], n["change"], n["run"]["run"], n["run"]["project"]),
          (1, 1, "fired", "r1", "cifar"), "version, seq 1, the change and the run")
    t.ok(n["id"].endswith("-%d" % n["alert"]["id"]) and len(n["id"]) > 10,
         "a stable id naming the alert (%s)" % n["id"])
    t.ok(("/#/run/r1?from=" in n["dashboard"]) and n["dashboard"].startswith(d.url),
         "a link to the run page at the alert's steps (%s)" % n["dashboard"])
slack = rcv.wait_for("/slack", lambda b: "r1" in b.get("text", ""))
t.ok(slack is not None and slack[0] - answered < 2.0, "Slack gets a message within 2 s")
if slack:
    text = slack[1]["text"]
    t.ok("CRITICAL" in text and "nonfinite" in text and "cifar" in text and
         "<%s/#/run/r1" % d.url in text and "step 50" in text,
         "Slack's text names severity, kind, run, project, step and links the run: %r" % text)
    t.ok(slack[1]["blocks"][0]["text"]["type"] == "mrkdwn", "and carries a mrkdwn block")
deadline = time.time() + 5
am_alert = None
while time.time() < deadline and am_alert is None:
    am_alert = next((a for a in am.alerts() if a["labels"].get("run") == "r1"), None)
    seen = time.time()
    time.sleep(0.02)
t.ok(am_alert is not None and seen - answered < 2.0,
     "Alertmanager lists the alert within 2 s (%.3f s)" % (seen - answered))
if am_alert:
    t.is_({k: am_alert["labels"].get(k) for k in ("alertname", "run", "project", "kind", "severity")},
          {"alertname": "gradwatch_nonfinite", "run": "r1", "project": "cifar",
           "kind": "nonfinite", "severity": "critical"}, "with gradwatch's labels")
    t.ok(am_alert["annotations"]["summary"] == hit[1]["alert"]["message"] and
         "step 50" in am_alert["annotations"]["description"] and
         am_alert["annotations"]["dashboard"].startswith(d.url + "/#/run/r1"),
         "summary, description and dashboard annotations")
    t.is_(am_alert["status"]["state"], "active", "and it is active")
page = rcv.wait_for("/am", lambda b: b["status"] == "firing" and
                    b["commonLabels"].get("run") == "r1")
t.ok(page is not None, "Alertmanager pages its webhook")
t.is_(rcv.wait_for("/crit", lambda b: True, timeout=0.5), None,
      "a receiver for another project hears nothing")

m = metrics()
t.is_(metric(m, "gradwatch_run_health", run="r1", project="cifar"), 2.0, "/metrics: gradwatch_run_health 2")
t.is_(metric(m, "gradwatch_alerts_firing", kind="nonfinite", severity="critical"), 1.0,
      "/metrics: gradwatch_alerts_firing")
t.ok((metric(m, "gradwatch_notifications_total", receiver="alertmanager:127.0.0.1:%d" % am.port,
             result="sent") or 0) >= 1, "/metrics: deliveries to the Alertmanager counted")
lint = subprocess.run(["promtool", "check", "metrics"], input=m.encode(), capture_output=True)
t.ok(lint.returncode == 0, "promtool check metrics passes", lint.stdout.decode() + lint.stderr.decode())

# ---- it recovers: resolved everywhere ---------------------------------------
time.sleep(2.5)         # re-sends (every 1 s) must not page again
_, answered = ingest("r1", healthy(51, 60))
res = rcv.wait_for("/hook", lambda b: b["run"]["run"] == "r1" and b["status"] == "resolved")
t.ok(res is not None and res[0] - answered < 2.0, "the webhook gets the resolve within 2 s")
if res:
    t.is_((res[1]["seq"], res[1]["change"], res[1]["alert"]["state"]), (2, "resolved", "resolved"),
          "seq 2, resolved")
t.ok(rcv.wait_for("/slack", lambda b: "RESOLVED" in b.get("text", "") and "r1" in b["text"]) is not None,
     "Slack gets the resolve")
t.ok(rcv.wait_for("/am", lambda b: b["status"] == "resolved" and
                  b["commonLabels"].get("run") == "r1") is not None,
     "Alertmanager sends the resolve to its webhook")
deadline = time.time() + 5
while time.time() < deadline and any(a["labels"].get("run") == "r1" for a in am.alerts()):
    time.sleep(0.1)
t.ok(not any(a["labels"].get("run") == "r1" for a in am.alerts()), "Alertmanager no longer lists it")
pages = [b for b in rcv.bodies("/am") if b["commonLabels"].get("run") == "r1"]
t.is_([b["status"] for b in pages], ["firing", "resolved"], "one page and one resolve, no duplicate page")
t.is_([(b["seq"], b["status"]) for b in notices("/hook", "r1")], [(1, "firing"), (2, "resolved")],
      "the webhook got each change once")
m = metrics()
t.is_(metric(m, "gradwatch_run_health", run="r1", project="cifar"), 0.0, "/metrics: health back to 0")

# ---- a receiver down, then the daemon killed: nothing is lost -----------------
rcv.set_mode("/hook", 503)
ingest("r2", healthy(0, 50))
ingest("r2", nan_step(50))
ingest("r2", healthy(51, 60))                   # fires, then resolves, while /hook is down
deadline = time.time() + 10
failed = 0
while time.time() < deadline and failed < 2:
    m = metrics()
    failed = max([float(l.rpartition(" ")[2]) for l in m.splitlines()
                  if l.startswith("gradwatch_notifications_total") and 'result="failed"' in l
                  and "webhook:" in l] or [0])
    time.sleep(0.2)
t.ok(failed >= 2, "the webhook's failures are counted and retried (%d)" % failed)
depth = max([float(l.rpartition(" ")[2]) for l in metrics().splitlines()
             if l.startswith("gradwatch_notify_outbox_depth") and "webhook:" in l] or [0])
t.ok(depth >= 1, "/metrics shows the outbox depth (%d)" % depth)
t.is_(notices("/hook", "r2"), [], "nothing reached the webhook while it was down")
t.is_(d.stop(signal.SIGKILL), -9, "the daemon is killed with SIGKILL")
rcv.set_mode("/hook", "ok")
d.start()
got = rcv.wait_for("/hook", lambda b: b["run"]["run"] == "r2" and b["status"] == "resolved", timeout=10)
t.ok(got is not None, "after a restart the webhook gets the notices it missed")
t.is_([(b["seq"], b["status"]) for b in notices("/hook", "r2")], [(1, "firing"), (2, "resolved")],
      "both, once each, in order")
t.ok(len([b for b in rcv.bodies("/slack") if "r2" in b.get("text", "")]) == 2,
     "Slack (up all along) got both once")

# ---- a refused notice is dropped, the next still goes ------------------------
rcv.set_mode("/hook", 400)
ingest("r3", healthy(0, 50))
ingest("r3", nan_step(50))
deadline = time.time() + 10
dropped = 0
while time.time() < deadline and dropped < 1:
    dropped = max([float(l.rpartition(" ")[2]) for l in metrics().splitlines()
                   if l.startswith("gradwatch_notifications_total") and 'result="dropped"' in l
                   and "webhook:" in l] or [0])
    time.sleep(0.1)
t.ok(dropped >= 1, "a 400 drops the notice and counts it")
rcv.set_mode("/hook", "ok")
ingest("r3", healthy(51, 60))
t.ok(rcv.wait_for("/hook", lambda b: b["run"]["run"] == "r3" and b["status"] == "resolved") is not None,
     "the next notice is delivered")

# ---- a hanging receiver does not hold up ingest ------------------------------
rcv.set_mode("/slack", "hang")
rcv.set_mode("/hook", "hang")
worst = 0
for i in range(5):
    run = "h%d" % i
    ingest(run, healthy(0, 50))
    took, _ = ingest(run, nan_step(50))
    worst = max(worst, took)
t.ok(worst < 1.0, "with two receivers hanging, ingest answers within 1 s (worst %.3f s)" % worst)
t.ok(rcv.wait_for("/am", lambda b: b["commonLabels"].get("run") == "h4", timeout=10) is not None,
     "and the Alertmanager, up, still hears of every alert")

# ---- configuration errors ----------------------------------------------------
bad = subprocess.run([os.path.join(BUILD, "gradwatchd"), "-n", "--webhook", "ftp://x/y"],
                     capture_output=True, text=True)
t.ok(bad.returncode != 0 and "http://" in bad.stderr, "a non-HTTP receiver URL is refused: %s" % bad.stderr.strip())
bad = subprocess.run([os.path.join(BUILD, "gradwatchd"), "-n",
                      "--webhook", "http://127.0.0.1:1/x severity=loud"], capture_output=True, text=True)
t.ok(bad.returncode != 0 and "severity=loud" in bad.stderr, "a bad option is named: %s" % bad.stderr.strip())

rcv.release.set()
d.stop()
d.__exit__(None, None, None)
am.stop()
rcv.close()
shutil.rmtree(tmp, ignore_errors=True)
t.done()

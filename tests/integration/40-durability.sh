#!/bin/bash
# SPDX-License-Identifier: MIT
# A 200 is a promise: points survive a restart, and a kill -9 right
# after acknowledgements loses none of the acknowledged points.
. "$(dirname "$0")/../lib/lib.sh"
start_daemon || exit 1

post_json /api/v1/ingest '{"run":"keep","steps":[{"step":0,"loss":1},{"step":1,"loss":"NaN"}]}' >/dev/null
stop_daemon TERM
start_daemon || exit 1
b=$(body_of "$(req GET '/api/v1/runs/keep/points?series=loss')")
is "$(jqr "$b" '.series.loss.values')" '[1,"NaN"]' "points survive a clean restart"

# Four writers post as fast as they can; each records the steps it got a
# 200 for.  Kill -9 the daemon mid-stream, restart, compare.
cat > "$TMP/hammer.py" <<'PY'
import http.client, json, sys, threading
port, out = int(sys.argv[1]), sys.argv[2]
acked = {}
def worker(w):
    run = "crash-%d" % w
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    got = []
    step = 0
    try:
        while True:
            steps = [{"step": s, "loss": s * 0.5, "layers": {"l%d" % i: s + i for i in range(20)}}
                     for s in range(step, step + 10)]
            conn.request("POST", "/api/v1/ingest", json.dumps({"run": run, "steps": steps}),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                got.extend(range(step, step + 10))
            step += 10
    except Exception:
        pass
    acked[run] = got
ts = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
for t in ts: t.start()
for t in ts: t.join()
json.dump(acked, open(out, "w"))
PY
/usr/bin/python3 "$TMP/hammer.py" "$PORT" "$TMP/acked.json" &
hammer=$!
sleep 1.5
kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
wait $hammer
total=$(jq '[.[] | length] | add' "$TMP/acked.json")
[ "$total" -gt 100 ] && ok "the writers got $total steps acknowledged before the kill" || nok "only $total steps acknowledged"
start_daemon || exit 1
missing=0
for w in 0 1 2 3; do
	want=$(jq -c ".[\"crash-$w\"] | sort" "$TMP/acked.json")
	n=$(jq ".[\"crash-$w\"] | length" "$TMP/acked.json")
	[ "$n" -eq 0 ] && continue
	got=$(curl -s "$URL/api/v1/runs/crash-$w/points?series=loss&max=1000000" | jq -c '.series.loss.steps')
	# every acknowledged step must be stored (later unacknowledged ones may be too)
	lost=$(jq -n --argjson w "$want" --argjson g "$got" '$w - $g | length')
	missing=$((missing + lost))
	vals=$(curl -s "$URL/api/v1/runs/crash-$w/points?series=l7&max=1000000" | jq -c '[.series.l7.steps, .series.l7.values] | transpose | map(select(.[1] != .[0] + 7)) | length')
	is "$vals" 0 "crash-$w: every stored layer value is the one sent"
done
is "$missing" 0 "kill -9 lost none of the acknowledged steps"
is "$(sqlite3 "$TMP/gw.db" 'PRAGMA integrity_check')" ok "the database passes integrity_check"

# SIGTERM under load: requests in flight are answered, exit 0 within 2 s,
# and every acknowledged step is there after a restart.
sqlite3 "$TMP/gw.db" "DELETE FROM runs WHERE key LIKE 'crash-%'"
/usr/bin/python3 "$TMP/hammer.py" "$PORT" "$TMP/acked2.json" &
hammer=$!
sleep 1
start=$(date +%s%N)
stop_daemon TERM
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait $hammer
is "$DAEMON_STATUS" 0 "SIGTERM under load exits 0"
[ "$ms" -lt 2000 ] && ok "and within 2 s (${ms} ms)" || nok "SIGTERM under load took ${ms} ms"
start_daemon || exit 1
missing=0
for w in 0 1 2 3; do
	want=$(jq -c ".[\"crash-$w\"] | sort" "$TMP/acked2.json")
	got=$(curl -s "$URL/api/v1/runs/crash-$w/points?series=loss&max=1000000" | jq -c '.series.loss.steps // []')
	missing=$((missing + $(jq -n --argjson w "$want" --argjson g "$got" '$w - $g | length')))
done
is "$missing" 0 "SIGTERM lost none of the acknowledged steps"

# Keep-alive clients that go on sending while the daemon stops: a request
# that arrives after the drain must not be left suspended (libmicrohttpd
# aborts the process on stop if one is).  Five stops at varied moments.
cat > "$TMP/keepalive.py" <<'PY'
import http.client, json, sys, threading, time
port, until = int(sys.argv[1]), time.time() + 5
def worker(w):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    step = 0
    try:
        while time.time() < until:
            if w % 2:
                conn.request("POST", "/api/v1/ingest",
                             json.dumps({"run": "ka-%d" % w, "steps": [{"step": step, "loss": 1.0}]}),
                             {"Content-Type": "application/json"})
                step += 1
            else:
                conn.request("GET", "/api/v1/runs")
            conn.getresponse().read()
    except Exception:
        pass
ts = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
for t in ts: t.start()
for t in ts: t.join()
PY
stop_daemon TERM
bad=
for delay in 0.3 0.45 0.6 0.75 0.9; do
	start_daemon || exit 1
	/usr/bin/python3 "$TMP/keepalive.py" "$PORT" &
	clients=$!
	sleep "$delay"
	stop_daemon TERM
	wait $clients
	[ "$DAEMON_STATUS" = 0 ] || bad="$bad ${delay}s:$DAEMON_STATUS"
done
is "${bad:-none}" none "SIGTERM while keep-alive clients go on sending exits 0 every time"
done_testing

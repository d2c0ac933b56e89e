#!/bin/bash
# SPDX-License-Identifier: MIT
# When the writer cannot keep up, the bounded queue answers 503 with
# Retry-After instead of growing; refused requests store nothing and
# every accepted one is stored.
. "$(dirname "$0")/../lib/lib.sh"
printf 'queue-points 1000\n' > "$TMP/q.conf"
start_daemon -c "$TMP/q.conf" || exit 1

cat > "$TMP/flood.py" <<'PY'
import http.client, json, sys, threading
port = int(sys.argv[1])
res = {"200": [], "503": [], "other": [], "retry_after": set()}
lock = threading.Lock()
def worker(w):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for k in range(30):
        step0 = k * 100
        steps = [{"step": s, "layers": {"l%d" % i: 1.0 for i in range(30)}} for s in range(step0, step0 + 100)]
        conn.request("POST", "/api/v1/ingest", json.dumps({"run": "flood-%d" % w, "steps": steps}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse(); body = r.read()
        with lock:
            key = str(r.status) if r.status in (200, 503) else "other"
            res[key].append((w, step0))
            if r.status == 503:
                res["retry_after"].add(r.getheader("Retry-After"))
                assert json.loads(body)["error"] == "overloaded"
ts = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
for t in ts: t.start()
for t in ts: t.join()
res["retry_after"] = sorted(x or "" for x in res["retry_after"])
json.dump(res, open(sys.argv[2], "w"))
PY
/usr/bin/python3 "$TMP/flood.py" "$PORT" "$TMP/res.json"
n503=$(jq '."503" | length' "$TMP/res.json")
n200=$(jq '."200" | length' "$TMP/res.json")
is "$(jq '.other | length' "$TMP/res.json")" 0 "every answer is 200 or 503"
[ "$n503" -gt 0 ] && ok "a full queue answers 503 ($n503 of $((n503 + n200)))" || nok "no 503 under overload"
[ "$n200" -gt 0 ] && ok "and still accepts what fits ($n200)" || nok "nothing accepted"
is "$(jq -c .retry_after "$TMP/res.json")" '["1"]' "503 carries Retry-After"
want=$((n200 * 100 * 30))
got=$(sqlite3 "$TMP/gw.db" "SELECT SUM(points) FROM series WHERE kind='layer_grad'")
is "$got" "$want" "exactly the accepted points are stored"
kill -0 "$DAEMON_PID" && ok "the daemon is still running" || nok "the daemon died"
done_testing

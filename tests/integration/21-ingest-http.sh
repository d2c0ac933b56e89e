#!/bin/bash
# SPDX-License-Identifier: MIT
# Ingest over HTTP: the non-finite round trip, all-or-nothing, safe
# retries (a re-sent step replaces its value), finish, and the HTTP-level
# refusals (413, 405, 404, garbage bodies).
. "$(dirname "$0")/../lib/lib.sh"
printf 'max-body 4096\n' > "$TMP/small.conf"
start_daemon -c "$TMP/small.conf" || exit 1

# --- non-finite values come back exactly -----------------------------------
r=$(post_json /api/v1/ingest '{"run":"nf","steps":[
 {"step":0,"loss":1.5,"grad_norm":"NaN","layers":{"a.weight":"Infinity","b.weight":0.25}},
 {"step":1,"loss":"-Infinity","grad_norm":2,"layers":{"a.weight":"NaN","b.weight":"-Infinity"}}]}')
is "$(status_of "$r")" 200 "non-finite values are accepted"
is "$(jqr "$(body_of "$r")" .accepted)" 8 "accepted counts every point"
r=$(req GET "/api/v1/runs/nf/points?series=loss,grad_norm,a.weight,b.weight")
b=$(body_of "$r")
is "$(jqr "$b" '.series.loss.values')" '[1.5,"-Infinity"]' "loss round-trips -Infinity"
is "$(jqr "$b" '.series.grad_norm.values')" '["NaN",2]' "grad_norm round-trips NaN"
is "$(jqr "$b" '.series["a.weight"].values')" '["Infinity","NaN"]' "layer round-trips Infinity and NaN"
is "$(jqr "$b" '.series["b.weight"].values')" '[0.25,"-Infinity"]' "layer round-trips -Infinity"
exp=$(curl -s "$URL/api/v1/runs/nf/export?format=jsonl" | jq -c -s 'map(select(.series=="a.weight")) | map(.value)')
is "$exp" '["Infinity","NaN"]' "export keeps non-finite values"
csv=$(curl -s "$URL/api/v1/runs/nf/export?format=csv")
like "$csv" "grad_norm,0,NaN" "CSV export writes NaN"

# --- exact doubles -----------------------------------------------------------
post_json /api/v1/ingest '{"run":"exact","steps":[{"step":7,"loss":0.1234567890123456789,"lr":1e-300}]}' >/dev/null
b=$(body_of "$(req GET '/api/v1/runs/exact/points?series=loss,lr')")
is "$(jqr "$b" '.series.loss.values[0]')" 0.12345678901234568 "doubles round-trip to the last bit"
is "$(jqr "$b" '.series.lr.values[0]')" 1e-300 "tiny doubles survive"

# --- all or nothing ---------------------------------------------------------
r=$(post_json /api/v1/ingest '{"run":"aon","steps":[{"step":0,"loss":1},{"step":1,"loss":2},{"step":2,"loss":"oops"}]}')
is "$(status_of "$r")" 400 "one bad value refuses the request"
like "$(jqr "$(body_of "$r")" .message)" 'steps[2].loss' "the message names steps[2].loss"
is "$(status_of "$(req GET /api/v1/runs/aon)")" 404 "and the run was not created"

# --- safe retries -------------------------------------------------------------
body='{"run":"retry","steps":[{"step":0,"loss":1,"layers":{"w":0.5}},{"step":1,"loss":2,"layers":{"w":0.6}}]}'
post_json /api/v1/ingest "$body" >/dev/null
r=$(post_json /api/v1/ingest "$body")
is "$(status_of "$r")" 200 "a re-sent request is accepted"
n=$(curl -s "$URL/api/v1/runs/retry/export?format=jsonl" | wc -l)
is "$n" 4 "a re-sent request stores each point once"
post_json /api/v1/ingest '{"run":"retry","steps":[{"step":1,"loss":20}]}' >/dev/null
b=$(body_of "$(req GET '/api/v1/runs/retry/points?series=loss')")
is "$(jqr "$b" '.series.loss.values')" '[1,20]' "a re-sent step replaces its value"
b=$(body_of "$(req GET /api/v1/runs/retry)")
is "$(jqr "$b" '.series[] | select(.name=="loss") | .points')" 2 "the series still has 2 points"

# --- finish -------------------------------------------------------------------
r=$(post_json /api/v1/runs/retry/finish '{"status":"failed"}')
is "$(status_of "$r")" 200 "finish answers 200"
is "$(jqr "$(body_of "$r")" .status)" failed "finish sets the status"
r=$(post_json /api/v1/runs/nope/finish '{"status":"finished"}')
is "$(status_of "$r")" 404 "finish of an unknown run is 404"
r=$(post_json /api/v1/runs/retry/finish '{"status":"done"}')
is "$(status_of "$r")" 400 "finish with a bad status is 400"

# --- HTTP-level refusals --------------------------------------------------------
head -c 5000 /dev/zero | tr '\0' ' ' > "$TMP/big.json"
r=$(req POST /api/v1/ingest "$TMP/big.json")
is "$(status_of "$r")" 413 "a body over max-body is 413"
is "$(jqr "$(body_of "$r")" .error)" too_large "with error too_large"
r=$(printf '%5000s' x | curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @- "$URL/api/v1/ingest")
is "$r" 413 "a chunked body over max-body is 413"
r=$(req GET /api/v1/ingest)
is "$(status_of "$r")" 405 "GET /api/v1/ingest is 405"
allow=$(curl -s -D - -o /dev/null "$URL/api/v1/ingest" | tr -d '\r' | sed -n 's/^Allow: //ip')
is "$allow" POST "405 names the allowed method"
is "$(status_of "$(req DELETE /api/v1/runs)")" 405 "DELETE /api/v1/runs is 405"
is "$(status_of "$(req GET /api/v1/nothing)")" 404 "an unknown API path is 404"
is "$(status_of "$(req GET /api/v1/runs/retry/zzz)")" 404 "an unknown run subpath is 404"
is "$(jqr "$(body_of "$(req GET /api/v1/nothing)")" .error)" not_found "404 has error not_found"
is "$(status_of "$(req GET '/api/v1/runs/bad%20key')")" 400 "a malformed run key is 400"
r=$(post_json /api/v1/ingest '')
is "$(status_of "$r")" 400 "an empty body is 400"
is "$(jqr "$(body_of "$r")" .error)" bad_json "with error bad_json"

kill -0 "$DAEMON_PID" && ok "the daemon is still running" || nok "the daemon died"
done_testing

#!/bin/bash
# SPDX-License-Identifier: MIT
# Every query route of API.md against a real daemon: runs (order and
# filters), one run with its series, points (with downsampling that keeps
# spikes and NaN), the heatmap, alerts, export, info, healthz, metrics.
. "$(dirname "$0")/../lib/lib.sh"
start_daemon || exit 1

post_json /api/v1/ingest '{"run":"a1","meta":{"project":"cifar","config":{"lr":0.1},
 "layers":{"l0.weight":{"numel":10,"shape":[2,5],"depth":0},"l1.weight":{"numel":4,"shape":[2,2],"depth":1}}},
 "steps":[{"step":0,"time":1764061200.25,"loss":2.5,"grad_norm":1,"lr":0.1,"layers":{"l0.weight":0.5,"l1.weight":0.25},
 "weights":{"l0.weight":3},"clip":{"max_norm":1,"pre_norm":1.5},"skipped":false,"loss_scale":65536,"metrics":{"acc":0.5}}]}' >/dev/null
sleep 0.01
post_json /api/v1/ingest '{"run":"b2","meta":{"project":"mnist"},"steps":[{"step":3,"loss":1}],"dropped":5}' >/dev/null
sleep 0.01
post_json /api/v1/ingest '{"run":"c3","meta":{"project":"cifar"},"steps":[{"step":1,"loss":1}]}' >/dev/null

b=$(body_of "$(req GET /api/v1/runs)")
is "$(jqr "$b" '[.runs[].run]')" '["c3","b2","a1"]' "runs are listed newest first"
is "$(jqr "$(body_of "$(req GET '/api/v1/runs?project=cifar')")" '[.runs[].run]')" '["c3","a1"]' "runs filter by project"
post_json /api/v1/runs/c3/finish '{"status":"finished"}' >/dev/null
is "$(jqr "$(body_of "$(req GET '/api/v1/runs?status=finished')")" '[.runs[].run]')" '["c3"]' "runs filter by status"
is "$(status_of "$(req GET '/api/v1/runs?status=bogus')")" 400 "a bad status filter is 400"
run=$(jqr "$b" '.runs[] | select(.run=="b2")')
is "$(jqr "$run" '[.status,.health,.first_step,.last_step,.points,.dropped,.alerts_firing]')" '["running","ok",3,3,1,5,0]' "a run has API.md's fields"
for k in run project status health first_step last_step started_at last_seen points dropped alerts_firing config; do
	[ "$(jqr "$run" "has(\"$k\")")" = true ] || nok "run lacks $k"
done
ok "a run has every field of API.md"

b=$(body_of "$(req GET /api/v1/runs/a1)")
is "$(jqr "$b" '.config.lr')" 0.1 "the run carries its config"
is "$(jqr "$b" '[.series[] | .kind] | sort | unique')" '["clip_max_norm","clip_pre_norm","grad_norm","layer_grad","layer_weight","loss","loss_scale","lr","metric","skipped","time"]' "series of every kind"
is "$(jqr "$b" '.series[] | select(.name=="loss") | [.points,.last_step,.last_value]')" '[1,0,2.5]' "a series has points, last step and value"
is "$(status_of "$(req GET /api/v1/runs/nope)")" 404 "an unknown run is 404"

# Points: 10,000 steps with a spike and a NaN, downsampled to 100.
/usr/bin/python3 - "$TMP/big.json" <<'PY'
import json, math, sys
steps = []
for s in range(10000):
    v = 1.0 + 0.1 * math.sin(s / 50)
    if s == 4321: v = 1000.0
    if s == 7777: v = "NaN"
    steps.append({"step": s, "loss": v, "layers": {"l0.weight": 0.5, "l1.weight": 0.25 + s / 1e5}})
json.dump({"run": "big", "steps": steps}, open(sys.argv[1], "w"))
PY
is "$(status_of "$(req POST /api/v1/ingest "$TMP/big.json")")" 200 "10,000 steps accepted"
b=$(body_of "$(req GET '/api/v1/runs/big/points?series=loss&max=100')")
n=$(jqr "$b" '.series.loss.steps | length')
[ "$n" -le 102 ] && [ "$n" -ge 50 ] && ok "downsampled to about max points ($n)" || nok "downsampled to $n points"
is "$(jqr "$b" '.series.loss.values | map(select(. == 1000)) | length')" 1 "the spike survives downsampling"
is "$(jqr "$b" '[.series.loss.steps[] | select(. == 4321)] | length')" 1 "at its step"
is "$(jqr "$b" '.series.loss.values | map(select(. == "NaN")) | length')" 1 "the NaN survives downsampling"
is "$(jqr "$b" '.series.loss.steps | . == sort')" true "steps are in order"
b=$(body_of "$(req GET '/api/v1/runs/big/points?series=loss&from=100&to=199')")
is "$(jqr "$b" '.series.loss.steps | [length, first, last]')" '[100,100,199]' "from/to select a range"
is "$(status_of "$(req GET '/api/v1/runs/big/points?series=nope')")" 404 "an unknown series is 404"
is "$(status_of "$(req GET '/api/v1/runs/big/points')")" 400 "points without series is 400"
is "$(status_of "$(req GET '/api/v1/runs/big/points?series=loss&from=x')")" 400 "a bad from is 400"

b=$(body_of "$(req GET '/api/v1/runs/big/heatmap?buckets=50')")
is "$(jqr "$b" '.layers')" '["l0.weight","l1.weight"]' "the heatmap has a row per layer"
is "$(jqr "$b" '[(.values | length), (.values[0] | length) == (.steps | length)]')" '[2,true]' "layers x buckets"
# 10,000 steps in 50 buckets of 200: wide buckets are whole blocks of 128.
is "$(jqr "$b" '[.bucket_size, .from, (.steps | length)]')" '[256,0,40]' "wide buckets are aligned to 128 steps"
is "$(jqr "$b" '.values[0][0]')" 0.5 "cells hold the bucket's largest norm"
is "$(status_of "$(req GET '/api/v1/runs/big/heatmap?buckets=0')")" 400 "a bad bucket count is 400"

b=$(body_of "$(req GET /api/v1/alerts)")
is "$(jqr "$b" '.alerts | type')" array "alerts answers a list"
is "$(status_of "$(req GET '/api/v1/alerts?state=maybe')")" 400 "a bad alert state is 400"
is "$(status_of "$(req GET '/api/v1/alerts?run=a1&state=firing&since=0')")" 200 "alert filters are accepted"

n=$(curl -s "$URL/api/v1/runs/big/export?format=csv" | wc -l)
is "$n" 30001 "CSV export has a header and every point"
n=$(curl -s "$URL/api/v1/runs/big/export?format=jsonl" | jq -c . | wc -l)
is "$n" 30000 "JSONL export is valid JSON, a point a line"
is "$(status_of "$(req GET '/api/v1/runs/big/export?format=xml')")" 400 "an unknown export format is 400"
is "$(status_of "$(req GET '/api/v1/runs/nope/export?format=csv')")" 404 "export of an unknown run is 404"

# A negative zero reads back as a float -0.0 everywhere: JSON's -0 is the
# integer 0, so the sign would be lost.  Other numbers keep %.17g.
post_json /api/v1/ingest '{"run":"z0","steps":[{"step":0,"loss":-0.0},{"step":1,"loss":0.5},{"step":2,"loss":3}]}' >/dev/null
reprs='import json, sys
print(" ".join(repr(json.loads(l)["value"]) for l in sys.stdin))'
is "$(curl -s "$URL/api/v1/runs/z0/export?format=jsonl" | /usr/bin/python3 -c "$reprs")" '-0.0 0.5 3' \
	"JSONL export keeps a negative zero a float"
is "$(curl -s "$URL/api/v1/runs/z0/export?format=csv" | sed -n '2,$s/.*,//p' | tr '\n' ' ')" '-0.0 0.5 3 ' \
	"CSV export writes a negative zero as -0.0"
is "$(body_of "$(req GET '/api/v1/runs/z0/points?series=loss')" | /usr/bin/python3 -c \
	'import json, sys; print(repr(json.load(sys.stdin)["series"]["loss"]["values"][0]))')" '-0.0' \
	"points keep a negative zero a float"

b=$(body_of "$(req GET /api/v1/info)")
is "$(jqr "$b" '[.stream_port, .auth]')" "[$WS_PORT,false]" "info gives the stream port and auth"
is "$(body_of "$(req GET /healthz)")" '{"ok":true}' "healthz"
m=$(curl -s "$URL/metrics")
for name in gradwatch_http_requests_total gradwatch_ingest_points_total gradwatch_ingest_bytes_total gradwatch_writer_queue_depth gradwatch_commit_seconds_count; do
	like "$m" "$name" "metrics has $name"
done
pts=$(printf '%s\n' "$m" | sed -n 's/^gradwatch_ingest_points_total //p')
[ "$pts" -ge 30000 ] && ok "points counter counts ingested points ($pts)" || nok "points counter $pts"
done_testing

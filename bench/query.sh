#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/query.sh: the query benchmark, against a running gradwatchd.
# Fills two runs through the HTTP API with bench/ingest --fill (both at
# once): "bench-points", 1,000,000 steps of loss (and grad_norm, lr,
# time), and "bench-heatmap", 200 layers x 100,000 steps sent 50 steps a
# request as a training loop would.  Then times GET .../points (one
# series downsampled to 2,000) and GET .../heatmap (default buckets)
# with curl, one cold request and BENCH_QUERY_REPEAT (7) timed ones,
# and prints a RESULT line for each.  BENCH_QUERY_POINTS_STEPS,
# BENCH_QUERY_HEATMAP_STEPS and BENCH_QUERY_LAYERS change the sizes;
# BENCH_QUERY_NAME prefixes the RESULT names (run.sh's huge case);
# BENCH_QUERY_F32=1 sends the layers' values as float32, as PyTorch's.
#
# usage: bench/query.sh HOST:PORT      (GW_BUILD names the build folder)
set -euo pipefail

url=${1:?usage: query.sh HOST:PORT}
top=$(cd "$(dirname "$0")/.." && pwd)
build=${GW_BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
ingest=$build/bench/ingest
repeat=${BENCH_QUERY_REPEAT:-7}
points_steps=${BENCH_QUERY_POINTS_STEPS:-1000000}
heat_steps=${BENCH_QUERY_HEATMAP_STEPS:-100000}
heat_layers=${BENCH_QUERY_LAYERS:-200}
name_prefix=${BENCH_QUERY_NAME:-}
f32=
[ "${BENCH_QUERY_F32:-0}" = 0 ] || f32=--f32

out=$(mktemp -d "${TMPDIR:-/tmp}/gw-query.XXXXXX")
p1=
p2=
cleanup() {
	for p in $p1 $p2; do
		kill -TERM "$p" 2>/dev/null || true
	done
	rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Fill both runs at once; each ingest is one keep-alive connection.
t0=$(date +%s.%N)
"$ingest" -q --url "$url" --run bench-points --layers 0 \
	--steps-per-req 10000 --fill "$points_steps" >"$out/fill-points" &
p1=$!
"$ingest" -q --url "$url" --run bench-heatmap --layers "$heat_layers" \
	--steps-per-req 50 --fill "$heat_steps" $f32 >"$out/fill-heatmap" &
p2=$!
rc=0
wait $p1 || rc=1
wait $p2 || rc=1
p1=
p2=
t1=$(date +%s.%N)
if [ $rc -ne 0 ]; then
	echo "query.sh: filling the database failed" >&2
	exit 1
fi
pts=$(cat "$out"/fill-* | sed -n 's/.* points_all=\([0-9]*\).*/\1/p' |
	awk '{s += $1} END {print s}')
awk -v p="$pts" -v a="$t0" -v b="$t1" 'BEGIN {
	printf "query: filled %d points in %.1f s (%.0f points/s, 2 runs)\n",
	    p, b - a, p / (b - a) }'
echo "RESULT bench=query_fill points=$pts seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')"

# time_get NAME PATH CHECK: one cold request, then $repeat timed ones.
time_get() {
	local name=$1 path=$2 check=$3 i code t cold size
	: >"$out/times"
	for i in $(seq 0 "$repeat"); do
		read -r code t size < <(curl -s -o "$out/body" \
			-w '%{http_code} %{time_total} %{size_download}\n' \
			"http://$url$path")
		if [ "$code" != 200 ]; then
			echo "query.sh: GET $path: HTTP $code: $(head -c 300 "$out/body")" >&2
			exit 1
		fi
		if [ "$i" = 0 ]; then
			cold=$t
		else
			echo "$t" >>"$out/times"
		fi
	done
	shape=$(jq -r "$check" "$out/body")
	sort -g "$out/times" | awk -v name="$name" -v cold="$cold" \
	    -v size="$size" -v shape="$shape" '
		{ a[NR] = $1 * 1000 }
		END {
			med = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			printf "query %s: median %.1f ms, max %.1f ms over %d " \
			    "(cold %.1f ms); %d bytes, %s\n", name, med, a[NR],
			    NR, cold * 1000, size, shape
			printf "RESULT bench=query name=%s median_ms=%.2f " \
			    "max_ms=%.2f cold_ms=%.2f n=%d bytes=%d\n", name, med,
			    a[NR], cold * 1000, NR, size
		}'
}

time_get "${name_prefix}points" "/api/v1/runs/bench-points/points?series=loss&max=2000" \
	'"\(.series.loss.steps | length) points returned, steps \(.series.loss.steps[0])..\(.series.loss.steps[-1])"'
time_get "${name_prefix}heatmap" "/api/v1/runs/bench-heatmap/heatmap" \
	'"\(.layers | length) layers x \(.steps | length) buckets"'

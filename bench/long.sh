#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/long.sh: the long run of `make bench`.  Starts the real gradwatchd
# on free loopback ports with a fresh database on the disk under TMPDIR
# and fills one run of BENCH_LONG_LAYERS layers (+ loss, grad_norm, lr,
# time) over BENCH_LONG_STEPS steps with bench/ingest --fill (50 steps a
# request, BENCH_LONG_CONNS connections taking the requests in order),
# float32 values unless told otherwise.  From that one run it reports:
# the ingest rate of each quarter of the points (the last against the
# first), the daemon's anonymous memory (RssAnon) at each quarter's end,
# the largest WAL file; then the zoomed queries of the dashboard over
# the first and the last BENCH_LONG_ZOOM steps, alternated, one cold
# request each and BENCH_LONG_ZOOM_REPEAT timed ones; and, after a clean
# stop, the bytes on disk (database plus any WAL) a point.
#
# Environment: GW_BUILD (build folder), BENCH_LONG_STEPS (200000),
# BENCH_LONG_LAYERS (200), BENCH_LONG_CONNS (4), BENCH_LONG_VALUES (f32,
# or decimalN: decimals of N significant digits), BENCH_LONG_ZOOM (5000),
# BENCH_LONG_ZOOM_REPEAT (9), TMPDIR (where the database goes).
# Prints readable lines and RESULT lines (bench=long, long_zoom,
# long_disk, long_wal) for run.sh.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${GW_BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
daemon=$build/gradwatchd
steps=${BENCH_LONG_STEPS:-200000}
layers=${BENCH_LONG_LAYERS:-200}
conns=${BENCH_LONG_CONNS:-4}
values=${BENCH_LONG_VALUES:-f32}
zoom=${BENCH_LONG_ZOOM:-5000}
zrepeat=${BENCH_LONG_ZOOM_REPEAT:-9}
spr=50
run=bench-long

case $values in
f32) vflags=--f32 ;;
decimal[0-9]*) vflags="--digits ${values#decimal}" ;;
*) echo "long.sh: BENCH_LONG_VALUES: f32 or decimalN, not $values" >&2; exit 2 ;;
esac
if [ $((steps % spr)) != 0 ] || [ "$steps" -lt $((2 * zoom)) ]; then
	echo "long.sh: BENCH_LONG_STEPS ($steps) must be a multiple of $spr and at least 2 x BENCH_LONG_ZOOM ($zoom)" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gw-long.XXXXXX")
dpid=
cpid=
walpid=
cleanup() {
	for p in $cpid $walpid; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	stop_daemon
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$top/bench/daemon.sh"

db=$tmp/long.db
start_daemon "$db"

# The largest WAL file (bytes) until $tmp/filled appears, twice a second.
wal_watch() {
	local size max=0
	while [ ! -e "$tmp/filled" ]; do
		size=$(stat -c %s "$db-wal" 2>/dev/null || echo 0)
		[ "$size" -gt "$max" ] && max=$size
		echo "$max" >"$tmp/wal.max"
		sleep 0.5
	done
}
wal_watch &
walpid=$!

points=$((steps * (layers + 4)))
echo "long run: 1 run, $layers layers + 4 scalars x $steps steps = $points points, $values values, $conns conns, database in $tmp"
# shellcheck disable=SC2086
"$build/bench/ingest" --url "$url" --pid "$dpid" --run "$run" --fill "$steps" \
	--conns "$conns" --layers "$layers" --steps-per-req "$spr" $vflags \
	>"$tmp/fill.out" 2>"$tmp/fill.err" &
cpid=$!
rc=0
wait "$cpid" || rc=$?
cpid=
touch "$tmp/filled"
wait "$walpid" || true
walpid=
if [ "$rc" != 0 ]; then
	cat "$tmp/fill.out" "$tmp/fill.err"
	echo "long.sh: the fill failed; the end of the daemon's log:" >&2
	tail -n 20 "$tmp/daemon.log" >&2
	exit 1
fi
grep -v '^RESULT' "$tmp/fill.out"
sed -n 's/^RESULT bench=ingest /RESULT bench=long /p' "$tmp/fill.out"
wal=$(cat "$tmp/wal.max" 2>/dev/null || echo 0)
echo "  largest WAL file during the fill: $((wal / 1048576)) MiB"
echo "RESULT bench=long_wal max_mib=$((wal / 1048576))"

sent=$(sed -n 's/.* points_all=\([0-9]*\).*/\1/p' "$tmp/fill.out")
api_points=$(curl -sf "http://$url/api/v1/runs/$run" | jq -r .points)
if [ "$api_points" != "$sent" ]; then
	echo "  note: the run says $api_points points, the daemon acknowledged $sent"
fi

# ---- zoomed queries: the first and the last $zoom steps, alternated ------
# What the dashboard asks for a zoomed range (a 1,200-pixel-wide page
# asks for about 1,800 points and 1,000 heatmap buckets).
first_from=0
first_to=$((zoom - 1))
last_from=$((steps - zoom))
last_to=$((steps - 1))
points_path() {
	echo "/api/v1/runs/$run/points?series=loss,grad_norm,lr&from=$1&to=$2&max=2000"
}
heat_path() {
	echo "/api/v1/runs/$run/heatmap?from=$1&to=$2&buckets=1000"
}

# get PATH: time one request (seconds on stdout); fails on a non-200.
get() {
	local code t
	read -r code t < <(curl -s -o "$tmp/body" -w '%{http_code} %{time_total}\n' \
		"http://$url$1")
	if [ "$code" != 200 ]; then
		echo "long.sh: GET $1: HTTP $code: $(head -c 300 "$tmp/body")" >&2
		exit 1
	fi
	echo "$t"
}

# zoom_check NAME SIDE FROM TO: the last answer covers [FROM, TO].
zoom_check() {
	local shape
	case $1 in
	points) shape=$(jq -r '[.series.loss.steps[0], .series.loss.steps[-1], (.series.loss.steps | length)] | @tsv' "$tmp/body") ;;
	heatmap) shape=$(jq -r '[.steps[0], .steps[-1], (.layers | length)] | @tsv' "$tmp/body") ;;
	esac
	read -r lo hi n <<<"$shape"
	if [ "$lo" -lt "$3" ] || [ "$hi" -gt "$4" ] || [ "$n" -lt 1 ]; then
		echo "long.sh: $1 of the $2 $zoom steps: got steps $lo..$hi ($n), asked $3..$4" >&2
		exit 1
	fi
	echo "$n"
}

median_ms() {
	sort -g | awk '{ a[NR] = $1 * 1000 }
		END { printf "%.3f\n", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

for name in points heatmap; do
	pathf=${name/heatmap/heat}_path
	fp=$($pathf $first_from $first_to)
	lp=$($pathf $last_from $last_to)
	: >"$tmp/first.t"
	: >"$tmp/last.t"
	cold_first=$(get "$fp")
	nf=$(zoom_check "$name" first $first_from $first_to)
	cold_last=$(get "$lp")
	nl=$(zoom_check "$name" last $last_from $last_to)
	# Alternate which side goes first, so that neither always follows
	# the other (a warm cache, a checkpoint) more often.
	for i in $(seq "$zrepeat"); do
		if [ $((i % 2)) = 1 ]; then
			get "$fp" >>"$tmp/first.t"
			get "$lp" >>"$tmp/last.t"
		else
			get "$lp" >>"$tmp/last.t"
			get "$fp" >>"$tmp/first.t"
		fi
	done
	mf=$(median_ms <"$tmp/first.t")
	ml=$(median_ms <"$tmp/last.t")
	ratio=$(awk -v a="$ml" -v b="$mf" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
	case $name in
	points) what="points (loss, grad_norm, lr; max 2000)" unit=points ;;
	heatmap) what="heatmap ($layers layers, 1000 buckets)" unit=layers ;;
	esac
	printf "  zoomed %s: first %d steps median %.2f ms (cold %.2f), last %d steps median %.2f ms (cold %.2f); last/first %.2f; %s and %s %s\n" \
		"$what" "$zoom" "$mf" "$(awk -v t="$cold_first" 'BEGIN { print t * 1000 }')" \
		"$zoom" "$ml" "$(awk -v t="$cold_last" 'BEGIN { print t * 1000 }')" "$ratio" "$nf" "$nl" "$unit"
	echo "RESULT bench=long_zoom name=$name zoom=$zoom n=$zrepeat first_ms=$mf last_ms=$ml ratio=$ratio"
done

# ---- on disk after a clean stop ------------------------------------------
kill -TERM "$dpid"
drc=0
wait "$dpid" 2>/dev/null || drc=$?
dpid=
if [ "$drc" != 0 ]; then
	echo "long.sh: gradwatchd exited $drc on SIGTERM; the end of its log:" >&2
	tail -n 20 "$tmp/daemon.log" >&2
	exit 1
fi
dbb=$(stat -c %s "$db")
walb=$(stat -c %s "$db-wal" 2>/dev/null || echo 0)
bpp=$(awk -v b=$((dbb + walb)) -v p="$sent" 'BEGIN { printf "%.3f", (p > 0 ? b / p : 0) }')
printf "  on disk after a clean stop: %.1f MiB database + %.1f MiB WAL for %d points = %s bytes a point (%s values)\n" \
	"$(awk -v b="$dbb" 'BEGIN { print b / 1048576 }')" "$(awk -v b="$walb" 'BEGIN { print b / 1048576 }')" \
	"$sent" "$bpp" "$values"
echo "RESULT bench=long_disk db_bytes=$dbb wal_bytes=$walb points=$sent api_points=$api_points bytes_per_point=$bpp values=$values"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh: the benchmarks behind `make bench`.  Starts the real
# gradwatchd on free loopback ports with a scratch database in a temp
# folder (a fresh one for every measured run, always stopped on exit),
# and alternates, BENCH_REPEAT times, the raw SQLite baseline with an
# ingest run of each body form, so that every daemon figure has a
# baseline taken minutes from it on the same disk.  Then one long run
# for memory flatness and the query benchmark; last, a summary of
# medians against the goals.  Traffic goes to 127.0.0.1 only.
#
# Environment: GW_BUILD (build folder, default build), BENCH_SECONDS
# (10, per ingest run), BENCH_REPEAT (3), BENCH_LONG (60; 0 skips),
# BENCH_RAW_SECONDS (3, per raw variant), BENCH_CONNS (4), BENCH_NOTIFY (1; 0
# skips alert delivery), BENCH_SOAK (600 seconds of mixed load; 0 skips), BENCH_QUERY
# (1; 0 skips), BENCH_HUGE (1; 0 skips the heatmap of 1,000 layers x
# BENCH_HUGE_STEPS (1,000,000) steps: a billion float32 points, ~4 GB
# in TMPDIR for ~10 minutes), BENCH_LONGRUN (1; 0 skips bench/long.sh, one run of
# 40 M points: rate by quarter, zoomed queries, bytes a point), BENCH_CLIENT (1; 0 skips the client library), BENCH_STRICT (0; 1 exits 1 when a goal is missed),
# TMPDIR (where the databases go).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${GW_BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
daemon=$build/gradwatchd
secs=${BENCH_SECONDS:-10}
repeat=${BENCH_REPEAT:-3}
long=${BENCH_LONG:-60}
raw_secs=${BENCH_RAW_SECONDS:-3}
conns=${BENCH_CONNS:-4}
do_query=${BENCH_QUERY:-1}
do_huge=${BENCH_HUGE:-1}
do_longrun=${BENCH_LONGRUN:-1}
strict=${BENCH_STRICT:-0}

# `make bench` builds them; run alone, build what is missing by its rule.
for b in ingest raw_sqlite detector remote_encode; do
	if [ ! -x "$build/bench/$b" ] || [ "$top/bench/$b.c" -nt "$build/bench/$b" ]; then
		make -s --no-print-directory -C "$top" BUILD="${GW_BUILD:-build}" "${GW_BUILD:-build}/bench/$b" >&2
	fi
done
if [ ! -x "$daemon" ]; then
	echo "run.sh: $daemon is missing; run make first" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gw-bench.XXXXXX")
dpid=
cpid=
# Children run in the background and are waited for, so that a signal
# is handled at once; cleanup ends them by pid.
cleanup() {
	if [ -n "$cpid" ]; then
		kill -TERM "$cpid" 2>/dev/null || true
		wait "$cpid" 2>/dev/null || true
	fi
	stop_daemon
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$top/bench/daemon.sh"

rm_db() {
	rm -f "$1" "$1-wal" "$1-shm" "$1-journal"
}

# kv KEY: the value of KEY= on each RESULT line read from stdin.
kv() {
	sed -n "s/.* $1=\([^ ]*\).*/\1/p"
}

# median: of the numbers on stdin, one a line ("nan" if none).
median() {
	sort -g | awk '{ a[NR] = $1 }
		END {
			if (NR == 0) print "nan"
			else if (NR % 2) printf "%.6f\n", a[(NR + 1) / 2]
			else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2
		}'
}

# ingest_run FORM SECONDS TAG: one measured run on a fresh daemon.
ingest_run() {
	local db=$tmp/gw-$3.db
	start_daemon "$db"
	"$build/bench/ingest" --url "$url" --pid "$dpid" --form "$1" \
		--seconds "$2" --conns "$conns" >"$tmp/$3.out" &
	cpid=$!
	rc=0
	wait "$cpid" || rc=$?
	cpid=
	if [ "$rc" != 0 ]; then
		cat "$tmp/$3.out"
		echo "run.sh: ingest $1 failed; the end of the daemon's log:" >&2
		tail -n 20 "$tmp/daemon.log" >&2
		exit 1
	fi
	sed 's/^/  /' "$tmp/$3.out" | grep -v '^  RESULT'
	grep '^RESULT' "$tmp/$3.out" >>"$tmp/results"
	stop_daemon
	rm_db "$db"
}

# nodetect_run ROUND: compact ingest with detection off.
nodetect_run() {
	echo "  (compact with detection off)"
	DAEMON_CONF=$tmp/nodetect.conf ingest_run compact "$secs" "nodetect-$1"
	sed -i '$ s/bench=ingest /bench=ingest_nodetect /' "$tmp/results"
}

: >"$tmp/results"
echo "detect no" >"$tmp/nodetect.conf"
echo "== gradwatch benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
echo "   $repeat x (raw SQLite ${raw_secs}s a variant, ingest ${secs}s a form), long run ${long}s; databases in $tmp"
for i in $(seq "$repeat"); do
	echo "-- round $i of $repeat"
	"$build/bench/raw_sqlite" --dir "$tmp" --seconds "$raw_secs" \
		--sync all >"$tmp/raw.out" &
	cpid=$!
	rc=0
	wait "$cpid" || rc=$?
	cpid=
	[ "$rc" = 0 ] || exit 1
	awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "  raw sqlite %-6s %-6s %9.0f rows/s\n", v["mode"],
		    v["sync"], v["rows_per_s"] }' "$tmp/raw.out"
	cat "$tmp/raw.out" >>"$tmp/results"
	# Compact with and without detection run back to back, in alternating
	# order, so that their paired gap sees the same machine load.
	[ $((i % 2)) = 0 ] && nodetect_run "$i"
	ingest_run compact "$secs" "compact-$i"
	[ $((i % 2)) = 1 ] && nodetect_run "$i"
	ingest_run object "$secs" "object-$i"
done

# wal_max DB SECONDS: the largest size of DB's WAL (MiB) seen over about
# SECONDS, sampled twice a second.
wal_max() {
	local i size max=0
	for i in $(seq $(($2 * 2))); do
		size=$(stat -c %s "$1-wal" 2>/dev/null || echo 0)
		[ "$size" -gt "$max" ] && max=$size
		sleep 0.5
	done
	echo $((max / 1048576))
}

if [ "$long" != 0 ]; then
	echo "-- memory: one compact run of ${long}s"
	wal_max "$tmp/gw-long.db" "$long" >"$tmp/wal.max" &
	walpid=$!
	ingest_run compact "$long" long
	sed -i '$ s/bench=ingest/bench=ingest_long/' "$tmp/results"
	wait "$walpid"
	echo "RESULT bench=wal max_mib=$(cat "$tmp/wal.max")" >>"$tmp/results"
	echo "  largest WAL file during the run: $(cat "$tmp/wal.max") MiB"
fi

# query_run NAME [VAR=value ...]: bench/query.sh, with that environment,
# against a daemon on a fresh database; its RESULT lines are kept.
query_run() {
	local name=$1 rc=0
	shift
	start_daemon "$tmp/gw-$name.db"
	env GW_BUILD="$build" "$@" "$top/bench/query.sh" "$url" \
	    >"$tmp/$name.out" &
	cpid=$!
	wait "$cpid" || rc=$?
	cpid=
	if [ "$rc" != 0 ]; then
		cat "$tmp/$name.out"
		exit 1
	fi
	sed 's/^/  /' "$tmp/$name.out" | grep -v '^  RESULT'
	grep '^RESULT' "$tmp/$name.out" >>"$tmp/results"
	stop_daemon
	rm_db "$tmp/gw-$name.db"
}
if [ "$do_query" != 0 ]; then
	echo "-- queries"
	query_run query
fi
if [ "$do_huge" != 0 ]; then
	echo "-- the whole-run heatmap of a big model: 1,000 layers x ${BENCH_HUGE_STEPS:-1000000} steps"
	query_run huge BENCH_QUERY_NAME=huge_ BENCH_QUERY_LAYERS=1000 \
	    BENCH_QUERY_HEATMAP_STEPS="${BENCH_HUGE_STEPS:-1000000}" \
	    BENCH_QUERY_POINTS_STEPS=1000 BENCH_QUERY_F32=1
fi

if [ "${BENCH_CLIENT:-1}" != 0 ]; then
	echo "-- the client library (bench/client.sh: its own daemons)"
	GW_BUILD="$build" "$top/bench/client.sh" >"$tmp/client.out" 2>&1 || { cat "$tmp/client.out"; exit 1; }
	sed 's/^/  /' "$tmp/client.out" | grep -v '^  RESULT'
	grep '^RESULT' "$tmp/client.out" >>"$tmp/results"
fi

echo "-- the detector alone"
"$build/bench/detector" >"$tmp/detector.out" || exit 1
sed 's/^/  /' "$tmp/detector.out" | grep -v '^  RESULT'
grep '^RESULT' "$tmp/detector.out" | sed 's/^RESULT /RESULT bench=detector /' >>"$tmp/results"

# ---- stream (bench/stream.py: its own daemons, 100 viewers) -----------------
# BENCH_STREAM (1; 0 skips), BENCH_STREAM_SECONDS (2, one window),
# BENCH_STREAM_ROUNDS (10 rounds of three windows, without/with/without
# viewers or the reverse, each on a fresh daemon), BENCH_STREAM_DISK (0; 1
# puts the rounds' database on the disk instead of in memory).
do_stream=${BENCH_STREAM:-1}
if [ "$do_stream" != 0 ]; then
	echo "-- stream: alert latency with 100 viewers; ingest with 100 viewers vs none"
	disk=
	[ "${BENCH_STREAM_DISK:-0}" = 0 ] || disk=--disk
	GW_BUILD="$build" python3 "$top/bench/stream.py" --clients 100 --alerts 200 \
		--seconds "${BENCH_STREAM_SECONDS:-2}" --rounds "${BENCH_STREAM_ROUNDS:-10}" \
		--conns "$conns" $disk >"$tmp/stream.out" &
	cpid=$!
	rc=0
	wait "$cpid" || rc=$?
	cpid=
	if [ "$rc" != 0 ]; then
		cat "$tmp/stream.out"
		exit 1
	fi
	sed 's/^/  /' "$tmp/stream.out" | grep -v '^  RESULT'
	grep '^RESULT' "$tmp/stream.out" >>"$tmp/results"
fi

# ---- alert delivery (bench/notify.py: its own daemons, databases in /dev/shm) --
# BENCH_NOTIFY (1; 0 skips), BENCH_NOTIFY_ROUNDS (8), BENCH_NOTIFY_SECONDS (5).
do_notify=${BENCH_NOTIFY:-1}
if [ "$do_notify" != 0 ]; then
	echo "-- alert delivery: ingest with hanging and slow receivers vs none"
	GW_BUILD="$build" python3 "$top/bench/notify.py" --rounds "${BENCH_NOTIFY_ROUNDS:-8}" \
		--seconds "${BENCH_NOTIFY_SECONDS:-5}" --conns "$conns" >"$tmp/notify.out" &
	cpid=$!
	rc=0
	wait "$cpid" || rc=$?
	cpid=
	if [ "$rc" != 0 ]; then
		cat "$tmp/notify.out"
		exit 1
	fi
	sed 's/^/  /' "$tmp/notify.out" | grep -v '^  RESULT'
	grep '^RESULT' "$tmp/notify.out" >>"$tmp/results"
fi

# ---- soak (bench/soak.py: its own daemon, database under $tmp) ---------------
# BENCH_SOAK (600 seconds; 0 skips): ingest, queries and one viewer together;
# RssAnon flat after the warm-up, the WAL bounded, no error, the viewer on.
do_soak=${BENCH_SOAK:-600}
if [ "$do_soak" != 0 ]; then
	echo "-- soak: ingest, queries and a viewer for ${do_soak}s (bench/soak.py)"
	GW_BUILD="$build" TMPDIR="$tmp" python3 "$top/bench/soak.py" --seconds "$do_soak" \
		>"$tmp/soak.out" 2>&1 &
	cpid=$!
	wait "$cpid" || true
	cpid=
	# It exits 1 when a bound is missed: a verdict below, like the others.
	if ! grep -q '^RESULT bench=soak ' "$tmp/soak.out"; then
		cat "$tmp/soak.out"
		exit 1
	fi
	sed 's/^/  /' "$tmp/soak.out" | grep -v '^  RESULT'
	grep '^RESULT' "$tmp/soak.out" >>"$tmp/results"
fi

# ---- remote-write (bench/remote_write.py: its own daemons and VictoriaMetrics) --
# BENCH_REMOTE (1; 0 skips), BENCH_REMOTE_ROUNDS (10: a round swings by more
# than the cost), BENCH_REMOTE_SECONDS (5).
if [ "${BENCH_REMOTE:-1}" != 0 ]; then
	echo "-- remote-write: ingest with a target (a sink; VictoriaMetrics) vs none, and a control"
	GW_BUILD="$build" python3 "$top/bench/remote_write.py" --rounds "${BENCH_REMOTE_ROUNDS:-10}" \
		--seconds "${BENCH_REMOTE_SECONDS:-5}" --conns "$conns" >"$tmp/remote.out" &
	cpid=$!
	rc=0
	wait "$cpid" || rc=$?
	cpid=
	if [ "$rc" != 0 ]; then
		cat "$tmp/remote.out"
		exit 1
	fi
	sed 's/^/  /' "$tmp/remote.out" | grep -v '^  RESULT'
	grep '^RESULT' "$tmp/remote.out" >>"$tmp/results"
	echo "-- the remote-write encoder alone (bench/remote_encode: protobuf-c and snappy)"
	"$build/bench/remote_encode" >"$tmp/remote_encode.out" || exit 1
	sed 's/^/  /' "$tmp/remote_encode.out" | grep -v '^  RESULT'
	grep '^RESULT' "$tmp/remote_encode.out" >>"$tmp/results"
fi

# ---- summary ---------------------------------------------------------------
if [ "$do_longrun" != 0 ]; then
	echo "-- one long run: ${BENCH_LONG_STEPS:-200000} steps x ${BENCH_LONG_LAYERS:-200} layers (bench/long.sh)"
	GW_BUILD="$build" TMPDIR="$tmp" "$top/bench/long.sh" >"$tmp/longrun.out" 2>&1
	grep -v '^RESULT' "$tmp/longrun.out"
	grep '^RESULT' "$tmp/longrun.out" >>"$tmp/results"
fi
R=$tmp/results
raw_med() {
	grep "bench=raw_sqlite mode=$1 sync=$2 " "$R" | kv rows_per_s | median
}
ing_med() {
	grep "bench=ingest form=$1 " "$R" | kv "$2" | median
}
raw_af=$(raw_med append full)
raw_kf=$(raw_med keyed full)
raw_an=$(raw_med append normal)
raw_kn=$(raw_med keyed normal)
missed=0

# verdict OK: sets V to PASS or FAIL, counting misses.
verdict() {
	if [ "$1" = 1 ]; then
		V=PASS
	else
		missed=$((missed + 1))
		V=FAIL
	fi
}

echo
echo "== summary: medians of $repeat runs ($(date -u '+%H:%M UTC'))"
printf "raw SQLite, one row a point, 10,000-row transactions, WAL:\n"
printf "  append FULL %.0f, keyed FULL %.0f, append NORMAL %.0f, keyed NORMAL %.0f rows/s\n" \
	"$raw_af" "$raw_kf" "$raw_an" "$raw_kn"
printf "%-46s %-40s %s\n" "goal" "measured" "verdict"
for form in compact object; do
	pps=$(ing_med "$form" points_per_s)
	cpu=$(ing_med "$form" cpu_us_per_point)
	p50=$(ing_med "$form" p50_ms)
	p99=$(ing_med "$form" p99_ms)
	# The ratio of medians, and the median of the per-round ratios.
	paired=$(paste <(grep "bench=raw_sqlite mode=append sync=full " "$R" | kv rows_per_s) \
		<(grep "bench=ingest form=$form " "$R" | kv points_per_s) |
		awk '$1 > 0 { print $2 / $1 }' | median)
	ratio=$(awk -v a="$pps" -v b="$raw_af" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	ok=$(awk -v r="$ratio" 'BEGIN { print ((r >= 2) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "$form ingest >= 2x raw append FULL" \
		"$(printf '%.0f points/s = %.2fx (paired %.2fx)' "$pps" "$ratio" "$paired")" \
		"$V"
	ok=$(awk -v c="$cpu" 'BEGIN { print ((c >= 0 && c < 0.5) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "$form daemon CPU < 0.5 us/point" \
		"$(printf '%.3f us/point' "$cpu")" "$V"
	printf "%-46s %-40s\n" "  ($form request latency)" \
		"$(printf 'p50 %.1f ms, p99 %.1f ms' "$p50" "$p99")"
done
on=$(ing_med compact points_per_s)
off=$(grep "bench=ingest_nodetect form=compact " "$R" | kv points_per_s | median)
# Paired: each round runs compact with detection, then without; the goal is
# on the median of the per-round gaps, which cancels drift in machine load.
gap=$(paste <(grep "bench=ingest form=compact " "$R" | kv points_per_s) \
	<(grep "bench=ingest_nodetect form=compact " "$R" | kv points_per_s) |
	awk '$2 > 0 { printf "%.2f\n", 100 * ($2 - $1) / $2 }' | median)
ok=$(awk -v g="$gap" 'BEGIN { print ((g != "nan" && g + 0 < 5) ? 1 : 0) }')
verdict "$ok"
printf "%-46s %-40s %s\n" "ingest with detection within 5% of without" \
	"$(printf '%.0f vs %.0f points/s: paired gap %.1f%%' "$on" "$off" "$gap")" "$V"
det=$(grep "bench=detector " "$R" | kv detector_points_per_s)
ok=$(awk -v d="$det" 'BEGIN { print ((d > 20e6) ? 1 : 0) }')
verdict "$ok"
printf "%-46s %-40s %s\n" "detector alone > 20M points/s a core" \
	"$(printf '%.1fM points/s' "$(awk -v d="$det" 'BEGIN { print d / 1e6 }')")" "$V"
if [ "$long" != 0 ]; then
	line=$(grep 'bench=ingest_long ' "$R")
	q=$(echo "$line" | kv rss_quarter_kb)
	last=$(echo "$line" | kv rss_last_kb)
	lo=$(echo "$line" | kv rss_min_kb)
	hi=$(echo "$line" | kv rss_max_kb)
	# Flat: from a quarter of the run to its end, RSS grows by at most
	# 8 MiB or 5%, whichever is more (allocator noise, page cache maps).
	ok=$(awk -v q="$q" -v l="$last" 'BEGIN {
		tol = q * 0.05; if (tol < 8192) tol = 8192
		print ((q > 0 && l - q <= tol) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "RSS flat over ${long}s (compact)" \
		"$(printf '%+.1f MiB from 1/4 to end; %.0f-%.0f MiB' \
		"$(awk -v a="$last" -v b="$q" 'BEGIN { print (a - b) / 1024 }')" \
		"$(awk -v a="$lo" 'BEGIN { print a / 1024 }')" \
		"$(awk -v a="$hi" 'BEGIN { print a / 1024 }')")" "$V"
	walmb=$(grep "bench=wal " "$R" | kv max_mib)
	ok=$(awk -v m="$walmb" 'BEGIN { print ((m != "" && m < 256) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "WAL file bounded over ${long}s: < 256 MiB" \
		"$(printf 'largest %s MiB' "$walmb")" "$V"
	printf "%-46s %-40s\n" "  (long run rate, CPU)" \
		"$(printf '%.0f points/s, %.3f us/point' "$(echo "$line" | kv points_per_s)" \
		"$(echo "$line" | kv cpu_us_per_point)")"
fi
if [ "$do_query" != 0 ]; then
	# The goals: a long run's zoom and the whole-run heatmap stay interactive.
	for q in points:10 heatmap:150; do
		name=${q%%:*}
		goal=${q##*:}
		med=$(grep "bench=query name=$name " "$R" | kv median_ms)
		mx=$(grep "bench=query name=$name " "$R" | kv max_ms)
		ok=$(awk -v m="$med" -v g="$goal" 'BEGIN { print ((m < g) ? 1 : 0) }')
		verdict "$ok"
		case $name in
		points) what="1 series, ${BENCH_QUERY_POINTS_STEPS:-1000000} steps -> 2,000: < $goal ms" ;;
		heatmap) what="heatmap ${BENCH_QUERY_LAYERS:-200} x ${BENCH_QUERY_HEATMAP_STEPS:-100000} steps: < $goal ms" ;;
		esac
		printf "%-46s %-40s %s\n" "$what" \
			"$(printf 'median %.1f ms, max %.1f ms' "$med" "$mx")" \
			"$V"
	done
fi
if [ "$do_huge" != 0 ]; then
	med=$(grep "bench=query name=huge_heatmap " "$R" | kv median_ms)
	mx=$(grep "bench=query name=huge_heatmap " "$R" | kv max_ms)
	verdict "$(awk -v m="$med" 'BEGIN { print ((m < 500) ? 1 : 0) }')"
	printf "%-46s %-40s %s\n" \
		"heatmap 1000 x ${BENCH_HUGE_STEPS:-1000000} steps: < 500 ms" \
		"$(printf 'median %.1f ms, max %.1f ms' "$med" "$mx")" "$V"
fi
if [ "$do_stream" != 0 ]; then
	line=$(grep 'bench=stream_latency ' "$R")
	p50=$(echo "$line" | kv p50_ms)
	p99=$(echo "$line" | kv p99_ms)
	ok=$(awk -v p="$p99" -v m="$(echo "$line" | kv missed)" 'BEGIN { print ((p < 20 && m == 0) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "alert to 100 viewers: p99 < 20 ms" \
		"$(printf 'p50 %.1f ms, p99 %.1f ms' "$p50" "$p99")" "$V"
	line=$(grep 'bench=stream_ingest ' "$R")
	diff=$(echo "$line" | kv diff_pct)
	ok=$(awk -v d="$diff" 'BEGIN { print ((d < 5) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "ingest with 100 viewers vs none: < 5% apart" \
		"$(printf '%.1f%% (median ratio %.3f of %s rounds)' "$diff" "$(echo "$line" | kv paired_ratio)" \
		"$(echo "$line" | kv rounds)")" "$V"
fi
if [ "$do_notify" != 0 ]; then
	line=$(grep 'bench=notify ' "$R")
	diff=$(echo "$line" | kv diff_pct)
	ok=$(awk -v d="$diff" 'BEGIN { print ((d < 5) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "ingest with hanging receivers vs none: < 5%" \
		"$(printf '%.1f%% (median ratio %.3f of %s rounds; CPU %.3f)' "$diff" \
		"$(echo "$line" | kv paired_ratio)" "$(echo "$line" | kv rounds)" \
		"$(echo "$line" | kv cpu_ratio)")" "$V"
fi
if [ "$do_soak" != 0 ]; then
	line=$(grep 'bench=soak ' "$R")
	verdict "$(echo "$line" | kv ok)"
	printf "%-46s %-40s %s\n" "soak ${do_soak}s: RssAnon flat, WAL bounded, no error" \
		"$(printf 'RssAnon %+.1f MiB (%+.2f MiB/min), WAL %s MiB, %s errors, viewer %s' \
		"$(awk -v a="$(echo "$line" | kv anon_end_kb)" -v b="$(echo "$line" | kv anon_warm_kb)" \
		'BEGIN { print (a - b) / 1024 }')" "$(echo "$line" | kv slope_mib_min)" \
		"$(echo "$line" | kv wal_max_mib)" \
		"$(($(echo "$line" | kv errors) + $(echo "$line" | kv query_errors)))" \
		"$([ "$(echo "$line" | kv viewer_connected)" = 1 ] && echo on || echo OFF)")$(
		[ "$(echo "$line" | kv mem_judged)" = 1 ] || echo ' (RssAnon not judged: too short)')" "$V"
fi
if [ "$do_longrun" != 0 ]; then
	line=$(grep 'bench=long ' "$R")
	q1=$(echo "$line" | kv q1_pps)
	q4=$(echo "$line" | kv q4_pps)
	ok=$(awk -v a="$q1" -v b="$q4" 'BEGIN { print ((a > 0 && b / a >= 0.9) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "long run: last quarter >= 90% of the first" \
		"$(printf '%.0f vs %.0f points/s (x%.2f)' "$q4" "$q1" \
		"$(awk -v a="$q1" -v b="$q4" 'BEGIN { print b / a }')")" "$V"
	for name in points heatmap; do
		zl=$(grep "bench=long_zoom name=$name " "$R")
		ok=$(awk -v r="$(echo "$zl" | kv ratio)" 'BEGIN { print ((r > 0 && r <= 1.2) ? 1 : 0) }')
		verdict "$ok"
		printf "%-46s %-40s %s\n" "long run: zoomed $name, last 5,000 within 1.2x" \
			"$(printf '%.1f vs %.1f ms first (x%.2f)' "$(echo "$zl" | kv last_ms)" \
			"$(echo "$zl" | kv first_ms)" "$(echo "$zl" | kv ratio)")" "$V"
	done
	bpp=$(grep 'bench=long_disk ' "$R" | kv bytes_per_point)
	ok=$(awk -v b="$bpp" 'BEGIN { print ((b > 0 && b <= 4) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "long run: <= 4 bytes a point on disk" \
		"$(printf '%.2f bytes a point (float32 values)' "$bpp")" "$V"
	a2=$(echo "$line" | kv q2_anon_kb)
	a4=$(echo "$line" | kv q4_anon_kb)
	# Flat after warm-up: from the half to the end, at most 8 MiB or 5%.
	ok=$(awk -v a="$a2" -v b="$a4" 'BEGIN { tol = a * 0.05; if (tol < 8192) tol = 8192
		print ((a > 0 && b - a <= tol) ? 1 : 0) }')
	verdict "$ok"
	printf "%-46s %-40s %s\n" "long run: RssAnon flat after warm-up" \
		"$(printf 'quarters %s kB' "$(echo "$line" | kv q1_anon_kb), $a2, $(echo "$line" | kv q3_anon_kb), $a4")" "$V"
fi
echo "every RESULT line:"
sed 's/^/  /' "$R"
if [ "$missed" -gt 0 ]; then
	echo "$missed goal(s) missed"
	[ "$strict" = 0 ] || exit 1
fi
exit 0

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/client.sh: libgradwatch's figures (bench/client.c explains each
# phase): the hot path beside an array store and an fprintf, the slowest
# call with no daemon, end-to-end points/s from one client and the sender
# thread's CPU share at 100 steps/s of a 200-layer model.  Starts the real
# gradwatchd on free loopback ports with a scratch database (stopped on
# exit).  For scale, it then times the daemon alone on one connection
# with pre-encoded bodies of the same shape (bench/ingest, 17 digits a
# number as the library writes them) on a fresh database.
#
# Environment: GW_BUILD (build folder, default build), BENCH_CALLS
# (10000000), BENCH_CLIENT_SECONDS (5, the e2e phase), BENCH_CPU_SECONDS
# (10), TMPDIR (where the databases go).  Prints RESULT lines too.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${GW_BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
calls=${BENCH_CALLS:-10000000}
secs=${BENCH_CLIENT_SECONDS:-5}
cpu_secs=${BENCH_CPU_SECONDS:-10}

for b in client ingest; do
	if [ ! -x "$build/bench/$b" ] || [ "$top/bench/$b.c" -nt "$build/bench/$b" ]; then
		make -s --no-print-directory -C "$top" BUILD="${GW_BUILD:-build}" "${GW_BUILD:-build}/bench/$b" >&2
	fi
done
if [ ! -x "$build/gradwatchd" ]; then
	echo "client.sh: $build/gradwatchd is missing; run make first" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gw-bench-client.XXXXXX")
dpid=
cleanup() {
	stop_daemon
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

daemon=$build/gradwatchd
. "$top/bench/daemon.sh"

echo "== libgradwatch (bench/client): $calls calls a measure; machine load now: $(cut -d' ' -f1-3 /proc/loadavg)"
start_daemon "$tmp/client.db"
"$build/bench/client" --url "http://127.0.0.1:$port" --pid "$dpid" \
	--calls "$calls" --seconds "$secs" --cpu-seconds "$cpu_secs"
stop_daemon

echo "== for scale: the daemon alone, one connection, pre-encoded bodies of the same shape"
start_daemon "$tmp/ingest.db"
"$build/bench/ingest" --url "127.0.0.1:$port" --pid "$dpid" --conns 1 \
	--layers 200 --steps-per-req 100 --form compact --digits 17 \
	--seconds "$secs" | grep -E 'RESULT|points/s|latency' | sed 's/^RESULT bench=ingest/RESULT bench=client_scale/'
stop_daemon

#!/bin/bash
# SPDX-License-Identifier: MIT
# The gradwatch demo: builds everything, starts gradwatchd with a scratch
# database under build/demo/ (unless a daemon already answers at
# $GRADWATCH_URL, default http://127.0.0.1:7070), trains five example
# networks against it at once -- one healthy, four failing the ways
# gradwatch watches for -- and leaves the daemon running to look at.
set -u

usage() {
	cat <<EOF
usage: examples/demo.sh [--once] [--no-build] [--steps N] [--step-ms MS]

  --once        stop the daemon at the end if this script started it
  --no-build    do not run make first
  --steps N     training steps per example (default 600)
  --step-ms MS  sleep per step, for a live pace (default 20)

Environment: GRADWATCH_URL (default http://127.0.0.1:7070), GW_BUILD
(default build), DEMO_DIR (default \$GW_BUILD/demo).
EOF
}

once=0
build=1
steps=600
step_ms=20
while [ $# -gt 0 ]; do
	case $1 in
	--once) once=1 ;;
	--no-build) build=0 ;;
	--steps) steps=${2:?}; shift ;;
	--step-ms) step_ms=${2:?}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 1 ;;
	esac
	shift
done

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
build_dir=${GW_BUILD:-build}
demo_dir=${DEMO_DIR:-$build_dir/demo}
url=${GRADWATCH_URL:-http://127.0.0.1:7070}
url=${url%/}
hostport=${url#*://}
hostport=${hostport%%/*}
export GRADWATCH_URL=$url

if [ "$build" = 1 ]; then
	make -s all || exit 1
fi
mlp=$build_dir/examples/mlp
for f in "$mlp" "$build_dir/gradwatchd"; do
	[ -x "$f" ] || { echo "demo: $f is missing; run make" >&2; exit 1; }
done
mkdir -p "$demo_dir" || exit 1

answering() { curl -fsS -o /dev/null --max-time 1 "$url/healthz" 2>/dev/null; }

# Start a daemon unless one answers; it outlives this script (unless --once).
daemon_pid=
if answering; then
	echo "demo: using the gradwatchd answering at $url"
else
	echo "demo: starting gradwatchd on $hostport, database $demo_dir/gradwatch.db"
	# setsid: a Ctrl-C in this terminal is not for the daemon.
	setsid "$build_dir/gradwatchd" --http "$hostport" \
		--db "$demo_dir/gradwatch.db" </dev/null \
		>>"$demo_dir/gradwatchd.log" 2>&1 &
	daemon_pid=$!
	echo "$daemon_pid" > "$demo_dir/gradwatchd.pid"
	for _ in $(seq 1 200); do
		answering && break
		if ! kill -0 "$daemon_pid" 2>/dev/null; then
			echo "demo: gradwatchd did not start:" >&2
			tail -n 20 "$demo_dir/gradwatchd.log" >&2
			exit 1
		fi
		sleep 0.05
	done
	answering || { echo "demo: gradwatchd does not answer at $url" >&2; exit 1; }
fi

# The scenarios: name, then mlp's flags.
stamp=$(date +%H%M%S)
scenarios=(
	"healthy|"
	"exploding|--lr 2 --stop-on-critical"
	"vanishing|--act sigmoid --depth 12 --init-scale small"
	"nan-batch|--nan-at $((steps / 2))"
	"clip-too-low|--clip 1e-3"
)
echo "demo: training ${#scenarios[@]} networks for $steps steps each: runs demo-<scenario>-$stamp, project demo"
pids=()
for s in "${scenarios[@]}"; do
	name=${s%%|*}
	# shellcheck disable=SC2086 # the flags are words
	"$mlp" --run "demo-$name-$stamp" --project demo --steps "$steps" \
		--step-ms "$step_ms" --print-every 100 ${s#*|} \
		>"$demo_dir/$name.log" 2>&1 &
	pids+=($!)
done
failed=0
i=0
for s in "${scenarios[@]}"; do
	name=${s%%|*}
	wait "${pids[$i]}"
	rc=$?
	i=$((i + 1))
	case $rc in
	0) what=$(grep -E '^(done|gradient norm non-finite)' "$demo_dir/$name.log" |
		sed -e '1s/^done: //' -e '2s/^/                /') ;;
	2) what="stopped: gradwatch said the run was critical" ;;
	*) what="FAILED (exit $rc), see $demo_dir/$name.log"; failed=1 ;;
	esac
	printf '  %-13s %s\n' "$name" "$what"
done

echo
if curl -fsS -o /dev/null --max-time 1 "$url/" 2>/dev/null; then
	echo "dashboard:  $url/"
fi
cat <<EOF
gradwatchd: $url   (each run's output is in $demo_dir/)
  curl -s '$url/api/v1/runs?project=demo' | jq
  curl -s '$url/api/v1/alerts?state=firing' | jq
  curl -s '$url/api/v1/runs/demo-exploding-$stamp/points?series=grad_norm,loss' | jq
  curl -s '$url/api/v1/runs/demo-vanishing-$stamp/heatmap?buckets=50' | jq
EOF
if [ -n "$daemon_pid" ]; then
	if [ "$once" = 1 ]; then
		kill -TERM "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
		rm -f "$demo_dir/gradwatchd.pid"
		echo "demo: stopped gradwatchd; the data stays in $demo_dir/gradwatch.db"
	else
		echo "gradwatchd (pid $daemon_pid) keeps running; stop it with: kill $daemon_pid"
	fi
fi
exit "$failed"

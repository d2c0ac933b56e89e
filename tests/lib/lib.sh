# SPDX-License-Identifier: MIT
# Shared helpers for the integration tests: TAP output, a real gradwatchd
# on free loopback ports with a scratch database, and curl wrappers.
# Source it; it sets `trap cleanup EXIT`.

set -u
GW_TOP=${GW_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
GW_BUILD=${GW_BUILD:-build}
case $GW_BUILD in /*) ;; *) GW_BUILD=$GW_TOP/$GW_BUILD ;; esac
GRADWATCHD=$GW_BUILD/gradwatchd
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gw-test.XXXXXX")
T_N=0
T_FAIL=0
DAEMON_PID=
PORT=
WS_PORT=

cleanup() {
	stop_daemon KILL
	if [ "$T_FAIL" -gt 0 ] && [ -s "$TMP/daemon.log" ]; then
		echo "# daemon log:"; tail -n 40 "$TMP/daemon.log" | sed 's/^/#   /'
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

ok()	{ T_N=$((T_N + 1)); echo "ok $T_N - $1"; }
nok()	{ T_N=$((T_N + 1)); T_FAIL=$((T_FAIL + 1)); echo "not ok $T_N - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
# is GOT WANT NAME
is()	{ if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got:  '$1'" "want: '$2'"; fi; }
# like GOT SUBSTRING NAME
like()	{ case $1 in *"$2"*) ok "$3" ;; *) nok "$3" "got:  '$1'" "want substring: '$2'" ;; esac; }
done_testing() { echo "1..$T_N"; [ "$T_FAIL" -eq 0 ]; exit $?; }

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# free_port_pair: a port P with P+1 also free, for a daemon started with
# only --http (its stream listens on the next port).
free_port_pair() {
	/usr/bin/python3 - <<'PY'
import socket
for _ in range(100):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1))
    except OSError:
        continue
    print(p)
    break
PY
}

# start_daemon [extra flags...]: start on free ports with $TMP/gw.db
# (override with DB=...), wait until /healthz answers.  A free port may be
# taken by another process before the daemon binds it: a start that fails
# to listen is tried again on new ports, three times at most.
start_daemon() {
	local try
	for try in 1 2 3; do
		PORT=$(free_port)
		WS_PORT=$(free_port)
		[ "$PORT" != "$WS_PORT" ] || continue
		start_daemon_once "$@"
		case $? in
		0) return 0 ;;
		2) continue ;;
		*) return 1 ;;
		esac
	done
	echo "# daemon could not listen on three pairs of free ports"; return 1
}

# start_daemon_once [flags...]: 0 up, 2 it could not listen, 1 otherwise.
start_daemon_once() {
	local mark
	mark=$({ wc -l < "$TMP/daemon.log"; } 2>/dev/null || echo 0)
	"$GRADWATCHD" --http "127.0.0.1:$PORT" --ws "127.0.0.1:$WS_PORT" \
		--db "${DB:-$TMP/gw.db}" "$@" 2>>"$TMP/daemon.log" &
	DAEMON_PID=$!
	URL="http://127.0.0.1:$PORT"
	for _ in $(seq 1 200); do
		if curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null; then return 0; fi
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			wait "$DAEMON_PID" 2>/dev/null
			DAEMON_PID=
			if tail -n +"$((mark + 1))" "$TMP/daemon.log" | grep -q 'cannot listen'; then
				return 2
			fi
			echo "# daemon died at start:"; sed 's/^/#   /' "$TMP/daemon.log"
			return 1
		fi
		sleep 0.05
	done
	echo "# daemon did not answer /healthz"; return 1
}

# stop_daemon [SIGNAL]: stop it and wait; sets DAEMON_STATUS.
stop_daemon() {
	DAEMON_STATUS=
	[ -n "$DAEMON_PID" ] || return 0
	kill -"${1:-TERM}" "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_STATUS=$?
	DAEMON_PID=
}

# req METHOD PATH [BODY-FILE] [curl args...]: prints "STATUS BODY".
req() {
	local method=$1 path=$2 data=${3:-}
	shift 3 2>/dev/null || shift $#
	if [ -n "$data" ]; then
		curl -sS -o "$TMP/body" -w '%{http_code}' -X "$method" \
			-H 'Content-Type: application/json' --data-binary "@$data" "$@" "$URL$path" > "$TMP/status"
	else
		curl -sS -o "$TMP/body" -w '%{http_code}' -X "$method" "$@" "$URL$path" > "$TMP/status"
	fi
	printf '%s %s' "$(cat "$TMP/status")" "$(cat "$TMP/body")"
}

# post_json PATH JSON-STRING [curl args...]: prints "STATUS BODY".
post_json() {
	local path=$1 json=$2
	shift 2
	printf '%s' "$json" > "$TMP/req.json"
	req POST "$path" "$TMP/req.json" "$@"
}

status_of() { printf '%s' "${1%% *}"; }
body_of()   { printf '%s' "${1#* }"; }
# jqr JSON FILTER: jq -c -r on a string
jqr() { printf '%s' "$1" | jq -c -r "$2"; }

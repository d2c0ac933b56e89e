# SPDX-License-Identifier: MIT
# bench/daemon.sh: start and stop the real gradwatchd for a benchmark, on
# free loopback ports.  Source it after setting $daemon (the binary) and
# $tmp (a scratch folder for its log).  start_daemon DB sets dpid, port
# and url (host:port); DAEMON_CONF, when set, is passed as -c.

# A port nothing listens on (connecting is refused); the daemon's bind
# decides in the end, and start_daemon retries on other ports.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# start_daemon DB: start gradwatchd on DB; sets dpid, port and url.
start_daemon() {
	local try i hp wp
	for try in 1 2 3 4 5; do
		hp=$(free_port)
		wp=$(free_port)
		[ "$hp" != "$wp" ] || continue
		"$daemon" --http "127.0.0.1:$hp" --ws "127.0.0.1:$wp" \
			--db "$1" ${DAEMON_CONF:+-c "$DAEMON_CONF"} \
			2>>"$tmp/daemon.log" &
		dpid=$!
		for i in $(seq 100); do
			if curl -sf -o /dev/null "http://127.0.0.1:$hp/healthz"; then
				port=$hp
				url=127.0.0.1:$hp
				return 0
			fi
			kill -0 "$dpid" 2>/dev/null || break
			sleep 0.1
		done
		stop_daemon
	done
	echo "bench: gradwatchd did not start; the end of its log:" >&2
	tail -n 20 "$tmp/daemon.log" >&2
	exit 1
}

# Stop the daemon we started (by its pid), SIGKILL after 20 s.
stop_daemon() {
	local i
	[ -n "$dpid" ] || return 0
	kill -TERM "$dpid" 2>/dev/null || true
	for i in $(seq 200); do
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$dpid" 2>/dev/null; then
		echo "bench: gradwatchd ignored SIGTERM for 20 s; killing it" >&2
		kill -KILL "$dpid" 2>/dev/null || true
	fi
	wait "$dpid" 2>/dev/null || true
	dpid=
}

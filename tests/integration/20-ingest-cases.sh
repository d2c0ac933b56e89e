#!/bin/bash
# SPDX-License-Identifier: MIT
# Every request in tests/data/ingest/NAME.json gets the answer its
# NAME.expect gives (status, error code, a substring of the message,
# and for 200 optionally the accepted count); a refused request stores
# nothing, and the daemon survives them all.
. "$(dirname "$0")/../lib/lib.sh"
start_daemon || exit 1

points_total() { sqlite3 "$TMP/gw.db" 'SELECT COALESCE(SUM(points),0) FROM runs'; }

for json in "$GW_TOP"/tests/data/ingest/*.json; do
	name=$(basename "$json" .json)
	expect=${json%.json}.expect
	[ -f "$expect" ] || { nok "$name: no .expect file"; continue; }
	want_status=$(sed -n 1p "$expect")
	want_code=$(sed -n 2p "$expect")
	want_msg=$(sed -n 3p "$expect")
	want_accepted=$(sed -n 4p "$expect")
	before=$(points_total)
	r=$(req POST /api/v1/ingest "$json")
	status=$(status_of "$r"); body=$(body_of "$r")
	is "$status" "$want_status" "$name: status $want_status"
	if [ "$want_status" = 200 ]; then
		if [ -n "$want_accepted" ] && [ "$want_accepted" != - ]; then
			is "$(jqr "$body" .accepted)" "$want_accepted" "$name: accepted $want_accepted"
		fi
		like "$(jqr "$body" .health)" "" "$name: answer carries health"
	else
		is "$(jqr "$body" .error)" "$want_code" "$name: error code $want_code"
		if [ -n "$want_msg" ] && [ "$want_msg" != - ]; then
			like "$(jqr "$body" .message)" "$want_msg" "$name: message names the problem"
		fi
		is "$(points_total)" "$before" "$name: nothing stored"
	fi
done
kill -0 "$DAEMON_PID" && ok "the daemon is still running" || nok "the daemon died"
done_testing

#!/bin/bash
# SPDX-License-Identifier: MIT
# gradwatchd's command line and configuration file: help, version, -n,
# errors with file:line, flags overriding the file, the loopback rule,
# a database newer than the binary, and a clean SIGTERM/SIGINT shutdown.
. "$(dirname "$0")/../lib/lib.sh"

out=$("$GRADWATCHD" --help 2>&1); rc=$?
is "$rc" 0 "--help exits 0"
like "$out" "--token-file" "--help lists the flags"
like "$out" "queue-points" "--help lists the config directives"
out=$("$GRADWATCHD" --version); like "$out" "gradwatchd " "--version prints the version"
"$GRADWATCHD" --bogus >/dev/null 2>&1; is "$?" 2 "an unknown flag exits 2"

printf 'http 127.0.0.1:7999\n# comment\n\ndb %s/x.db\n' "$TMP" > "$TMP/good.conf"
out=$("$GRADWATCHD" -n -c "$TMP/good.conf" 2>&1); rc=$?
is "$rc" 0 "-n accepts a good configuration file"
printf 'http 127.0.0.1:7999\nmax-body lots\n' > "$TMP/bad.conf"
out=$("$GRADWATCHD" -n -c "$TMP/bad.conf" 2>&1); rc=$?
is "$rc" 1 "a bad config line refuses to start"
like "$out" "bad.conf:2:" "the error names file:line"
like "$out" "'max-body lots'" "the error quotes the line"
printf 'listen 1.2.3.4\n' > "$TMP/bad2.conf"
out=$("$GRADWATCHD" -n -c "$TMP/bad2.conf" 2>&1)
like "$out" "bad2.conf:1: unknown directive 'listen'" "unknown directives are named"
printf 'http nowhere\n' > "$TMP/bad3.conf"
out=$("$GRADWATCHD" -n -c "$TMP/bad3.conf" 2>&1)
like "$out" "expected ADDR:PORT" "a bad address is explained"
out=$("$GRADWATCHD" -n -c "$TMP/missing.conf" 2>&1); rc=$?
is "$rc" 1 "a missing config file refuses to start"

out=$("$GRADWATCHD" -n --http 0.0.0.0:7070 2>&1); rc=$?
is "$rc" 1 "no token: refuses a non-loopback address"
like "$out" "without a token" "and says why"
printf 's3cret\n' > "$TMP/token"
"$GRADWATCHD" -n --http 0.0.0.0:7070 --token-file "$TMP/token" >/dev/null 2>&1
is "$?" 0 "with a token a non-loopback address is fine"
"$GRADWATCHD" -n --http 0.0.0.0:7070 --allow-remote >/dev/null 2>&1
is "$?" 0 "--allow-remote lifts the loopback rule"

# Flags override the file: the file says one port, the flag another
# (the stream takes the next port: free too).
p=$(free_port_pair)
printf 'http 127.0.0.1:1\n' > "$TMP/port.conf"
"$GRADWATCHD" -c "$TMP/port.conf" --http "127.0.0.1:$p" --db "$TMP/f.db" 2>"$TMP/f.log" &
pid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$p/healthz" && break; sleep 0.05; done
is "$(curl -s "http://127.0.0.1:$p/healthz")" '{"ok":true}' "a flag overrides the file"
like "$(cat "$TMP/f.log")" "listening on loopback only" "says at start that it listens on loopback only"
start=$(date +%s%N)
kill -TERM $pid; wait $pid; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
is "$rc" 0 "SIGTERM exits 0"
[ "$ms" -lt 2000 ] && ok "SIGTERM shutdown took ${ms} ms (< 2000)" || nok "SIGTERM shutdown took ${ms} ms"

start_daemon || exit 1
stop_daemon INT
is "$DAEMON_STATUS" 0 "SIGINT exits 0"

# A database from a newer gradwatchd is refused with a clear message.
sqlite3 "$TMP/gw.db" 'PRAGMA user_version = 999;'
out=$("$GRADWATCHD" --http "127.0.0.1:$(free_port_pair)" --db "$TMP/gw.db" 2>&1); rc=$?
is "$rc" 1 "a newer database is refused"
like "$out" "newer than this gradwatchd" "with a clear message"
is "$(sqlite3 "$TMP/gw.db" 'PRAGMA user_version')" 999 "and left untouched"

# A fresh database is migrated, in WAL mode.
rm -f "$TMP/new.db"
DB=$TMP/new.db start_daemon || exit 1
is "$(sqlite3 "$TMP/new.db" 'PRAGMA journal_mode')" wal "the database is in WAL mode"
[ "$(sqlite3 "$TMP/new.db" 'PRAGMA user_version')" -ge 1 ] && ok "migrations are tracked in user_version" || nok "user_version not set"
stop_daemon

# An in-memory database takes ingest; queries say plainly they cannot run.
: > "$TMP/daemon.log"
DB=:memory: start_daemon || exit 1
r=$(post_json /api/v1/ingest '{"run":"m","steps":[{"step":1,"loss":0.5}]}')
is "$(status_of "$r")" 200 "an in-memory database takes ingest"
r=$(req GET /api/v1/runs)
is "$(status_of "$r")" 500 "its queries answer 500"
like "$(body_of "$r")" "no database connection for queries" "saying why"
like "$(cat "$TMP/daemon.log")" "in-memory database" "and the log says so at start"
stop_daemon
is "$DAEMON_STATUS" 0 "and it stops cleanly"
done_testing

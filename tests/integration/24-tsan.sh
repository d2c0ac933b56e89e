#!/bin/bash
# SPDX-License-Identifier: MIT
# The daemon's threads under ThreadSanitizer: a subset of the integration
# tests runs against build/tsan/gradwatchd (`make tsan`; `make test`
# builds it) with halt_on_error=1, so a race ends the daemon at once, and
# with TSan's reports written to files that this test reads: a test that
# fails or any report fails it, and the report's first lines are shown.
# tests/tsan.supp would hold suppressions, each with why it is benign
# (none is needed today).  The subset crosses every thread boundary of
# docs/ARCHITECTURE.md in about a minute on two cores:
#   60-overload.sh      eight connections ingesting at once into a full
#                       queue: libmicrohttpd's threads, the parser pool,
#                       the writer and gw-walsync, answers of 503
#   30-query.sh         every query route: the reader pool beside the writer
#   45-isolation.py     heavy heatmaps, a stalled export and ingest at once
#   90-stream.py        the stream: the writer publishing, gw-stream and
#                       its viewers, a slow one, alerts as they fire
#   92-stream-close.py  viewers closing every way, the keepalive, and a
#                       shutdown with a viewer still open
#   85-notify.py        alerts to a webhook, Slack and a real Alertmanager:
#                       gw-detect, the outbox rows, gw-notify and curl
#   82-stall.py         the detector's stall timer against ingest
#   26-run-tags.py      tags and notes: the parser pool, the writer's
#                       annotate job and gw-walsync, a restart
#   10-daemon-cli.sh    start-up, SIGTERM and SIGINT shutdown in order
# Left out: 62-connections.py (32 s under TSan) and 40-durability.sh (14 s,
# mostly restarts), and the tests with no threads of interest (the ingest
# cases, the web files, the examples, the migration).  Any integration
# test runs under TSan by hand: GW_BUILD=build/tsan prove tests/integration/NN-x;
# GW_TSAN_TESTS="NN-x ..." picks this test's subset.
. "$(dirname "$0")/../lib/lib.sh"
TESTS=${GW_TSAN_TESTS:-60-overload.sh 30-query.sh 45-isolation.py 90-stream.py
	92-stream-close.py 85-notify.py 82-stall.py 26-run-tags.py 10-daemon-cli.sh}

case $GW_BUILD in
*san-thread*) echo "1..0 # SKIP every test of this run is under ThreadSanitizer already"; exit 0 ;;
esac

# show FILE [N]: its first N lines as TAP diagnostics.
show() { head -n "${2:-30}" "$1" | sed 's/^/#   /'; }

# `make test` has built it; run alone, this builds it.
if (cd "$GW_TOP" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make -s tsan) >"$TMP/make.log" 2>&1; then
	ok "the ThreadSanitizer daemon builds"
else
	nok "the ThreadSanitizer daemon builds"; show "$TMP/make.log"; done_testing
fi

export GW_BUILD=$GW_TOP/build/tsan
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 log_path=$TMP/tsan"
[ -f "$GW_TOP/tests/tsan.supp" ] &&
	TSAN_OPTIONS="$TSAN_OPTIONS suppressions=$GW_TOP/tests/tsan.supp"
export TSAN_OPTIONS

# ms START: the milliseconds since START (date +%s%N), as "12.3 s".
ms() { local d=$((($(date +%s%N) - $1) / 1000000)); printf '%d.%d s' $((d / 1000)) $((d % 1000 / 100)); }

total=$(date +%s%N)
for t in $TESTS; do
	f=$GW_TOP/tests/integration/$t
	start=$(date +%s%N)
	"$f" >"$TMP/$t.out" 2>&1
	rc=$?
	took=$(ms "$start")
	reports=$(ls "$TMP"/tsan.* 2>/dev/null)
	if [ -n "$reports" ]; then
		nok "$t: no ThreadSanitizer report ($took)"
		for r in $reports; do show "$r" 40; mv "$r" "$TMP/seen.${r##*/}"; done
	else
		ok "$t: no ThreadSanitizer report ($took)"
	fi
	if [ "$rc" -eq 0 ]; then
		ok "$t passes against the TSan daemon"
	else
		nok "$t passes against the TSan daemon (exit $rc)"
		grep -A3 '^not ok' "$TMP/$t.out" | head -n 30 | sed 's/^/#   /'
	fi
done
echo "# the subset took $(ms "$total")"
done_testing

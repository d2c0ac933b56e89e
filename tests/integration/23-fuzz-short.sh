#!/bin/bash
# SPDX-License-Identifier: MIT
# The libFuzzer harnesses of tests/fuzz/ (`make fuzz`), briefly: each
# replays its seed corpus (the ingest harness every request of
# tests/data/ingest/ too), then fuzzes from it for GW_FUZZ_SECONDS
# (default 10).  A crash, leak, sanitizer report or mismatch between the
# parsers fails the test and leaves the input in build/fuzz/ (crash-*,
# leak-*, timeout-*): replay it with build/fuzz/fuzz_NAME FILE.
. "$(dirname "$0")/../lib/lib.sh"
FUZZ_DIR=$GW_TOP/build/fuzz
SECS=${GW_FUZZ_SECONDS:-10}

# show LOG: its last lines as TAP diagnostics.
show() { tail -n "${2:-25}" "$1" | sed 's/^/#   /'; }

# `make test` has built them; run alone, this builds them (with clang,
# which the Makefile installs).
if (cd "$GW_TOP" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make -s build/fuzz/fuzz_ingest build/fuzz/fuzz_config) >"$TMP/make.log" 2>&1; then
	ok "the harnesses build"
else
	nok "the harnesses build"; show "$TMP/make.log"; done_testing
fi

for h in ingest config; do
	bin=$FUZZ_DIR/fuzz_$h
	seeds=$GW_TOP/tests/fuzz/corpus_$h
	extra=
	[ $h = ingest ] && extra=$(ls "$GW_TOP"/tests/data/ingest/*.json)
	# shellcheck disable=SC2086 # one file a word
	if "$bin" -timeout=5 "$seeds"/* $extra >"$TMP/replay-$h.log" 2>&1; then
		ok "fuzz_$h: the seed corpus replays cleanly"
	else
		nok "fuzz_$h: the seed corpus replays cleanly"; show "$TMP/replay-$h.log"
	fi

	mkdir -p "$TMP/corpus-$h"
	if "$bin" -max_total_time="$SECS" -timeout=5 -print_final_stats=1 \
		-artifact_prefix="$FUZZ_DIR/" "$TMP/corpus-$h" "$seeds" >"$TMP/fuzz-$h.log" 2>&1; then
		ok "fuzz_$h: ${SECS}s of fuzzing find nothing"
	else
		nok "fuzz_$h: ${SECS}s of fuzzing find nothing"; show "$TMP/fuzz-$h.log" 40
	fi
	echo "# fuzz_$h: $(sed -n 's/^stat::number_of_executed_units: *//p' "$TMP/fuzz-$h.log") runs," \
		"$(sed -n 's/^stat::average_exec_per_sec: *//p' "$TMP/fuzz-$h.log") a second"
done
done_testing

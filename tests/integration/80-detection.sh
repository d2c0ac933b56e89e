#!/bin/bash
# SPDX-License-Identifier: MIT
# The labelled outcome of every recorded trace, the tuning set and the
# held-out set, through the real daemon over HTTP: each expected alert
# on time, nothing unexpected, nothing at all on the healthy runs
# (tests/eval/eval.py prints the details).
top=$(cd "$(dirname "$0")/../.." && pwd)
exec /usr/bin/python3 "$top/tests/eval/eval.py" --tap \
	"$top/tests/data/traces" "$top/tests/data/traces_heldout"

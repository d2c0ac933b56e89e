#!/bin/bash
# SPDX-License-Identifier: MIT
# The labelled outcome of every recorded trace, through the real daemon
# over HTTP: each expected alert on time, nothing unexpected, nothing at
# all on the healthy runs (tests/eval/eval.py prints the details).
exec /usr/bin/python3 "$(dirname "$0")/../eval/eval.py" --tap

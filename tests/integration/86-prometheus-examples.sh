#!/bin/bash
# SPDX-License-Identifier: MIT
# examples/prometheus/: Prometheus' and Alertmanager's own tools accept the
# configuration, the rules and the Alertmanager file, the rules' unit tests
# pass, and Alertmanager routes gradwatch's alerts to the webhook.
. "$(dirname "$0")/../lib/lib.sh"

DIR=$GW_TOP/examples/prometheus

# check NAME COMMAND...: ok if COMMAND exits 0, else its output as diagnostics.
check() {
	local name=$1 out rc diag
	shift
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		mapfile -t diag < <(printf '%s\n' "$out" | tail -n 30)
		nok "$name" "exit $rc: $*" "${diag[@]}"
	fi
}

for tool in promtool amtool; do
	if command -v "$tool" >/dev/null; then
		ok "$tool is installed"
	else
		nok "$tool is installed" "missing: make installs prometheus and prometheus-alertmanager"
	fi
done

# From elsewhere, so that the files' relative paths are shown to be
# taken from their own folder, not from the working directory.
cd "$TMP" || exit 1
check "promtool check config prometheus.yml (and its rule file)" \
	promtool check config "$DIR/prometheus.yml"
check "promtool check rules gradwatch-rules.yml" \
	promtool check rules "$DIR/gradwatch-rules.yml"
check "promtool test rules gradwatch-rules.test.yml" \
	promtool test rules "$DIR/gradwatch-rules.test.yml"
check "amtool check-config alertmanager.yml" \
	amtool check-config "$DIR/alertmanager.yml"

# route LABELS...: the receiver Alertmanager picks for an alert with LABELS.
route() {
	amtool config routes test --config.file="$DIR/alertmanager.yml" "$@" 2>/dev/null
}
is "$(route alertname=gradwatch_nonfinite run=r1 severity=critical)" gradwatch \
	"gradwatchd's own alerts go to the webhook"
is "$(route alertname=GradwatchRunCritical run=r1 severity=critical)" gradwatch \
	"so do the rules' alerts"
is "$(route alertname=NodeDown)" default "other alerts go to the default receiver"
done_testing

#!/bin/sh
# SPDX-License-Identifier: MIT
# No leaks and no memory errors: runs client tests (a live daemon, no
# daemon, a fake one) under valgrind --leak-check=full; a definite or
# possible leak, or any error valgrind finds, fails.  Valgrind follows a
# fork: 85-fork-close's child, which frees its copy of the parent's
# handle, fails its exit status on a leak, and the test checks it.
# GWT_SLOW makes the tests do less and loosens their timing checks.
# Skipped in sanitizer builds (valgrind and the sanitizers do not mix)
# and without valgrind.
set -u
GW_TOP=${GW_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
GW_BUILD=${GW_BUILD:-build}
case $GW_BUILD in /*) dir=$GW_BUILD ;; *) dir=$GW_TOP/$GW_BUILD ;; esac
case $GW_BUILD in
*san-*) echo "1..0 # SKIP valgrind does not run sanitizer builds"; exit 0 ;;
esac
if ! command -v valgrind > /dev/null 2>&1; then
	echo "Bail out! no valgrind: make test installs it (apt-get install valgrind)"; exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gw-leaks.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0 fail=0
for t in 10-options 20-basic 30-down 50-retry 60-full 85-fork-close; do
	n=$((n + 1))
	GWT_SLOW=1 GW_TOP=$GW_TOP GW_BUILD=$GW_BUILD valgrind -q \
		--leak-check=full --errors-for-leak-kinds=definite,possible \
		--show-leak-kinds=definite,possible --error-exitcode=99 \
		--log-file="$tmp/$t.vg" "$dir/tests/client/$t" > "$tmp/$t.out" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && ! grep -q '^not ok' "$tmp/$t.out"; then
		echo "ok $n - $t under valgrind: no leak, no error"
	else
		fail=$((fail + 1))
		echo "not ok $n - $t under valgrind (exit $rc)"
		grep '^not ok' "$tmp/$t.out" | sed 's/^/#   /'
		head -n 60 "$tmp/$t.vg" | sed 's/^/#   /'
	fi
done
echo "1..$n"
[ $fail -eq 0 ]

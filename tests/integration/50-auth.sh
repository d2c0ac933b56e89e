#!/bin/bash
# SPDX-License-Identifier: MIT
# With a token file every route but GET /healthz needs the bearer token.
. "$(dirname "$0")/../lib/lib.sh"
printf 'sesame-%s\n' "$RANDOM" > "$TMP/token"
tok=$(head -1 "$TMP/token")
start_daemon --token-file "$TMP/token" || exit 1

is "$(status_of "$(req GET /healthz)")" 200 "healthz needs no token"
for path in /api/v1/runs /api/v1/alerts /api/v1/info /metrics /api/v1/runs/x/points?series=loss; do
	is "$(status_of "$(req GET "$path")")" 401 "GET $path without a token is 401"
done
r=$(post_json /api/v1/ingest '{"run":"t","steps":[{"step":0,"loss":1}]}')
is "$(status_of "$r")" 401 "ingest without a token is 401"
is "$(jqr "$(body_of "$r")" .error)" unauthorized "with error unauthorized"
r=$(post_json /api/v1/ingest '{"run":"t","steps":[{"step":0,"loss":1}]}' -H "Authorization: Bearer wrong")
is "$(status_of "$r")" 401 "a wrong token is 401"
r=$(post_json /api/v1/ingest '{"run":"t","steps":[{"step":0,"loss":1}]}' -H "Authorization: Bearer ${tok}x")
is "$(status_of "$r")" 401 "a token with a suffix is 401"
r=$(post_json /api/v1/ingest '{"run":"t","steps":[{"step":0,"loss":1}]}' -H "Authorization: Bearer $tok")
is "$(status_of "$r")" 200 "the right token is accepted"
r=$(req GET /api/v1/runs "" -H "Authorization: Bearer $tok")
is "$(jqr "$(body_of "$r")" '.runs[0].run')" t "queries work with the token"
r=$(req GET /api/v1/info "" -H "Authorization: Bearer $tok")
is "$(jqr "$(body_of "$r")" .auth)" true "info says auth is on"
done_testing

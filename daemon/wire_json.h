/* SPDX-License-Identifier: MIT */
/*
 * wire_json: the daemon's JSON forms of client_lib/wire.h's rules: a
 * number that may be non-finite, and the error body every failed
 * request and route answers with.  Pure functions; any thread.
 */
#ifndef GW_WIRE_JSON_H
#define GW_WIRE_JSON_H

#include <jansson.h>

/* A JSON number, or the string "NaN", "Infinity", "-Infinity". */
json_t	*wire_json_number(double v);

/*
 * The HTTP status of an error code of docs/API.md (bad_json and
 * bad_request 400, unauthorized 401, forbidden 403, not_found 404,
 * too_large 413, unsupported_media_type 415, overloaded 503, anything
 * else 500): the one table of them.
 */
unsigned int	 wire_status(const char *code);

/*
 * An allocated {"error": code, "message": message} body (compact);
 * bytes that are not UTF-8 become '?'.
 */
char	*wire_error_body(const char *code, const char *message);

#endif

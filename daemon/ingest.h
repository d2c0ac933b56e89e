/* SPDX-License-Identifier: MIT */
/*
 * ingest: turns the body of POST /api/v1/ingest (API.md, "Ingest")
 * into a struct batch, validating every part of it.  Pure: no I/O, no
 * global state; any thread may call it.  Either the whole request is
 * valid and a batch comes back, or nothing does and the cause names the
 * offending part as a JSON path, e.g.
 *   steps[3].layers["fc.weight"]: expected a number or "NaN"
 */
#ifndef GW_INGEST_H
#define GW_INGEST_H

#include <stddef.h>

#include "batch.h"

#define INGEST_MAX_DEPTH	32	/* JSON nesting accepted anywhere */
#define INGEST_MAX_SERIES	100000	/* distinct series in one request */

/*
 * Parse body (len bytes, not necessarily NUL-terminated).  A meta.config
 * of more than max_config bytes as compact JSON (as it would be stored)
 * is a bad_request.  On failure returns NULL, sets *code to the static
 * error code ("bad_json" or "bad_request") and *cause to an allocated
 * message for a person.
 */
struct batch	*ingest_parse(const char *body, size_t len,
		    size_t max_config, const char **code, char **cause);

/*
 * ingest_parse's two paths, for tests and benchmarks: the fast one
 * alone, for the client library's shape of body (NULL, without a
 * cause, for anything else or anything invalid), and the Jansson one
 * alone, which takes every body and words every error.  Whenever the
 * fast path returns a batch, the Jansson path returns an equal one (the
 * fast path declines any "meta", so only the Jansson one takes
 * max_config).
 */
struct batch	*ingest_parse_fast(const char *body, size_t len);
struct batch	*ingest_parse_tree(const char *body, size_t len,
		    size_t max_config, const char **code, char **cause);

/*
 * Parse the body of POST /api/v1/runs/{run}/finish: {"status":
 * "finished" | "failed"}; an empty body means "finished".  Returns the
 * static status string, or NULL with *code and *cause as above.
 */
const char	*ingest_parse_finish(const char *body, size_t len,
		    const char **code, char **cause);

#endif

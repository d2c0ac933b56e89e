/* SPDX-License-Identifier: MIT */
/*
 * runmeta: the body of PATCH /api/v1/runs/{run} (docs/API.md), a run's
 * tags and note as people set them, checked and turned into what the
 * writer stores.  Pure: no I/O, no global state; any thread.
 */
#ifndef GW_RUNMETA_H
#define GW_RUNMETA_H

#include <stddef.h>

#define RUNMETA_TAGS_MAX	32	/* tags a run, at most */
#define RUNMETA_TAG_BYTES	64	/* bytes of a tag (UTF-8), at most */
#define RUNMETA_NOTE_BYTES	4096	/* bytes of a note (UTF-8), at most */

/* What a PATCH sets; a NULL member is left as it is.  Owned by the caller. */
struct runmeta {
	char	*tags;	/* a compact JSON array of distinct strings */
	char	*note;
};

/*
 * Parse body (len bytes, not necessarily NUL-terminated): an object with
 * "tags" (an array of at most RUNMETA_TAGS_MAX distinct strings of 1 to
 * RUNMETA_TAG_BYTES bytes without control characters; null clears
 * them), "note" (a string of at most RUNMETA_NOTE_BYTES bytes; null
 * clears it) or both, and nothing else.  0 with m filled (its members
 * allocated, the caller frees them with runmeta_cleanup()), or -1 with
 * *code the static error code ("bad_json" or "bad_request") and *cause
 * an allocated message for a person; m is then untouched.
 */
int	runmeta_parse(const char *body, size_t len, struct runmeta *m,
	    const char **code, char **cause);
/* Free m's members and set them to NULL.  A zeroed m is fine. */
void	runmeta_cleanup(struct runmeta *m);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * ingest_dump: compact JSON text of a Jansson value, reals written to
 * read back the same (a run's meta and config are stored as this
 * text), and names quoted for error causes.  Pure; any thread.
 */
#ifndef GW_INGEST_DUMP_H
#define GW_INGEST_DUMP_H

#include <stddef.h>

#include <jansson.h>

#define INGEST_QUOTE_MAX	64	/* name bytes quoted in a cause */
#define INGEST_QUOTE_SIZE	(INGEST_QUOTE_MAX * 6 + 8)

/* A growable byte buffer for the compact dumps. */
struct ingest_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

/* v as compact JSON text, allocated. */
char		*ingest_dumps(json_t *v);
/*
 * Write name as a JSON string into dst (INGEST_QUOTE_SIZE bytes) for a
 * cause, cut at a character boundary past INGEST_QUOTE_MAX bytes.
 */
const char	*ingest_quote(char *dst, const char *name, size_t len);

#endif

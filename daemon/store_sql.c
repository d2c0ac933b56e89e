/* SPDX-License-Identifier: MIT */
/*
 * store_sql: the plumbing every store file shares on the writer's
 * connection: a statement stepped to its end and reset, a cause from
 * SQLite's message, statements prepared once, and the growable point
 * buffers.  Writer thread only (store_checkpoint.c's connection aside).
 */
#include <stdlib.h>

#include <sqlite3.h>

#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

int
store_err(struct store *st, char **cause, const char *what)
{
	xasprintf(cause, "store: %s: %s", what, sqlite3_errmsg(st->db));
	return -1;
}

/* Step a statement that returns no row, then reset it. */
int
store_done(struct store *st, sqlite3_stmt *s, const char *what, char **cause)
{
	if (sqlite3_step(s) != SQLITE_DONE) {
		store_err(st, cause, what);
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

/* Like store_done(), for cleanup paths that have a cause already. */
void
store_done_quiet(struct store *st, sqlite3_stmt *s)
{
	char	*ignored = NULL;

	if (store_done(st, s, "cleanup", &ignored) == -1)
		free(ignored);
}

int
store_exec(struct store *st, const char *sql, char **cause)
{
	char	*msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		xasprintf(cause, "store: %s: %s", sql,
		    msg != NULL ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

void
store_buf_reserve(struct store_buf *buf, size_t n)
{
	if (n <= buf->cap)
		return;
	buf->cap = buf->cap == 0 ? 256 : buf->cap;
	while (buf->cap < n)
		buf->cap *= 2;
	buf->steps = xreallocarray(buf->steps, buf->cap, sizeof *buf->steps);
	buf->vals = xreallocarray(buf->vals, buf->cap, sizeof *buf->vals);
}

void
store_buf_free(struct store_buf *buf)
{
	free(buf->steps);
	free(buf->vals);
}

int
store_prepare_all(struct store *st, const char *const *sql,
    sqlite3_stmt **stmt, size_t n, char **cause)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (sqlite3_prepare_v3(st->db, sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &stmt[i], NULL) != SQLITE_OK) {
			xasprintf(cause, "store: prepare %s: %s", sql[i],
			    sqlite3_errmsg(st->db));
			return -1;
		}
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * store_migrate: brings a database to this binary's schema.  Each
 * missing version is one transaction: its SQL (schema/NNNN_*.sql,
 * embedded as schema_sql[]), then its C step if store_hooks has one
 * (work SQL cannot do, such as re-encoding blobs), then PRAGMA
 * user_version.  Writer thread, from store_open(), before any other
 * statement is prepared.
 *
 * Version 3's step turns every legacy chunk (schema 0001's raw steps
 * and vals blobs) into chunk.h's format.  A legacy chunk that breaks
 * 0001's rules is moved whole to the quarantine table with the reason,
 * and named in a warning, rather than failing the migration: one bad
 * row must not keep gradwatchd, and every other run, from starting, and
 * nothing is thrown away (the blobs stay there to be looked at).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "chunk.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "legacy chunk blobs are little-endian: this file assumes a little-endian host"
#endif

extern const char *const schema_sql[];
extern const size_t schema_sql_count;

/* Legacy chunks read at a time (their blobs are copied). */
#define STORE_MIGRATE_ROWS	256

static int	store_migrate_0003(struct store *st, char **cause);

/* The C step of a version, run after its SQL in the same transaction. */
static const struct store_hook {
	int	  version;
	int	(*fn)(struct store *st, char **cause);
} store_hooks[] = {
	{ 3, store_migrate_0003 },
};

int
store_schema_version(void)
{
	return (int)schema_sql_count;
}

static int
store_user_version(struct store *st, int *version, char **cause)
{
	sqlite3_stmt	*s = NULL;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s,
	    NULL) != SQLITE_OK)
		return store_err(st, cause, "user_version");
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_err(st, cause, "user_version");
		sqlite3_finalize(s);
		return -1;
	}
	*version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return 0;
}

/* Run version's C step, if it has one. */
static int
store_hook_run(struct store *st, int version, char **cause)
{
	size_t	i;

	for (i = 0; i < sizeof store_hooks / sizeof store_hooks[0]; i++)
		if (store_hooks[i].version == version)
			return store_hooks[i].fn(st, cause);
	return 0;
}

/*
 * Apply the missing migrations, each in its own transaction.  The
 * version is read inside the transaction, so two processes opening the
 * same file cannot apply a migration twice.
 */
int
store_migrate(struct store *st, const char *path, char **cause)
{
	char	*sql = NULL;
	int	 version = 0, latest = store_schema_version();

	for (;;) {
		if (store_exec(st, "BEGIN IMMEDIATE", cause) == -1)
			return -1;
		if (store_user_version(st, &version, cause) == -1)
			goto fail;
		if (version > latest) {
			xasprintf(cause, "%s: schema version %d is newer than "
			    "this gradwatchd (%d); upgrade gradwatchd", path,
			    version, latest);
			goto fail;
		}
		if (version < 0) {
			xasprintf(cause, "%s: invalid schema version %d", path,
			    version);
			goto fail;
		}
		if (version == latest)
			break;
		if (store_exec(st, schema_sql[version], cause) == -1 ||
		    store_hook_run(st, version + 1, cause) == -1)
			goto fail;
		xasprintf(&sql, "PRAGMA user_version = %d", version + 1);
		if (store_exec(st, sql, cause) == -1)
			goto fail;
		free(sql);
		sql = NULL;
		if (store_exec(st, "COMMIT", cause) == -1)
			goto fail;
	}
	return store_exec(st, "COMMIT", cause);

fail:
	free(sql);
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* ---- version 3: legacy chunks into chunk.h's format ------------------- */

/* A legacy chunk row, its blobs copied. */
struct store_legacy {
	int64_t		 id;
	int64_t		 series_id;
	int64_t		 first;
	int64_t		 last;
	int64_t		 n;
	void		*steps;		/* NULL: consecutive */
	int		 nsteps;	/* bytes */
	void		*vals;
	int		 nvals;
	int		 vals_null;
	char		*where;		/* "run R, kind name" for messages */
};

enum {
	LEG_SELECT,
	LEG_UPDATE,
	LEG_QUARANTINE,
	LEG_DELETE,
	LEG_COUNT
};

static const char *const store_legacy_sql[LEG_COUNT] = {
	[LEG_SELECT] =
	    "SELECT c.id, c.series_id, c.first_step, c.last_step, c.n, "
	    "c.steps, c.vals, coalesce(r.key, '?'), coalesce(s.kind, '?'), "
	    "coalesce(s.name, '?') FROM chunks c "
	    "LEFT JOIN series s ON s.id = c.series_id "
	    "LEFT JOIN runs r ON r.id = s.run_id "
	    "WHERE c.id > ?1 ORDER BY c.id LIMIT ?2",
	[LEG_UPDATE] =
	    "UPDATE chunks SET data = ?2, min_value = ?3, min_step = ?4, "
	    "max_value = ?5, max_step = ?6, nonfinite = ?7 WHERE id = ?1",
	[LEG_QUARANTINE] =
	    "INSERT INTO quarantine (series_id, source, source_id, first_step, "
	    "last_step, n, steps, vals, reason, quarantined_at) "
	    "SELECT series_id, 'chunks', id, first_step, last_step, n, steps, "
	    "vals, ?2, (julianday('now') - 2440587.5) * 86400.0 "
	    "FROM chunks WHERE id = ?1",
	[LEG_DELETE] = "DELETE FROM chunks WHERE id = ?1",
};

static void *
store_blob_copy(sqlite3_stmt *s, int col, int *len)
{
	const void	*p = sqlite3_column_blob(s, col);
	void		*copy;

	*len = sqlite3_column_bytes(s, col);
	if (p == NULL || *len <= 0)
		return NULL;
	copy = xmalloc((size_t)*len);
	memcpy(copy, p, (size_t)*len);
	return copy;
}

/*
 * Check c against schema 0001's rules and decode it into buf.  NULL, or
 * why it is damaged (allocated).
 */
static char *
store_legacy_decode(const struct store_legacy *c, struct store_buf *buf)
{
	char	*why = NULL;
	int64_t	 i;

	if (c->n <= 0 || (uint64_t)c->n > CHUNK_MAX_POINTS) {
		xasprintf(&why, "n is %" PRId64, c->n);
		return why;
	}
	if (c->vals_null || (int64_t)c->nvals != c->n * 8) {
		xasprintf(&why, "vals holds %d bytes for %" PRId64 " points",
		    c->vals_null ? 0 : c->nvals, c->n);
		return why;
	}
	buf->n = 0;
	store_buf_reserve(buf, (size_t)c->n);
	memcpy(buf->vals, c->vals, (size_t)c->n * 8);
	if (c->steps == NULL && c->nsteps == 0) {
		if (c->last < c->first ||
		    (uint64_t)c->last - (uint64_t)c->first != (uint64_t)c->n - 1) {
			xasprintf(&why, "consecutive steps %" PRId64 "..%" PRId64
			    " are not %" PRId64 " points", c->first, c->last,
			    c->n);
			return why;
		}
		for (i = 0; i < c->n; i++)
			buf->steps[i] = c->first + i;
	} else {
		if ((int64_t)c->nsteps != c->n * 8) {
			xasprintf(&why, "steps holds %d bytes for %" PRId64
			    " points", c->nsteps, c->n);
			return why;
		}
		memcpy(buf->steps, c->steps, (size_t)c->n * 8);
		for (i = 1; i < c->n; i++)
			if (buf->steps[i] <= buf->steps[i - 1]) {
				xasprintf(&why, "steps not ascending at point "
				    "%" PRId64, i);
				return why;
			}
		if (buf->steps[0] != c->first || buf->steps[c->n - 1] != c->last) {
			xasprintf(&why, "steps run %" PRId64 "..%" PRId64
			    ", the row says %" PRId64 "..%" PRId64,
			    buf->steps[0], buf->steps[c->n - 1], c->first,
			    c->last);
			return why;
		}
	}
	buf->n = (size_t)c->n;
	return NULL;
}

/* Re-encode one legacy chunk, or move it to quarantine. */
static int
store_legacy_one(struct store *st, sqlite3_stmt **ls,
    const struct store_legacy *c, char **cause)
{
	struct chunk_summary	 sum;
	struct store_buf	*buf = &st->old;
	sqlite3_stmt		*s;
	char			*why;

	if ((why = store_legacy_decode(c, buf)) != NULL) {
		log_warnx("store: migration: chunk %" PRId64 " of %s, steps "
		    "%" PRId64 "..%" PRId64 ", is damaged (%s): moved to the "
		    "quarantine table", c->id, c->where, c->first, c->last, why);
		s = ls[LEG_QUARANTINE];
		sqlite3_bind_int64(s, 1, c->id);
		sqlite3_bind_text(s, 2, why, -1, SQLITE_TRANSIENT);
		free(why);
		if (store_done(st, s, "quarantine", cause) == -1)
			return -1;
		s = ls[LEG_DELETE];
		sqlite3_bind_int64(s, 1, c->id);
		return store_done(st, s, "delete chunk", cause);
	}
	st->enc.len = 0;
	if (chunk_encode(&st->enc, buf->steps, buf->vals, buf->n) == 0) {
		xasprintf(cause, "store: migration: chunk %" PRId64 " does "
		    "not encode", c->id);
		return -1;
	}
	chunk_summarize(&sum, buf->steps, buf->vals, buf->n);
	s = ls[LEG_UPDATE];
	sqlite3_bind_int64(s, 1, c->id);
	sqlite3_bind_blob(s, 2, st->enc.data, (int)st->enc.len, SQLITE_STATIC);
	store_summary_bind(s, 3, &sum);
	return store_done(st, s, "re-encode chunk", cause);
}

static void
store_legacy_free(struct store_legacy *c, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(c[i].steps);
		free(c[i].vals);
		free(c[i].where);
	}
}

/*
 * Every chunk row gets its data blob (or goes to quarantine); then the
 * counters are recomputed from what is stored (series.points and
 * max_span from the chunks, runs.points as the sum of its series: both
 * distinct points now) and the legacy columns are dropped.
 */
static int
store_migrate_0003(struct store *st, char **cause)
{
	sqlite3_stmt		*ls[LEG_COUNT] = { NULL };
	struct store_legacy	 rows[STORE_MIGRATE_ROWS], *c;
	sqlite3_stmt		*s;
	int64_t			 after = 0;
	size_t			 n = 0, i;
	int			 rc, ret = -1;

	memset(rows, 0, sizeof rows);
	if (store_prepare_all(st, store_legacy_sql, ls, LEG_COUNT,
	    cause) == -1)
		goto out;
	for (;;) {
		s = ls[LEG_SELECT];
		sqlite3_bind_int64(s, 1, after);
		sqlite3_bind_int(s, 2, STORE_MIGRATE_ROWS);
		n = 0;
		/* All rows of a round are read before any is changed. */
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			c = &rows[n++];
			c->id = sqlite3_column_int64(s, 0);
			c->series_id = sqlite3_column_int64(s, 1);
			c->first = sqlite3_column_int64(s, 2);
			c->last = sqlite3_column_int64(s, 3);
			c->n = sqlite3_column_int64(s, 4);
			c->steps = store_blob_copy(s, 5, &c->nsteps);
			c->vals_null = sqlite3_column_type(s, 6) == SQLITE_NULL;
			c->vals = store_blob_copy(s, 6, &c->nvals);
			xasprintf(&c->where, "run %s, %s %s",
			    (const char *)sqlite3_column_text(s, 7),
			    (const char *)sqlite3_column_text(s, 8),
			    (const char *)sqlite3_column_text(s, 9));
		}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE) {
			store_err(st, cause, "migration: read chunks");
			goto out;
		}
		if (n == 0)
			break;
		for (i = 0; i < n; i++)
			if (store_legacy_one(st, ls, &rows[i], cause) == -1)
				goto out;
		after = rows[n - 1].id;
		store_legacy_free(rows, n);
		memset(rows, 0, n * sizeof rows[0]);
		n = 0;
	}
	if (store_exec(st,
	    "UPDATE series SET points = (SELECT coalesce(sum(n), 0) FROM chunks"
	    " WHERE series_id = series.id), max_span = (SELECT"
	    " coalesce(max(last_step - first_step), 0) FROM chunks"
	    " WHERE series_id = series.id);"
	    "UPDATE runs SET points = (SELECT coalesce(sum(points), 0)"
	    " FROM series WHERE run_id = runs.id);"
	    "ALTER TABLE chunks DROP COLUMN steps;"
	    "ALTER TABLE chunks DROP COLUMN vals", cause) == -1)
		goto out;
	ret = 0;
out:
	store_legacy_free(rows, n);
	for (i = 0; i < LEG_COUNT; i++)
		sqlite3_finalize(ls[i]);
	return ret;
}

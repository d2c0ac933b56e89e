/* SPDX-License-Identifier: MIT */
/*
 * history: chunk rows back into a batch (schema/0001_init.sql's blob
 * layout: packed little-endian int64 steps, or NULL when consecutive,
 * and binary64 values).
 */
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "xmalloc.h"

static int
history_fail(sqlite3 *db, const char *what, char **cause)
{
	xasprintf(cause, "history: %s: %s", what, sqlite3_errmsg(db));
	return -1;
}

static int
history_int64_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Append the points of chunk row s (steps, vals, first_step, n) >= from. */
static void
history_chunk(struct batch *b, size_t si, sqlite3_stmt *s, int64_t from)
{
	const unsigned char	*sb = sqlite3_column_blob(s, 0);
	const unsigned char	*vb = sqlite3_column_blob(s, 1);
	int64_t			 first = sqlite3_column_int64(s, 2), step;
	size_t			 n = (size_t)sqlite3_column_int64(s, 3), i;
	double			 v;

	if ((size_t)sqlite3_column_bytes(s, 1) < n * sizeof v ||
	    (sb != NULL && (size_t)sqlite3_column_bytes(s, 0) < n * sizeof step))
		return;		/* a damaged chunk is skipped, not trusted */
	for (i = 0; i < n; i++) {
		if (sb != NULL)
			memcpy(&step, sb + i * sizeof step, sizeof step);
		else
			step = first + (int64_t)i;
		if (step < from)
			continue;
		memcpy(&v, vb + i * sizeof v, sizeof v);
		batch_series_push(b, si, step, v);
	}
}

/* Fill b->steps with the sorted distinct steps of all its series. */
static void
history_steps(struct batch *b)
{
	size_t	i, j, n = 0;

	b->steps = xreallocarray(NULL, b->npoints, sizeof *b->steps);
	for (i = 0; i < b->nseries; i++)
		for (j = 0; j < b->series[i].n; j++)
			b->steps[n++] = b->series[i].steps[j];
	qsort(b->steps, n, sizeof *b->steps, history_int64_cmp);
	for (i = j = 0; i < n; i++)
		if (j == 0 || b->steps[j - 1] != b->steps[i])
			b->steps[j++] = b->steps[i];
	b->nsteps = j;
}

static void
history_layer_meta(struct batch *b, sqlite3_stmt *s)
{
	struct batch_layer_meta	*m;
	const char		*shape;

	if (sqlite3_column_type(s, 3) == SQLITE_NULL &&
	    sqlite3_column_type(s, 4) == SQLITE_NULL)
		return;
	b->layers_meta = xreallocarray(b->layers_meta, b->nlayers_meta + 1,
	    sizeof *b->layers_meta);
	m = &b->layers_meta[b->nlayers_meta++];
	m->name = xstrdup((const char *)sqlite3_column_text(s, 2));
	m->numel = sqlite3_column_type(s, 3) == SQLITE_NULL ? -1 :
	    sqlite3_column_int64(s, 3);
	m->depth = sqlite3_column_type(s, 4) == SQLITE_NULL ? -1 :
	    sqlite3_column_int64(s, 4);
	shape = (const char *)sqlite3_column_text(s, 5);
	m->shape_json = shape != NULL ? xstrdup(shape) : NULL;
}

struct batch *
history_load(sqlite3 *db, int64_t run_id, int64_t from_step, char **cause)
{
	static const char series_sql[] =
	    "SELECT s.id, s.kind, s.name, s.numel, s.depth, s.shape, r.key"
	    " FROM series s JOIN runs r ON r.id = s.run_id"
	    " WHERE s.run_id = ?1 ORDER BY s.id";
	static const char chunks_sql[] =
	    "SELECT steps, vals, first_step, n FROM chunks"
	    " WHERE series_id = ?1 AND last_step >= ?2 ORDER BY first_step";
	sqlite3_stmt	*ss = NULL, *cs = NULL;
	struct batch	*b = NULL;
	int		 kind, rc;
	size_t		 si;

	if (sqlite3_prepare_v2(db, series_sql, -1, &ss, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, chunks_sql, -1, &cs, NULL) != SQLITE_OK) {
		history_fail(db, "prepare", cause);
		goto fail;
	}
	sqlite3_bind_int64(ss, 1, run_id);
	while ((rc = sqlite3_step(ss)) == SQLITE_ROW) {
		if (b == NULL)
			b = batch_new((const char *)sqlite3_column_text(ss, 6));
		kind = series_kind_parse((const char *)sqlite3_column_text(ss,
		    1));
		if (kind < 0)
			continue;
		if (kind == SERIES_LAYER_GRAD)
			history_layer_meta(b, ss);
		si = batch_series_get(b, (enum series_kind)kind,
		    (const char *)sqlite3_column_text(ss, 2));
		sqlite3_reset(cs);
		sqlite3_bind_int64(cs, 1, sqlite3_column_int64(ss, 0));
		sqlite3_bind_int64(cs, 2, from_step);
		while ((rc = sqlite3_step(cs)) == SQLITE_ROW)
			history_chunk(b, si, cs, from_step);
		if (rc != SQLITE_DONE) {
			history_fail(db, "chunks", cause);
			goto fail;
		}
	}
	if (rc != SQLITE_DONE) {
		history_fail(db, "series", cause);
		goto fail;
	}
	if (b == NULL) {
		xasprintf(cause, "history: run %lld has no series",
		    (long long)run_id);
		goto fail;
	}
	history_steps(b);
	sqlite3_finalize(ss);
	sqlite3_finalize(cs);
	return b;
fail:
	sqlite3_finalize(ss);
	sqlite3_finalize(cs);
	batch_free(b);
	return NULL;
}

int
history_each_active(sqlite3 *db, history_run_cb cb, void *arg, char **cause)
{
	static const char sql[] =
	    "SELECT id, key, COALESCE(last_step, -1) FROM runs"
	    " WHERE status IN ('running', 'stalled') ORDER BY id";
	sqlite3_stmt	*s = NULL;
	int		 rc;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return history_fail(db, "prepare runs", cause);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		cb(arg, sqlite3_column_int64(s, 0),
		    (const char *)sqlite3_column_text(s, 1),
		    sqlite3_column_int64(s, 2));
	rc = rc == SQLITE_DONE ? 0 : history_fail(db, "runs", cause);
	sqlite3_finalize(s);
	return rc;
}

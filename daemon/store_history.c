/* SPDX-License-Identifier: MIT */
/*
 * store_history: chunk and tail rows back into a batch; see
 * store_history.h.  A series' chunks are found from its max_span like
 * the writer's (the index range starts at from - max_span), its tail
 * rows all follow its chunks, and chunk.h decodes both.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "log.h"
#include "store.h"
#include "store_history.h"
#include "store_int.h"
#include "xmalloc.h"

const char *const store_history_sql[HID_COUNT] = {
	[HID_SERIES] =
	    "SELECT s.id, s.kind, s.name, s.numel, s.depth, s.shape, r.key,"
	    " s.max_span FROM series s JOIN runs r ON r.id = s.run_id"
	    " WHERE s.run_id = ?1 ORDER BY s.id",
	[HID_CHUNKS] =
	    "SELECT id, data FROM chunks WHERE series_id = ?1"
	    " AND first_step >= ?2 - ?3 AND first_step <= ?4"
	    " AND last_step >= ?2 ORDER BY first_step",
	[HID_TAILS] =
	    "SELECT id, data FROM tails WHERE series_id = ?1"
	    " AND last_step >= ?2 AND first_step <= ?3 ORDER BY first_step",
	[HID_ACTIVE] =
	    "SELECT id, key, COALESCE(last_step, -1) FROM runs"
	    " WHERE status IN ('running', 'stalled') ORDER BY id",
};

static int
store_history_fail(struct store *st, const char *what, char **cause)
{
	xasprintf(cause, "store: history: %s: %s", what,
	    sqlite3_errmsg(st->db));
	return -1;
}

/*
 * Append the points in [from, to] of the blob in the current row of s
 * (id, data) to series si of b.  A damaged blob adds nothing.
 */
static void
store_history_blob(struct batch *b, size_t si, sqlite3_stmt *s,
    const char *table, int64_t from, int64_t to)
{
	struct chunk_reader	 r;
	struct batch_series	*bs = &b->series[si];
	const void		*blob = sqlite3_column_blob(s, 1);
	char			*why = NULL;
	size_t			 n0 = bs->n;
	int64_t			 step;
	double			 v;
	int			 rc;

	if (blob == NULL || chunk_reader_init(&r, blob,
	    (size_t)sqlite3_column_bytes(s, 1), &why) == -1) {
		log_warnx("store: history: %s row %" PRId64 " of %s: %s",
		    table, (int64_t)sqlite3_column_int64(s, 0), bs->name,
		    why != NULL ? why : "no data");
		free(why);
		return;
	}
	while ((rc = chunk_next(&r, &step, &v)) == 1)
		if (step >= from && step <= to)
			batch_series_push(b, si, step, v);
	if (rc == -1) {
		log_warnx("store: history: %s row %" PRId64 " of %s: %s",
		    table, (int64_t)sqlite3_column_int64(s, 0), bs->name,
		    chunk_reader_error(&r));
		b->npoints -= bs->n - n0;	/* not trusted */
		bs->n = n0;
	}
}

/* Sort series si of b by step: chunks rewritten by a resend interleave. */
static void
store_history_sort(struct store *st, struct batch *b, size_t si)
{
	struct batch_series	*bs = &b->series[si];
	const int64_t		*steps;
	const double		*vals;
	size_t			 n;

	store_normalize(st, bs->steps, bs->values, bs->n, &st->sorted, &steps,
	    &vals, &n);
	if (steps == bs->steps)
		return;
	memcpy(bs->steps, steps, n * sizeof *steps);
	memcpy(bs->values, vals, n * sizeof *vals);
	b->npoints -= bs->n - n;
	bs->n = n;
}

/* Fill b->steps with the sorted distinct steps of all its series. */
static int
store_history_int64_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void
store_history_steps(struct batch *b)
{
	size_t	i, j, n = 0;

	b->steps = xreallocarray(NULL, b->npoints + 1, sizeof *b->steps);
	for (i = 0; i < b->nseries; i++)
		for (j = 0; j < b->series[i].n; j++)
			b->steps[n++] = b->series[i].steps[j];
	qsort(b->steps, n, sizeof *b->steps, store_history_int64_cmp);
	for (i = j = 0; i < n; i++)
		if (j == 0 || b->steps[j - 1] != b->steps[i])
			b->steps[j++] = b->steps[i];
	b->nsteps = j;
}

static void
store_history_layer_meta(struct batch *b, sqlite3_stmt *s)
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

/* Read the rows of table (statement s, bound but for the series) into si. */
static int
store_history_rows(struct store *st, struct batch *b, size_t si,
    sqlite3_stmt *s, const char *table, int64_t from, int64_t to,
    char **cause)
{
	int	rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		store_history_blob(b, si, s, table, from, to);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_history_fail(st, table, cause);
	return 0;
}

struct batch *
store_history_load(struct store *st, int64_t run_id, int64_t from_step,
    int64_t to_step, char **cause)
{
	sqlite3_stmt	*ss = st->history[HID_SERIES];
	sqlite3_stmt	*cs = st->history[HID_CHUNKS];
	sqlite3_stmt	*ts = st->history[HID_TAILS];
	struct batch	*b = NULL;
	int64_t		 sid;
	int		 kind, rc;
	size_t		 si;

	sqlite3_bind_int64(ss, 1, run_id);
	while ((rc = sqlite3_step(ss)) == SQLITE_ROW) {
		if (b == NULL)
			b = batch_new((const char *)sqlite3_column_text(ss, 6));
		kind = series_kind_parse((const char *)sqlite3_column_text(ss,
		    1));
		if (kind < 0)
			continue;
		if (kind == SERIES_LAYER_GRAD)
			store_history_layer_meta(b, ss);
		si = batch_series_get(b, (enum series_kind)kind,
		    (const char *)sqlite3_column_text(ss, 2));
		sid = sqlite3_column_int64(ss, 0);
		sqlite3_bind_int64(cs, 1, sid);
		sqlite3_bind_int64(cs, 2, from_step);
		sqlite3_bind_int64(cs, 3, sqlite3_column_int64(ss, 7));
		sqlite3_bind_int64(cs, 4, to_step);
		sqlite3_bind_int64(ts, 1, sid);
		sqlite3_bind_int64(ts, 2, from_step);
		sqlite3_bind_int64(ts, 3, to_step);
		if (store_history_rows(st, b, si, cs, "chunk", from_step,
		    to_step, cause) == -1 ||
		    store_history_rows(st, b, si, ts, "tail", from_step,
		    to_step, cause) == -1)
			goto fail;
		store_history_sort(st, b, si);
	}
	sqlite3_reset(ss);
	if (rc != SQLITE_DONE) {
		store_history_fail(st, "series", cause);
		goto fail;
	}
	if (b == NULL) {
		xasprintf(cause, "store: history: run %" PRId64 " has no "
		    "series", run_id);
		return NULL;
	}
	store_history_steps(b);
	return b;

fail:
	sqlite3_reset(ss);
	batch_free(b);
	return NULL;
}

int
store_history_each_active(struct store *st, store_history_run_cb cb,
    void *arg, char **cause)
{
	sqlite3_stmt	*s = st->history[HID_ACTIVE];
	int		 rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		cb(arg, sqlite3_column_int64(s, 0),
		    (const char *)sqlite3_column_text(s, 1),
		    sqlite3_column_int64(s, 2));
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_history_fail(st, "runs", cause);
	return 0;
}

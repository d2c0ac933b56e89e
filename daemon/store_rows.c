/* SPDX-License-Identifier: MIT */
/*
 * store_rows: a series' rows as the writer reads and writes them: its
 * points sorted and deduplicated (the newest value of a step wins),
 * chunk rows read back with chunk.h's rules and written over the rows
 * they replace, damaged rows counted and quarantined instead of
 * skipped, and the series row brought up to the cache.  Writer thread
 * only.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "wire.h"
#include "xmalloc.h"

static int
store_sortkey_cmp(const void *a, const void *b)
{
	const struct store_sortkey	*x = a, *y = b;

	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Points (steps, vals, n) in ascending step order with each step once,
 * the last of equal steps winning.  Returns the input itself when it is
 * already so (the common case), or out's arrays.
 */
void
store_normalize(struct store *st, const int64_t *steps, const double *vals,
    size_t n, struct store_buf *out, const int64_t **rsteps,
    const double **rvals, size_t *rn)
{
	size_t	i, m;

	for (i = 1; i < n; i++)
		if (steps[i] <= steps[i - 1])
			break;
	if (i >= n) {
		*rsteps = steps;
		*rvals = vals;
		*rn = n;
		return;
	}
	if (n > st->keyscap) {
		st->keyscap = n;
		st->keys = xreallocarray(st->keys, n, sizeof *st->keys);
	}
	for (i = 0; i < n; i++) {
		st->keys[i].step = steps[i];
		st->keys[i].idx = i;
	}
	/* Ties broken by position: a stable sort, so the last one wins. */
	qsort(st->keys, n, sizeof *st->keys, store_sortkey_cmp);
	store_buf_reserve(out, n);
	for (i = 0, m = 0; i < n; i++) {
		if (i + 1 < n && st->keys[i + 1].step == st->keys[i].step)
			continue;
		out->steps[m] = st->keys[i].step;
		out->vals[m] = vals[st->keys[i].idx];
		m++;
	}
	out->n = m;
	*rsteps = out->steps;
	*rvals = out->vals;
	*rn = m;
}

/* Remember a damaged row (takes why). */
void
store_bad_add(struct store *st, int64_t id, int64_t n, char *why)
{
	if (st->nbad == st->badcap) {
		st->badcap = st->badcap == 0 ? 4 : st->badcap * 2;
		st->bad = xreallocarray(st->bad, st->badcap, sizeof *st->bad);
	}
	st->bad[st->nbad].id = id;
	st->bad[st->nbad].n = n;
	st->bad[st->nbad].why = why;
	st->nbad++;
}

/*
 * Move the damaged rows st->bad of series e (from tails, else chunks)
 * to the quarantine table, each named in a warning; their points are no
 * longer e's.
 */
int
store_bad_quarantine(struct store *st, struct store_ent *e, int tails,
    char **cause)
{
	struct store_bad	*b;
	sqlite3_stmt		*s;
	size_t			 i;
	int			 rc = 0;

	for (i = 0; i < st->nbad; i++) {
		b = &st->bad[i];
		if (rc == 0) {
			log_warnx("store: %s row %" PRId64 " of series %s "
			    "(id %" PRId64 ") is damaged (%s): moved to the "
			    "quarantine table", tails ? "tail" : "chunk", b->id,
			    e->name, e->s.id, b->why);
			s = st->stmt[tails ? SID_QUARANTINE_TAIL :
			    SID_QUARANTINE_CHUNK];
			sqlite3_bind_int64(s, 1, b->id);
			sqlite3_bind_text(s, 2, b->why, -1, SQLITE_STATIC);
			rc = store_done(st, s, "quarantine", cause);
		}
		if (rc == 0 && tails) {
			s = st->stmt[SID_DELETE_TAIL_ROW];
			sqlite3_bind_int64(s, 1, b->id);
			rc = store_done(st, s, "quarantine", cause);
		} else if (rc == 0)
			rc = store_chunk_delete(st, b->id, cause);
		if (rc == 0) {
			e->s.points -= b->n > 0 ? b->n : 0;
			if (e->s.points < 0)
				e->s.points = 0;
			store_queue(st, e);
		}
		free(b->why);
	}
	st->nbad = 0;
	return rc;
}

/*
 * Append the chunk in the current row of s (id, n, data, first_step,
 * last_step) to st->old, or note it in st->bad when it is damaged.
 */
static void
store_chunk_load(struct store *st, sqlite3_stmt *s)
{
	struct store_buf	*o = &st->old;
	struct chunk_info	 info;
	const void		*blob;
	char			*why = NULL;
	int64_t			 id, n;
	size_t			 got;
	int			 len;

	id = sqlite3_column_int64(s, 0);
	n = sqlite3_column_int64(s, 1);
	blob = sqlite3_column_blob(s, 2);
	len = sqlite3_column_bytes(s, 2);
	if (blob == NULL) {
		store_bad_add(st, id, n, xstrdup("no data"));
		return;
	}
	if (chunk_info(blob, (size_t)len, &info, &why) == -1) {
		store_bad_add(st, id, n, why);
		return;
	}
	if ((int64_t)info.n != n ||
	    info.first_step != sqlite3_column_int64(s, 3) ||
	    info.last_step != sqlite3_column_int64(s, 4)) {
		xasprintf(&why, "its data holds %zu points, steps %" PRId64
		    "..%" PRId64 ", its columns say %" PRId64 ", %" PRId64
		    "..%" PRId64, info.n, info.first_step, info.last_step, n,
		    (int64_t)sqlite3_column_int64(s, 3),
		    (int64_t)sqlite3_column_int64(s, 4));
		store_bad_add(st, id, n, why);
		return;
	}
	store_buf_reserve(o, o->n + info.n);
	if (chunk_decode(blob, (size_t)len, o->steps + o->n, o->vals + o->n,
	    info.n, &got, &why) == -1) {
		store_bad_add(st, id, n, why);
		return;
	}
	o->n += got;
	if (st->ncand == st->candcap) {
		st->candcap = st->candcap == 0 ? 16 : st->candcap * 2;
		st->cand = xreallocarray(st->cand, st->candcap,
		    sizeof *st->cand);
	}
	st->cand[st->ncand++] = id;
}

/*
 * Read the chunks that a statement (already bound) returns into st->old.
 * All rows are read before any chunk is rewritten: SQLite leaves a
 * table changed under a running SELECT undefined.
 */
int
store_chunks_read(struct store *st, sqlite3_stmt *s, char **cause)
{
	int	rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		store_chunk_load(st, s);
	if (rc != SQLITE_DONE) {
		store_err(st, cause, "read chunks");
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

void
store_summary_bind(sqlite3_stmt *s, int col, const struct chunk_summary *sum)
{
	if (sum->nfinite > 0) {
		sqlite3_bind_double(s, col, sum->min);
		sqlite3_bind_int64(s, col + 1, sum->min_step);
		sqlite3_bind_double(s, col + 2, sum->max);
		sqlite3_bind_int64(s, col + 3, sum->max_step);
	} else {
		sqlite3_bind_null(s, col);
		sqlite3_bind_null(s, col + 1);
		sqlite3_bind_null(s, col + 2);
		sqlite3_bind_null(s, col + 3);
	}
	sqlite3_bind_int64(s, col + 4, (int64_t)sum->nonfinite);
}

size_t
store_chunk_fit(struct store *st, const int64_t *steps, const double *vals,
    size_t n, size_t max_bytes)
{
	size_t	k;

	st->enc.len = 0;
	(void)chunk_encode_fit(&st->enc, steps, vals,
	    n < STORE_CHUNK_MAX ? n : STORE_CHUNK_MAX, max_bytes, &k);
	return k;
}

/*
 * Bind ?2..?10 of a chunk insert or update from st->enc, the chunk of
 * steps/vals[0..n-1]: the points and their summary.  Leaves their block
 * summaries in st->blocks (empty when the chunk is too sparse to have
 * them), with extremes for a series of kind that is drawn as a line
 * (chunk.h).
 */
static void
store_chunk_bind(struct store *st, sqlite3_stmt *s, int kind,
    const int64_t *steps, const double *vals, size_t n)
{
	struct chunk_summary	sum;

	chunk_summarize(&sum, steps, vals, n);
	sqlite3_bind_int64(s, 2, steps[0]);
	sqlite3_bind_int64(s, 3, steps[n - 1]);
	sqlite3_bind_int64(s, 4, (int64_t)n);
	sqlite3_bind_blob(s, 5, st->enc.data, (int)st->enc.len, SQLITE_STATIC);
	store_summary_bind(s, 6, &sum);
	st->blocks.len = 0;
	(void)chunk_blocks_encode(&st->blocks, steps, vals, n,
	    store_kind_extremes(kind));
}

int
store_blocks_write(struct store *st, int64_t id, int64_t last, int was_there,
    char **cause)
{
	sqlite3_stmt	*s;

	if (st->blocks.len == 0) {
		if (!was_there)
			return 0;
		s = st->stmt[SID_BLOCKS_DROP];
		sqlite3_bind_int64(s, 1, id);
		return store_done(st, s, "drop block summaries", cause);
	}
	s = st->stmt[SID_BLOCKS_PUT];
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, last);
	sqlite3_bind_blob(s, 3, st->blocks.data, (int)st->blocks.len,
	    SQLITE_STATIC);
	return store_done(st, s, "put block summaries", cause);
}

int
store_chunk_put(struct store *st, struct store_ent *e, int64_t reuse,
    const int64_t *steps, const double *vals, size_t n, char **cause)
{
	sqlite3_stmt	*s;
	int64_t		 span, id;

	span = steps[n - 1] - steps[0];
	if (span > e->s.maxspan)
		e->s.maxspan = span;
	if (reuse > 0) {
		s = st->stmt[SID_CHUNK_UPDATE];
		sqlite3_bind_int64(s, 1, reuse);
	} else {
		s = st->stmt[SID_CHUNK_INSERT];
		sqlite3_bind_int64(s, 1, e->s.id);
	}
	store_chunk_bind(st, s, e->kind, steps, vals, n);
	if (store_done(st, s, reuse > 0 ? "update chunk" : "insert chunk",
	    cause) == -1)
		return -1;
	id = reuse > 0 ? reuse : sqlite3_last_insert_rowid(st->db);
	return store_blocks_write(st, id, steps[n - 1], reuse > 0, cause);
}

/*
 * Write points (ascending, unique) as chunk rows that each fill a page
 * (the last one takes the rest), reusing the rows st->cand (which held
 * them before), inserting more rows or deleting surplus ones, each with
 * its block summaries.  e's max_span grows to cover them.
 */
int
store_chunks_write(struct store *st, struct store_ent *e,
    const int64_t *steps, const double *vals, size_t n, char **cause)
{
	size_t		 off, k, i;

	for (off = 0, i = 0; off < n; off += k, i++) {
		k = store_chunk_fit(st, steps + off, vals + off, n - off,
		    st->chunk_bytes);
		if (k == 0) {
			xasprintf(cause, "store: %zu points do not make a "
			    "chunk", n - off);
			return -1;
		}
		if (store_chunk_put(st, e, i < st->ncand ? st->cand[i] : 0,
		    steps + off, vals + off, k, cause) == -1)
			return -1;
	}
	for (; i < st->ncand; i++)
		if (store_chunk_delete(st, st->cand[i], cause) == -1)
			return -1;
	return 0;
}

/*
 * Delete chunk row id and its chunk_blocks row (the writer's connection
 * does not enforce the schema's ON DELETE CASCADE: store_open).
 */
int
store_chunk_delete(struct store *st, int64_t id, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_BLOCKS_DROP];

	sqlite3_bind_int64(s, 1, id);
	if (store_done(st, s, "drop block summaries", cause) == -1)
		return -1;
	s = st->stmt[SID_CHUNK_DELETE];
	sqlite3_bind_int64(s, 1, id);
	return store_done(st, s, "delete chunk", cause);
}

/* Merge old (ascending, unique) and new points into st->merged; new wins. */
void
store_merge(struct store *st, const int64_t *os, const double *ov, size_t on,
    const int64_t *ns, const double *nv, size_t nn)
{
	struct store_buf	*m = &st->merged;
	size_t			 i = 0, j = 0, k = 0;

	store_buf_reserve(m, on + nn);
	while (i < on && j < nn) {
		if (os[i] < ns[j]) {
			m->steps[k] = os[i];
			m->vals[k++] = ov[i++];
		} else {
			if (os[i] == ns[j])
				i++;
			m->steps[k] = ns[j];
			m->vals[k++] = nv[j++];
		}
	}
	for (; i < on; i++, k++) {
		m->steps[k] = os[i];
		m->vals[k] = ov[i];
	}
	for (; j < nn; j++, k++) {
		m->steps[k] = ns[j];
		m->vals[k] = nv[j];
	}
	m->n = k;
}

/* Bring e's series row up to the cache: counters, last point, max_span. */
int
store_series_row_write(struct store *st, struct store_ent *e, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_SERIES_UPDATE];
	int		 class;

	sqlite3_bind_int64(s, 1, e->s.id);
	sqlite3_bind_int64(s, 2, e->s.points);
	if (e->s.points > 0) {
		class = wire_class(e->s.last_value);
		sqlite3_bind_int64(s, 3, e->s.last_step);
		if (class == 0)
			sqlite3_bind_double(s, 4, e->s.last_value);
		else
			sqlite3_bind_null(s, 4);
		sqlite3_bind_int(s, 5, class);
	} else {
		sqlite3_bind_null(s, 3);
		sqlite3_bind_null(s, 4);
		sqlite3_bind_int(s, 5, 0);
	}
	sqlite3_bind_int64(s, 6, e->s.maxspan);
	return store_done(st, s, "update series", cause);
}

/* Remember that e has unwritten points or a series row to write. */
void
store_queue(struct store *st, struct store_ent *e)
{
	e->s.dirty = 1;
	if (e->queued)
		return;
	if (st->ndirty == st->dirtycap) {
		st->dirtycap = st->dirtycap == 0 ? 64 : st->dirtycap * 2;
		st->dirty = xreallocarray(st->dirty, st->dirtycap,
		    sizeof *st->dirty);
	}
	st->dirty[st->ndirty++] = e;
	e->queued = 1;
}

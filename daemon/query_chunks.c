/* SPDX-License-Identifier: MIT */
/*
 * query_chunks: a series' chunk and tail rows read back with chunk.h's
 * rules (a damaged row fails the query that meets it, naming its
 * steps), and the buckets a step range is cut into for downsampling.
 * Used by the thread that owns the struct query.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "chunk.h"
#include "query_int.h"
#include "xmalloc.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "chunk blobs are little-endian; this reader decodes them natively"
#endif

const struct chunk_cols chunk_cols_plain = {	/* QUERY_ROW_COLS */
	CC_FIRST, CC_LAST, CC_N, CC_DATA
};

void
chunk_cleanup(struct chunk *c)
{
	free(c->steps);
	free(c->vals);
	memset(c, 0, sizeof *c);
}

/*
 * Decode the row in st (its columns as cc says) into *steps and *vals
 * (grown to *cap) with chunk.h's rules, and check it against its
 * columns (count and range): the point count, or -1 with *cause naming
 * the damage.  A damaged row fails the query that meets it: its points
 * are never silently left out.
 */
static int64_t
row_decode(sqlite3_stmt *st, const struct chunk_cols *cc, int64_t **steps,
    double **vals, size_t *cap, char **cause)
{
	const void	*blob = sqlite3_column_blob(st, cc->data);
	char		*why = NULL;
	int64_t		 first, last, n;
	size_t		 got;

	first = sqlite3_column_int64(st, cc->first);
	last = sqlite3_column_int64(st, cc->last);
	n = sqlite3_column_int64(st, cc->n);
	if (n <= 0 || n > CHUNK_MAX_POINTS || blob == NULL) {
		xasprintf(cause, "damaged chunk at steps %" PRId64 "..%" PRId64
		    ": no data or a bad count", first, last);
		return -1;
	}
	if ((size_t)n > *cap) {
		*cap = (size_t)n;
		*steps = xreallocarray(*steps, *cap, sizeof **steps);
		*vals = xreallocarray(*vals, *cap, sizeof **vals);
	}
	if (chunk_decode(blob, (size_t)sqlite3_column_bytes(st, cc->data),
	    *steps, *vals, (size_t)n, &got, &why) == -1 ||
	    got != (size_t)n || (*steps)[0] != first ||
	    (*steps)[n - 1] != last) {
		xasprintf(cause, "damaged chunk at steps %" PRId64 "..%" PRId64
		    ": %s", first, last, why != NULL ? why :
		    "its points disagree with its columns");
		free(why);
		return -1;
	}
	return n;
}

int
chunk_view_get(struct query *q, sqlite3_stmt *st, const struct chunk_cols *cc,
    struct chunk_view *v, char **cause)
{
	int64_t	n;

	if ((n = row_decode(st, cc, &q->dsteps, &q->dvals, &q->dcap,
	    cause)) == -1)
		return -1;
	v->first = sqlite3_column_int64(st, cc->first);
	v->last = sqlite3_column_int64(st, cc->last);
	v->n = (size_t)n;
	v->steps = q->dsteps;
	v->vals = q->dvals;
	return 0;
}

int
chunk_copy(sqlite3_stmt *st, struct chunk *c, char **cause)
{
	int64_t	n;

	if ((n = row_decode(st, &chunk_cols_plain, &c->steps, &c->vals,
	    &c->cap, cause)) == -1)
		return -1;
	c->n = (size_t)n;
	c->pos = 0;
	return 0;
}

/*
 * Decode the row with id (a chunk; a tail row when negative), valid
 * until the next decode; -1 with *cause.
 */
int
query_chunk_fetch(struct query *q, int64_t id, struct chunk_view *v,
    char **cause)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = query_stmt(q, id < 0 ? QS_TAIL_BY_ID : QS_CHUNK_BY_ID);
	sqlite3_bind_int64(st, 1, id < 0 ? -id : id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return chunk_view_get(q, st, &chunk_cols_plain, v, cause);
	*cause = xstrdup(rc == SQLITE_DONE ?
	    "chunk vanished inside a read transaction" : query_errmsg(q));
	return -1;
}

/* Cut [lo, hi] into about nb_want buckets of equal width. */
void
buckets_init(struct buckets *bk, int64_t lo, int64_t hi, uint64_t nb_want)
{
	uint64_t	span = (uint64_t)hi - (uint64_t)lo + 1;

	if (nb_want == 0)
		nb_want = 1;
	if (nb_want > span)
		nb_want = span;
	bk->lo = lo;
	bk->hi = hi;
	bk->w = span / nb_want + (span % nb_want != 0);
	bk->nb = (size_t)(span / bk->w + (span % bk->w != 0));
	bk->from = lo;
	bk->blocks = 0;
}

/*
 * bk's buckets made w steps wide (a multiple of CHUNK_BLOCK_STEPS), the
 * first starting at the start of lo's block: whole blocks.
 */
static void
buckets_to_blocks(struct buckets *bk, int64_t lo, int64_t hi, uint64_t w)
{
	uint64_t	span;

	bk->lo = chunk_block_of(lo) * CHUNK_BLOCK_STEPS;
	span = (uint64_t)hi - (uint64_t)bk->lo + 1;
	bk->w = w;
	bk->nb = (size_t)(span / w + (span % w != 0));
	bk->blocks = 1;
}

void
buckets_init_blocks(struct buckets *bk, int64_t lo, int64_t hi,
    uint64_t nb_want)
{
	const uint64_t	b = CHUNK_BLOCK_STEPS;

	buckets_init(bk, lo, hi, nb_want);
	if (bk->w < b)
		return;
	buckets_to_blocks(bk, lo, hi, (bk->w + b / 2) / b * b);
	bk->from = bk->lo;	/* the heatmap's answer starts there */
}

void
buckets_init_capped(struct buckets *bk, int64_t lo, int64_t hi,
    uint64_t nb_max)
{
	const uint64_t	b = CHUNK_BLOCK_STEPS;
	uint64_t	span, w;

	buckets_init(bk, lo, hi, nb_max);
	if (bk->w < b)
		return;
	/* No more than nb_max buckets once the first starts earlier. */
	span = (uint64_t)hi - (uint64_t)(chunk_block_of(lo) *
	    CHUNK_BLOCK_STEPS) + 1;
	w = span / nb_max + (span % nb_max != 0);
	buckets_to_blocks(bk, lo, hi, (w + b - 1) / b * b);
}

size_t
buckets_index(const struct buckets *bk, int64_t step)
{
	return (size_t)(((uint64_t)step - (uint64_t)bk->lo) / bk->w);
}

/*
 * 1 if the summary row in st (enum summary_col) stands for its chunk:
 * all its steps in [from, hi] and one bucket, all its values finite.
 */
int
buckets_hold_chunk(const struct buckets *bk, sqlite3_stmt *st)
{
	int64_t	first = sqlite3_column_int64(st, SC_FIRST);
	int64_t	last = sqlite3_column_int64(st, SC_LAST);

	if (sqlite3_column_int(st, SC_WHOLE) == 0)
		return 0;
	return first >= bk->from && last <= bk->hi && first <= last &&
	    buckets_index(bk, first) == buckets_index(bk, last);
}

void
view_walk_init(struct view_walk *w, const struct chunk_view *v,
    const struct buckets *bk)
{
	w->v = v;
	w->bk = bk;
	w->i = 0;
	w->started = 0;
}

/*
 * The next run of points [*i0, *i1) lying in one bucket *b: 1, or 0
 * when no point of the chunk is left in [from, hi].  One division per
 * bucket, none per point.
 */
int
view_walk_next(struct view_walk *w, size_t *b, size_t *i0, size_t *i1)
{
	const struct chunk_view	*v = w->v;
	const struct buckets	*bk = w->bk;
	uint64_t		 end;
	int64_t			 s;

	if (!w->started) {
		w->started = 1;
		if (v->first < bk->from)
			while (w->i < v->n && view_step(v, w->i) < bk->from)
				w->i++;
	}
	if (w->i >= v->n || (s = view_step(v, w->i)) > bk->hi)
		return 0;
	*b = buckets_index(bk, s);
	/* The bucket's last step, within [lo, hi]. */
	end = (uint64_t)bk->lo + ((uint64_t)*b + 1) * bk->w - 1;
	if (end > (uint64_t)bk->hi)
		end = (uint64_t)bk->hi;
	*i0 = w->i;
	while (w->i < v->n && (uint64_t)view_step(v, w->i) <= end)
		w->i++;
	*i1 = w->i;
	return 1;
}

/* SPDX-License-Identifier: MIT */
/*
 * query_points: GET /api/v1/runs/{run}/points.  A series' points in a
 * step range, every one when they fit in max, else downsampled to each
 * bucket's min and max, taken from a chunk's summary instead of its
 * blob whenever the chunk lies inside one bucket, and from its block
 * extremes (chunk.h) when buckets are whole blocks; non-finite points
 * are kept (thinned to the first and last of each class a bucket).
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "query_int.h"
#include "store_rowjson.h"
#include "wire.h"
#include "wire_json.h"
#include "xmalloc.h"

#define QUERY_POINTS_MAX_LIMIT	1000000

/* The min and max finite point of a downsampling bucket. */
struct bucket {
	int64_t	 min_step;
	int64_t	 max_step;
	double	 min;
	double	 max;
	int	 have;
};

static void
points_push(struct points *pts, int64_t step, double v)
{
	if (pts->n == pts->cap) {
		pts->cap = pts->cap == 0 ? 256 : pts->cap * 2;
		pts->p = xreallocarray(pts->p, pts->cap, sizeof *pts->p);
	}
	pts->p[pts->n].step = step;
	pts->p[pts->n].v = v;
	pts->n++;
}

static int
point_cmp(const void *a, const void *b)
{
	const struct point	*pa = a, *pb = b;

	return (pa->step > pb->step) - (pa->step < pb->step);
}

static void
bucket_add(struct bucket *b, int64_t step, double v)
{
	if (!b->have) {
		b->have = 1;
		b->min = b->max = v;
		b->min_step = b->max_step = step;
		return;
	}
	if (v < b->min || (v == b->min && step < b->min_step)) {
		b->min = v;
		b->min_step = step;
	}
	if (v > b->max || (v == b->max && step < b->max_step)) {
		b->max = v;
		b->max_step = step;
	}
}

/*
 * Add the points of v in bk's range to the buckets b, the non-finite
 * ones to nf; count them into *exact.
 */
static void
points_fold_view(const struct chunk_view *v, const struct buckets *bk,
    struct bucket *b, struct points *nf, int64_t *exact)
{
	struct view_walk	 w;
	size_t			 k, i, i0, i1, imin, imax;
	double			 x, mn, mx;

	view_walk_init(&w, v, bk);
	while (view_walk_next(&w, &k, &i0, &i1)) {
		*exact += (int64_t)(i1 - i0);
		imin = imax = SIZE_MAX;
		mn = mx = 0;
		for (i = i0; i < i1; i++) {
			x = view_value(v, i);
			if (!isfinite(x)) {
				points_push(nf, view_step(v, i), x);
				continue;
			}
			if (imin == SIZE_MAX || x < mn) {
				mn = x;
				imin = i;
			}
			if (imax == SIZE_MAX || x > mx) {
				mx = x;
				imax = i;
			}
		}
		if (imin != SIZE_MAX) {
			bucket_add(&b[k], view_step(v, imin), mn);
			bucket_add(&b[k], view_step(v, imax), mx);
		}
	}
}

/*
 * Fold the block extremes of chunk id (steps [first, last], in [from,
 * hi] of bk's whole-block buckets) into b: 1 when they stand for the
 * chunk (stored, with extremes, every block finite), 0 when its points
 * must be read, -1 with *cause when they are damaged.
 */
static int
points_add_blocks(struct query *q, int64_t id, int64_t first, int64_t last,
    const struct buckets *bk, struct bucket *b, char **cause)
{
	struct chunk_blocks	 blocks;
	struct chunk_cell	 cell;
	struct chunk_extremes	 ext;
	struct bucket_step	 bs;
	sqlite3_stmt		*st;
	int64_t			 k;
	size_t			 idx;
	char			*why = NULL;
	int			 rc;

	st = query_stmt(q, QS_BLOCKS_BY_ID);
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			return 0;
		*cause = xstrdup(query_errmsg(q));
		return -1;
	}
	if (sqlite3_column_int64(st, 0) != last)
		why = xstrdup("block summaries of another last step");
	else if (chunk_blocks_open(&blocks, sqlite3_column_blob(st, 1),
	    (size_t)sqlite3_column_bytes(st, 1), first, last, &why) == 0 &&
	    !chunk_blocks_have_extremes(&blocks))
		return 0;
	if (why != NULL) {
		xasprintf(cause, "damaged chunk at steps %" PRId64 "..%" PRId64
		    ": %s", first, last, why);
		free(why);
		return -1;
	}
	/* A non-finite point is kept as it is: read the points then. */
	if (!chunk_blocks_all_finite(&blocks))
		return 0;
	bucket_step_init(&bs, bk, chunk_block_of(first));
	while (chunk_blocks_next(&blocks, &k, &cell, &ext)) {
		idx = bucket_step_of(&bs, bk, k);
		if (cell.rank != CHUNK_RANK_FINITE)
			continue;
		bucket_add(&b[idx], ext.min_step, ext.min);
		bucket_add(&b[idx], ext.max_step, ext.max);
	}
	return 1;
}

/*
 * Keep, of sorted non-finite points, the first and the last of each
 * class in each bucket: bounds the answer for a series that stays NaN
 * while every bucket still shows what it held.
 */
static void
points_thin_nonfinite(struct points *nf, const struct buckets *bk)
{
	size_t	 a, b, i, k, n = 0;
	ssize_t	 first[4], last[4];
	char	*keep;

	keep = xcalloc(nf->n, 1);
	for (a = 0; a < nf->n; a = b) {
		for (b = a; b < nf->n && buckets_index(bk, nf->p[b].step) ==
		    buckets_index(bk, nf->p[a].step); b++)
			;
		for (k = 0; k < 4; k++)
			first[k] = last[k] = -1;
		for (i = a; i < b; i++) {
			k = (size_t)wire_class(nf->p[i].v);
			if (first[k] == -1)
				first[k] = (ssize_t)i;
			last[k] = (ssize_t)i;
		}
		for (k = 0; k < 4; k++) {
			if (first[k] != -1) {
				keep[first[k]] = 1;
				keep[last[k]] = 1;
			}
		}
	}
	for (i = 0; i < nf->n; i++)
		if (keep[i])
			nf->p[n++] = nf->p[i];
	nf->n = n;
	free(keep);
}

/*
 * Every point of series sid in [from, to] into pts, in step order.
 * -1 with *cause on a database error or a broken chunk.
 */
static int
query_points_all(struct query *q, int64_t sid, int64_t from, int64_t to,
    struct points *pts, char **cause)
{
	struct chunk_view	 v;
	sqlite3_stmt		*st;
	int64_t			 s;
	size_t			 i;
	int			 rc, sorted = 1;

	st = query_stmt(q, QS_CHUNKS);
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (chunk_view_get(q, st, &chunk_cols_plain, &v, cause) == -1) {
			sqlite3_reset(st);
			return -1;
		}
		for (i = 0; i < v.n; i++) {
			s = view_step(&v, i);
			if (s < from || s > to)
				continue;
			if (pts->n > 0 && s < pts->p[pts->n - 1].step)
				sorted = 0;	/* interleaved chunks */
			points_push(pts, s, view_value(&v, i));
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*cause = xstrdup(query_errmsg(q));
		return -1;
	}
	if (!sorted)
		qsort(pts->p, pts->n, sizeof *pts->p, point_cmp);
	return 0;
}

/*
 * Downsample series sid over bk into pts (step order): per bucket its
 * min and max finite point, plus the non-finite points.  *exact is the
 * number of points in range.  -1 with *cause on error.
 */
static int
query_points_bucketed(struct query *q, int64_t sid, const struct buckets *bk,
    size_t max, struct points *pts, int64_t *exact, char **cause)
{
	struct chunk_view	 v;
	struct bucket		*b;
	struct points		 nf = { NULL, 0, 0 };
	sqlite3_stmt		*st;
	int64_t			 id, first, last;
	size_t			 i;
	int			 rc, got, ret = -1;

	b = xcalloc(bk->nb, sizeof *b);
	*exact = 0;
	st = query_stmt(q, QS_SUMMARIES);
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, bk->from);
	sqlite3_bind_int64(st, 3, bk->hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, SC_ID);
		first = sqlite3_column_int64(st, SC_FIRST);
		last = sqlite3_column_int64(st, SC_LAST);
		if (buckets_hold_chunk(bk, st)) {
			i = buckets_index(bk, first);
			bucket_add(&b[i], sqlite3_column_int64(st, SC_MIN_STEP),
			    sqlite3_column_double(st, SC_MIN));
			bucket_add(&b[i], sqlite3_column_int64(st, SC_MAX_STEP),
			    sqlite3_column_double(st, SC_MAX));
			*exact += sqlite3_column_int64(st, SC_N);
			continue;
		}
		if (bk->blocks && id > 0 && first >= bk->from &&
		    last <= bk->hi) {
			got = points_add_blocks(q, id, first, last, bk, b,
			    cause);
			if (got == -1)
				goto done;
			if (got == 1) {
				*exact += sqlite3_column_int64(st, SC_N);
				continue;
			}
		}
		if (query_chunk_fetch(q, id, &v, cause) == -1)
			goto done;
		points_fold_view(&v, bk, b, &nf, exact);
	}
	if (rc != SQLITE_DONE) {
		*cause = xstrdup(query_errmsg(q));
		goto done;
	}
	if (nf.n > 1)
		qsort(nf.p, nf.n, sizeof *nf.p, point_cmp);
	if (nf.n > max)
		points_thin_nonfinite(&nf, bk);
	for (i = 0; i < bk->nb; i++) {
		if (!b[i].have)
			continue;
		if (b[i].min_step <= b[i].max_step) {
			points_push(pts, b[i].min_step, b[i].min);
			if (b[i].max_step != b[i].min_step)
				points_push(pts, b[i].max_step, b[i].max);
		} else {
			points_push(pts, b[i].max_step, b[i].max);
			points_push(pts, b[i].min_step, b[i].min);
		}
	}
	for (i = 0; i < nf.n; i++)
		points_push(pts, nf.p[i].step, nf.p[i].v);
	if (nf.n > 0)
		qsort(pts->p, pts->n, sizeof *pts->p, point_cmp);
	ret = 0;

done:
	sqlite3_reset(st);
	free(nf.p);
	free(b);
	return ret;
}

/*
 * Fill o with series sid's points in [from, to], downsampled when more
 * than max lie there.  -1 with *cause on error.
 */
static int
query_series_points(struct query *q, int64_t sid, int64_t from, int64_t to,
    size_t max, json_t *o, char **cause)
{
	struct points	 pts = { NULL, 0, 0 };
	struct buckets	 bk;
	sqlite3_stmt	*st;
	json_t		*steps, *vals;
	int64_t		 total, lo, hi, exact;
	size_t		 i;
	int		 downsampled = 0, ret = -1;

	memset(&bk, 0, sizeof bk);
	st = query_stmt(q, QS_EXTENT);
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	if (sqlite3_step(st) != SQLITE_ROW) {
		*cause = xstrdup(query_errmsg(q));
		sqlite3_reset(st);
		goto done;
	}
	/* An upper bound: chunks straddling from or to count whole. */
	total = (int64_t)sqlite3_column_double(st, 0);
	lo = sqlite3_column_int64(st, 1);
	hi = sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	if (total > (int64_t)max) {
		buckets_init_capped(&bk, lo > from ? lo : from,
		    hi < to ? hi : to, max / 2);
		if (query_points_bucketed(q, sid, &bk, max, &pts, &exact,
		    cause) == -1)
			goto done;
		if (exact <= (int64_t)max)
			pts.n = 0;	/* the bound overcounted: send all */
		else
			downsampled = 1;
	}
	if (!downsampled && total > 0 &&
	    query_points_all(q, sid, from, to, &pts, cause) == -1)
		goto done;

	steps = json_array();
	vals = json_array();
	for (i = 0; i < pts.n; i++) {
		json_array_append_new(steps, json_integer(pts.p[i].step));
		json_array_append_new(vals, wire_json_number(pts.p[i].v));
	}
	json_object_set_new(o, "steps", steps);
	json_object_set_new(o, "values", vals);
	json_object_set_new(o, "downsampled", json_boolean(downsampled));
	if (downsampled) {
		json_object_set_new(o, "buckets", json_integer((json_int_t)bk.nb));
		json_object_set_new(o, "bucket_size",
		    json_integer((json_int_t)bk.w));
		json_object_set_new(o, "bucket_from", json_integer(bk.lo));
	}
	ret = 0;

done:
	free(pts.p);
	return ret;
}

/*
 * Resolve a requested series name of run_id: "kind:name" explicitly
 * when kind is a wire kind, else by name across kinds in preference
 * order.  1 with *sid and *kind (allocated), 0 if none, -1 on error.
 */
static int
query_find_series(struct query *q, int64_t run_id, const char *want,
    int64_t *sid, char **kind)
{
	sqlite3_stmt	*st;
	const char	*colon;
	char		*k;
	int		 rc;

	if ((colon = strchr(want, ':')) != NULL) {
		k = xstrndup(want, (size_t)(colon - want));
		if (series_kind_parse(k) != -1) {
			st = query_stmt(q, QS_SERIES_BY_KIND);
			sqlite3_bind_int64(st, 1, run_id);
			sqlite3_bind_text(st, 2, k, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, colon + 1, -1, SQLITE_STATIC);
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW) {
				*sid = sqlite3_column_int64(st, 0);
				*kind = k;
				sqlite3_reset(st);
				return 1;
			}
			sqlite3_reset(st);
			if (rc != SQLITE_DONE) {
				free(k);
				return -1;
			}
			/* Not found: maybe the name itself holds a colon. */
		}
		free(k);
	}
	st = query_stmt(q, QS_SERIES_BY_NAME);
	sqlite3_bind_int64(st, 1, run_id);
	sqlite3_bind_text(st, 2, want, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*sid = sqlite3_column_int64(st, 0);
		*kind = xstrdup((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

void
query_points(struct query *q, const char *run, const char *series,
    const char *from, const char *to, const char *max, struct query_reply *r)
{
	json_t		*all = NULL, *o;
	char		*list = NULL, *name, *next, *kind;
	char		*cause = NULL;
	int64_t		 run_id, lo = 0, hi = INT64_MAX, nmax, sid;
	int		 rc;

	nmax = QUERY_POINTS_MAX_DEFAULT;
	if (query_is_absent(series)) {
		query_reply_error(r, "bad_request",
		    "series: name at least one series");
		return;
	}
	if (query_parse_range(from, to, &lo, &hi, r) == -1 ||
	    query_parse_count("max", max, 2, QUERY_POINTS_MAX_LIMIT, &nmax,
	    r) == -1)
		return;
	if (query_begin(q, r) == -1)
		return;
	if (query_find_run(q, run, &run_id, NULL, NULL, r) != 1)
		goto done;

	all = json_object();
	list = xstrdup(series);
	for (name = list; name != NULL; name = next) {
		if ((next = strchr(name, ',')) != NULL)
			*next++ = '\0';
		if (*name == '\0') {
			query_reply_error(r, "bad_request",
			    "series: empty name in %.*s", QUERY_ECHO_MAX,
			    series);
			goto done;
		}
		if (json_object_get(all, name) != NULL)
			continue;	/* asked twice */
		rc = query_find_series(q, run_id, name, &sid, &kind);
		if (rc == -1) {
			query_reply_internal(r, sqlite3_errmsg(q->db));
			goto done;
		}
		if (rc == 0) {
			query_reply_error(r, "not_found",
			    "run %s has no series %.*s", run, QUERY_ECHO_MAX,
			    name);
			goto done;
		}
		o = json_object();
		json_object_set_new(o, "kind", json_string(kind));
		free(kind);
		if (json_object_set_new(all, name, o) == -1) {
			query_reply_error(r, "bad_request",
			    "series: name is not UTF-8");
			goto done;
		}
		if (query_series_points(q, sid, lo, hi, (size_t)nmax, o,
		    &cause) == -1) {
			query_reply_internal(r, cause);
		free(cause);
			goto done;
		}
	}
	query_reply_json(r, json_pack("{s:O}", "series", all));

done:
	json_decref(all);
	free(list);
	query_end(q);
}

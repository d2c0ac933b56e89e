/* SPDX-License-Identifier: MIT */
/*
 * query_heatmap: GET /api/v1/runs/{run}/heatmap.  Every layer's
 * gradient norm in a step range, one row a layer (by depth), one cell
 * a bucket: the bucket's largest value, with NaN over +Inf over -Inf
 * over finite.  Walks each layer's chunks through the bounded index
 * (first steps and ids only) and folds their block summaries from
 * chunk_blocks when the buckets are whole blocks (wide buckets are
 * aligned to them): a whole-run heatmap reads no chunk row.  A chunk
 * without that row gives its max when it lies in one bucket, else its
 * schema-0006 summaries when it has them, else its decoded points; so
 * do tail rows and chunks cut by the range.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "chunk.h"
#include "query_int.h"
#include "store_rowjson.h"
#include "wire_json.h"
#include "xmalloc.h"

#define QUERY_HEATMAP_BUCKETS_MAX 10000

/* A layer of the heatmap: its series and its row in the answer. */
struct heat_layer {
	int64_t		 sid;
	size_t		 row;
};

static json_t *
cell_json(const struct chunk_cell *c)
{
	switch (c->rank) {
	case CHUNK_RANK_NONE:
		return json_null();
	case CHUNK_RANK_FINITE:
		return json_real(c->max);
	case CHUNK_RANK_NINF:
		return wire_json_number(-INFINITY);
	case CHUNK_RANK_PINF:
		return wire_json_number(INFINITY);
	default:
		return wire_json_number(NAN);
	}
}

static int
heat_layer_cmp(const void *a, const void *b)
{
	const struct heat_layer	*la = a, *lb = b;

	return (la->sid > lb->sid) - (la->sid < lb->sid);
}

/* Add the points of v in bk's range to cells, the row of one layer. */
static void
heat_fold_view(const struct chunk_view *v, const struct buckets *bk,
    struct chunk_cell *cells)
{
	struct view_walk	 w;
	size_t			 k, i, i0, i1;
	double			 x, mx;
	int			 have;

	view_walk_init(&w, v, bk);
	while (view_walk_next(&w, &k, &i0, &i1)) {
		have = 0;
		mx = 0;
		for (i = i0; i < i1; i++) {
			x = view_value(v, i);
			if (!isfinite(x))
				chunk_cell_add(&cells[k], x);
			else if (!have || x > mx) {
				mx = x;
				have = 1;
			}
		}
		if (have)
			chunk_cell_add(&cells[k], mx);
	}
}

/*
 * Add the block summaries blob (len bytes, of a chunk of steps [first,
 * last]) to cells: 1 when they stand for the chunk (every bucket whole
 * blocks, the chunk inside [lo, hi], summaries stored), 0 when its
 * points must be read, -1 with *cause when the summaries are damaged.
 */
static int
heat_add_blocks(const struct buckets *bk, const void *blob, int len,
    int64_t first, int64_t last, struct chunk_cell *cells, char **cause)
{
	struct chunk_blocks	 b;
	struct chunk_cell	 cell;
	int64_t			 k;
	char			*why = NULL;

	if (!bk->blocks || first < bk->lo || last > bk->hi || blob == NULL)
		return 0;
	if (chunk_blocks_open(&b, blob, (size_t)len, first, last,
	    &why) == -1) {
		xasprintf(cause, "damaged chunk at steps %" PRId64 "..%" PRId64
		    ": %s", first, last, why);
		free(why);
		return -1;
	}
	while (chunk_blocks_next(&b, &k, &cell))
		chunk_cell_merge(&cells[buckets_index(bk, k *
		    CHUNK_BLOCK_STEPS)], &cell);
	return 1;
}

/* Decode row id (a chunk; a tail row when negative) into cells. */
static int
heat_add_points(struct query *q, int64_t id, const struct buckets *bk,
    struct chunk_cell *cells, char **cause)
{
	struct chunk_view	v;

	if (query_chunk_fetch(q, id, &v, cause) == -1)
		return -1;
	heat_fold_view(&v, bk, cells);
	return 0;
}

/*
 * Add the row of st (a heat summary: a tail row, or a chunk without a
 * chunk_blocks row) to cells: its max when that stands for the whole
 * chunk, else its schema-0006 block summaries when they stand for it,
 * else its decoded points.
 */
static int
heat_add_row(struct query *q, sqlite3_stmt *st, const struct buckets *bk,
    struct chunk_cell *cells, char **cause)
{
	int	rc;

	if (buckets_hold_chunk(bk, st)) {
		chunk_cell_add(&cells[buckets_index(bk,
		    sqlite3_column_int64(st, SC_FIRST))],
		    sqlite3_column_double(st, HC_MAX));
		return 0;
	}
	if ((rc = heat_add_blocks(bk, sqlite3_column_blob(st, HC_BLOCKS),
	    sqlite3_column_bytes(st, HC_BLOCKS), sqlite3_column_int64(st,
	    SC_FIRST), sqlite3_column_int64(st, SC_LAST), cells, cause)) != 0)
		return rc == 1 ? 0 : -1;
	return heat_add_points(q, sqlite3_column_int64(st, SC_ID), bk, cells,
	    cause);
}

/* Add chunk id, which has no chunk_blocks row, to cells. */
static int
heat_add_chunk_row(struct query *q, int64_t id, const struct buckets *bk,
    struct chunk_cell *cells, char **cause)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = query_stmt(q, QS_HEAT_CHUNK);
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = 0;
		if (sqlite3_column_int64(st, SC_LAST) >= bk->lo)
			rc = heat_add_row(q, st, bk, cells, cause);
	} else {
		*cause = xstrdup(rc == SQLITE_DONE ? "chunk vanished inside a"
		    " read transaction" : query_errmsg(q));
		rc = -1;
	}
	sqlite3_reset(st);
	return rc;
}

/*
 * Add the chunk of st (a QS_HEAT_INDEX row) to cells, from its
 * chunk_blocks row when it has one that stands for it.
 */
static int
heat_add_chunk(struct query *q, sqlite3_stmt *st, const struct buckets *bk,
    struct chunk_cell *cells, char **cause)
{
	int64_t	id = sqlite3_column_int64(st, HI_ID);
	int64_t	last;
	int	rc;

	if (sqlite3_column_type(st, HI_LAST) == SQLITE_NULL)
		return heat_add_chunk_row(q, id, bk, cells, cause);
	if ((last = sqlite3_column_int64(st, HI_LAST)) < bk->lo)
		return 0;
	if ((rc = heat_add_blocks(bk, sqlite3_column_blob(st, HI_BLOCKS),
	    sqlite3_column_bytes(st, HI_BLOCKS), sqlite3_column_int64(st,
	    HI_FIRST), last, cells, cause)) != 0)
		return rc == 1 ? 0 : -1;
	return heat_add_points(q, id, bk, cells, cause);
}

/* Run st (bound to a layer and bk's range) through add; 0 or -1, *cause. */
static int
heat_add_rows(struct query *q, sqlite3_stmt *st, const struct buckets *bk,
    struct chunk_cell *cells, char **cause,
    int (*add)(struct query *, sqlite3_stmt *, const struct buckets *,
    struct chunk_cell *, char **))
{
	int	rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (add(q, st, bk, cells, cause) == -1)
			break;
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return -1;
	if (rc != SQLITE_DONE) {
		*cause = xstrdup(query_errmsg(q));
		return -1;
	}
	return 0;
}

/* Fill cells with layer sid's largest value per bucket, by its index. */
static int
query_heatmap_layer(struct query *q, int64_t sid, const struct buckets *bk,
    struct chunk_cell *cells, char **cause)
{
	static const int	 stmts[] = { QS_HEAT_INDEX, QS_HEAT_TAILS };
	sqlite3_stmt		*st;
	size_t			 i;

	for (i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
		st = query_stmt(q, stmts[i]);
		sqlite3_bind_int64(st, 1, sid);
		sqlite3_bind_int64(st, 2, bk->lo);
		sqlite3_bind_int64(st, 3, bk->hi);
		if (heat_add_rows(q, st, bk, cells, cause, i == 0 ?
		    heat_add_chunk : heat_add_row) == -1)
			return -1;
	}
	return 0;
}

/* Fill cells (nl rows of bk->nb) for layers, sorted by sid. */
static int
query_heatmap_cells(struct query *q, const struct heat_layer *layers,
    size_t nl, const struct buckets *bk, struct chunk_cell *cells,
    char **cause)
{
	size_t	l;

	/* Each layer through its bounded index range: O(window) rows. */
	for (l = 0; l < nl; l++)
		if (query_heatmap_layer(q, layers[l].sid, bk,
		    cells + layers[l].row * bk->nb, cause) == -1)
			return -1;
	return 0;
}

void
query_heatmap(struct query *q, const char *run, const char *from,
    const char *to, const char *buckets, struct query_reply *r)
{
	struct buckets		 bk;
	struct heat_layer	*layers = NULL;
	struct chunk_cell	*cells = NULL;
	sqlite3_stmt		*st;
	json_t			*o = NULL, *names, *steps, *values, *row;
	char			*cause = NULL;
	int64_t			 run_id, first, last, lo, hi, nb;
	size_t			 i, l, nl = 0, cap = 0;
	int			 rc;

	memset(&bk, 0, sizeof bk);
	nb = QUERY_HEATMAP_BUCKETS_DEFAULT;
	lo = hi = 0;
	if (query_parse_range(from, to, &lo, &hi, r) == -1 ||
	    query_parse_count("buckets", buckets, 1,
	    QUERY_HEATMAP_BUCKETS_MAX, &nb, r) == -1)
		return;
	if (query_begin(q, r) == -1)
		return;
	if (query_find_run(q, run, &run_id, &first, &last, r) != 1)
		goto done;
	/* Absent bounds are the run's; a run without steps has no buckets. */
	if (query_is_absent(from))
		lo = first;
	if (query_is_absent(to))
		hi = last;
	/* Buckets of whole blocks read block summaries, not points. */
	if (lo >= 0 && hi >= lo) {
		buckets_init_blocks(&bk, lo, hi, (uint64_t)nb);
		lo = bk.lo;
	}

	o = json_object();
	names = json_array();
	steps = json_array();
	json_object_set_new(o, "layers", names);
	json_object_set_new(o, "steps", steps);
	json_object_set_new(o, "from", lo >= 0 ? json_integer(lo) : json_null());
	json_object_set_new(o, "to", hi >= 0 ? json_integer(hi) : json_null());
	json_object_set_new(o, "bucket_size", json_integer((json_int_t)bk.w));
	for (i = 0; i < bk.nb; i++)
		json_array_append_new(steps,
		    json_integer(bk.lo + (int64_t)(i * bk.w)));

	st = query_stmt(q, QS_LAYERS);
	sqlite3_bind_int64(st, 1, run_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (nl == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			layers = xreallocarray(layers, cap, sizeof *layers);
		}
		layers[nl].sid = sqlite3_column_int64(st, 0);
		layers[nl].row = nl;
		nl++;
		json_array_append_new(names,
		    json_string((const char *)sqlite3_column_text(st, 1)));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		query_reply_internal(r, sqlite3_errmsg(q->db));
		goto done;
	}
	cells = xcalloc(nl * bk.nb + 1, sizeof *cells);
	if (nl > 1)
		qsort(layers, nl, sizeof *layers, heat_layer_cmp);
	if (nl > 0 && bk.nb > 0 &&
	    query_heatmap_cells(q, layers, nl, &bk, cells, &cause) == -1) {
		query_reply_internal(r, cause);
		free(cause);
		goto done;
	}
	values = json_array();
	json_object_set_new(o, "values", values);
	for (l = 0; l < nl; l++) {
		row = json_array();
		json_array_append_new(values, row);
		for (i = 0; i < bk.nb; i++)
			json_array_append_new(row,
			    cell_json(&cells[l * bk.nb + i]));
	}
	query_reply_json(r, o);
	o = NULL;

done:
	json_decref(o);
	free(cells);
	free(layers);
	query_end(q);
}

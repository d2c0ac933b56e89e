/* SPDX-License-Identifier: MIT */
/*
 * query_heatmap: GET /api/v1/runs/{run}/heatmap.  Every layer's
 * gradient norm in a step range, one row a layer (by depth), one cell
 * a bucket: the bucket's largest value, with NaN over +Inf over -Inf
 * over finite.  Gathers each layer's chunks through the bounded index
 * (first steps and ids only), then walks chunk_blocks in id order and
 * folds their block summaries when the buckets are whole blocks (wide
 * buckets are aligned to them): a whole-run heatmap reads no chunk row.
 * A chunk cut by the range is decoded; one without a chunk_blocks row
 * gives its max when it lies in one bucket, else its schema-0006
 * summaries when it has them, else its decoded points.  Tail rows are
 * decoded as they are read.
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
#include "numfmt.h"
#include "query_int.h"
#include "store_rowjson.h"
#include "wire.h"
#include "xmalloc.h"

#define QUERY_HEATMAP_BUCKETS_MAX 10000

/* A layer of the heatmap: its series and its row in the answer. */
struct heat_layer {
	int64_t		 sid;
	size_t		 row;
};

/* A cell's JSON by its rank (enum chunk_rank); a finite one is its max. */
static const char *const cell_rank_text[] = {
	[CHUNK_RANK_NONE] = "null",
	[CHUNK_RANK_NINF] = "\"" WIRE_STR_NINF "\"",
	[CHUNK_RANK_PINF] = "\"" WIRE_STR_PINF "\"",
	[CHUNK_RANK_NAN] = "\"" WIRE_STR_NAN "\"",
};

/*
 * Append cell c's JSON to out (room for CELL_TEXT_MAX bytes reserved):
 * what Jansson writes for the number, null or API.md's string.
 */
#define CELL_TEXT_MAX	NUMFMT_MAX
static void
cell_text(struct chunk_buf *out, const struct chunk_cell *c)
{
	char	*p = (char *)out->data + out->len;
	size_t	 len;

	if (c->rank == CHUNK_RANK_FINITE) {
		out->len += numfmt_double(p, c->max);
		return;
	}
	len = strlen(cell_rank_text[c->rank]);
	memcpy(p, cell_rank_text[c->rank], len);
	out->len += len;
}

/*
 * The answer's text: o's (every member but the values) with the values
 * written straight from cells, nl rows of nb, as Jansson would write
 * them; a whole-run heatmap has a million cells, and a json_t for each
 * cost more than reading them.
 */
static char *
heat_text(json_t *o, const struct chunk_cell *cells, size_t nl, size_t nb)
{
	struct chunk_buf	 out;
	char			*head;
	size_t			 l, i, hlen;

	head = query_dump(o);
	hlen = strlen(head);
	chunk_buf_init(&out);
	chunk_buf_reserve(&out, hlen + 16);
	/* {"layers":...,"bucket_size":N} -> {...,"bucket_size":N,"values":[ */
	memcpy(out.data, head, hlen - 1);
	out.len = hlen - 1;
	free(head);
	memcpy(out.data + out.len, ",\"values\":[", 11);
	out.len += 11;
	for (l = 0; l < nl; l++) {
		chunk_buf_reserve(&out, nb * (CELL_TEXT_MAX + 1) + 8);
		out.data[out.len++] = l > 0 ? ',' : '[';
		if (l > 0)
			out.data[out.len++] = '[';
		for (i = 0; i < nb; i++) {
			if (i > 0)
				out.data[out.len++] = ',';
			cell_text(&out, &cells[l * nb + i]);
		}
		out.data[out.len++] = ']';
	}
	chunk_buf_reserve(&out, 3);
	memcpy(out.data + out.len, "]}", 3);
	return (char *)out.data;
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
	struct bucket_step	 bs;
	int64_t			 k;
	size_t			 idx;
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
	bucket_step_init(&bs, bk, chunk_block_of(first));
	while (chunk_blocks_next(&b, &k, &cell, NULL)) {
		idx = bucket_step_of(&bs, bk, k);
		if (cell.rank != CHUNK_RANK_NONE)
			chunk_cell_merge(&cells[idx], &cell);
	}
	return 1;
}

/* Decode chunk id into cells. */
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
 * Add the row of st (a heat summary of a chunk without a chunk_blocks
 * row) to cells: its max when that stands for the whole
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

/* Statement which, bound to layer sid and bk's range (?1, ?2, ?3). */
static sqlite3_stmt *
heat_stmt(struct query *q, enum query_stmt which, int64_t sid,
    const struct buckets *bk)
{
	sqlite3_stmt	*st = query_stmt(q, which);

	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, bk->lo);
	sqlite3_bind_int64(st, 3, bk->hi);
	return st;
}

/*
 * Reset st after a loop that stopped with rc: 0 when it ran to the end,
 * -1 when it failed (with *cause, set already when a row failed).
 */
static int
heat_stmt_end(struct query *q, sqlite3_stmt *st, int rc, char **cause)
{
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		*cause = xstrdup(query_errmsg(q));
	return -1;
}

/* Decode layer sid's tail rows meeting bk's range into cells. */
static int
heat_add_tails(struct query *q, int64_t sid, const struct buckets *bk,
    struct chunk_cell *cells, char **cause)
{
	struct chunk_view	 v;
	sqlite3_stmt		*st;
	int			 rc;

	st = heat_stmt(q, QS_HEAT_TAILS, sid, bk);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (chunk_view_get(q, st, &chunk_cols_plain, &v, cause) == -1)
			break;
		heat_fold_view(&v, bk, cells);
	}
	return heat_stmt_end(q, st, rc, cause);
}

/* A chunk the heatmap meets: its id, first step and its layer's cells. */
struct heat_chunk {
	int64_t			 id;
	int64_t			 first;
	struct chunk_cell	*cells;
};

/* Chunks gathered before one walk of chunk_blocks (memory's bound). */
#define HEAT_BATCH	(1u << 18)
/* A chunk further on than this many ids is sought, not stepped to. */
#define HEAT_SEEK_GAP	64

struct heat_batch {
	struct heat_chunk	*c;
	size_t			 n;
	size_t			 cap;
};

/*
 * Sort c[0..n-1] by id: a radix sort, 11 bits a pass over the ids' span
 * (two or three passes), for a quarter of a million chunks and more.
 */
#define HEAT_RADIX_BITS	11
static void
heat_sort(struct heat_chunk *c, size_t n)
{
	struct heat_chunk	*tmp, *src = c, *dst, *t;
	size_t			 count[1u << HEAT_RADIX_BITS], i, d, sum, k;
	uint64_t		 lo, hi, span;
	unsigned int		 shift;

	if (n < 2)
		return;
	lo = hi = (uint64_t)c[0].id;
	for (i = 1; i < n; i++) {
		if ((uint64_t)c[i].id < lo)
			lo = (uint64_t)c[i].id;
		if ((uint64_t)c[i].id > hi)
			hi = (uint64_t)c[i].id;
	}
	span = hi - lo;
	dst = tmp = xreallocarray(NULL, n, sizeof *tmp);
	for (shift = 0; shift < 64 && (span >> shift) != 0;
	    shift += HEAT_RADIX_BITS) {
		memset(count, 0, sizeof count);
		for (i = 0; i < n; i++)
			count[(((uint64_t)src[i].id - lo) >> shift) &
			    ((1u << HEAT_RADIX_BITS) - 1)]++;
		for (d = 0, sum = 0; d < (1u << HEAT_RADIX_BITS); d++) {
			k = count[d];
			count[d] = sum;
			sum += k;
		}
		for (i = 0; i < n; i++)
			dst[count[(((uint64_t)src[i].id - lo) >> shift) &
			    ((1u << HEAT_RADIX_BITS) - 1)]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != c)
		memcpy(c, src, n * sizeof *c);
	free(tmp);
}

/* Add the chunks of layer sid that may meet bk's range to hb. */
static int
heat_gather(struct query *q, int64_t sid, const struct buckets *bk,
    struct chunk_cell *cells, struct heat_batch *hb, char **cause)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = heat_stmt(q, QS_HEAT_IDS, sid, bk);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (hb->n == hb->cap) {
			hb->cap = hb->cap == 0 ? 1024 : hb->cap * 2;
			hb->c = xreallocarray(hb->c, hb->cap, sizeof *hb->c);
		}
		hb->c[hb->n].id = sqlite3_column_int64(st, 0);
		hb->c[hb->n].first = sqlite3_column_int64(st, 1);
		hb->c[hb->n++].cells = cells;
	}
	return heat_stmt_end(q, st, rc, cause);
}

/* Add chunk c to its cells from st, its chunk_blocks row (QS_HEAT_BLOCKS). */
static int
heat_add_from_blocks(struct query *q, sqlite3_stmt *st,
    const struct heat_chunk *c, const struct buckets *bk, char **cause)
{
	int64_t	last = sqlite3_column_int64(st, 1);
	int	rc;

	if (last < bk->lo)
		return 0;
	if ((rc = heat_add_blocks(bk, sqlite3_column_blob(st, 2),
	    sqlite3_column_bytes(st, 2), c->first, last, c->cells,
	    cause)) != 0)
		return rc == 1 ? 0 : -1;
	return heat_add_points(q, c->id, bk, c->cells, cause);
}

/*
 * Add hb's chunks to their cells, walking chunk_blocks once in id
 * order: summaries are read page by page, not sought one chunk at a
 * time (a layer's chunks lie a page apart when all layers seal
 * together).  A chunk without a chunk_blocks row is read from its own.
 */
static int
heat_walk(struct query *q, struct heat_batch *hb, const struct buckets *bk,
    char **cause)
{
	sqlite3_stmt	*st = query_stmt(q, QS_HEAT_BLOCKS);
	struct heat_chunk *c = hb->c;
	size_t		 i = 0, n = hb->n;
	int64_t		 id;
	int		 rc = SQLITE_DONE;

	heat_sort(c, n);
	while (i < n) {
		sqlite3_bind_int64(st, 1, c[i].id);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			id = sqlite3_column_int64(st, 0);
			for (; i < n && c[i].id < id; i++)
				if (heat_add_chunk_row(q, c[i].id, bk,
				    c[i].cells, cause) == -1)
					goto fail;
			if (i < n && c[i].id == id &&
			    heat_add_from_blocks(q, st, &c[i++], bk,
			    cause) == -1)
				goto fail;
			if (i == n || c[i].id > id + HEAT_SEEK_GAP)
				break;
		}
		sqlite3_reset(st);
		if (rc == SQLITE_ROW)
			continue;
		if (rc != SQLITE_DONE) {
			*cause = xstrdup(query_errmsg(q));
			return -1;
		}
		/* No chunk_blocks row from here on. */
		for (; i < n; i++)
			if (heat_add_chunk_row(q, c[i].id, bk, c[i].cells,
			    cause) == -1)
				return -1;
	}
	hb->n = 0;
	return 0;
fail:
	sqlite3_reset(st);
	return -1;
}

/* Fill cells (nl rows of bk->nb) for layers, sorted by sid. */
static int
query_heatmap_cells(struct query *q, const struct heat_layer *layers,
    size_t nl, const struct buckets *bk, struct chunk_cell *cells,
    char **cause)
{
	struct heat_batch	 hb = { NULL, 0, 0 };
	struct chunk_cell	*row;
	size_t			 l;
	int			 rc = 0;

	/* Each layer through its bounded index range: O(window) rows. */
	for (l = 0; l < nl && rc == 0; l++) {
		row = cells + layers[l].row * bk->nb;
		rc = heat_add_tails(q, layers[l].sid, bk, row, cause);
		if (rc == 0)
			rc = heat_gather(q, layers[l].sid, bk, row, &hb, cause);
		if (rc == 0 && (hb.n >= HEAT_BATCH || l == nl - 1))
			rc = heat_walk(q, &hb, bk, cause);
	}
	free(hb.c);
	return rc;
}

void
query_heatmap(struct query *q, const char *run, const char *from,
    const char *to, const char *buckets, struct query_reply *r)
{
	struct buckets		 bk;
	struct heat_layer	*layers = NULL;
	struct chunk_cell	*cells = NULL;
	sqlite3_stmt		*st;
	json_t			*o = NULL, *names, *steps;
	char			*cause = NULL;
	int64_t			 run_id, first, last, lo, hi, nb;
	size_t			 i, nl = 0, cap = 0;
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
	r->status = 200;
	r->body = heat_text(o, cells, nl, bk.nb);
	o = NULL;

done:
	json_decref(o);
	free(cells);
	free(layers);
	query_end(q);
}

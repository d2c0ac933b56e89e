/* SPDX-License-Identifier: MIT */
/*
 * query_int: what the query_*.c files share and nothing else includes:
 * the connection (struct query, its prepared statements by index), the
 * reply and parameter helpers of query.c, and the chunk reading and
 * bucketing of query_chunks.c.  Every function here is used by the
 * thread that owns the struct query it is given.
 */
#ifndef GW_QUERY_INT_H
#define GW_QUERY_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "chunk.h"
#include "query.h"

#define QUERY_ECHO_MAX		200	/* bytes of a parameter quoted back */
#define QUERY_BUSY_MS		5000

/* Prepared statements of a struct query, by index. */
enum query_stmt {
	QS_BEGIN,
	QS_COMMIT,
	QS_RUN_BY_KEY,
	QS_RUNS,
	QS_RUN_BY_ID,
	QS_SERIES_OF_RUN,
	QS_SERIES_BY_NAME,
	QS_SERIES_BY_KIND,
	QS_EXTENT,
	QS_CHUNKS,
	QS_SUMMARIES,
	QS_HEAT_IDS,
	QS_HEAT_BLOCKS,
	QS_HEAT_CHUNK,
	QS_HEAT_TAILS,
	QS_CHUNK_BY_ID,
	QS_TAIL_BY_ID,
	QS_BLOCKS_BY_ID,
	QS_LAYERS,
	QS_ALERTS,
	QS_RUN_HEALTH,
	QS_FIRING_COUNTS,
	QS_COUNT
};

/* The columns of the statements that read blobs (QUERY_ROW_COLS). */
enum chunk_col { CC_FIRST, CC_LAST, CC_N, CC_DATA };
#define QUERY_ROW_COLS		"SELECT first_step, last_step, n, data"
#define QUERY_CHUNK_COLS	QUERY_ROW_COLS " FROM chunks"

/*
 * The summary statements share their first columns; SC_WHOLE is 1 when
 * the summary stands for every value of the chunk (all finite, and the
 * min/max there).  The points add the min and max, the heatmap only
 * the max and the series (fewer columns: each costs on every row).
 */
enum summary_col {
	SC_ID, SC_FIRST, SC_LAST, SC_WHOLE,
	SC_N = 4, SC_MIN, SC_MIN_STEP, SC_MAX, SC_MAX_STEP,
	HC_MAX = 4, HC_BLOCKS
};

struct query {
	sqlite3		*db;
	sqlite3_stmt	*st[QS_COUNT];
	char		 err[256];	/* see query_errmsg() */
	int64_t		*dsteps;	/* the chunk decoded last */
	double		*dvals;
	size_t		 dcap;
};

/* One point of a series. */
struct point {
	int64_t	 step;
	double	 v;
};

/* A growable array of points. */
struct points {
	struct point	*p;
	size_t		 n;
	size_t		 cap;
};

/* A chunk's points, decoded from its blobs; pos is a read cursor. */
struct chunk {
	int64_t		*steps;
	double		*vals;
	size_t		 n;
	size_t		 cap;
	size_t		 pos;
};

/* A step range cut into nb buckets of w steps from lo. */
struct buckets {
	int64_t		 lo;		/* bucket 0's first step */
	int64_t		 hi;
	int64_t		 from;		/* no point before it counts */
	uint64_t	 w;
	size_t		 nb;
	int		 blocks;	/* every bucket whole blocks (chunk.h) */
};

/* Where a statement's row holds a row's range, count and blob. */
struct chunk_cols {
	int	first;
	int	last;
	int	n;
	int	data;
};

/* The columns of QUERY_ROW_COLS, in order. */
extern const struct chunk_cols chunk_cols_plain;

/*
 * A chunk or tail row decoded: its points in the query's scratch
 * arrays, valid until the next decode on the same struct query.
 */
struct chunk_view {
	int64_t		 first;
	int64_t		 last;
	size_t		 n;
	const int64_t	*steps;
	const double	*vals;
};

/* Walks a chunk view's points in [lo, hi] a bucket at a time. */
struct view_walk {
	const struct chunk_view	*v;
	const struct buckets	*bk;
	size_t			 i;	/* next point */
	int			 started;
};

static inline int64_t
view_step(const struct chunk_view *v, size_t i)
{
	return v->steps[i];
}

static inline double
view_value(const struct chunk_view *v, size_t i)
{
	return v->vals[i];
}

/* ---- query.c: replies, parameters, the connection ---------------------- */

void	query_reply_json(struct query_reply *r, json_t *j);
/* Dump j (stolen) as a compact body that round-trips doubles. */
char	*query_dump(json_t *j);

/* An error reply: the API's code (its status) and a message. */
void	query_reply_error(struct query_reply *r, const char *code,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A 500 for an SQLite failure, or for the cause already in msg. */
void	query_reply_internal(struct query_reply *r, const char *msg);

/* 1 if s is absent or empty: "?from=" means no bound. */
int	query_is_absent(const char *s);

/*
 * The from/to parameters into [*from, *to], keeping the defaults
 * already there when absent.  -1 with r filled on garbage or from > to.
 */
int	query_parse_range(const char *from, const char *to, int64_t *lo,
	    int64_t *hi, struct query_reply *r);

/* An integer parameter in [min, max] or its default; -1 with r filled. */
int	query_parse_count(const char *name, const char *s, int64_t min,
	    int64_t max, int64_t *out, struct query_reply *r);

/*
 * Map the file for reading: a heatmap walks hundreds of thousands of
 * rows, and mapped pages cost no read(2) or copy into the page cache.
 * Best effort; without it reads are only slower.
 */
void	query_tune(sqlite3 *db);

/*
 * The connection's last error, copied: SQLite's own message changes
 * with the next call on the connection (a reset on the way out).
 */
const char *query_errmsg(struct query *q);

/* The statement i, reset and unbound, ready for new bindings. */
sqlite3_stmt *query_stmt(struct query *q, enum query_stmt i);

/* Start the read transaction of one reply; -1 with r filled. */
int	query_begin(struct query *q, struct query_reply *r);

/* End the read transaction, resetting every statement first. */
void	query_end(struct query *q);

/*
 * Look up run key: 1 and its id (and first/last step, -1 when NULL),
 * 0 with r filled (400 malformed, 404 unknown), -1 with r filled (500).
 */
int	query_find_run(struct query *q, const char *key, int64_t *id,
	    int64_t *first, int64_t *last, struct query_reply *r);

/* ---- query_chunks.c: rows read back, buckets ----------------------------- */

void	chunk_cleanup(struct chunk *c);

/*
 * Decode the row in st (its columns as cc says) into v, valid until the
 * next decode on q, with chunk.h's rules, and check it against its
 * columns (count and range): -1 with *cause naming the damage.  A
 * damaged row fails the query that meets it: its points are never
 * silently left out.
 */
int	chunk_view_get(struct query *q, sqlite3_stmt *st,
	    const struct chunk_cols *cc, struct chunk_view *v, char **cause);

/* The same into c (QUERY_ROW_COLS), which keeps its points. */
int	chunk_copy(sqlite3_stmt *st, struct chunk *c, char **cause);

/*
 * Decode the row with id (a chunk; a tail row when negative), valid
 * until the next decode; -1 with *cause.
 */
int	query_chunk_fetch(struct query *q, int64_t id, struct chunk_view *v,
	    char **cause);

/* Cut [lo, hi] into about nb_want buckets of equal width. */
void	buckets_init(struct buckets *bk, int64_t lo, int64_t hi,
	    uint64_t nb_want);

/*
 * buckets_init(), then, when the buckets are at least CHUNK_BLOCK_STEPS
 * wide, widths rounded to a multiple of it and lo down to a block's
 * first step, so that every bucket is whole blocks (chunk.h's block
 * summaries; bk->blocks says so).
 */
void	buckets_init_blocks(struct buckets *bk, int64_t lo, int64_t hi,
	    uint64_t nb_want);

/*
 * At most nb_max buckets over [lo, hi] (nb_max >= 1); when they are at
 * least CHUNK_BLOCK_STEPS wide, whole blocks: widths rounded up to a
 * multiple of it and bk->lo down to a block's first step, with
 * bk->from left at lo so that no point before lo counts.
 */
void	buckets_init_capped(struct buckets *bk, int64_t lo, int64_t hi,
	    uint64_t nb_max);

/* The bucket of step (in [lo, hi]). */
size_t	buckets_index(const struct buckets *bk, int64_t step);

/*
 * 1 if the summary row in st (enum summary_col) stands for its chunk:
 * all its steps in [from, hi] and one bucket, all its values finite.
 */
int	buckets_hold_chunk(const struct buckets *bk, sqlite3_stmt *st);

/*
 * Steps through bk's buckets (whole blocks, bk->blocks) block by block,
 * for a chunk's blocks in order: no division a block.
 */
struct bucket_step {
	size_t	idx;		/* the current block's bucket */
	int64_t	edge;		/* the first step of the next bucket */
};

static inline void
bucket_step_init(struct bucket_step *s, const struct buckets *bk,
    int64_t first_block)
{
	s->idx = buckets_index(bk, first_block * CHUNK_BLOCK_STEPS);
	s->edge = bk->lo + (int64_t)((s->idx + 1) * bk->w);
}

/* The bucket of block (the one after the last asked, or the first). */
static inline size_t
bucket_step_of(struct bucket_step *s, const struct buckets *bk, int64_t block)
{
	if (block * CHUNK_BLOCK_STEPS >= s->edge) {
		s->idx++;
		s->edge += (int64_t)bk->w;
	}
	return s->idx;
}

void	view_walk_init(struct view_walk *w, const struct chunk_view *v,
	    const struct buckets *bk);

/*
 * The next run of points [*i0, *i1) lying in one bucket *b: 1, or 0
 * when no point of the chunk is left in [from, hi].  One division per
 * bucket, none per point.
 */
int	view_walk_next(struct view_walk *w, size_t *b, size_t *i0, size_t *i1);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * query: answers the GET routes of API.md from a read-only SQLite
 * connection.  Points live in chunks (schema/0001_init.sql); the
 * points and heatmap routes bucket them, taking a chunk's min/max
 * summary instead of its blobs whenever the chunk lies inside one
 * bucket, and the export streams a run chunk by chunk in constant
 * memory.  A struct query or query_export is used by one thread at a
 * time; each reply is read inside one read transaction.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "log.h"
#include "query.h"
#include "rowjson.h"
#include "xmalloc.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "chunk blobs are little-endian; this reader decodes them natively"
#endif

#define QUERY_BUSY_MS		5000
#define QUERY_POINTS_MAX_LIMIT	1000000
#define QUERY_HEATMAP_BUCKETS_MAX 10000
#define QUERY_KEY_MAX		128
#define QUERY_ECHO_MAX		200	/* bytes of a parameter quoted back */
#define QUERY_MMAP_SIZE		((size_t)(sizeof(void *) >= 8 ? 1 << 30 : 0))
#define QUERY_JSON_FLAGS	(JSON_COMPACT | JSON_REAL_PRECISION(17))

/* Prepared statements of a struct query, by index. */
enum query_stmt {
	QS_BEGIN,
	QS_COMMIT,
	QS_RUN_BY_KEY,
	QS_RUNS,
	QS_SERIES_OF_RUN,
	QS_SERIES_BY_NAME,
	QS_SERIES_BY_KIND,
	QS_EXTENT,
	QS_CHUNKS,
	QS_SUMMARIES,
	QS_HEAT_LAYER,
	QS_CHUNK_BY_ID,
	QS_TAIL_BY_ID,
	QS_LAYERS,
	QS_ALERTS,
	QS_RUN_HEALTH,
	QS_FIRING_COUNTS,
	QS_COUNT
};

/*
 * A series' points are its chunks' and its tails' (schema 0003), both
 * chunk.h blobs.  QS_CHUNKS, the fetches by id and the export's
 * statement select rows with their blob; the summary statements leave
 * it out (SQLite copies every selected blob out of the page, used or
 * not) and give a tail row, which has no summary, a negative id.  The
 * QUERY_OVERLAP ones select the rows of series ?1 meeting steps
 * [?2, ?3]: no row spans more than series.max_span steps, so the index
 * range on (series_id, first_step) is bounded on both sides and a
 * zoomed query costs what its window holds, wherever it is in the run.
 */
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
	HC_MAX = 4, HC_SERIES, HC_N, HC_STEPS, HC_VALS
};
#define QUERY_POINTS_SUMMARY						\
	"SELECT id, first_step, last_step, nonfinite = 0 AND"		\
	" min_value IS NOT NULL AND max_value IS NOT NULL, n, min_value,"	\
	" min_step, max_value, max_step FROM chunks"
#define QUERY_POINTS_TAILS						\
	"SELECT -id, first_step, last_step, 0, n, NULL, NULL, NULL, NULL"	\
	" FROM tails"
#define QUERY_HEAT_SUMMARY						\
	"SELECT id, first_step, last_step, nonfinite = 0 AND"		\
	" max_value IS NOT NULL, max_value, series_id FROM chunks"
#define QUERY_HEAT_TAILS						\
	"SELECT -id, first_step, last_step, 0, NULL, series_id FROM tails"

#define QUERY_OVERLAP_WHERE						\
	" WHERE series_id = ?1 AND first_step <= ?3 AND last_step >= ?2"	\
	" AND first_step >= ?2 - (SELECT max_span FROM series WHERE id = ?1)"
/* Rows of both tables; a compound SELECT sorts by its first column. */
#define QUERY_OVERLAP(chunks, tails)					\
	chunks QUERY_OVERLAP_WHERE " UNION ALL " tails QUERY_OVERLAP_WHERE \
	" ORDER BY 2"

/* Preference of a bare series name across kinds (the brief's order). */
#define QUERY_KIND_ORDER						\
	"CASE kind WHEN 'loss' THEN 0 WHEN 'grad_norm' THEN 1"		\
	" WHEN 'lr' THEN 2 WHEN 'clip_pre_norm' THEN 3"			\
	" WHEN 'clip_max_norm' THEN 4 WHEN 'loss_scale' THEN 5"		\
	" WHEN 'skipped' THEN 6 WHEN 'time' THEN 7"			\
	" WHEN 'layer_grad' THEN 8 WHEN 'metric' THEN 9"		\
	" WHEN 'layer_weight' THEN 10 WHEN 'layer_update' THEN 11"	\
	" WHEN 'layer_adam_ratio' THEN 12 ELSE 13 END"

static const char *const query_sql[QS_COUNT] = {
	[QS_BEGIN] = "BEGIN",
	[QS_COMMIT] = "COMMIT",
	[QS_RUN_BY_KEY] =
	    "SELECT id, first_step, last_step FROM runs WHERE key = ?1",
	[QS_RUNS] =
	    "SELECT id FROM runs WHERE (?1 IS NULL OR project = ?1)"
	    " AND (?2 IS NULL OR status = ?2)"
	    " ORDER BY started_at DESC, id DESC",
	[QS_SERIES_OF_RUN] =
	    "SELECT name, kind, points, last_step, last_value, last_class,"
	    " numel, depth, shape FROM series WHERE run_id = ?1 ORDER BY id",
	[QS_SERIES_BY_NAME] =
	    "SELECT id, kind FROM series WHERE run_id = ?1 AND name = ?2"
	    " ORDER BY " QUERY_KIND_ORDER ", id LIMIT 1",
	[QS_SERIES_BY_KIND] =
	    "SELECT id, kind FROM series"
	    " WHERE run_id = ?1 AND kind = ?2 AND name = ?3",
	[QS_EXTENT] =
	    "SELECT total(n), min(first_step), max(last_step) FROM ("
	    "SELECT n, first_step, last_step FROM chunks" QUERY_OVERLAP_WHERE
	    " UNION ALL SELECT n, first_step, last_step FROM tails"
	    QUERY_OVERLAP_WHERE ")",
	[QS_CHUNKS] = QUERY_CHUNK_COLS QUERY_OVERLAP_WHERE " UNION ALL "
	    QUERY_ROW_COLS " FROM tails" QUERY_OVERLAP_WHERE " ORDER BY 1",
	[QS_SUMMARIES] = QUERY_OVERLAP(QUERY_POINTS_SUMMARY,
	    QUERY_POINTS_TAILS),
	[QS_HEAT_LAYER] = QUERY_OVERLAP(QUERY_HEAT_SUMMARY, QUERY_HEAT_TAILS),
	[QS_CHUNK_BY_ID] = QUERY_CHUNK_COLS " WHERE id = ?1",
	[QS_TAIL_BY_ID] = QUERY_ROW_COLS " FROM tails WHERE id = ?1",
	[QS_LAYERS] =
	    "SELECT id, name FROM series"
	    " WHERE run_id = ?1 AND kind = 'layer_grad'"
	    " ORDER BY depth IS NULL, depth, id",
	[QS_ALERTS] =
	    "SELECT a.id FROM alerts a JOIN runs r ON r.id = a.run_id"
	    " WHERE (?1 IS NULL OR r.key = ?1)"
	    " AND (?2 IS NULL OR a.state = ?2)"
	    " AND (?3 IS NULL OR a.fired_at >= ?3)"
	    " ORDER BY a.fired_at DESC, a.id DESC",
	/* /metrics: runs not finished and seen since ?1. */
	[QS_RUN_HEALTH] =
	    "SELECT key, project, health FROM runs"
	    " WHERE status IN ('running', 'stalled') AND last_seen >= ?1"
	    " ORDER BY key",
	[QS_FIRING_COUNTS] =
	    "SELECT a.kind, a.severity, count(*) FROM alerts a"
	    " JOIN runs r ON r.id = a.run_id WHERE a.state = 'firing'"
	    " AND r.status IN ('running', 'stalled') AND r.last_seen >= ?1"
	    " GROUP BY a.kind, a.severity ORDER BY a.kind, a.severity",
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

/* The min and max finite point of a downsampling bucket. */
struct bucket {
	int64_t	 min_step;
	int64_t	 max_step;
	double	 min;
	double	 max;
	int	 have;
};

/* A step range cut into nb buckets of w steps from lo. */
struct buckets {
	int64_t		 lo;
	int64_t		 hi;
	uint64_t	 w;
	size_t		 nb;
};

/* Heatmap cell ranks: a higher rank wins; NaN over +Inf over -Inf. */
enum cell_rank { CELL_NONE, CELL_FINITE, CELL_NINF, CELL_PINF, CELL_NAN };

struct cell {
	double		 max;
	unsigned char	 rank;
};

/* ---- replies ----------------------------------------------------------- */

/* Dump j (stolen) as a compact body that round-trips doubles. */
static char *
query_dump(json_t *j)
{
	char	*s;

	s = json_dumps(j, QUERY_JSON_FLAGS);
	json_decref(j);
	if (s == NULL)
		fatalx("query: json_dumps failed");
	return s;
}

/* s as a JSON string; not UTF-8, with '?' for every non-ASCII byte. */
static json_t *
query_safe_string(const char *s)
{
	json_t	*j;
	char	*t;
	size_t	 i;

	if ((j = json_string(s)) != NULL)
		return j;
	t = xstrdup(s);
	for (i = 0; t[i] != '\0'; i++)
		if ((unsigned char)t[i] >= 0x80)
			t[i] = '?';
	j = json_string(t);
	free(t);
	return j;
}

char *
query_error_body(const char *code, const char *message)
{
	json_t	*o;

	o = json_object();
	json_object_set_new(o, "error", query_safe_string(code));
	json_object_set_new(o, "message", query_safe_string(message));
	return query_dump(o);
}

static void
query_reply_json(struct query_reply *r, json_t *j)
{
	r->status = 200;
	r->body = query_dump(j);
}

static void __attribute__((format(printf, 4, 5)))
query_reply_error(struct query_reply *r, unsigned int status,
    const char *code, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("query: vsnprintf failed");
	msg = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r->status = status;
	r->body = query_error_body(code, msg);
	free(msg);
}

/* A 500 for an SQLite failure, or for the cause already in msg. */
static void
query_reply_internal(struct query_reply *r, const char *msg)
{
	query_reply_error(r, 500, "internal", "query: %s", msg);
}

/* ---- parameters ---------------------------------------------------------- */

/* 1 if s is absent or empty: "?from=" means no bound. */
static int
query_is_absent(const char *s)
{
	return s == NULL || *s == '\0';
}

/* 1 if key is a run key of API.md: 1-128 of [A-Za-z0-9._:-]. */
static int
query_key_is_valid(const char *key)
{
	size_t	i;
	char	c;

	for (i = 0; key[i] != '\0'; i++) {
		if (i >= QUERY_KEY_MAX)
			return 0;
		c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == ':' || c == '-'))
			return 0;
	}
	return i > 0;
}

/* Parse decimal digits into 0..INT64_MAX; -1 on anything else. */
static int
query_parse_u63(const char *s, int64_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	if (*s == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = (int64_t)v;
	return 0;
}

/*
 * The from/to parameters into [*from, *to], keeping the defaults
 * already there when absent.  -1 with r filled on garbage or from > to.
 */
static int
query_parse_range(const char *from, const char *to, int64_t *lo, int64_t *hi,
    struct query_reply *r)
{
	if (!query_is_absent(from) && query_parse_u63(from, lo) == -1) {
		query_reply_error(r, 400, "bad_request",
		    "from: not a step: %.*s", QUERY_ECHO_MAX, from);
		return -1;
	}
	if (!query_is_absent(to) && query_parse_u63(to, hi) == -1) {
		query_reply_error(r, 400, "bad_request",
		    "to: not a step: %.*s", QUERY_ECHO_MAX, to);
		return -1;
	}
	if (!query_is_absent(from) && !query_is_absent(to) && *lo > *hi) {
		query_reply_error(r, 400, "bad_request",
		    "from %" PRId64 " is after to %" PRId64, *lo, *hi);
		return -1;
	}
	return 0;
}

/* An integer parameter in [min, max] or its default; -1 with r filled. */
static int
query_parse_count(const char *name, const char *s, int64_t min, int64_t max,
    int64_t *out, struct query_reply *r)
{
	if (query_is_absent(s))
		return 0;
	if (query_parse_u63(s, out) == -1 || *out < min || *out > max) {
		query_reply_error(r, 400, "bad_request",
		    "%s: want an integer from %" PRId64 " to %" PRId64 ": %.*s",
		    name, min, max, QUERY_ECHO_MAX, s);
		return -1;
	}
	return 0;
}

/* ---- connection ---------------------------------------------------------- */

/*
 * Map the file for reading: a heatmap walks hundreds of thousands of
 * rows, and mapped pages cost no read(2) or copy into the page cache.
 * Best effort; without it reads are only slower.
 */
static void
query_tune(sqlite3 *db)
{
	char	sql[64];

	snprintf(sql, sizeof sql, "PRAGMA mmap_size=%zu", QUERY_MMAP_SIZE);
	sqlite3_exec(db, sql, NULL, NULL, NULL);
}

struct query *
query_open(const char *path, char **cause)
{
	struct query	*q;
	int		 i, rc;

	if (strcmp(path, ":memory:") == 0) {
		/* Another connection would open another, empty database. */
		xasprintf(cause, "queries need a database file, not :memory:");
		return NULL;
	}
	q = xcalloc(1, sizeof *q);
	rc = sqlite3_open_v2(path, &q->db,
	    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		xasprintf(cause, "%s: %s", path, q->db != NULL ?
		    sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(q->db, QUERY_BUSY_MS);
	query_tune(q->db);
	for (i = 0; i < QS_COUNT; i++) {
		if (sqlite3_prepare_v3(q->db, query_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
			xasprintf(cause, "%s: %s", path, sqlite3_errmsg(q->db));
			goto fail;
		}
	}
	return q;

fail:
	query_close(q);
	return NULL;
}

void
query_close(struct query *q)
{
	int	i;

	if (q == NULL)
		return;
	for (i = 0; i < QS_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close(q->db);
	free(q->dsteps);
	free(q->dvals);
	free(q);
}

/*
 * The connection's last error, copied: SQLite's own message changes
 * with the next call on the connection (a reset on the way out).
 */
static const char *
query_errmsg(struct query *q)
{
	snprintf(q->err, sizeof q->err, "%s", sqlite3_errmsg(q->db));
	return q->err;
}

/* The statement i, reset and unbound, ready for new bindings. */
static sqlite3_stmt *
query_stmt(struct query *q, enum query_stmt i)
{
	sqlite3_reset(q->st[i]);
	sqlite3_clear_bindings(q->st[i]);
	return q->st[i];
}

/* Run a statement that returns no rows; -1 on failure. */
static int
query_exec(struct query *q, enum query_stmt i)
{
	sqlite3_stmt	*st = query_stmt(q, i);
	int		 rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Start the read transaction of one reply; -1 with r filled. */
static int
query_begin(struct query *q, struct query_reply *r)
{
	if (query_exec(q, QS_BEGIN) == -1) {
		query_reply_internal(r, sqlite3_errmsg(q->db));
		return -1;
	}
	return 0;
}

/* End the read transaction, resetting every statement first. */
static void
query_end(struct query *q)
{
	int	i;

	for (i = 0; i < QS_COUNT; i++)
		sqlite3_reset(q->st[i]);
	if (sqlite3_get_autocommit(q->db) == 0 &&
	    query_exec(q, QS_COMMIT) == -1)
		log_warnx("query: commit: %s", sqlite3_errmsg(q->db));
}

/*
 * Look up run key: 1 and its id (and first/last step, -1 when NULL),
 * 0 with r filled (400 malformed, 404 unknown), -1 with r filled (500).
 */
static int
query_find_run(struct query *q, const char *key, int64_t *id, int64_t *first,
    int64_t *last, struct query_reply *r)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (key == NULL || !query_key_is_valid(key)) {
		query_reply_error(r, 400, "bad_request", "not a run key: %.*s",
		    QUERY_ECHO_MAX, key != NULL ? key : "");
		return 0;
	}
	st = query_stmt(q, QS_RUN_BY_KEY);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		query_reply_error(r, 404, "not_found", "no run %s", key);
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		query_reply_internal(r, sqlite3_errmsg(q->db));
		sqlite3_reset(st);
		return -1;
	}
	*id = sqlite3_column_int64(st, 0);
	if (first != NULL)
		*first = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 :
		    sqlite3_column_int64(st, 1);
	if (last != NULL)
		*last = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 :
		    sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	return 1;
}

/* ---- chunks -------------------------------------------------------------- */

static void
chunk_reserve(struct chunk *c, size_t n)
{
	if (n <= c->cap)
		return;
	c->steps = xreallocarray(c->steps, n, sizeof *c->steps);
	c->vals = xreallocarray(c->vals, n, sizeof *c->vals);
	c->cap = n;
}

static void
chunk_cleanup(struct chunk *c)
{
	free(c->steps);
	free(c->vals);
	memset(c, 0, sizeof *c);
}

/* Where a statement's row holds a row's range, count and blob. */
struct chunk_cols {
	int	first;
	int	last;
	int	n;
	int	data;
};
static const struct chunk_cols chunk_cols_plain = {	/* QUERY_ROW_COLS */
	CC_FIRST, CC_LAST, CC_N, CC_DATA
};

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

/*
 * Decode the row in st (its columns as cc says) into v with chunk.h's
 * rules, and check it against its columns (count and range): -1 with
 * *why (in q->err) naming the damage.  A damaged row fails the query
 * that meets it: its points are never silently left out.
 */
static int
chunk_view_get(struct query *q, sqlite3_stmt *st, const struct chunk_cols *cc,
    struct chunk_view *v, const char **why)
{
	const void	*blob;
	char		*cause = NULL;
	int64_t		 n;
	size_t		 got;

	v->first = sqlite3_column_int64(st, cc->first);
	v->last = sqlite3_column_int64(st, cc->last);
	n = sqlite3_column_int64(st, cc->n);
	blob = sqlite3_column_blob(st, cc->data);
	if (n <= 0 || n > CHUNK_MAX_POINTS || blob == NULL) {
		snprintf(q->err, sizeof q->err, "damaged chunk at steps "
		    "%" PRId64 "..%" PRId64 ": no data or a bad count", v->first,
		    v->last);
		*why = q->err;
		return -1;
	}
	if ((size_t)n > q->dcap) {
		q->dcap = (size_t)n;
		q->dsteps = xreallocarray(q->dsteps, q->dcap, sizeof *q->dsteps);
		q->dvals = xreallocarray(q->dvals, q->dcap, sizeof *q->dvals);
	}
	if (chunk_decode(blob, (size_t)sqlite3_column_bytes(st, cc->data),
	    q->dsteps, q->dvals, (size_t)n, &got, &cause) == -1 ||
	    got != (size_t)n || q->dsteps[0] != v->first ||
	    q->dsteps[n - 1] != v->last) {
		snprintf(q->err, sizeof q->err, "damaged chunk at steps "
		    "%" PRId64 "..%" PRId64 ": %s", v->first, v->last,
		    cause != NULL ? cause : "its points disagree with its "
		    "columns");
		free(cause);
		*why = q->err;
		return -1;
	}
	v->n = (size_t)n;
	v->steps = q->dsteps;
	v->vals = q->dvals;
	return 0;
}

/*
 * Decode the row in st (QUERY_ROW_COLS) into c, checked as by
 * chunk_view_get(); -1 with the damage in err.
 */
static int
chunk_copy(sqlite3_stmt *st, struct chunk *c, char *err, size_t errlen)
{
	const void	*blob = sqlite3_column_blob(st, CC_DATA);
	char		*cause = NULL;
	int64_t		 first, last, n;
	size_t		 got;

	first = sqlite3_column_int64(st, CC_FIRST);
	last = sqlite3_column_int64(st, CC_LAST);
	n = sqlite3_column_int64(st, CC_N);
	if (n > 0 && n <= CHUNK_MAX_POINTS && blob != NULL) {
		chunk_reserve(c, (size_t)n);
		if (chunk_decode(blob, (size_t)sqlite3_column_bytes(st,
		    CC_DATA), c->steps, c->vals, (size_t)n, &got,
		    &cause) == 0 && got == (size_t)n &&
		    c->steps[0] == first && c->steps[n - 1] == last) {
			c->n = (size_t)n;
			c->pos = 0;
			return 0;
		}
	}
	snprintf(err, errlen, "damaged chunk at steps %" PRId64 "..%" PRId64
	    ": %s", first, last, cause != NULL ? cause :
	    "its points disagree with its columns");
	free(cause);
	return -1;
}

/*
 * Decode the row with id (a chunk; a tail row when negative), valid
 * until the next decode; -1 with *why.
 */
static int
query_chunk_fetch(struct query *q, int64_t id, struct chunk_view *v,
    const char **why)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = query_stmt(q, id < 0 ? QS_TAIL_BY_ID : QS_CHUNK_BY_ID);
	sqlite3_bind_int64(st, 1, id < 0 ? -id : id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return chunk_view_get(q, st, &chunk_cols_plain, v, why);
	*why = rc == SQLITE_DONE ? "chunk vanished inside a read transaction" :
	    query_errmsg(q);
	return -1;
}

/* ---- points -------------------------------------------------------------- */

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

/* Cut [lo, hi] into about nb_want buckets of equal width. */
static void
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
}

static size_t
buckets_index(const struct buckets *bk, int64_t step)
{
	return (size_t)(((uint64_t)step - (uint64_t)bk->lo) / bk->w);
}

/*
 * 1 if the summary row in st (enum summary_col) stands for its chunk:
 * all its steps in [lo, hi] and one bucket, all its values finite.
 */
static int
buckets_hold_chunk(const struct buckets *bk, sqlite3_stmt *st)
{
	int64_t	first = sqlite3_column_int64(st, SC_FIRST);
	int64_t	last = sqlite3_column_int64(st, SC_LAST);

	if (sqlite3_column_int(st, SC_WHOLE) == 0)
		return 0;
	return first >= bk->lo && last <= bk->hi && first <= last &&
	    buckets_index(bk, first) == buckets_index(bk, last);
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

/* Walks a chunk view's points in [lo, hi] a bucket at a time. */
struct view_walk {
	const struct chunk_view	*v;
	const struct buckets	*bk;
	size_t			 i;	/* next point */
	int			 started;
};

static void
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
 * when no point of the chunk is left in [lo, hi].  One division per
 * bucket, none per point.
 */
static int
view_walk_next(struct view_walk *w, size_t *b, size_t *i0, size_t *i1)
{
	const struct chunk_view	*v = w->v;
	const struct buckets	*bk = w->bk;
	uint64_t		 end;
	int64_t			 s;

	if (!w->started) {
		w->started = 1;
		if (v->first < bk->lo)
			while (w->i < v->n && view_step(v, w->i) < bk->lo)
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
			k = (size_t)rowjson_class(nf->p[i].v);
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
 * -1 with *why (static) on a database error or a broken chunk.
 */
static int
query_points_all(struct query *q, int64_t sid, int64_t from, int64_t to,
    struct points *pts, const char **why)
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
		if (chunk_view_get(q, st, &chunk_cols_plain, &v, why) == -1) {
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
		*why = query_errmsg(q);
		return -1;
	}
	if (!sorted)
		qsort(pts->p, pts->n, sizeof *pts->p, point_cmp);
	return 0;
}

/*
 * Downsample series sid over bk into pts (step order): per bucket its
 * min and max finite point, plus the non-finite points.  *exact is the
 * number of points in range.  -1 with *why on error.
 */
static int
query_points_bucketed(struct query *q, int64_t sid, const struct buckets *bk,
    size_t max, struct points *pts, int64_t *exact, const char **why)
{
	struct chunk_view	 v;
	struct bucket		*b;
	struct points		 nf = { NULL, 0, 0 };
	sqlite3_stmt		*st;
	size_t			 i;
	int			 rc, ret = -1;

	b = xcalloc(bk->nb, sizeof *b);
	*exact = 0;
	st = query_stmt(q, QS_SUMMARIES);
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, bk->lo);
	sqlite3_bind_int64(st, 3, bk->hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (buckets_hold_chunk(bk, st)) {
			i = buckets_index(bk, sqlite3_column_int64(st, SC_FIRST));
			bucket_add(&b[i], sqlite3_column_int64(st, SC_MIN_STEP),
			    sqlite3_column_double(st, SC_MIN));
			bucket_add(&b[i], sqlite3_column_int64(st, SC_MAX_STEP),
			    sqlite3_column_double(st, SC_MAX));
			*exact += sqlite3_column_int64(st, SC_N);
			continue;
		}
		if (query_chunk_fetch(q, sqlite3_column_int64(st, SC_ID), &v,
		    why) == -1)
			goto done;
		points_fold_view(&v, bk, b, &nf, exact);
	}
	if (rc != SQLITE_DONE) {
		*why = query_errmsg(q);
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
 * than max lie there.  -1 with *why on error.
 */
static int
query_series_points(struct query *q, int64_t sid, int64_t from, int64_t to,
    size_t max, json_t *o, const char **why)
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
		*why = query_errmsg(q);
		sqlite3_reset(st);
		goto done;
	}
	/* An upper bound: chunks straddling from or to count whole. */
	total = (int64_t)sqlite3_column_double(st, 0);
	lo = sqlite3_column_int64(st, 1);
	hi = sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	if (total > (int64_t)max) {
		buckets_init(&bk, lo > from ? lo : from, hi < to ? hi : to,
		    max / 2);
		if (query_points_bucketed(q, sid, &bk, max, &pts, &exact,
		    why) == -1)
			goto done;
		if (exact <= (int64_t)max)
			pts.n = 0;	/* the bound overcounted: send all */
		else
			downsampled = 1;
	}
	if (!downsampled && total > 0 &&
	    query_points_all(q, sid, from, to, &pts, why) == -1)
		goto done;

	steps = json_array();
	vals = json_array();
	for (i = 0; i < pts.n; i++) {
		json_array_append_new(steps, json_integer(pts.p[i].step));
		json_array_append_new(vals, rowjson_number(pts.p[i].v));
	}
	json_object_set_new(o, "steps", steps);
	json_object_set_new(o, "values", vals);
	json_object_set_new(o, "downsampled", json_boolean(downsampled));
	if (downsampled) {
		json_object_set_new(o, "buckets", json_integer((json_int_t)bk.nb));
		json_object_set_new(o, "bucket_size",
		    json_integer((json_int_t)bk.w));
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
	const char	*why;
	int64_t		 run_id, lo = 0, hi = INT64_MAX, nmax, sid;
	int		 rc;

	nmax = QUERY_POINTS_MAX_DEFAULT;
	if (query_is_absent(series)) {
		query_reply_error(r, 400, "bad_request",
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
			query_reply_error(r, 400, "bad_request",
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
			query_reply_error(r, 404, "not_found",
			    "run %s has no series %.*s", run, QUERY_ECHO_MAX,
			    name);
			goto done;
		}
		o = json_object();
		json_object_set_new(o, "kind", json_string(kind));
		free(kind);
		if (json_object_set_new(all, name, o) == -1) {
			query_reply_error(r, 400, "bad_request",
			    "series: name is not UTF-8");
			goto done;
		}
		if (query_series_points(q, sid, lo, hi, (size_t)nmax, o,
		    &why) == -1) {
			query_reply_internal(r, why);
			goto done;
		}
	}
	query_reply_json(r, json_pack("{s:O}", "series", all));

done:
	json_decref(all);
	free(list);
	query_end(q);
}

/* ---- heatmap ------------------------------------------------------------- */

static void
cell_add(struct cell *c, double v)
{
	unsigned char	rank;

	if (isfinite(v)) {
		if (c->rank < CELL_FINITE) {
			c->rank = CELL_FINITE;
			c->max = v;
		} else if (c->rank == CELL_FINITE && v > c->max)
			c->max = v;
		return;
	}
	rank = isnan(v) ? CELL_NAN : v > 0 ? CELL_PINF : CELL_NINF;
	if (rank > c->rank)
		c->rank = rank;
}

static json_t *
cell_json(const struct cell *c)
{
	switch (c->rank) {
	case CELL_NONE:
		return json_null();
	case CELL_FINITE:
		return json_real(c->max);
	case CELL_NINF:
		return rowjson_number(-INFINITY);
	case CELL_PINF:
		return rowjson_number(INFINITY);
	default:
		return rowjson_number(NAN);
	}
}

/* A layer of the heatmap: its series and its row in the answer. */
struct heat_layer {
	int64_t		 sid;
	size_t		 row;
};

static int
heat_layer_cmp(const void *a, const void *b)
{
	const struct heat_layer	*la = a, *lb = b;

	return (la->sid > lb->sid) - (la->sid < lb->sid);
}

/* Add the points of v in bk's range to cells, the row of one layer. */
static void
heat_fold_view(const struct chunk_view *v, const struct buckets *bk,
    struct cell *cells)
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
				cell_add(&cells[k], x);
			else if (!have || x > mx) {
				mx = x;
				have = 1;
			}
		}
		if (have)
			cell_add(&cells[k], mx);
	}
}

/*
 * Add the row of st (a heat summary) to cells: its max when that stands
 * for the whole chunk, else its decoded points.
 */
static int
heat_add_chunk(struct query *q, sqlite3_stmt *st, const struct buckets *bk,
    struct cell *cells, const char **why)
{
	struct chunk_view	v;

	if (buckets_hold_chunk(bk, st)) {
		cell_add(&cells[buckets_index(bk,
		    sqlite3_column_int64(st, SC_FIRST))],
		    sqlite3_column_double(st, HC_MAX));
		return 0;
	}
	if (query_chunk_fetch(q, sqlite3_column_int64(st, SC_ID), &v,
	    why) == -1)
		return -1;
	heat_fold_view(&v, bk, cells);
	return 0;
}

/* Fill cells with layer sid's largest value per bucket, by its index. */
static int
query_heatmap_layer(struct query *q, int64_t sid, const struct buckets *bk,
    struct cell *cells, const char **why)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = query_stmt(q, QS_HEAT_LAYER);
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, bk->lo);
	sqlite3_bind_int64(st, 3, bk->hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (heat_add_chunk(q, st, bk, cells, why) == -1)
			break;
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return -1;
	if (rc != SQLITE_DONE) {
		*why = query_errmsg(q);
		return -1;
	}
	return 0;
}

/* Fill cells (nl rows of bk->nb) for layers, sorted by sid. */
static int
query_heatmap_cells(struct query *q, const struct heat_layer *layers,
    size_t nl, const struct buckets *bk, struct cell *cells,
    const char **why)
{
	size_t	l;

	/* Each layer through its bounded index range: O(window) rows. */
	for (l = 0; l < nl; l++)
		if (query_heatmap_layer(q, layers[l].sid, bk,
		    cells + layers[l].row * bk->nb, why) == -1)
			return -1;
	return 0;
}

void
query_heatmap(struct query *q, const char *run, const char *from,
    const char *to, const char *buckets, struct query_reply *r)
{
	struct buckets		 bk;
	struct heat_layer	*layers = NULL;
	struct cell		*cells = NULL;
	sqlite3_stmt		*st;
	json_t			*o = NULL, *names, *steps, *values, *row;
	const char		*why;
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
	if (lo >= 0 && hi >= lo)
		buckets_init(&bk, lo, hi, (uint64_t)nb);

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
	    query_heatmap_cells(q, layers, nl, &bk, cells, &why) == -1) {
		query_reply_internal(r, why);
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

/* ---- runs and alerts ----------------------------------------------------- */

/*
 * Reply {key: [row(id) for each row of st]}, where st's first column is
 * an id and row builds its API object (NULL: the row vanished).
 */
static void
query_reply_rows(struct query *q, sqlite3_stmt *st,
    json_t *(*row)(sqlite3 *, int64_t), const char *key,
    struct query_reply *r)
{
	json_t	*list, *o;
	int	 rc;

	list = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((o = row(q->db, sqlite3_column_int64(st, 0))) == NULL) {
			query_reply_internal(r, sqlite3_errmsg(q->db));
			goto done;
		}
		json_array_append_new(list, o);
	}
	if (rc != SQLITE_DONE) {
		query_reply_internal(r, sqlite3_errmsg(q->db));
		goto done;
	}
	query_reply_json(r, json_pack("{s:O}", key, list));
done:
	json_decref(list);
}

void
query_runs(struct query *q, const char *project, const char *status,
    struct query_reply *r)
{
	sqlite3_stmt	*st;

	if (!query_is_absent(status) && strcmp(status, "running") != 0 &&
	    strcmp(status, "finished") != 0 && strcmp(status, "failed") != 0 &&
	    strcmp(status, "stalled") != 0) {
		query_reply_error(r, 400, "bad_request", "status: want running,"
		    " finished, failed or stalled, not %.*s", QUERY_ECHO_MAX,
		    status);
		return;
	}
	if (query_begin(q, r) == -1)
		return;
	st = query_stmt(q, QS_RUNS);
	if (!query_is_absent(project))
		sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
	if (!query_is_absent(status))
		sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	query_reply_rows(q, st, rowjson_run, "runs", r);
	query_end(q);
}

/* The series row in st (QS_SERIES_OF_RUN) as API.md's series object. */
static json_t *
query_series_json(sqlite3_stmt *st)
{
	json_t	*o, *shape;

	o = json_object();
	json_object_set_new(o, "name",
	    json_string((const char *)sqlite3_column_text(st, 0)));
	json_object_set_new(o, "kind",
	    json_string((const char *)sqlite3_column_text(st, 1)));
	json_object_set_new(o, "points", json_integer(sqlite3_column_int64(st,
	    2)));
	json_object_set_new(o, "last_step",
	    sqlite3_column_type(st, 3) == SQLITE_NULL ? json_null() :
	    json_integer(sqlite3_column_int64(st, 3)));
	if (sqlite3_column_int(st, 5) == 0 &&
	    sqlite3_column_type(st, 4) == SQLITE_NULL)
		json_object_set_new(o, "last_value", json_null());
	else
		json_object_set_new(o, "last_value",
		    rowjson_number(rowjson_column_value(st, 4, 5)));
	if (sqlite3_column_type(st, 6) != SQLITE_NULL)
		json_object_set_new(o, "numel",
		    json_integer(sqlite3_column_int64(st, 6)));
	if (sqlite3_column_type(st, 7) != SQLITE_NULL)
		json_object_set_new(o, "depth",
		    json_integer(sqlite3_column_int64(st, 7)));
	if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
		shape = json_loads((const char *)sqlite3_column_text(st, 8),
		    JSON_DECODE_ANY, NULL);
		if (shape != NULL)
			json_object_set_new(o, "shape", shape);
	}
	return o;
}

void
query_run(struct query *q, const char *run, struct query_reply *r)
{
	sqlite3_stmt	*st;
	json_t		*o = NULL, *series;
	int64_t		 run_id;
	int		 rc;

	if (query_begin(q, r) == -1)
		return;
	if (query_find_run(q, run, &run_id, NULL, NULL, r) != 1)
		goto done;
	if ((o = rowjson_run(q->db, run_id)) == NULL) {
		query_reply_internal(r, sqlite3_errmsg(q->db));
		goto done;
	}
	series = json_array();
	json_object_set_new(o, "series", series);
	st = query_stmt(q, QS_SERIES_OF_RUN);
	sqlite3_bind_int64(st, 1, run_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(series, query_series_json(st));
	if (rc != SQLITE_DONE) {
		query_reply_internal(r, sqlite3_errmsg(q->db));
		goto done;
	}
	query_reply_json(r, o);
	o = NULL;

done:
	json_decref(o);
	query_end(q);
}

/* Parse seconds since the epoch: a finite decimal number. */
static int
query_parse_time(const char *s, double *out)
{
	char	*end;

	errno = 0;
	*out = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE || !isfinite(*out))
		return -1;
	return 0;
}

void
query_alerts(struct query *q, const char *run, const char *state,
    const char *since, struct query_reply *r)
{
	sqlite3_stmt	*st;
	double		 t = 0;

	if (!query_is_absent(run) && !query_key_is_valid(run)) {
		query_reply_error(r, 400, "bad_request", "run: not a run key:"
		    " %.*s", QUERY_ECHO_MAX, run);
		return;
	}
	if (!query_is_absent(state) && strcmp(state, "firing") != 0 &&
	    strcmp(state, "resolved") != 0) {
		query_reply_error(r, 400, "bad_request",
		    "state: want firing or resolved, not %.*s", QUERY_ECHO_MAX,
		    state);
		return;
	}
	if (!query_is_absent(since) && query_parse_time(since, &t) == -1) {
		query_reply_error(r, 400, "bad_request", "since: want seconds"
		    " since the epoch, not %.*s", QUERY_ECHO_MAX, since);
		return;
	}
	if (query_begin(q, r) == -1)
		return;
	st = query_stmt(q, QS_ALERTS);
	if (!query_is_absent(run))
		sqlite3_bind_text(st, 1, run, -1, SQLITE_STATIC);
	if (!query_is_absent(state))
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	if (!query_is_absent(since))
		sqlite3_bind_double(st, 3, t);
	query_reply_rows(q, st, rowjson_alert, "alerts", r);
	query_end(q);
}

/* ---- /metrics ------------------------------------------------------------ */

/* A label value with the exposition format's escapes (allocated). */
static char *
query_label(const char *v)
{
	char	*out, *p;

	p = out = xmalloc(2 * strlen(v) + 1);
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			*p++ = '\\';
			*p++ = *v == '\n' ? 'n' : *v;
		} else
			*p++ = *v;
	}
	*p = '\0';
	return out;
}

static int
query_health_level(const char *health)
{
	if (strcmp(health, "critical") == 0)
		return 2;
	return strcmp(health, "warning") == 0 ? 1 : 0;
}

void
query_gauges(struct query *q, double since, struct query_reply *r)
{
	sqlite3_stmt	*st;
	FILE		*f;
	char		*key, *project;
	size_t		 len;
	int		 rc;

	if (query_begin(q, r) == -1)
		return;
	if ((f = open_memstream(&r->body, &len)) == NULL)
		fatal("query: open_memstream");
	fprintf(f, "# HELP gradwatch_run_health Health of each run seen in "
	    "the last day and not finished: 0 ok, 1 warning, 2 critical.\n"
	    "# TYPE gradwatch_run_health gauge\n");
	st = query_stmt(q, QS_RUN_HEALTH);
	sqlite3_bind_double(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		key = query_label((const char *)sqlite3_column_text(st, 0));
		project = query_label(sqlite3_column_type(st, 1) ==
		    SQLITE_NULL ? "" : (const char *)sqlite3_column_text(st, 1));
		fprintf(f, "gradwatch_run_health{run=\"%s\",project=\"%s\"}"
		    " %d\n", key, project, query_health_level(
		    (const char *)sqlite3_column_text(st, 2)));
		free(key);
		free(project);
	}
	if (rc != SQLITE_DONE)
		goto fail;
	fprintf(f, "# HELP gradwatch_alerts_firing Alerts firing in those "
	    "runs, by kind and severity.\n"
	    "# TYPE gradwatch_alerts_firing gauge\n");
	st = query_stmt(q, QS_FIRING_COUNTS);
	sqlite3_bind_double(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fprintf(f, "gradwatch_alerts_firing{kind=\"%s\","
		    "severity=\"%s\"} %lld\n", sqlite3_column_text(st, 0),
		    sqlite3_column_text(st, 1),
		    (long long)sqlite3_column_int64(st, 2));
	if (rc != SQLITE_DONE)
		goto fail;
	if (fclose(f) != 0)
		fatal("query: metrics text");
	r->status = 200;
	query_end(q);
	return;
fail:
	fclose(f);
	free(r->body);
	r->body = NULL;
	query_reply_internal(r, query_errmsg(q));
	query_end(q);
}

/* ---- export -------------------------------------------------------------- */

enum export_format { EXPORT_CSV, EXPORT_JSONL };
enum export_state { EXPORT_HEADER, EXPORT_POINTS, EXPORT_DONE, EXPORT_FAILED };

struct query_export {
	sqlite3			*db;
	sqlite3_stmt		*series;	/* the run's series by id */
	sqlite3_stmt		*chunks;	/* a series' chunks by first step */
	enum export_format	 format;
	enum export_state	 state;
	int			 pending;	/* chunks has a row not yet loaded */
	int64_t			 pending_first;
	char			*prefix;	/* the line up to the step */
	size_t			 prefixlen;
	struct chunk		*act;		/* decoded chunks being merged */
	size_t			 nact;
	size_t			 capact;
	char			*line;		/* carry: line[off..len) unsent */
	size_t			 linelen;
	size_t			 lineoff;
	size_t			 linecap;
};

static void
export_line_reserve(struct query_export *x, size_t more)
{
	if (x->linelen + more <= x->linecap)
		return;
	while (x->linelen + more > x->linecap)
		x->linecap = x->linecap == 0 ? 256 : x->linecap * 2;
	x->line = xreallocarray(x->line, x->linecap, 1);
}

static void
export_line_add(struct query_export *x, const char *s, size_t len)
{
	export_line_reserve(x, len);
	memcpy(x->line + x->linelen, s, len);
	x->linelen += len;
}

/* Append name to the line, quoted per RFC 4180 when it needs it. */
static void
export_add_csv_field(struct query_export *x, const char *name)
{
	const char	*p;

	if (strpbrk(name, ",\"\r\n") == NULL) {
		export_line_add(x, name, strlen(name));
		return;
	}
	export_line_add(x, "\"", 1);
	for (p = name; *p != '\0'; p++) {
		if (*p == '"')
			export_line_add(x, "\"", 1);
		export_line_add(x, p, 1);
	}
	export_line_add(x, "\"", 1);
}

/* Append name to the line as a JSON string (it is UTF-8 already). */
static void
export_add_json_string(struct query_export *x, const char *name)
{
	const unsigned char	*p;
	char			 esc[8];

	export_line_add(x, "\"", 1);
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			export_line_add(x, esc, 2);
		} else if (*p < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", *p);
			export_line_add(x, esc, 6);
		} else
			export_line_add(x, (const char *)p, 1);
	}
	export_line_add(x, "\"", 1);
}

/* Build the per-series line prefix, in the line buffer, then keep it. */
static void
export_set_prefix(struct query_export *x, const char *name, const char *kind)
{
	x->linelen = x->lineoff = 0;
	if (x->format == EXPORT_CSV) {
		export_add_csv_field(x, name);
		export_line_add(x, ",", 1);
		export_add_csv_field(x, kind);
		export_line_add(x, ",", 1);
	} else {
		export_line_add(x, "{\"series\":", 10);
		export_add_json_string(x, name);
		export_line_add(x, ",\"kind\":", 8);
		export_add_json_string(x, kind);
		export_line_add(x, ",\"step\":", 8);
	}
	free(x->prefix);
	x->prefix = xstrndup(x->line, x->linelen);
	x->prefixlen = x->linelen;
	x->linelen = 0;
}

/* Format one point as the whole line buffer. */
static void
export_format_point(struct query_export *x, int64_t step, double v)
{
	char		 tail[64];
	const char	*num;
	char		 val[32];
	int		 n;

	if (isnan(v))
		num = "NaN";
	else if (isinf(v))
		num = v > 0 ? "Infinity" : "-Infinity";
	else {
		snprintf(val, sizeof val, "%.17g", v);
		num = val;
	}
	if (x->format == EXPORT_CSV)
		n = snprintf(tail, sizeof tail, "%" PRId64 ",%s\n", step, num);
	else if (isfinite(v))
		n = snprintf(tail, sizeof tail, "%" PRId64 ",\"value\":%s}\n",
		    step, num);
	else
		n = snprintf(tail, sizeof tail,
		    "%" PRId64 ",\"value\":\"%s\"}\n", step, num);
	x->linelen = x->lineoff = 0;
	export_line_add(x, x->prefix, x->prefixlen);
	export_line_add(x, tail, (size_t)n);
}

/* Decode the pending chunk row into a new active chunk, then step on. */
static int
export_load_pending(struct query_export *x)
{
	char		 why[256];
	int		 rc;

	if (x->nact == x->capact) {
		x->capact = x->capact == 0 ? 4 : x->capact * 2;
		x->act = xreallocarray(x->act, x->capact, sizeof *x->act);
		memset(x->act + x->nact, 0,
		    (x->capact - x->nact) * sizeof *x->act);
	}
	if (chunk_copy(x->chunks, &x->act[x->nact], why, sizeof why) == -1) {
		log_warnx("query: export: %s", why);
		return -1;
	}
	x->nact++;
	rc = sqlite3_step(x->chunks);
	if (rc == SQLITE_ROW) {
		x->pending = 1;
		x->pending_first = sqlite3_column_int64(x->chunks, CC_FIRST);
	} else if (rc == SQLITE_DONE)
		x->pending = 0;
	else {
		log_warnx("query: export: %s", sqlite3_errmsg(x->db));
		return -1;
	}
	return 0;
}

/* Move to the run's next series: 1, 0 when there is none, -1 on error. */
static int
export_next_series(struct query_export *x)
{
	int	rc;

	rc = sqlite3_step(x->series);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		goto fail;
	export_set_prefix(x, (const char *)sqlite3_column_text(x->series, 1),
	    (const char *)sqlite3_column_text(x->series, 2));
	sqlite3_reset(x->chunks);
	sqlite3_bind_int64(x->chunks, 1, sqlite3_column_int64(x->series, 0));
	rc = sqlite3_step(x->chunks);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	x->pending = rc == SQLITE_ROW;
	if (x->pending)
		x->pending_first = sqlite3_column_int64(x->chunks, CC_FIRST);
	return 1;

fail:
	log_warnx("query: export: %s", sqlite3_errmsg(x->db));
	return -1;
}

/*
 * The next point of the run, series by series in step order, merging
 * the series' chunks whose ranges overlap: 1, 0 at the end, -1.
 * Chunks come by first step, so an active point below the pending
 * chunk's first step is below every point not loaded yet.
 */
static int
export_next_point(struct query_export *x, int64_t *step, double *v)
{
	struct chunk	*c, tmp;
	size_t		 i, k;
	int		 rc;

	for (;;) {
		if (x->nact == 0) {
			if (x->pending) {
				if (export_load_pending(x) == -1)
					return -1;
				continue;
			}
			if ((rc = export_next_series(x)) != 1)
				return rc;
			continue;
		}
		k = 0;
		for (i = 1; i < x->nact; i++)
			if (x->act[i].steps[x->act[i].pos] <
			    x->act[k].steps[x->act[k].pos])
				k = i;
		c = &x->act[k];
		if (x->pending && x->pending_first <= c->steps[c->pos]) {
			if (export_load_pending(x) == -1)
				return -1;
			continue;
		}
		*step = c->steps[c->pos];
		*v = c->vals[c->pos];
		if (++c->pos == c->n) {
			/* Swap out, keeping its buffers for reuse. */
			x->nact--;
			tmp = x->act[k];
			x->act[k] = x->act[x->nact];
			x->act[x->nact] = tmp;
		}
		return 1;
	}
}

void
query_export_close(struct query_export *x)
{
	size_t	i;

	if (x == NULL)
		return;
	sqlite3_finalize(x->series);
	sqlite3_finalize(x->chunks);
	if (x->db != NULL && sqlite3_get_autocommit(x->db) == 0)
		sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(x->db);
	for (i = 0; i < x->capact; i++)
		chunk_cleanup(&x->act[i]);
	free(x->act);
	free(x->prefix);
	free(x->line);
	free(x);
}

struct query_export *
query_export_open(const char *path, const char *run, const char *format,
    struct query_reply *r)
{
	struct query_export	*x;
	sqlite3_stmt		*st = NULL;
	int			 rc;

	x = xcalloc(1, sizeof *x);
	if (query_is_absent(format) || strcmp(format, "csv") == 0)
		x->format = EXPORT_CSV;
	else if (strcmp(format, "jsonl") == 0)
		x->format = EXPORT_JSONL;
	else {
		query_reply_error(r, 400, "bad_request",
		    "format: want csv or jsonl, not %.*s", QUERY_ECHO_MAX,
		    format);
		goto fail;
	}
	if (run == NULL || !query_key_is_valid(run)) {
		query_reply_error(r, 400, "bad_request", "not a run key: %.*s",
		    QUERY_ECHO_MAX, run != NULL ? run : "");
		goto fail;
	}
	rc = sqlite3_open_v2(path, &x->db,
	    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		query_reply_internal(r, x->db != NULL ? sqlite3_errmsg(x->db) :
		    sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(x->db, QUERY_BUSY_MS);
	query_tune(x->db);
	if (sqlite3_exec(x->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "SELECT id FROM runs WHERE key = ?1",
	    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "SELECT id, name, kind FROM series"
	    " WHERE run_id = ?1 ORDER BY id", -1, &x->series, NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, QUERY_CHUNK_COLS
	    " WHERE series_id = ?1 UNION ALL " QUERY_ROW_COLS " FROM tails"
	    " WHERE series_id = ?1 ORDER BY 1", -1, &x->chunks,
	    NULL) != SQLITE_OK) {
		query_reply_internal(r, sqlite3_errmsg(x->db));
		goto fail;
	}
	/* The first read fixes the snapshot the whole export sees. */
	sqlite3_bind_text(st, 1, run, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		query_reply_error(r, 404, "not_found", "no run %s", run);
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		query_reply_internal(r, sqlite3_errmsg(x->db));
		goto fail;
	}
	sqlite3_bind_int64(x->series, 1, sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	x->state = EXPORT_HEADER;
	r->status = 200;
	r->body = NULL;
	return x;

fail:
	sqlite3_finalize(st);
	query_export_close(x);
	return NULL;
}

const char *
query_export_content_type(struct query_export *x)
{
	return x->format == EXPORT_CSV ? "text/csv; charset=utf-8" :
	    "application/x-ndjson";
}

/*
 * Whole lines while they fit; a line is split only when it alone is
 * longer than what is left of an empty buf.
 */
ssize_t
query_export_read(struct query_export *x, char *buf, size_t max)
{
	size_t	out = 0, len;
	int64_t	step;
	double	v;
	int	rc;

	if (x->state == EXPORT_FAILED)
		return -1;
	if (max > SSIZE_MAX)
		max = SSIZE_MAX;
	while (out < max) {
		if (x->lineoff < x->linelen) {
			len = x->linelen - x->lineoff;
			if (len > max - out) {
				if (out > 0)
					break;	/* whole lines first */
				len = max - out;
			}
			memcpy(buf + out, x->line + x->lineoff, len);
			x->lineoff += len;
			out += len;
			continue;
		}
		if (x->state == EXPORT_DONE)
			break;
		if (x->state == EXPORT_HEADER) {
			x->linelen = x->lineoff = 0;
			if (x->format == EXPORT_CSV)
				export_line_add(x, "series,kind,step,value\n",
				    23);
			x->state = EXPORT_POINTS;
			continue;
		}
		rc = export_next_point(x, &step, &v);
		if (rc == 0) {
			x->state = EXPORT_DONE;
			continue;
		}
		if (rc == -1) {
			x->state = EXPORT_FAILED;
			return out > 0 ? (ssize_t)out : -1;
		}
		export_format_point(x, step, v);
	}
	return (ssize_t)out;
}

/* SPDX-License-Identifier: MIT */
/*
 * query: the read side's connection: a read-only SQLite connection
 * with every statement of the routes prepared once (query_sql), the
 * read transaction of a reply, the run lookup, and the replies and
 * parameter checks all routes share.  The routes themselves are in
 * query_points.c, query_heatmap.c, query_runs.c and query_export.c.
 * A struct query is used by one thread at a time; each reply is read
 * inside one read transaction.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "log.h"
#include "query_int.h"
#include "store_rowjson.h"
#include "wire.h"
#include "wire_json.h"
#include "xmalloc.h"

#define QUERY_MMAP_SIZE		((size_t)(sizeof(void *) >= 8 ? 1 << 30 : 0))

/*
 * A series' points are its chunks' and its tails' (schema 0003), both
 * chunk.h blobs.  QS_CHUNKS, the fetches by id and the export's
 * statement select rows with their blob; the summary statements leave
 * it out (SQLite copies every selected blob out of the page, used or
 * not; QS_HEAT_CHUNK takes schema 0006's small block summaries, which
 * 0007 keeps in chunk_blocks) and give a tail row, which has no
 * summary, a negative id.  The
 * QUERY_OVERLAP ones select the rows of series ?1 meeting steps
 * [?2, ?3]: no row spans more than series.max_span steps, so the index
 * range on (series_id, first_step) is bounded on both sides and a
 * zoomed query costs what its window holds, wherever it is in the run.
 */
#define QUERY_POINTS_SUMMARY						\
	"SELECT id, first_step, last_step, nonfinite = 0 AND"		\
	" min_value IS NOT NULL AND max_value IS NOT NULL, n, min_value,"	\
	" min_step, max_value, max_step FROM chunks"
#define QUERY_POINTS_TAILS						\
	"SELECT -id, first_step, last_step, 0, n, NULL, NULL, NULL, NULL"	\
	" FROM tails"
#define QUERY_HEAT_SUMMARY						\
	"SELECT id, first_step, last_step, nonfinite = 0 AND"		\
	" max_value IS NOT NULL, max_value, blocks FROM chunks"

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
	[QS_RUNS] = STORE_ROWJSON_RUN_SQL
	    " WHERE (?1 IS NULL OR project = ?1)"
	    " AND (?2 IS NULL OR status = ?2)"
	    " ORDER BY started_at DESC, id DESC",
	[QS_RUN_BY_ID] = STORE_ROWJSON_RUN_SQL " WHERE id = ?1",
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
	/*
	 * The heatmap's chunks through chunks_by_series alone (first_step
	 * and id are in the index; they may not meet [?2, ?3]), then their
	 * chunk_blocks rows from id ?1 on, in id order: a chunk row is read
	 * only when it has none (QS_HEAT_CHUNK) or is cut by the range.
	 */
	[QS_HEAT_IDS] =
	    "SELECT id, first_step FROM chunks"
	    " WHERE series_id = ?1 AND first_step <= ?3"
	    " AND first_step >= ?2 - (SELECT max_span FROM series WHERE id = ?1)",
	[QS_HEAT_BLOCKS] =
	    "SELECT chunk_id, last_step, blocks FROM chunk_blocks"
	    " WHERE chunk_id >= ?1 ORDER BY chunk_id",
	[QS_HEAT_CHUNK] = QUERY_HEAT_SUMMARY " WHERE id = ?1",
	/* Tail rows have no summaries: the heatmap decodes them as read. */
	[QS_HEAT_TAILS] = QUERY_ROW_COLS " FROM tails" QUERY_OVERLAP_WHERE,
	[QS_CHUNK_BY_ID] = QUERY_CHUNK_COLS " WHERE id = ?1",
	[QS_TAIL_BY_ID] = QUERY_ROW_COLS " FROM tails WHERE id = ?1",
	[QS_BLOCKS_BY_ID] =
	    "SELECT last_step, blocks FROM chunk_blocks WHERE chunk_id = ?1",
	[QS_LAYERS] =
	    "SELECT id, name FROM series"
	    " WHERE run_id = ?1 AND kind = 'layer_grad'"
	    " ORDER BY depth IS NULL, depth, id",
	[QS_ALERTS] = STORE_ROWJSON_ALERT_SQL
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
/* ---- replies ----------------------------------------------------------- */

char *
query_dump(json_t *j)
{
	char	*s;

	s = json_dumps(j, STORE_ROWJSON_DUMP_FLAGS);
	json_decref(j);
	if (s == NULL)
		fatalx("query: json_dumps failed");
	return s;
}

void
query_reply_json(struct query_reply *r, json_t *j)
{
	r->status = 200;
	r->body = query_dump(j);
}

void
query_reply_error(struct query_reply *r, const char *code,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	r->status = wire_status(code);
	r->body = wire_error_body(code, msg);
	free(msg);
}

/* A 500 for an SQLite failure, or for the cause already in msg. */
void
query_reply_internal(struct query_reply *r, const char *msg)
{
	query_reply_error(r, "internal", "query: %s", msg);
}

/* ---- parameters ---------------------------------------------------------- */

/* 1 if s is absent or empty: "?from=" means no bound. */
int
query_is_absent(const char *s)
{
	return s == NULL || *s == '\0';
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
int
query_parse_range(const char *from, const char *to, int64_t *lo, int64_t *hi,
    struct query_reply *r)
{
	if (!query_is_absent(from) && query_parse_u63(from, lo) == -1) {
		query_reply_error(r, "bad_request",
		    "from: not a step: %.*s", QUERY_ECHO_MAX, from);
		return -1;
	}
	if (!query_is_absent(to) && query_parse_u63(to, hi) == -1) {
		query_reply_error(r, "bad_request",
		    "to: not a step: %.*s", QUERY_ECHO_MAX, to);
		return -1;
	}
	if (!query_is_absent(from) && !query_is_absent(to) && *lo > *hi) {
		query_reply_error(r, "bad_request",
		    "from %" PRId64 " is after to %" PRId64, *lo, *hi);
		return -1;
	}
	return 0;
}

/* An integer parameter in [min, max] or its default; -1 with r filled. */
int
query_parse_count(const char *name, const char *s, int64_t min, int64_t max,
    int64_t *out, struct query_reply *r)
{
	if (query_is_absent(s))
		return 0;
	if (query_parse_u63(s, out) == -1 || *out < min || *out > max) {
		query_reply_error(r, "bad_request",
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
void
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
const char *
query_errmsg(struct query *q)
{
	snprintf(q->err, sizeof q->err, "%s", sqlite3_errmsg(q->db));
	return q->err;
}

/* The statement i, reset and unbound, ready for new bindings. */
sqlite3_stmt *
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
int
query_begin(struct query *q, struct query_reply *r)
{
	if (query_exec(q, QS_BEGIN) == -1) {
		query_reply_internal(r, sqlite3_errmsg(q->db));
		return -1;
	}
	return 0;
}

/* End the read transaction, resetting every statement first. */
void
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
int
query_find_run(struct query *q, const char *key, int64_t *id, int64_t *first,
    int64_t *last, struct query_reply *r)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (key == NULL || !wire_is_run_key(key)) {
		query_reply_error(r, "bad_request", "not a run key: %.*s",
		    QUERY_ECHO_MAX, key != NULL ? key : "");
		return 0;
	}
	st = query_stmt(q, QS_RUN_BY_KEY);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		query_reply_error(r, "not_found", "no run %s", key);
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

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for query (and rowjson): every route against a temporary
 * database file whose rows are inserted with plain SQL per schema 0001,
 * so the tests pin the storage layout contract (packed blobs, NULL
 * steps blobs, interleaved chunk ranges, *_class columns) rather than
 * what one writer happens to produce.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "query.h"
#include "store_rowjson.h"
#include "store.h"
#include "wire.h"
#include "wire_json.h"
#include "xmalloc.h"


struct fx {
	char		 dir[64];
	char		 path[96];
	sqlite3		*db;	/* the writer side of the fixture */
	struct query	*q;
	size_t		 nrows;	/* packed rows written: every other a tail */
	size_t		 nchunks; /* chunk rows: see fx_chunk's blocks */
};

/* ---- fixture: a database built with plain SQL ---------------------------- */

static void
fx_exec(struct fx *fx, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(fx->db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

static int
fx_setup(void **state)
{
	struct fx	*fx;
	struct store	*st;
	char		*cause = NULL;

	fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	snprintf(fx->dir, sizeof fx->dir, "/tmp/gw-test-query.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/gw.db", fx->dir);
	/* The schema as gradwatchd makes it, migrations' C steps included. */
	if ((st = store_open(fx->path, &cause)) == NULL)
		fail_msg("store_open: %s", cause);
	store_close(st);
	assert_int_equal(sqlite3_open(fx->path, &fx->db), SQLITE_OK);
	fx_exec(fx, "PRAGMA journal_mode=WAL");
	fx->q = query_open(fx->path, &cause);
	if (fx->q == NULL)
		fail_msg("query_open: %s", cause);
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	static const char *const files[] = {
		"gw.db", "gw.db-wal", "gw.db-shm",
		"store.db", "store.db-wal", "store.db-shm",
	};
	struct fx	*fx = *state;
	char		 p[128];
	size_t		 i;

	query_close(fx->q);
	sqlite3_close(fx->db);
	for (i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", fx->dir, files[i]);
		unlink(p);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static sqlite3_stmt *
fx_prepare(struct fx *fx, const char *sql)
{
	sqlite3_stmt	*st;

	if (sqlite3_prepare_v2(fx->db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(fx->db));
	return st;
}

static void
fx_done(struct fx *fx, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		fail_msg("insert: %s", sqlite3_errmsg(fx->db));
	sqlite3_finalize(st);
}

static int64_t
fx_run(struct fx *fx, const char *key, const char *project,
    const char *status, double started_at)
{
	sqlite3_stmt	*st;

	st = fx_prepare(fx, "INSERT INTO runs (key, project, status,"
	    " started_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?4)");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (project != NULL)
		sqlite3_bind_text(st, 2, project, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 4, started_at);
	fx_done(fx, st);
	return sqlite3_last_insert_rowid(fx->db);
}

/* A series; depth < 0 leaves it NULL. */
static int64_t
fx_series(struct fx *fx, int64_t run_id, const char *kind, const char *name,
    int64_t depth)
{
	sqlite3_stmt	*st;

	st = fx_prepare(fx, "INSERT INTO series (run_id, kind, name, depth)"
	    " VALUES (?1, ?2, ?3, ?4)");
	sqlite3_bind_int64(st, 1, run_id);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	if (depth >= 0)
		sqlite3_bind_int64(st, 4, depth);
	fx_done(fx, st);
	return sqlite3_last_insert_rowid(fx->db);
}

/* 1 if series sid is drawn as a line (not a layer's): chunk.h. */
static int
fx_is_line(struct fx *fx, int64_t sid)
{
	sqlite3_stmt	*st;
	int		 kind;

	st = fx_prepare(fx, "SELECT kind FROM series WHERE id = ?1");
	sqlite3_bind_int64(st, 1, sid);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	kind = series_kind_parse((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_true(kind != -1);
	return !series_kind_is_tensor((enum series_kind)kind);
}

/*
 * One chunk of n points per schema 0001: the summary computed here,
 * the steps blob NULL when packed is 0 (steps must then be consecutive).
 */
static void
fx_chunk(struct fx *fx, int64_t sid, const int64_t *steps, const double *vals,
    size_t n, int packed)
{
	sqlite3_stmt	*st;
	double		 mn = 0, mx = 0;
	int64_t		 mns = 0, mxs = 0, nonfinite = 0, id;
	struct chunk_buf enc, blocks;
	size_t		 i, where;
	int		 have = 0, tail, extremes;

	for (i = 0; i < n; i++) {
		if (i > 0)
			assert_true(steps[i] > steps[i - 1]);
		if (!packed && i > 0)
			assert_true(steps[i] == steps[i - 1] + 1);
		if (!isfinite(vals[i])) {
			nonfinite++;
			continue;
		}
		if (!have || vals[i] < mn) {
			mn = vals[i];
			mns = steps[i];
		}
		if (!have || vals[i] > mx) {
			mx = vals[i];
			mxs = steps[i];
		}
		have = 1;
	}
	chunk_buf_init(&enc);
	assert_true(chunk_encode(&enc, steps, vals, n) > 0);
	/* Every other packed chunk goes to the tails table (no summary). */
	tail = packed && (fx->nrows++ % 2) == 1;
	st = fx_prepare(fx, tail ? "INSERT INTO tails (series_id, first_step,"
	    " last_step, n, data) VALUES (?1, ?2, ?3, ?4, ?5)" :
	    "INSERT INTO chunks (series_id, first_step,"
	    " last_step, n, data, min_value, min_step, max_value,"
	    " max_step, nonfinite, blocks) VALUES (?1, ?2, ?3, ?4, ?5, ?7,"
	    " ?8, ?9, ?10, ?11, ?12)");
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, steps[0]);
	sqlite3_bind_int64(st, 3, steps[n - 1]);
	sqlite3_bind_int64(st, 4, (int64_t)n);
	sqlite3_bind_blob(st, 5, enc.data, (int)enc.len, SQLITE_STATIC);
	if (have && !tail) {
		sqlite3_bind_double(st, 7, mn);
		sqlite3_bind_int64(st, 8, mns);
		sqlite3_bind_double(st, 9, mx);
		sqlite3_bind_int64(st, 10, mxs);
	}
	/*
	 * Block summaries: in chunk_blocks (schema 0007) for one chunk row
	 * in three, in the row itself (0006's place, never with extremes)
	 * for another, none for the third.  In chunk_blocks, a series that
	 * is not a layer's has extremes every other time (as the store
	 * writes; rows written before extremes have none).
	 */
	chunk_buf_init(&blocks);
	where = tail ? 0 : fx->nchunks++ % 3;
	extremes = where == 1 && fx_is_line(fx, sid) &&
	    (fx->nchunks / 3) % 2 == 0;
	if (where != 0)
		assert_true(chunk_blocks_encode(&blocks, steps, vals, n,
		    extremes) > 0);
	if (where == 2)
		sqlite3_bind_blob(st, 12, blocks.data, (int)blocks.len,
		    SQLITE_STATIC);
	if (!tail)
		sqlite3_bind_int64(st, 11, nonfinite);
	fx_done(fx, st);
	if (where == 1) {
		id = sqlite3_last_insert_rowid(fx->db);
		st = fx_prepare(fx, "INSERT INTO chunk_blocks (chunk_id,"
		    " last_step, blocks) VALUES (?1, ?2, ?3)");
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, steps[n - 1]);
		sqlite3_bind_blob(st, 3, blocks.data, (int)blocks.len,
		    SQLITE_STATIC);
		fx_done(fx, st);
	}
	chunk_buf_cleanup(&enc);
	chunk_buf_cleanup(&blocks);
	/* The writer's bound on a row's span (schema 0003). */
	st = fx_prepare(fx, "UPDATE series SET max_span = max(max_span, ?2)"
	    " WHERE id = ?1");
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, steps[n - 1] - steps[0]);
	fx_done(fx, st);
}

/* Store steps[0..n) in chunks of k points (consecutive ones unpacked). */
static void
fx_points(struct fx *fx, int64_t sid, const int64_t *steps,
    const double *vals, size_t n, size_t k)
{
	size_t	i, m, j;
	int	packed;

	for (i = 0; i < n; i += m) {
		m = n - i < k ? n - i : k;
		packed = 0;
		for (j = 1; j < m; j++)
			if (steps[i + j] != steps[i + j - 1] + 1)
				packed = 1;
		fx_chunk(fx, sid, steps + i, vals + i, m, packed);
	}
}

/* The run's first/last step and points, as the writer keeps them. */
static void
fx_run_steps(struct fx *fx, int64_t run_id, int64_t first, int64_t last,
    int64_t points)
{
	char	sql[256];

	snprintf(sql, sizeof sql, "UPDATE runs SET first_step = %lld,"
	    " last_step = %lld, points = %lld WHERE id = %lld",
	    (long long)first, (long long)last, (long long)points,
	    (long long)run_id);
	fx_exec(fx, sql);
}

static void
fx_alert(struct fx *fx, int64_t run_id, const char *kind, const char *state,
    double fired_at, double value, const char *series, const char *detail)
{
	sqlite3_stmt	*st;

	st = fx_prepare(fx, "INSERT INTO alerts (run_id, kind, severity,"
	    " state, series, onset_step, fire_step, fired_at, value,"
	    " value_class, baseline, threshold, message, detail)"
	    " VALUES (?1, ?2, 'warning', ?3, ?4, 10, 12, ?5, ?6, ?7, 1.5,"
	    " 10, 'something happened', ?8)");
	sqlite3_bind_int64(st, 1, run_id);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	if (series != NULL)
		sqlite3_bind_text(st, 4, series, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 5, fired_at);
	if (isfinite(value))
		sqlite3_bind_double(st, 6, value);
	sqlite3_bind_int(st, 7, wire_class(value));
	if (detail != NULL)
		sqlite3_bind_text(st, 8, detail, -1, SQLITE_STATIC);
	fx_done(fx, st);
}

/* ---- reply helpers ------------------------------------------------------- */

/* Parse a 200 reply and free its body. */
static json_t *
reply_ok(struct query_reply *r)
{
	json_error_t	 err;
	json_t		*j;

	if (r->status != 200)
		fail_msg("status %u: %s", r->status, r->body);
	j = json_loads(r->body, 0, &err);
	if (j == NULL)
		fail_msg("bad JSON (%s): %s", err.text, r->body);
	free(r->body);
	r->body = NULL;
	return j;
}

/* Check an error reply: its status, code and a word of its message. */
static void
reply_err(struct query_reply *r, unsigned int status, const char *code,
    const char *word)
{
	json_t	*j;

	if (r->status != status)
		fail_msg("want %u, got %u: %s", status, r->status, r->body);
	j = json_loads(r->body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
	    code);
	assert_non_null(json_string_value(json_object_get(j, "message")));
	if (word != NULL && strstr(json_string_value(json_object_get(j,
	    "message")), word) == NULL)
		fail_msg("message lacks %s: %s", word, r->body);
	json_decref(j);
	free(r->body);
	r->body = NULL;
}

/* A number or non-finite string of a reply as a double. */
static double
jnum(json_t *j)
{
	const char	*s;

	if (json_is_number(j))
		return json_number_value(j);
	s = json_string_value(j);
	assert_non_null(s);
	if (strcmp(s, "NaN") == 0)
		return NAN;
	if (strcmp(s, "Infinity") == 0)
		return INFINITY;
	assert_string_equal(s, "-Infinity");
	return -INFINITY;
}

/* The series object name of a points reply. */
static json_t *
points_of(json_t *j, const char *name)
{
	json_t	*s;

	s = json_object_get(json_object_get(j, "series"), name);
	if (s == NULL)
		fail_msg("no series %s", name);
	assert_int_equal(json_array_size(json_object_get(s, "steps")),
	    json_array_size(json_object_get(s, "values")));
	return s;
}

static int64_t
step_at(json_t *s, size_t i)
{
	return json_integer_value(json_array_get(json_object_get(s, "steps"),
	    i));
}

static double
value_at(json_t *s, size_t i)
{
	return jnum(json_array_get(json_object_get(s, "values"), i));
}

/* Index of step in a points reply's series, or -1. */
static ssize_t
find_step(json_t *s, int64_t step)
{
	size_t	i, n = json_array_size(json_object_get(s, "steps"));

	for (i = 0; i < n; i++)
		if (step_at(s, i) == step)
			return (ssize_t)i;
	return -1;
}

/* ---- rowjson ------------------------------------------------------------- */

static void
test_rowjson_numbers(void **state)
{
	struct fx	*fx = *state;
	sqlite3_stmt	*st;
	json_t		*j;
	char		*s;

	(void)fx;
	j = wire_json_number(NAN);
	assert_string_equal(json_string_value(j), "NaN");
	json_decref(j);
	j = wire_json_number(INFINITY);
	assert_string_equal(json_string_value(j), "Infinity");
	json_decref(j);
	j = wire_json_number(-INFINITY);
	assert_string_equal(json_string_value(j), "-Infinity");
	json_decref(j);
	j = wire_json_number(0.1);
	s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	assert_true(strtod(s, NULL) == 0.1);
	free(s);
	json_decref(j);
	assert_int_equal(wire_class(1.0), 0);
	assert_int_equal(wire_class(NAN), 1);
	assert_int_equal(wire_class(INFINITY), 2);
	assert_int_equal(wire_class(-INFINITY), 3);

	st = fx_prepare(fx, "SELECT 2.5, 0, NULL, 1, NULL, 2, 7.0, 3");
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true(store_rowjson_value(st, 0, 1) == 2.5);
	assert_true(isnan(store_rowjson_value(st, 2, 3)));
	assert_true(store_rowjson_value(st, 4, 5) == INFINITY);
	assert_true(store_rowjson_value(st, 6, 7) == -INFINITY);
	sqlite3_finalize(st);

	s = wire_error_body("bad_request", "bad \xff byte");
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
	    "bad_request");
	assert_string_equal(json_string_value(json_object_get(j, "message")),
	    "bad ? byte");
	json_decref(j);
	free(s);
}

/* The API objects of the rows sql (taking ?1 = id) selects, as row() makes them. */
static json_t *
fx_rows(struct fx *fx, const char *sql, int64_t id,
    json_t *(*row)(sqlite3_stmt *))
{
	sqlite3_stmt	*st;
	json_t		*a = json_array();

	assert_int_equal(sqlite3_prepare_v2(fx->db, sql, -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, row(st));
	sqlite3_finalize(st);
	return a;
}

/* The first of them, or NULL. */
static json_t *
fx_row(struct fx *fx, const char *sql, int64_t id,
    json_t *(*row)(sqlite3_stmt *))
{
	json_t	*a = fx_rows(fx, sql, id, row), *o;

	o = json_array_get(a, 0);
	json_incref(o);
	json_decref(a);
	return o;
}

#define FX_RUN_SQL	STORE_ROWJSON_RUN_SQL " WHERE id = ?1"
#define FX_ALERT_SQL	STORE_ROWJSON_ALERT_SQL " WHERE a.id = ?1"
#define FX_FIRING_SQL	STORE_ROWJSON_ALERT_SQL				\
	" WHERE a.run_id = ?1 AND a.state = 'firing' ORDER BY a.fired_at, a.id"

static void
test_rowjson_run_alert(void **state)
{
	struct fx	*fx = *state;
	json_t		*j, *a;
	int64_t		 id;

	id = fx_run(fx, "r1", "proj", "running", 100.5);
	fx_exec(fx, "UPDATE runs SET config = '{\"lr\":0.1}',"
	    " meta = '{\"project\":\"proj\"}', dropped = 3");
	fx_alert(fx, id, "nonfinite", "firing", 200, NAN, "loss",
	    "{\"lead\":5}");
	fx_alert(fx, id, "grad_spike", "resolved", 150, 7.5, NULL, NULL);
	fx_alert(fx, id, "stall", "firing", 100, 1, NULL, NULL);

	j = fx_row(fx, FX_RUN_SQL, id, store_rowjson_run);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "run")),
	    "r1");
	assert_string_equal(json_string_value(json_object_get(j, "project")),
	    "proj");
	assert_string_equal(json_string_value(json_object_get(j, "health")),
	    "ok");
	assert_true(json_is_null(json_object_get(j, "first_step")));
	assert_true(json_real_value(json_object_get(j, "started_at")) ==
	    100.5);
	assert_int_equal(json_integer_value(json_object_get(j,
	    "alerts_firing")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "dropped")),
	    3);
	assert_true(json_real_value(json_object_get(json_object_get(j,
	    "config"), "lr")) == 0.1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    j, "meta"), "project")), "proj");
	json_decref(j);
	assert_null(fx_row(fx, FX_RUN_SQL, id + 100, store_rowjson_run));

	j = fx_rows(fx, FX_FIRING_SQL, id, store_rowjson_alert);
	assert_int_equal(json_array_size(j), 2);
	a = json_array_get(j, 0);	/* oldest first */
	assert_string_equal(json_string_value(json_object_get(a, "kind")),
	    "stall");
	assert_true(json_is_null(json_object_get(a, "series")));
	assert_null(json_object_get(a, "detail"));
	a = json_array_get(j, 1);
	assert_string_equal(json_string_value(json_object_get(a, "value")),
	    "NaN");
	assert_string_equal(json_string_value(json_object_get(a, "run")),
	    "r1");
	assert_string_equal(json_string_value(json_object_get(a, "series")),
	    "loss");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    a, "detail"), "lead")), 5);
	assert_int_equal(json_integer_value(json_object_get(a, "onset_step")),
	    10);
	assert_true(json_is_null(json_object_get(a, "resolve_step")));
	assert_true(json_is_null(json_object_get(a, "resolved_at")));
	assert_true(json_real_value(json_object_get(a, "threshold")) == 10);
	assert_string_equal(json_string_value(json_object_get(a, "message")),
	    "something happened");
	json_decref(j);
	j = fx_row(fx, FX_ALERT_SQL, 2, store_rowjson_alert);
	assert_non_null(j);
	assert_true(json_real_value(json_object_get(j, "value")) == 7.5);
	assert_string_equal(json_string_value(json_object_get(j, "state")),
	    "resolved");
	json_decref(j);
	assert_null(fx_row(fx, FX_ALERT_SQL, 99, store_rowjson_alert));
}

/* ---- runs ---------------------------------------------------------------- */

static void
test_runs_list(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	json_t			*j, *runs;
	int64_t			 a;

	a = fx_run(fx, "a", "p1", "finished", 100);
	fx_run(fx, "b", "p2", "running", 300);
	fx_run(fx, "c", "p1", "running", 200);
	fx_run(fx, "d", NULL, "stalled", 300);	/* same time, newer id */
	fx_alert(fx, a, "stall", "firing", 1, 1, NULL, NULL);

	query_runs(fx->q, NULL, NULL, NULL, &r);
	j = reply_ok(&r);
	runs = json_object_get(j, "runs");
	assert_int_equal(json_array_size(runs), 4);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(runs, 0), "run")), "d");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(runs, 1), "run")), "b");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(runs, 2), "run")), "c");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(runs, 3), "run")), "a");
	assert_true(json_is_null(json_object_get(json_array_get(runs, 0),
	    "project")));
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(runs, 3), "alerts_firing")), 1);
	assert_true(json_is_null(json_object_get(json_array_get(runs, 3),
	    "config")));
	json_decref(j);

	query_runs(fx->q, "p1", NULL, NULL, &r);
	j = reply_ok(&r);
	runs = json_object_get(j, "runs");
	assert_int_equal(json_array_size(runs), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(runs, 0), "run")), "c");
	json_decref(j);

	query_runs(fx->q, "p1", "running", NULL, &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "runs")), 1);
	json_decref(j);

	query_runs(fx->q, NULL, "stalled", NULL, &r);
	j = reply_ok(&r);
	runs = json_object_get(j, "runs");
	assert_int_equal(json_array_size(runs), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(runs, 0), "status")), "stalled");
	json_decref(j);

	query_runs(fx->q, "nope", NULL, NULL, &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "runs")), 0);
	json_decref(j);

	query_runs(fx->q, NULL, "paused", NULL, &r);
	reply_err(&r, 400, "bad_request", "paused");
}

/* The list's config: whole up to 2 KiB, else the members that fit. */
static void
test_runs_list_config(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	json_t			*j, *runs, *o, *c;
	char			*text;

	fx_run(fx, "many", NULL, "running", 400);
	fx_run(fx, "arr", NULL, "running", 300);
	fx_run(fx, "big", NULL, "running", 200);
	fx_run(fx, "small", NULL, "running", 100);
	fx_exec(fx, "UPDATE runs SET config = '{\"lr\":0.1}',"
	    " meta = '{\"project\":\"p\",\"config\":{\"lr\":0.1}}'"
	    " WHERE key = 'small'");
	fx_exec(fx, "UPDATE runs SET config = json_object('lr', 0.5,"
	    " 'vocab', printf('%.3000c', 'x'), 'seed', 7),"
	    " meta = '{\"note\":1}' WHERE key = 'big'");
	fx_exec(fx, "UPDATE runs SET config = json_array(printf('%.3000c',"
	    " 'x')) WHERE key = 'arr'");
	fx_exec(fx, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1"
	    " FROM n WHERE i < 1000) UPDATE runs SET config = (SELECT"
	    " json_group_object(printf('k%04d', i), i) FROM n)"
	    " WHERE key = 'many'");

	query_runs(fx->q, NULL, NULL, NULL, &r);
	assert_true(strlen(r.body) < 4 * STORE_ROWJSON_CONFIG_BRIEF);
	j = reply_ok(&r);
	runs = json_object_get(j, "runs");
	assert_int_equal(json_array_size(runs), 4);
	o = json_array_get(runs, 3);	/* small: whole, without meta */
	assert_true(json_real_value(json_object_get(json_object_get(o,
	    "config"), "lr")) == 0.1);
	assert_null(json_object_get(o, "meta"));
	assert_null(json_object_get(o, "config_partial"));
	o = json_array_get(runs, 2);	/* big: the members that fit */
	c = json_object_get(o, "config");
	assert_int_equal(json_object_size(c), 2);
	assert_true(json_real_value(json_object_get(c, "lr")) == 0.5);
	assert_int_equal(json_integer_value(json_object_get(c, "seed")), 7);
	assert_true(json_is_true(json_object_get(o, "config_partial")));
	assert_null(json_object_get(o, "meta"));
	o = json_array_get(runs, 1);	/* arr: not an object, so null */
	assert_true(json_is_null(json_object_get(o, "config")));
	assert_true(json_is_true(json_object_get(o, "config_partial")));
	o = json_array_get(runs, 0);	/* many: cut to fit, in order */
	c = json_object_get(o, "config");
	text = json_dumps(c, JSON_COMPACT);
	assert_true(strlen(text) <= STORE_ROWJSON_CONFIG_BRIEF);
	assert_true(strlen(text) > STORE_ROWJSON_CONFIG_BRIEF - 16);
	free(text);
	assert_int_equal(json_integer_value(json_object_get(c, "k0001")), 1);
	assert_true(json_object_size(c) > 100 && json_object_size(c) < 1000);
	assert_true(json_is_true(json_object_get(o, "config_partial")));
	json_decref(j);

	query_runs(fx->q, NULL, NULL, "1", &r);	/* whole, meta and all */
	j = reply_ok(&r);
	runs = json_object_get(j, "runs");
	o = json_array_get(runs, 2);
	assert_int_equal(strlen(json_string_value(json_object_get(
	    json_object_get(o, "config"), "vocab"))), 3000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o,
	    "meta"), "note")), 1);
	assert_null(json_object_get(o, "config_partial"));
	assert_int_equal(json_object_size(json_object_get(json_array_get(runs,
	    0), "config")), 1000);
	json_decref(j);

	query_runs(fx->q, NULL, NULL, "0", &r);
	json_decref(reply_ok(&r));
	query_runs(fx->q, NULL, NULL, "yes", &r);
	reply_err(&r, 400, "bad_request", "config: want 0 or 1, not yes");
}

static void
test_run_detail(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	json_t			*j, *series, *s;
	int64_t			 id, sid;

	id = fx_run(fx, "r.1:x-y_z", "p", "running", 10);
	fx_run_steps(fx, id, 0, 9, 30);
	sid = fx_series(fx, id, "loss", "loss", -1);
	fx_exec(fx, "UPDATE series SET points = 10, last_step = 9,"
	    " last_value = NULL, last_class = 1 WHERE kind = 'loss'");
	(void)sid;
	fx_series(fx, id, "layer_grad", "fc.weight", 3);
	fx_exec(fx, "UPDATE series SET points = 10, last_step = 9,"
	    " last_value = 0.25, numel = 1728, shape = '[64,3,3,3]'"
	    " WHERE kind = 'layer_grad'");
	fx_series(fx, id, "metric", "acc", -1);

	query_run(fx->q, "r.1:x-y_z", &r);
	j = reply_ok(&r);
	assert_string_equal(json_string_value(json_object_get(j, "run")),
	    "r.1:x-y_z");
	assert_int_equal(json_integer_value(json_object_get(j, "last_step")),
	    9);
	series = json_object_get(j, "series");
	assert_int_equal(json_array_size(series), 3);
	s = json_array_get(series, 0);
	assert_string_equal(json_string_value(json_object_get(s, "name")),
	    "loss");
	assert_string_equal(json_string_value(json_object_get(s, "kind")),
	    "loss");
	assert_string_equal(json_string_value(json_object_get(s,
	    "last_value")), "NaN");
	assert_null(json_object_get(s, "depth"));
	s = json_array_get(series, 1);
	assert_string_equal(json_string_value(json_object_get(s, "kind")),
	    "layer_grad");
	assert_true(json_real_value(json_object_get(s, "last_value")) == 0.25);
	assert_int_equal(json_integer_value(json_object_get(s, "numel")),
	    1728);
	assert_int_equal(json_integer_value(json_object_get(s, "depth")), 3);
	assert_int_equal(json_array_size(json_object_get(s, "shape")), 4);
	s = json_array_get(series, 2);
	assert_true(json_is_null(json_object_get(s, "last_value")));
	assert_true(json_is_null(json_object_get(s, "last_step")));
	assert_int_equal(json_integer_value(json_object_get(s, "points")), 0);
	json_decref(j);

	query_run(fx->q, "ghost", &r);
	reply_err(&r, 404, "not_found", "ghost");
	query_run(fx->q, "bad key", &r);
	reply_err(&r, 400, "bad_request", NULL);
	query_run(fx->q, "", &r);
	reply_err(&r, 400, "bad_request", NULL);
}

/* ---- points -------------------------------------------------------------- */

static void
test_points_plain(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	int64_t			 id, sid, steps[10];
	double			 vals[10];
	json_t			*j, *s;
	size_t			 i;

	id = fx_run(fx, "r", NULL, "running", 1);
	sid = fx_series(fx, id, "loss", "loss", -1);
	for (i = 0; i < 10; i++) {
		steps[i] = 100 + (int64_t)i;
		vals[i] = 1.0 / (double)(i + 1);
	}
	vals[4] = NAN;
	vals[7] = -INFINITY;
	fx_points(fx, sid, steps, vals, 10, 4);
	/* A metric also named "loss", and a grad_norm named "g". */
	sid = fx_series(fx, id, "metric", "loss", -1);
	steps[0] = 5;
	vals[0] = 42;
	fx_chunk(fx, sid, steps, vals, 1, 0);
	sid = fx_series(fx, id, "grad_norm", "grad_norm", -1);
	fx_chunk(fx, sid, steps, vals, 1, 0);

	query_points(fx->q, "r", "loss", NULL, NULL, NULL, &r);
	j = reply_ok(&r);
	s = points_of(j, "loss");
	assert_string_equal(json_string_value(json_object_get(s, "kind")),
	    "loss");
	assert_int_equal(json_array_size(json_object_get(s, "steps")), 10);
	assert_true(json_is_false(json_object_get(s, "downsampled")));
	for (i = 0; i < 10; i++) {
		assert_int_equal(step_at(s, i), 100 + (int64_t)i);
		if (i == 4)
			assert_true(isnan(value_at(s, i)));
		else if (i == 7)
			assert_true(value_at(s, i) == -INFINITY);
		else
			assert_true(value_at(s, i) == 1.0 / (double)(i + 1));
	}
	json_decref(j);

	/* Explicit kind, several series, a range. */
	query_points(fx->q, "r", "metric:loss,loss,grad_norm", "103", "108",
	    NULL, &r);
	j = reply_ok(&r);
	s = points_of(j, "metric:loss");
	assert_string_equal(json_string_value(json_object_get(s, "kind")),
	    "metric");
	assert_int_equal(json_array_size(json_object_get(s, "steps")), 0);
	s = points_of(j, "loss");
	assert_int_equal(json_array_size(json_object_get(s, "steps")), 6);
	assert_int_equal(step_at(s, 0), 103);
	assert_int_equal(step_at(s, 5), 108);
	s = points_of(j, "grad_norm");
	assert_int_equal(json_array_size(json_object_get(s, "steps")), 0);
	json_decref(j);

	query_points(fx->q, "r", "metric:loss", "", "", "", &r);
	j = reply_ok(&r);
	s = points_of(j, "metric:loss");
	assert_int_equal(json_array_size(json_object_get(s, "steps")), 1);
	assert_true(value_at(s, 0) == 42);
	json_decref(j);

	/* Errors. */
	query_points(fx->q, "r", NULL, NULL, NULL, NULL, &r);
	reply_err(&r, 400, "bad_request", "series");
	query_points(fx->q, "r", "", NULL, NULL, NULL, &r);
	reply_err(&r, 400, "bad_request", "series");
	query_points(fx->q, "r", "loss,,lr", NULL, NULL, NULL, &r);
	reply_err(&r, 400, "bad_request", NULL);
	query_points(fx->q, "r", "loss,nosuch", NULL, NULL, NULL, &r);
	reply_err(&r, 404, "not_found", "nosuch");
	query_points(fx->q, "r", "layer_grad:loss", NULL, NULL, NULL, &r);
	reply_err(&r, 404, "not_found", "layer_grad:loss");
	query_points(fx->q, "ghost", "loss", NULL, NULL, NULL, &r);
	reply_err(&r, 404, "not_found", "ghost");
	query_points(fx->q, "bad/key", "loss", NULL, NULL, NULL, &r);
	reply_err(&r, 400, "bad_request", NULL);
	query_points(fx->q, "r", "loss", "-1", NULL, NULL, &r);
	reply_err(&r, 400, "bad_request", "from");
	query_points(fx->q, "r", "loss", NULL, "12x", NULL, &r);
	reply_err(&r, 400, "bad_request", "to");
	query_points(fx->q, "r", "loss", "99999999999999999999", NULL, NULL,
	    &r);
	reply_err(&r, 400, "bad_request", "from");
	query_points(fx->q, "r", "loss", "9", "3", NULL, &r);
	reply_err(&r, 400, "bad_request", "after");
	query_points(fx->q, "r", "loss", NULL, NULL, "1", &r);
	reply_err(&r, 400, "bad_request", "max");
	query_points(fx->q, "r", "loss", NULL, NULL, "1000001", &r);
	reply_err(&r, 400, "bad_request", "max");
	query_points(fx->q, "r", "loss", NULL, NULL, "abc", &r);
	reply_err(&r, 400, "bad_request", "max");
}

/* Chunks {0,2,4,..}, {1,3,5,..} interleave; 100..149 has no steps blob. */
static int64_t
fx_interleaved(struct fx *fx, int64_t run_id, const char *name,
    double (*f)(int64_t))
{
	int64_t	sid, ev[50], od[50], cs[50];
	double	ve[50], vo[50], vc[50];
	size_t	i;

	sid = fx_series(fx, run_id, "layer_grad", name, -1);
	for (i = 0; i < 50; i++) {
		ev[i] = 2 * (int64_t)i;
		od[i] = 2 * (int64_t)i + 1;
		cs[i] = 100 + (int64_t)i;
		ve[i] = f(ev[i]);
		vo[i] = f(od[i]);
		vc[i] = f(cs[i]);
	}
	fx_chunk(fx, sid, cs, vc, 50, 0);	/* inserted first: id order */
	fx_chunk(fx, sid, od, vo, 50, 1);
	fx_chunk(fx, sid, ev, ve, 50, 1);
	return sid;
}

static double
f_wave(int64_t s)
{
	if (s == 77)
		return NAN;
	return sin((double)s * 0.3) * 10 + (double)(s % 7);
}

static void
test_points_interleaved(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	json_t			*j, *s;
	size_t			 i, n, b;
	int64_t			 id, st;
	double			 mn, mx, v;

	id = fx_run(fx, "r", NULL, "running", 1);
	fx_interleaved(fx, id, "w", f_wave);

	query_points(fx->q, "r", "w", NULL, NULL, NULL, &r);
	j = reply_ok(&r);
	s = points_of(j, "w");
	assert_int_equal(json_array_size(json_object_get(s, "steps")), 150);
	for (i = 0; i < 150; i++) {
		assert_int_equal(step_at(s, i), (int64_t)i);
		v = value_at(s, i);
		if (i == 77)
			assert_true(isnan(v));
		else
			assert_true(v == f_wave((int64_t)i));
	}
	json_decref(j);

	/* Range cut through all three chunks. */
	query_points(fx->q, "r", "w", "95", "104", NULL, &r);
	j = reply_ok(&r);
	s = points_of(j, "w");
	assert_int_equal(json_array_size(json_object_get(s, "steps")), 10);
	for (i = 0; i < 10; i++)
		assert_int_equal(step_at(s, i), 95 + (int64_t)i);
	json_decref(j);

	/* Downsampled: 10 buckets of 15 steps over interleaved chunks. */
	query_points(fx->q, "r", "w", NULL, NULL, "20", &r);
	j = reply_ok(&r);
	s = points_of(j, "w");
	assert_true(json_is_true(json_object_get(s, "downsampled")));
	assert_int_equal(json_integer_value(json_object_get(s, "buckets")),
	    10);
	n = json_array_size(json_object_get(s, "steps"));
	assert_true(n <= 21);
	for (i = 1; i < n; i++)
		assert_true(step_at(s, i) > step_at(s, i - 1));
	assert_true(find_step(s, 77) >= 0);
	assert_true(isnan(value_at(s, (size_t)find_step(s, 77))));
	for (b = 0; b < 10; b++) {
		mn = INFINITY;
		mx = -INFINITY;
		for (st = (int64_t)b * 15; st < (int64_t)b * 15 + 15; st++) {
			if (st == 77)
				continue;
			if (f_wave(st) < mn)
				mn = f_wave(st);
			if (f_wave(st) > mx)
				mx = f_wave(st);
		}
		/* The bucket's min and max are there, at their steps. */
		for (i = 0; i < n; i++) {
			st = step_at(s, i);
			if (st < (int64_t)b * 15 || st >= (int64_t)b * 15 + 15)
				continue;
			if (st != 77)
				assert_true(value_at(s, i) == f_wave(st));
			if (value_at(s, i) == mn)
				mn = NAN;
			if (value_at(s, i) == mx)
				mx = NAN;
		}
		assert_true(isnan(mn) && isnan(mx));
	}
	json_decref(j);
}

/* A loss curve with a spike at 5123, NaN at 7777 and +Inf at 8000. */
static double
f_curve(int64_t s)
{
	if (s == 5123)
		return 1000;
	if (s == 7777)
		return NAN;
	if (s == 8000)
		return INFINITY;
	return 2.0 / (1.0 + (double)s * 0.001) + 0.05 * sin((double)s);
}

/*
 * Check a downsampled reply of series f over [lo, hi] against brute
 * force: buckets of w steps from origin (lo, or the block of lo when
 * buckets are whole blocks), each with its min and max in [lo, hi].
 */
static void
check_downsampled(json_t *s, double (*f)(int64_t), int64_t lo, int64_t hi,
    int64_t origin, int64_t w)
{
	size_t	 i, n, k, nb, nnf = 0;
	int64_t	 st, b;
	double	 v, *mn, *mx;
	int	*seen;

	assert_true(json_is_true(json_object_get(s, "downsampled")));
	assert_int_equal(json_integer_value(json_object_get(s, "bucket_size")),
	    w);
	assert_int_equal(json_integer_value(json_object_get(s, "bucket_from")),
	    origin);
	nb = (size_t)((hi - origin) / w + 1);
	assert_int_equal(json_integer_value(json_object_get(s, "buckets")),
	    nb);
	n = json_array_size(json_object_get(s, "steps"));
	mn = calloc(nb, sizeof *mn);
	mx = calloc(nb, sizeof *mx);
	seen = calloc(nb, sizeof *seen);
	for (k = 0; k < nb; k++) {
		mn[k] = INFINITY;
		mx[k] = -INFINITY;
	}
	for (st = lo; st <= hi; st++) {
		v = f(st);
		if (!isfinite(v))
			continue;
		b = (st - origin) / w;
		if (v < mn[b])
			mn[b] = v;
		if (v > mx[b])
			mx[b] = v;
	}
	for (i = 0; i < n; i++) {
		st = step_at(s, i);
		assert_true(st >= lo && st <= hi);
		if (i > 0)
			assert_true(st > step_at(s, i - 1));
		v = value_at(s, i);
		if (isnan(v))
			assert_true(isnan(f(st)));
		else
			assert_true(v == f(st));
		b = (st - origin) / w;
		if (v == mn[b])
			seen[b] |= 1;
		if (v == mx[b])
			seen[b] |= 2;
	}
	for (st = lo; st <= hi; st++) {	/* every non-finite point kept */
		if (!isfinite(f(st))) {
			assert_true(find_step(s, st) >= 0);
			nnf++;
		}
	}
	for (k = 0; k < nb; k++)	/* a bucket with no finite point: -Inf */
		assert_int_equal(seen[k], mx[k] == -INFINITY ? 0 : 3);
	assert_true(n <= 2 * nb + nnf);
	free(mn);
	free(mx);
	free(seen);
}

/*
 * Steps 0 .. n - 1 of f as the series name (its own kind) of run id,
 * in chunks of k points; its id in *sid.
 */
static void
fx_curve(struct fx *fx, int64_t id, const char *name, double (*f)(int64_t),
    size_t n, size_t k, int64_t *sid)
{
	int64_t	*steps;
	double	*vals;
	size_t	 i;

	steps = calloc(n, sizeof *steps);
	vals = calloc(n, sizeof *vals);
	for (i = 0; i < n; i++) {
		steps[i] = (int64_t)i;
		vals[i] = f((int64_t)i);
	}
	*sid = fx_series(fx, id, name, name, -1);
	fx_points(fx, *sid, steps, vals, n, k);
	free(steps);
	free(vals);
}

static void
test_points_downsample(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	int64_t			 id, sid;
	json_t			*j, *s;
	size_t			 i;

	id = fx_run(fx, "r", NULL, "running", 1);
	/* Chunks aligned to buckets, and straddling them. */
	fx_curve(fx, id, "loss", f_curve, 10000, 50, &sid);
	fx_curve(fx, id, "grad_norm", f_curve, 10000, 37, &sid);

	query_points(fx->q, "r", "loss,grad_norm", NULL, NULL, "100", &r);
	j = reply_ok(&r);
	s = points_of(j, "loss");
	/* Buckets of at least 128 steps are whole blocks: 200 up to 256. */
	check_downsampled(s, f_curve, 0, 9999, 0, 256);
	assert_true(value_at(s, (size_t)find_step(s, 5123)) == 1000);
	assert_true(isnan(value_at(s, (size_t)find_step(s, 7777))));
	assert_true(value_at(s, (size_t)find_step(s, 8000)) == INFINITY);
	check_downsampled(points_of(j, "grad_norm"), f_curve, 0, 9999, 0, 256);
	json_decref(j);

	/* The default max, a sub-range, and odd bucket widths. */
	query_points(fx->q, "r", "loss", "1001", "9876", NULL, &r);
	j = reply_ok(&r);
	check_downsampled(points_of(j, "loss"), f_curve, 1001, 9876, 1001, 9);
	json_decref(j);
	query_points(fx->q, "r", "grad_norm", "333", "7800", "2", &r);
	j = reply_ok(&r);
	check_downsampled(points_of(j, "grad_norm"), f_curve, 333, 7800, 256,
	    7552);
	json_decref(j);

	/* Chunk counts overestimate a cut range: 100 points, max 100. */
	query_points(fx->q, "r", "grad_norm", "20", "119", "100", &r);
	j = reply_ok(&r);
	s = points_of(j, "grad_norm");
	assert_true(json_is_false(json_object_get(s, "downsampled")));
	assert_int_equal(json_array_size(json_object_get(s, "steps")), 100);
	for (i = 0; i < 100; i++)
		assert_int_equal(step_at(s, i), 20 + (int64_t)i);
	json_decref(j);
}

/* float32 values with runs of ties, -0.0 among 0.0, NaN in 9000..9002. */
static double
f_ties(int64_t s)
{
	if (s >= 9000 && s <= 9002)
		return NAN;
	if (s % 7 == 0)
		return s % 2 ? -0.0 : 0.0;
	return (double)(float)(1.0 + (double)(s % 97) / 8.0 -
	    (double)((s / 13) % 5));
}

/* Put block summaries with extremes beside every chunk row of sid. */
static void
fx_extremes_all(struct fx *fx, int64_t sid)
{
	sqlite3_stmt		*st, *put;
	struct chunk_buf	 blocks;
	int64_t			 steps[4096];
	double			 vals[4096];
	size_t			 n;

	st = fx_prepare(fx, "SELECT id, data FROM chunks WHERE series_id = ?1");
	put = fx_prepare(fx, "INSERT OR REPLACE INTO chunk_blocks (chunk_id,"
	    " last_step, blocks) VALUES (?1, ?2, ?3)");
	sqlite3_bind_int64(st, 1, sid);
	while (sqlite3_step(st) == SQLITE_ROW) {
		assert_int_equal(chunk_decode(sqlite3_column_blob(st, 1),
		    (size_t)sqlite3_column_bytes(st, 1), steps, vals, 4096, &n,
		    NULL), 0);
		chunk_buf_init(&blocks);
		assert_true(chunk_blocks_encode(&blocks, steps, vals, n, 1) > 0);
		sqlite3_bind_int64(put, 1, sqlite3_column_int64(st, 0));
		sqlite3_bind_int64(put, 2, steps[n - 1]);
		sqlite3_bind_blob(put, 3, blocks.data, (int)blocks.len,
		    SQLITE_STATIC);
		assert_int_equal(sqlite3_step(put), SQLITE_DONE);
		sqlite3_reset(put);
		chunk_buf_cleanup(&blocks);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(put);
}

/* The body of a 200 points reply (allocated). */
static char *
points_body(struct fx *fx, const char *from, const char *to, const char *max)
{
	struct query_reply	r;

	query_points(fx->q, "r", "loss", from, to, max, &r);
	if (r.status != 200)
		fail_msg("status %u: %s", r.status, r.body);
	return r.body;
}

/*
 * With every chunk's extremes stored, then the chunk_blocks row of the
 * chunk from step first SET as set says: the whole downsampled series
 * fails, naming the chunk.
 */
static void
extremes_damaged(struct fx *fx, int64_t sid, const char *set, int64_t first)
{
	struct query_reply	 r;
	char			*sql, *want;

	fx_extremes_all(fx, sid);
	xasprintf(&sql, "UPDATE chunk_blocks SET %s WHERE chunk_id = (SELECT "
	    "id FROM chunks WHERE first_step = %lld)", set, (long long)first);
	fx_exec(fx, sql);
	free(sql);
	query_points(fx->q, "r", "loss", NULL, NULL, "100", &r);
	assert_int_equal(r.status, 500);
	xasprintf(&want, "damaged chunk at steps %lld..%lld", (long long)first,
	    (long long)first + 999);
	assert_non_null(strstr(r.body, want));
	free(want);
	free(r.body);
}

/*
 * Downsampling from block extremes answers exactly what reading the
 * points does, over whole-block buckets, ranges cut inside blocks and
 * chunks, ties, and a NaN (whose chunk is read); damaged extremes fail
 * the query that reads them.
 */
static void
test_points_extremes(void **state)
{
	static const char *const ranges[][3] = {
		{ NULL, NULL, "100" }, { NULL, NULL, "2" },
		{ "333", "17777", "100" }, { "129", "19000", "60" },
		{ "8000", "12000", "20" }, { NULL, NULL, "1000" },
	};
	struct fx		*fx = *state;
	struct query_reply	 r;
	int64_t			 sid;
	char			*with[6];
	json_t			*j;
	size_t			 i;

	fx_curve(fx, fx_run(fx, "r", NULL, "running", 1), "loss", f_ties,
	    20000, 1000, &sid);
	fx_extremes_all(fx, sid);
	for (i = 0; i < 6; i++)
		with[i] = points_body(fx, ranges[i][0], ranges[i][1],
		    ranges[i][2]);
	j = json_loads(with[2], 0, NULL);
	check_downsampled(json_object_get(json_object_get(j, "series"),
	    "loss"), f_ties, 333, 17777, 256, 384);
	json_decref(j);
	j = json_loads(with[0], 0, NULL);
	check_downsampled(json_object_get(json_object_get(j, "series"),
	    "loss"), f_ties, 0, 19999, 0, 512);
	json_decref(j);

	/* The same answers from the points alone. */
	fx_exec(fx, "DELETE FROM chunk_blocks; UPDATE chunks SET blocks = NULL");
	for (i = 0; i < 6; i++) {
		r.body = points_body(fx, ranges[i][0], ranges[i][1],
		    ranges[i][2]);
		assert_string_equal(r.body, with[i]);
		free(r.body);
		free(with[i]);
	}

	/*
	 * Extremes are read: damaged ones fail the query (a last step that
	 * is not the chunk's too), but only one whose range meets theirs.
	 */
	extremes_damaged(fx, sid, "blocks = x'0102'", 15000);
	free(points_body(fx, "0", "14999", "100"));
	extremes_damaged(fx, sid, "last_step = last_step - 1", 3000);
}

/* A series that goes NaN for good: the answer stays bounded. */
static double
f_diverge(int64_t s)
{
	return s < 1000 ? 1.0 / (double)(s + 1) : NAN;
}

static void
test_points_all_nan(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	int64_t			 id, sid, steps[5000];
	double			 vals[5000];
	json_t			*j, *s;
	size_t			 i, n;

	id = fx_run(fx, "r", NULL, "running", 1);
	sid = fx_series(fx, id, "loss", "loss", -1);
	for (i = 0; i < 5000; i++) {
		steps[i] = (int64_t)i;
		vals[i] = f_diverge((int64_t)i);
	}
	fx_points(fx, sid, steps, vals, 5000, 100);
	query_points(fx->q, "r", "loss", NULL, NULL, "100", &r);
	j = reply_ok(&r);
	s = points_of(j, "loss");
	n = json_array_size(json_object_get(s, "steps"));
	/* 4000 NaN points > max: first and last NaN of each bucket. */
	assert_true(n <= 20 + 2 * 50);
	assert_true(find_step(s, 1000) >= 0);
	assert_true(find_step(s, 4999) >= 0);
	assert_true(isnan(value_at(s, (size_t)find_step(s, 4999))));
	for (i = 1000; i < 5000; i += 100)	/* each bucket shows NaN */
		assert_true(find_step(s, (int64_t)i) >= 0);
	json_decref(j);
}

/* ---- heatmap ------------------------------------------------------------- */

static double
f_layer(int64_t s)
{
	return (double)((s * 37) % 101) / 10.0;
}

/* Chunks of another run's series, to spread a run's chunk ids apart. */
static void
fx_filler(struct fx *fx, int64_t filler)
{
	static int64_t	step;
	double		v = 1e6;
	int		i;

	if (filler == 0)
		return;
	for (i = 0; i < 60; i++, step++)
		fx_chunk(fx, filler, &step, &v, 1, 0);
}

/*
 * The heatmap run: layer_grad a (depth 5), b (none), c (depth 0) with
 * other series among them; filler != 0 spreads its chunks apart.
 */
static int64_t
fx_heat_run(struct fx *fx, const char *key, int64_t filler)
{
	int64_t	id, a, b, c, steps[100];
	double	vals[100];
	size_t	i;

	id = fx_run(fx, key, NULL, "running", 1);
	fx_run_steps(fx, id, 0, 149, 0);
	/* Ids in order a, b, c; depths put c first, then a; b has none. */
	a = fx_series(fx, id, "layer_grad", "a", 5);
	b = fx_series(fx, id, "layer_grad", "b", -1);
	c = fx_series(fx, id, "layer_grad", "c", 0);
	fx_series(fx, id, "layer_weight", "a", 5);	/* not a grad */
	for (i = 0; i < 100; i++) {
		steps[i] = (int64_t)i;
		vals[i] = f_layer((int64_t)i);
	}
	fx_filler(fx, filler);
	fx_points(fx, a, steps, vals, 100, 5);	/* inside buckets of 10 */
	fx_filler(fx, filler);
	vals[12] = INFINITY;	/* bucket 1: +Inf */
	vals[23] = INFINITY;	/* bucket 2: NaN wins over +Inf */
	vals[27] = NAN;
	vals[35] = -INFINITY;	/* bucket 3: -Inf wins over finite */
	fx_points(fx, b, steps, vals, 50, 7);	/* b: steps 0..49 only */
	fx_filler(fx, filler);
	fx_interleaved(fx, id, "tmp", f_layer);	/* series "tmp": ignored */
	fx_exec(fx, "UPDATE series SET kind = 'metric' WHERE name = 'tmp'");
	fx_filler(fx, filler);
	for (i = 0; i < 100; i++)
		vals[i] = 2 * f_layer((int64_t)i);
	fx_points(fx, c, steps, vals, 100, 100);
	fx_filler(fx, filler);
	return id;
}

static void
test_heatmap(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	int64_t			 id;
	double			 want;
	json_t			*j, *layers, *row, *v;
	size_t			 i, k;

	fx_heat_run(fx, "r", 0);

	query_heatmap(fx->q, "r", NULL, "99", "10", &r);
	j = reply_ok(&r);
	layers = json_object_get(j, "layers");
	assert_int_equal(json_array_size(layers), 3);
	assert_string_equal(json_string_value(json_array_get(layers, 0)), "c");
	assert_string_equal(json_string_value(json_array_get(layers, 1)), "a");
	assert_string_equal(json_string_value(json_array_get(layers, 2)), "b");
	assert_int_equal(json_array_size(json_object_get(j, "steps")), 10);
	for (k = 0; k < 10; k++)
		assert_int_equal(json_integer_value(json_array_get(
		    json_object_get(j, "steps"), k)), 10 * (int64_t)k);
	assert_int_equal(json_integer_value(json_object_get(j, "bucket_size")),
	    10);
	assert_int_equal(json_integer_value(json_object_get(j, "from")), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "to")), 99);
	assert_int_equal(json_array_size(json_object_get(j, "values")), 3);
	for (k = 0; k < 10; k++) {
		want = 0;
		for (i = k * 10; i < k * 10 + 10; i++)
			if (f_layer((int64_t)i) > want)
				want = f_layer((int64_t)i);
		row = json_array_get(json_object_get(j, "values"), 1);
		assert_int_equal(json_array_size(row), 10);
		assert_true(json_number_value(json_array_get(row, k)) == want);
		row = json_array_get(json_object_get(j, "values"), 0);
		assert_true(json_number_value(json_array_get(row, k)) ==
		    2 * want);
		row = json_array_get(json_object_get(j, "values"), 2);
		v = json_array_get(row, k);
		switch (k) {
		case 0:
		case 4:
			assert_true(json_number_value(v) == want);
			break;
		case 1:
			assert_string_equal(json_string_value(v), "Infinity");
			break;
		case 2:
			assert_string_equal(json_string_value(v), "NaN");
			break;
		case 3:
			assert_string_equal(json_string_value(v), "-Infinity");
			break;
		default:
			assert_true(json_is_null(v));	/* b has no data */
		}
	}
	json_decref(j);

	/* Defaults: the run's steps 0..149 in 500 buckets -> 150 of 1. */
	query_heatmap(fx->q, "r", NULL, NULL, NULL, &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "steps")), 150);
	row = json_array_get(json_object_get(j, "values"), 1);
	assert_int_equal(json_array_size(row), 150);
	assert_true(json_number_value(json_array_get(row, 42)) ==
	    f_layer(42));
	assert_true(json_is_null(json_array_get(row, 100)));
	json_decref(j);

	/* Uneven buckets: 7..30 in 5 buckets of 5, the last one short. */
	query_heatmap(fx->q, "r", "7", "30", "5", &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "steps")), 5);
	assert_int_equal(json_integer_value(json_array_get(
	    json_object_get(j, "steps"), 4)), 27);
	row = json_array_get(json_object_get(j, "values"), 1);
	for (k = 0; k < 5; k++) {
		want = 0;
		for (i = 7 + k * 5; i < 7 + k * 5 + 5 && i <= 30; i++)
			if (f_layer((int64_t)i) > want)
				want = f_layer((int64_t)i);
		assert_true(json_number_value(json_array_get(row, k)) == want);
	}
	json_decref(j);

	query_heatmap(fx->q, "r", NULL, NULL, "0", &r);
	reply_err(&r, 400, "bad_request", "buckets");
	query_heatmap(fx->q, "r", NULL, NULL, "10001", &r);
	reply_err(&r, 400, "bad_request", "buckets");
	query_heatmap(fx->q, "r", "5", "4", NULL, &r);
	reply_err(&r, 400, "bad_request", NULL);
	query_heatmap(fx->q, "nope", NULL, NULL, NULL, &r);
	reply_err(&r, 404, "not_found", NULL);

	/* A run without steps: its layers, no buckets. */
	id = fx_run(fx, "empty", NULL, "running", 2);
	fx_series(fx, id, "layer_grad", "x", -1);
	query_heatmap(fx->q, "empty", NULL, NULL, NULL, &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "layers")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "steps")), 0);
	assert_int_equal(json_array_size(json_array_get(json_object_get(j,
	    "values"), 0)), 0);
	json_decref(j);
}

/*
 * The same layers with their chunk ids spread apart (the per-layer
 * index path) and side by side (the table walk) give the same answer.
 */
static void
test_heatmap_sparse(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	int64_t			 other, filler;
	json_t			*dense, *sparse;
	size_t			 i, k;
	static const char *const params[][3] = {
		{ NULL, "99", "10" }, { NULL, NULL, NULL }, { "7", "30", "5" },
		{ "0", "0", "3" }, { "40", "1000", "7" }, { "3", "97", "1" },
	};

	other = fx_run(fx, "other", NULL, "running", 0);
	filler = fx_series(fx, other, "metric", "filler", -1);
	fx_heat_run(fx, "dense", 0);
	fx_heat_run(fx, "sparse", filler);
	for (i = 0; i < sizeof params / sizeof params[0]; i++) {
		query_heatmap(fx->q, "dense", params[i][0], params[i][1],
		    params[i][2], &r);
		dense = reply_ok(&r);
		query_heatmap(fx->q, "sparse", params[i][0], params[i][1],
		    params[i][2], &r);
		sparse = reply_ok(&r);
		assert_int_equal(json_array_size(json_object_get(sparse,
		    "layers")), 3);
		assert_true(json_array_size(json_object_get(sparse, "steps")) >
		    0);
		/* Every layer has step 0 (so chunks starting at to count). */
		if (params[i][1] != NULL && strcmp(params[i][1], "0") == 0)
			for (k = 0; k < 3; k++)
				assert_true(json_is_number(json_array_get(
				    json_array_get(json_object_get(sparse,
				    "values"), k), 0)));
		if (!json_equal(dense, sparse)) {
			char	*a = json_dumps(dense, JSON_COMPACT);
			char	*b = json_dumps(sparse, JSON_COMPACT);

			fail_msg("case %zu differs:\n%s\n%s", i, a, b);
		}
		json_decref(dense);
		json_decref(sparse);
	}
}

/* Layer l's value at step s of the big heatmap; odd layers skip s % 3 == 0. */
static double
f_big_layer(int64_t l, int64_t s)
{
	if (s == 333 + l)
		return NAN;
	if (s == 500 + 7 * l)
		return INFINITY;
	if (s == 900 && l == 4)
		return -INFINITY;
	return (double)((s * (l + 3) * 7919) % 1009) / 100.0;
}

/* The expected cell of layer l over steps [a, b]: as cell_add ranks. */
static void
check_cell(json_t *v, int64_t l, int64_t a, int64_t b)
{
	double	x, mx = 0;
	int	rank = 0, r;
	int64_t	s;

	for (s = a; s <= b; s++) {
		if ((l % 2) == 1 && s % 3 == 0)
			continue;
		x = f_big_layer(l, s);
		r = isnan(x) ? 4 : x == INFINITY ? 3 : x == -INFINITY ? 2 : 1;
		if (r == 1 && (rank < 1 || (rank == 1 && x > mx))) {
			mx = x;
			rank = 1;
		} else if (r > rank)
			rank = r;
	}
	switch (rank) {
	case 0:
		assert_true(json_is_null(v));
		break;
	case 1:
		assert_true(json_is_number(v));
		assert_true(json_number_value(v) == mx);
		break;
	default:
		assert_string_equal(json_string_value(v), rank == 4 ? "NaN" :
		    rank == 3 ? "Infinity" : "-Infinity");
	}
}

/*
 * Check the big heatmap j: buckets of w steps from step from (n of them,
 * the last ending at to), every cell against brute force.
 */
static void
check_big(json_t *j, int64_t from, int64_t w, size_t n, int64_t to)
{
	json_t	*row;
	size_t	 b;
	int64_t	 l, a;

	assert_int_equal(json_integer_value(json_object_get(j, "from")), from);
	assert_int_equal(json_integer_value(json_object_get(j, "bucket_size")),
	    w);
	assert_int_equal(json_array_size(json_object_get(j, "steps")), n);
	for (l = 0; l < 10; l++) {
		row = json_array_get(json_object_get(j, "values"), (size_t)l);
		assert_int_equal(json_array_size(row), n);
		for (b = 0; b < n; b++) {
			a = from + (int64_t)b * w;
			check_cell(json_array_get(row, b), l, a,
			    a + w - 1 > to ? to : a + w - 1);
		}
	}
}

/* After damage (sql), the big heatmap from 256 fails, naming a chunk. */
static void
heatmap_damaged(struct fx *fx, const char *sql)
{
	struct query_reply	r;

	fx_exec(fx, sql);
	query_heatmap(fx->q, "big", "256", "999", "4", &r);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "damaged chunk at steps"));
	free(r.body);
}

/*
 * n chunk rows of one point each for series sid, the next ids, each with
 * damaged block summaries in chunk_blocks.
 */
static void
fx_foreign(struct fx *fx, int64_t sid, int n)
{
	char	*sql;

	xasprintf(&sql, "WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT "
	    "x + 1 FROM k WHERE x < %d) INSERT INTO chunks (series_id, "
	    "first_step, last_step, n, data) SELECT %lld, x, x, 1, x'00' "
	    "FROM k; INSERT INTO chunk_blocks (chunk_id, last_step, blocks) "
	    "SELECT id, last_step, x'0100' FROM chunks WHERE series_id = %lld "
	    "AND id NOT IN (SELECT chunk_id FROM chunk_blocks)", n,
	    (long long)sid, (long long)sid);
	fx_exec(fx, sql);
	free(sql);
}

/* One such chunk row with the given id: later rows' ids follow it. */
static void
fx_foreign_at(struct fx *fx, int64_t sid, int64_t id)
{
	char	*sql;

	xasprintf(&sql, "INSERT INTO chunks (id, series_id, first_step, "
	    "last_step, n, data) VALUES (%lld, %lld, 0, 0, 1, x'00')",
	    (long long)id, (long long)sid);
	fx_exec(fx, sql);
	free(sql);
}

/*
 * Ten layers of 1000 steps written step-major in chunks of 30, as the
 * writer does; odd layers have packed steps.  Every cell against brute
 * force, with buckets inside chunks, across them, and mostly holding
 * whole chunks (summaries).
 */
static void
test_heatmap_big(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	int64_t			 id, sids[10], steps[30], s0, s, l, other;
	double			 vals[30];
	json_t			*j;
	size_t			 n, k;
	char			 name[16];
	static const char *const buckets[] = { "50", "1000", "10", "7", "3" };

	id = fx_run(fx, "big", NULL, "running", 1);
	fx_run_steps(fx, id, 0, 999, 0);
	for (l = 0; l < 10; l++) {
		snprintf(name, sizeof name, "L%lld", (long long)l);
		sids[l] = fx_series(fx, id, "layer_grad", name, l);
	}
	other = fx_series(fx, fx_run(fx, "other", NULL, "running", 1),
	    "layer_grad", "X", 0);
	fx_exec(fx, "BEGIN");
	for (s0 = 0; s0 < 1000; s0 += 30) {
		/*
		 * Another run's chunks between these: runs of 100 ids (the
		 * heatmap's walk of chunk_blocks seeks past them; their
		 * summaries, damaged, must not be read), and from step 300
		 * on ids past 2^33 (a sort over a wide span of ids).
		 */
		if (s0 % 90 == 0)
			fx_foreign(fx, other, 100);
		if (s0 == 300)
			fx_foreign_at(fx, other, (int64_t)1 << 33);
		for (l = 0; l < 10; l++) {
			for (n = 0, s = s0; s < s0 + 30 && s < 1000; s++) {
				if ((l % 2) == 1 && s % 3 == 0)
					continue;
				steps[n] = s;
				vals[n++] = f_big_layer(l, s);
			}
			fx_chunk(fx, sids[l], steps, vals, n, l % 2);
		}
	}
	fx_exec(fx, "COMMIT");

	for (k = 0; k < sizeof buckets / sizeof buckets[0]; k++) {
		int64_t	w;

		query_heatmap(fx->q, "big", NULL, NULL, buckets[k], &r);
		j = reply_ok(&r);
		w = json_integer_value(json_object_get(j, "bucket_size"));
		check_big(j, 0, w, (size_t)((1000 + w - 1) / w), 999);
		json_decref(j);
	}
	/* A cut range: chunks straddle from and to. */
	query_heatmap(fx->q, "big", "95", "904", "37", &r);
	j = reply_ok(&r);
	check_big(j, 95, 22, 37, 904);
	json_decref(j);
	/*
	 * Wide buckets are whole blocks of 128 steps: the range starts at
	 * the block of from (300 -> 256) and a bucket is 128 steps.
	 */
	query_heatmap(fx->q, "big", "300", "950", "4", &r);
	j = reply_ok(&r);
	check_big(j, 256, 128, 6, 950);
	json_decref(j);
	/*
	 * Damaged block summaries fail the heatmap that reads them, in
	 * chunk_blocks (a last step that is not the chunk's too) and in
	 * the chunk's row.
	 */
	fx_exec(fx, "CREATE TEMP TABLE saved AS SELECT * FROM chunk_blocks");
	heatmap_damaged(fx, "UPDATE chunk_blocks SET blocks = x'0100' WHERE "
	    "chunk_id = (SELECT min(id) FROM chunks WHERE id IN (SELECT "
	    "chunk_id FROM chunk_blocks) AND first_step >= 256)");
	fx_exec(fx, "UPDATE chunk_blocks SET blocks = (SELECT blocks FROM "
	    "saved WHERE saved.chunk_id = chunk_blocks.chunk_id)");
	query_heatmap(fx->q, "big", "256", "999", "4", &r);
	json_decref(reply_ok(&r));
	heatmap_damaged(fx, "UPDATE chunk_blocks SET last_step = last_step + "
	    "200 WHERE chunk_id = (SELECT min(id) FROM chunks WHERE id IN "
	    "(SELECT chunk_id FROM chunk_blocks) AND first_step >= 256)");
	fx_exec(fx, "UPDATE chunk_blocks SET last_step = (SELECT last_step "
	    "FROM saved WHERE saved.chunk_id = chunk_blocks.chunk_id)");
	heatmap_damaged(fx, "UPDATE chunks SET blocks = x'0100' WHERE id = "
	    "(SELECT min(id) FROM chunks WHERE blocks IS NOT NULL AND "
	    "first_step < 384 AND last_step >= 384)");
}

/* ---- alerts -------------------------------------------------------------- */

static void
test_alerts(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	json_t			*j, *al;
	int64_t			 a, b;

	a = fx_run(fx, "a", NULL, "running", 1);
	b = fx_run(fx, "b", NULL, "running", 1);
	fx_alert(fx, a, "nonfinite", "firing", 1000.5, INFINITY, "loss", NULL);
	fx_alert(fx, a, "grad_spike", "resolved", 2000, 3, "grad_norm", NULL);
	fx_alert(fx, b, "stall", "firing", 1500, 1, NULL, "{\"x\":[1,2]}");

	query_alerts(fx->q, NULL, NULL, NULL, &r);
	j = reply_ok(&r);
	al = json_object_get(j, "alerts");
	assert_int_equal(json_array_size(al), 3);
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(al, 0), "id")), 2);
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(al, 1), "id")), 3);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(al, 1), "run")), "b");
	assert_int_equal(json_array_size(json_object_get(json_object_get(
	    json_array_get(al, 1), "detail"), "x")), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(al, 2), "value")), "Infinity");
	json_decref(j);

	query_alerts(fx->q, "a", "firing", NULL, &r);
	j = reply_ok(&r);
	al = json_object_get(j, "alerts");
	assert_int_equal(json_array_size(al), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(al, 0), "kind")), "nonfinite");
	json_decref(j);

	query_alerts(fx->q, NULL, "resolved", NULL, &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "alerts")), 1);
	json_decref(j);

	query_alerts(fx->q, NULL, NULL, "1500", &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "alerts")), 2);
	json_decref(j);
	query_alerts(fx->q, NULL, NULL, "1000.25", &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "alerts")), 3);
	json_decref(j);
	query_alerts(fx->q, "zzz", NULL, NULL, &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "alerts")), 0);
	json_decref(j);

	query_alerts(fx->q, NULL, "open", NULL, &r);
	reply_err(&r, 400, "bad_request", "open");
	query_alerts(fx->q, NULL, NULL, "yesterday", &r);
	reply_err(&r, 400, "bad_request", "yesterday");
	query_alerts(fx->q, NULL, NULL, "nan", &r);
	reply_err(&r, 400, "bad_request", NULL);
	query_alerts(fx->q, "a b", NULL, NULL, &r);
	reply_err(&r, 400, "bad_request", NULL);
}

/* ---- export -------------------------------------------------------------- */

/* The whole export, read max bytes at a time; checks every call. */
static char *
export_all(const char *path, const char *run, const char *format, size_t max,
    size_t *ncalls)
{
	struct query_export	*x;
	struct query_reply	 r = { 0, NULL };
	char			*buf, *out = NULL;
	size_t			 len = 0, cap = 0;
	ssize_t			 n;

	x = query_export_open(path, run, format, &r);
	if (x == NULL)
		fail_msg("export_open: %u %s", r.status, r.body);
	assert_null(r.body);
	buf = malloc(max);
	*ncalls = 0;
	while ((n = query_export_read(x, buf, max)) > 0) {
		assert_true((size_t)n <= max);
		(*ncalls)++;
		if (len + (size_t)n + 1 > cap) {
			cap = (len + (size_t)n + 1) * 2;
			out = realloc(out, cap);
		}
		memcpy(out + len, buf, (size_t)n);
		len += (size_t)n;
		/* Whole lines whenever a line fits in max. */
		if (max >= 64)
			assert_true(buf[n - 1] == '\n');
	}
	assert_int_equal(n, 0);
	assert_int_equal(query_export_read(x, buf, max), 0);
	query_export_close(x);
	free(buf);
	if (out == NULL)
		out = calloc(1, 1);
	out[len] = '\0';
	return out;
}

static double
f_small(int64_t s)
{
	return (double)s + 0.5;
}

static void
fx_small_run(struct fx *fx)
{
	int64_t	id, sid, steps[4] = { 0, 1, 2, 3 };
	double	vals[4] = { 0.1, NAN, INFINITY, -INFINITY };
	size_t	i;

	id = fx_run(fx, "small", NULL, "running", 1);
	sid = fx_series(fx, id, "loss", "loss", -1);
	fx_chunk(fx, sid, steps, vals, 4, 0);
	sid = fx_series(fx, id, "layer_grad", "a,\"b\"\nc", -1);
	for (i = 0; i < 2; i++) {
		steps[i] = 10 + 2 * (int64_t)i + 1;
		vals[i] = f_small(steps[i]);
	}
	fx_chunk(fx, sid, steps, vals, 2, 1);	/* 11, 13 */
	for (i = 0; i < 3; i++) {
		steps[i] = 10 + 2 * (int64_t)i;
		vals[i] = f_small(steps[i]);
	}
	fx_chunk(fx, sid, steps, vals, 3, 1);	/* 10, 12, 14 */
	steps[0] = 20;
	vals[0] = 1e300;
	fx_chunk(fx, sid, steps, vals, 1, 0);
	sid = fx_series(fx, id, "metric", "acc\\", -1);
	steps[0] = 7;
	vals[0] = 0.5;
	fx_chunk(fx, sid, steps, vals, 1, 0);
}

static void
test_export_small(void **state)
{
	struct fx		*fx = *state;
	struct query_export	*x;
	struct query_reply	 r;
	char			*csv, *jsonl, *pieces;
	size_t			 calls;
	static const char	 want_csv[] =
	    "series,kind,step,value\n"
	    "loss,loss,0,0.10000000000000001\n"
	    "loss,loss,1,NaN\n"
	    "loss,loss,2,Infinity\n"
	    "loss,loss,3,-Infinity\n"
	    "\"a,\"\"b\"\"\nc\",layer_grad,10,10.5\n"
	    "\"a,\"\"b\"\"\nc\",layer_grad,11,11.5\n"
	    "\"a,\"\"b\"\"\nc\",layer_grad,12,12.5\n"
	    "\"a,\"\"b\"\"\nc\",layer_grad,13,13.5\n"
	    "\"a,\"\"b\"\"\nc\",layer_grad,14,14.5\n"
	    "\"a,\"\"b\"\"\nc\",layer_grad,20,1.0000000000000001e+300\n"
	    "acc\\,metric,7,0.5\n";
	static const char	 want_jsonl[] =
	    "{\"series\":\"loss\",\"kind\":\"loss\",\"step\":0,"
	    "\"value\":0.10000000000000001}\n"
	    "{\"series\":\"loss\",\"kind\":\"loss\",\"step\":1,"
	    "\"value\":\"NaN\"}\n"
	    "{\"series\":\"loss\",\"kind\":\"loss\",\"step\":2,"
	    "\"value\":\"Infinity\"}\n"
	    "{\"series\":\"loss\",\"kind\":\"loss\",\"step\":3,"
	    "\"value\":\"-Infinity\"}\n"
	    "{\"series\":\"a,\\\"b\\\"\\u000ac\",\"kind\":\"layer_grad\","
	    "\"step\":10,\"value\":10.5}\n"
	    "{\"series\":\"a,\\\"b\\\"\\u000ac\",\"kind\":\"layer_grad\","
	    "\"step\":11,\"value\":11.5}\n"
	    "{\"series\":\"a,\\\"b\\\"\\u000ac\",\"kind\":\"layer_grad\","
	    "\"step\":12,\"value\":12.5}\n"
	    "{\"series\":\"a,\\\"b\\\"\\u000ac\",\"kind\":\"layer_grad\","
	    "\"step\":13,\"value\":13.5}\n"
	    "{\"series\":\"a,\\\"b\\\"\\u000ac\",\"kind\":\"layer_grad\","
	    "\"step\":14,\"value\":14.5}\n"
	    "{\"series\":\"a,\\\"b\\\"\\u000ac\",\"kind\":\"layer_grad\","
	    "\"step\":20,\"value\":1.0000000000000001e+300}\n"
	    "{\"series\":\"acc\\\\\",\"kind\":\"metric\",\"step\":7,"
	    "\"value\":0.5}\n";

	fx_small_run(fx);
	csv = export_all(fx->path, "small", "csv", 4096, &calls);
	assert_string_equal(csv, want_csv);
	assert_int_equal(calls, 1);
	free(csv);
	csv = export_all(fx->path, "small", NULL, 40, &calls);	/* default csv */
	assert_string_equal(csv, want_csv);
	assert_true(calls > 5);
	free(csv);
	jsonl = export_all(fx->path, "small", "jsonl", 4096, &calls);
	assert_string_equal(jsonl, want_jsonl);
	free(jsonl);
	/* Lines longer than the buffer come in pieces, nothing lost. */
	pieces = export_all(fx->path, "small", "jsonl", 7, &calls);
	assert_string_equal(pieces, want_jsonl);
	free(pieces);

	x = query_export_open(fx->path, "small", "jsonl", &r);
	assert_non_null(x);
	assert_string_equal(query_export_content_type(x),
	    "application/x-ndjson");
	query_export_close(x);
	x = query_export_open(fx->path, "small", "csv", &r);
	assert_non_null(x);
	assert_string_equal(query_export_content_type(x),
	    "text/csv; charset=utf-8");
	query_export_close(x);

	assert_null(query_export_open(fx->path, "nope", "csv", &r));
	reply_err(&r, 404, "not_found", "nope");
	assert_null(query_export_open(fx->path, "small", "xml", &r));
	reply_err(&r, 400, "bad_request", "xml");
	assert_null(query_export_open(fx->path, "sm all", "csv", &r));
	reply_err(&r, 400, "bad_request", NULL);
}

static double
f_big(int64_t s)
{
	return (double)s * 0.5 - 3;
}

static void
test_export_large(void **state)
{
	struct fx		*fx = *state;
	struct query_export	*x;
	struct query_reply	 r;
	int64_t			 id, sid, *steps, last;
	double			*vals;
	char			*csv, *line, *save, name[16];
	size_t			 i, k, calls, lines = 0, n = 25000;
	long			 series;

	steps = calloc(n, sizeof *steps);
	vals = calloc(n, sizeof *vals);
	id = fx_run(fx, "big", NULL, "running", 1);
	fx_exec(fx, "BEGIN");
	for (k = 0; k < 2; k++) {
		snprintf(name, sizeof name, "s%zu", k);
		sid = fx_series(fx, id, "layer_grad", name, -1);
		/* Series 0: plain chunks of 50; series 1: odd/even halves. */
		for (i = 0; i < n; i++) {
			steps[i] = k == 0 ? (int64_t)i :
			    (int64_t)(i < n / 2 ? 2 * i : 2 * (i - n / 2) + 1);
			vals[i] = f_big(steps[i]);
		}
		fx_points(fx, sid, steps, vals, k == 0 ? n : n / 2, 50);
		if (k == 1)
			fx_points(fx, sid, steps + n / 2, vals + n / 2, n / 2,
			    45);
	}
	fx_exec(fx, "COMMIT");
	free(steps);
	free(vals);

	csv = export_all(fx->path, "big", "csv", 100, &calls);
	assert_true(calls > 1000);
	last = -1;
	series = -1;
	for (line = strtok_r(csv, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		long	s;
		long long st;
		double	v;

		if (lines++ == 0) {
			assert_string_equal(line, "series,kind,step,value");
			continue;
		}
		assert_int_equal(sscanf(line, "s%ld,layer_grad,%lld,%lf", &s,
		    &st, &v), 3);
		if (s != series) {
			assert_int_equal(s, series + 1);
			series = s;
			last = -1;
		}
		assert_int_equal(st, last + 1);	/* merged in step order */
		assert_true(v == f_big(st));
		last = st;
	}
	assert_int_equal(lines, 2 * n + 1);
	assert_int_equal(series, 1);
	free(csv);

	/* A writer commit after open does not show: one snapshot. */
	x = query_export_open(fx->path, "big", "jsonl", &r);
	assert_non_null(x);
	fx_exec(fx, "DELETE FROM chunks");
	{
		char	buf[100];
		ssize_t	m;

		lines = 0;
		while ((m = query_export_read(x, buf, sizeof buf)) > 0)
			for (i = 0; i < (size_t)m; i++)
				lines += buf[i] == '\n';
		assert_int_equal(m, 0);
	}
	assert_int_equal(lines, 2 * n);
	query_export_close(x);
}

/* A chunk whose blob breaks the layout: a 500, not garbage. */
static void
test_corrupt_chunk(void **state)
{
	struct fx		*fx = *state;
	struct query_reply	 r;
	struct query_export	*x;
	int64_t			 id, sid, steps[3] = { 5, 6, 7 };
	double			 vals[3] = { 1, 2, 3 };
	char			 buf[256];

	id = fx_run(fx, "r", NULL, "running", 1);
	sid = fx_series(fx, id, "loss", "loss", -1);
	fx_chunk(fx, sid, steps, vals, 3, 0);
	fx_exec(fx, "UPDATE chunks SET n = 4, last_step = 8");
	query_points(fx->q, "r", "loss", NULL, NULL, NULL, &r);
	reply_err(&r, 500, "internal", "chunk");
	x = query_export_open(fx->path, "r", "csv", &r);
	assert_non_null(x);
	assert_int_equal(query_export_read(x, buf, sizeof buf), 23);
	assert_int_equal(query_export_read(x, buf, sizeof buf), -1);
	query_export_close(x);
}

/* ---- with the real writer ------------------------------------------------ */

static double
f_store(int64_t s)
{
	if (s == 150)
		return NAN;
	return 1.0 + (double)((s * 13) % 17);
}

/* Write steps [from, to) of loss, l1 and l2 through store_apply. */
static void
store_steps(struct store *st, int64_t from, int64_t to, double bias)
{
	struct batch	*b;
	char		*cause = NULL;
	int64_t		 s, rid;

	b = batch_new("sr");
	b->project = xstrdup("p");
	b->config_json = xstrdup("{\"lr\":0.5}");
	for (s = from; s < to; s++) {
		b->steps = xreallocarray(b->steps, b->nsteps + 1,
		    sizeof *b->steps);
		b->steps[b->nsteps++] = s;
		batch_series_push(b, batch_series_get(b, SERIES_LOSS, "loss"),
		    s, f_store(s) + bias);
		batch_series_push(b, batch_series_get(b, SERIES_LAYER_GRAD,
		    "l1"), s, f_store(s) * 2);
		batch_series_push(b, batch_series_get(b, SERIES_LAYER_GRAD,
		    "l2"), s, s == 70 ? INFINITY : f_store(s) * 3);
	}
	if (store_begin(st, &cause) == -1 ||
	    store_apply(st, b, 1000.0 + (double)from, &rid, &cause) == -1 ||
	    store_commit(st, &cause) == -1)
		fail_msg("store: %s", cause);
	batch_free(b);
}

/*
 * What store.c writes, query.c reads: the layout contract end to end,
 * including a resend that replaces values inside older chunks.
 */
static void
test_store_roundtrip(void **state)
{
	struct fx		*fx = *state;
	struct store		*st;
	struct query		*q;
	struct query_reply	 r;
	char			 path[128], *cause = NULL, *csv;
	json_t			*j, *s, *row;
	size_t			 i, calls, lines;
	int64_t			 step;
	double			 want;

	snprintf(path, sizeof path, "%s/store.db", fx->dir);
	st = store_open(path, &cause);
	if (st == NULL)
		fail_msg("store_open: %s", cause);
	for (step = 0; step < 200; step += 20)
		store_steps(st, step, step + 20, 0);
	store_steps(st, 45, 55, 100);	/* resend: replaces 45..54 */
	store_steps(st, 199, 201, 0);	/* one old step, one new */

	q = query_open(path, &cause);
	if (q == NULL)
		fail_msg("query_open: %s", cause);
	query_run(q, "sr", &r);
	j = reply_ok(&r);
	assert_string_equal(json_string_value(json_object_get(j, "project")),
	    "p");
	assert_true(json_real_value(json_object_get(json_object_get(j,
	    "config"), "lr")) == 0.5);
	assert_int_equal(json_integer_value(json_object_get(j, "last_step")),
	    200);
	assert_int_equal(json_array_size(json_object_get(j, "series")), 3);
	s = json_array_get(json_object_get(j, "series"), 0);
	assert_string_equal(json_string_value(json_object_get(s, "name")),
	    "loss");
	assert_int_equal(json_integer_value(json_object_get(s, "points")),
	    201);
	json_decref(j);

	query_points(q, "sr", "loss", NULL, NULL, NULL, &r);
	j = reply_ok(&r);
	s = points_of(j, "loss");
	assert_int_equal(json_array_size(json_object_get(s, "steps")), 201);
	for (i = 0; i < 201; i++) {
		step = (int64_t)i;
		assert_int_equal(step_at(s, i), step);
		want = f_store(step) + (step >= 45 && step < 55 ? 100 : 0);
		if (step == 150)
			assert_true(isnan(value_at(s, i)));
		else
			assert_true(value_at(s, i) == want);
	}
	json_decref(j);

	query_points(q, "sr", "loss", "0", "199", "20", &r);
	j = reply_ok(&r);
	s = points_of(j, "loss");
	assert_true(json_is_true(json_object_get(s, "downsampled")));
	/* Bucket 40..59 keeps its max, a resent value. */
	want = 0;
	for (step = 45; step < 55; step++)
		if (f_store(step) + 100 > want)
			want = f_store(step) + 100;
	for (i = 0; i < json_array_size(json_object_get(s, "steps")); i++)
		if (step_at(s, i) >= 40 && step_at(s, i) < 60 &&
		    value_at(s, i) == want)
			want = -1;
	assert_true(want == -1);
	assert_true(isnan(value_at(s, (size_t)find_step(s, 150))));
	json_decref(j);

	query_heatmap(q, "sr", "0", "199", "10", &r);
	j = reply_ok(&r);
	assert_int_equal(json_array_size(json_object_get(j, "layers")), 2);
	row = json_array_get(json_object_get(j, "values"), 1);	/* l2 */
	assert_string_equal(json_string_value(json_array_get(row, 3)),
	    "Infinity");
	for (i = 0; i < 10; i++) {
		if (i == 3)
			continue;
		want = 0;
		for (step = (int64_t)i * 20; step < (int64_t)i * 20 + 20; step++)
			if (step != 150 && f_store(step) * 3 > want)
				want = f_store(step) * 3;
		if (i == 7)	/* l2 holds NaN * 3 at 150: NaN wins */
			assert_string_equal(json_string_value(json_array_get(
			    row, i)), "NaN");
		else
			assert_true(json_number_value(json_array_get(row, i)) ==
			    want);
	}
	json_decref(j);
	query_close(q);

	csv = export_all(path, "sr", "csv", 100, &calls);
	lines = 0;
	for (i = 0; csv[i] != '\0'; i++)
		lines += csv[i] == '\n';
	assert_int_equal(lines, 1 + 3 * 201);
	snprintf(path, sizeof path, "\nloss,loss,47,%.17g\nloss,loss,48,",
	    f_store(47) + 100);
	assert_non_null(strstr(csv, path));
	assert_non_null(strstr(csv, "\nl2,layer_grad,70,Infinity\n"));
	assert_non_null(strstr(csv, "\nloss,loss,150,NaN\n"));
	free(csv);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rowjson_numbers,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rowjson_run_alert,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_runs_list,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_runs_list_config,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_run_detail,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_points_plain,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_points_interleaved,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_points_downsample,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_points_extremes,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_points_all_nan,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_heatmap,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_heatmap_sparse,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_heatmap_big,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_alerts,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_export_small,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_export_large,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_chunk,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_store_roundtrip,
		    fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

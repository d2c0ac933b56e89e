/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of store.c, mostly on ":memory:" and on temporary files
 * for reopening and versioning.  The tests read back what the store
 * wrote with plain SQL, decoding the chunk blobs themselves, and check
 * the schema's invariants (no step in two chunks, summaries, counters)
 * against a model of what was sent, including a randomized run of
 * resends, failed batches and rollbacks.  Appends reach the chunks at
 * store_commit(), so the tests read the tables after a commit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "store.h"
#include "store_int.h"
#include "remote_target.h"
#include "store_remote.h"
#include "xmalloc.h"

/* The tests read the writer's connection directly (white box). */
#define store_db(st)	((st)->db)

extern const char *const schema_sql[];
extern const size_t schema_sql_count;

#define MAXSTEP		20000

/* What a series should hold: a value per present step. */
struct model {
	unsigned char	present[MAXSTEP];
	double		vals[MAXSTEP];
};

static double
nan_payload(void)
{
	uint64_t	bits = 0x7ff8000000000123ULL;
	double		v;

	memcpy(&v, &bits, sizeof v);
	return v;
}

static int
same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

static struct store *
open_mem(void)
{
	struct store	*st;
	char		*cause = NULL;

	st = store_open(":memory:", &cause);
	if (st == NULL)
		fail_msg("store_open: %s", cause);
	return st;
}

/* A fixture: a temporary directory and a database path inside it. */
struct tmpdb {
	char	dir[64];
	char	path[96];
};

static int
tmpdb_setup(void **state)
{
	struct tmpdb	*t = xcalloc(1, sizeof *t);

	snprintf(t->dir, sizeof t->dir, "%s", "/tmp/test_store.XXXXXX");
	if (mkdtemp(t->dir) == NULL) {
		free(t);
		return -1;
	}
	snprintf(t->path, sizeof t->path, "%s/gw.db", t->dir);
	*state = t;
	return 0;
}

/* Runs after a failed test too, so nothing is left behind. */
static int
tmpdb_teardown(void **state)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	struct tmpdb		*t = *state;
	char			*p;
	size_t			 i;

	for (i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		xasprintf(&p, "%s%s", t->path, sfx[i]);
		unlink(p);
		free(p);
	}
	rmdir(t->dir);
	free(t);
	return 0;
}

static int64_t
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*s;
	int64_t		 v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void
add_point(struct batch *b, enum series_kind kind, const char *name,
    int64_t step, double v)
{
	batch_series_push(b, batch_series_get(b, kind, name), step, v);
}

static void
add_step(struct batch *b, int64_t step)
{
	b->steps = xreallocarray(b->steps, b->nsteps + 1, sizeof *b->steps);
	b->steps[b->nsteps++] = step;
}

/* Apply b in its own transaction, then free it.  Returns the run id. */
static int64_t
apply1(struct store *st, struct batch *b, double now)
{
	char	*cause = NULL;
	int64_t	 rid = -1;

	assert_int_equal(store_begin(st, &cause), 0);
	if (store_apply(st, b, now, &rid, &cause) != 0)
		fail_msg("store_apply: %s", cause);
	if (store_commit(st, &cause) != 0)
		fail_msg("store_commit: %s", cause);
	batch_free(b);
	return rid;
}

/* A batch of one series with the points steps[i] -> vals[i]. */
static struct batch *
batch1(const char *run, enum series_kind kind, const char *name,
    const int64_t *steps, const double *vals, size_t n)
{
	struct batch	*b = batch_new(run);
	size_t		 i, si = batch_series_get(b, kind, name);

	for (i = 0; i < n; i++) {
		batch_series_push(b, si, steps[i], vals[i]);
		add_step(b, steps[i]);
	}
	return b;
}

/* Send steps [from, to) of series name with value f(step) = step * k. */
static void
send_range(struct store *st, struct model *m, const char *run,
    enum series_kind kind, const char *name, int64_t from, int64_t to,
    double k)
{
	struct batch	*b = batch_new(run);
	size_t		 si = batch_series_get(b, kind, name);
	int64_t		 s;

	for (s = from; s < to; s++) {
		batch_series_push(b, si, s, (double)s * k);
		add_step(b, s);
		if (m != NULL) {
			m->present[s] = 1;
			m->vals[s] = (double)s * k;
		}
	}
	apply1(st, b, 1000.0);
}

static int64_t
series_id(sqlite3 *db, const char *run, const char *kind, const char *name)
{
	sqlite3_stmt	*s;
	int64_t		 id = -1;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT s.id FROM series s "
	    "JOIN runs r ON r.id = s.run_id WHERE r.key = ?1 AND s.kind = ?2 "
	    "AND s.name = ?3", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, run, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		id = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return id;
}

static int64_t
chunk_count(sqlite3 *db, int64_t sid)
{
	sqlite3_stmt	*s;
	int64_t		 n;

	assert_int_equal(sqlite3_prepare_v2(db,
	    "SELECT count(*) FROM chunks WHERE series_id = ?1", -1, &s, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(s, 1, sid);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/*
 * The chunk_blocks columns of a chunk row (9: last_step, 10: blocks)
 * hold exactly the block summaries of its points, with extremes unless
 * its series (kind in 11) is a layer's, or nothing when they are too
 * sparse to have them (schema 0007).
 */
static void
check_blocks(sqlite3_stmt *s, const int64_t *steps, const double *vals,
    size_t n)
{
	struct chunk_buf	want;
	int			kind;

	kind = series_kind_parse((const char *)sqlite3_column_text(s, 11));
	assert_true(kind != -1);
	chunk_buf_init(&want);
	if (chunk_blocks_encode(&want, steps, vals, n,
	    !series_kind_is_tensor((enum series_kind)kind)) == 0)
		assert_int_equal(sqlite3_column_type(s, 10), SQLITE_NULL);
	else {
		assert_int_equal(sqlite3_column_int64(s, 9), steps[n - 1]);
		assert_int_equal(sqlite3_column_bytes(s, 10), want.len);
		assert_memory_equal(sqlite3_column_blob(s, 10), want.data,
		    want.len);
	}
	chunk_buf_cleanup(&want);
}

/*
 * Decode the rows of one table (chunks or tails) of series sid into a
 * model, checking each row's blob against its columns (range, n, and
 * for chunks the summary) and that no step is stored twice, across
 * both tables.  Returns the row count.
 */
static int64_t
read_rows(sqlite3 *db, int64_t sid, struct model *out, int chunks)
{
	sqlite3_stmt	*s;
	int64_t		 nrows = 0, first, last, n, i, nonfinite, step;
	int64_t		 minstep = 0, maxstep = 0, *steps;
	double		 v, minv = 0, maxv = 0, *vals;
	size_t		 got;
	char		*cause = NULL;
	int		 havefin;

	assert_int_equal(sqlite3_prepare_v2(db, chunks ?
	    "SELECT first_step, c.last_step, n, data, min_value, min_step, "
	    "max_value, max_step, nonfinite, b.last_step, b.blocks, "
	    "(SELECT kind FROM series WHERE id = c.series_id) "
	    "FROM chunks c LEFT JOIN chunk_blocks b ON b.chunk_id = c.id "
	    "WHERE series_id = ?1 ORDER BY first_step" :
	    "SELECT first_step, last_step, n, data FROM tails "
	    "WHERE series_id = ?1 ORDER BY first_step", -1, &s, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(s, 1, sid);
	while (sqlite3_step(s) == SQLITE_ROW) {
		nrows++;
		first = sqlite3_column_int64(s, 0);
		last = sqlite3_column_int64(s, 1);
		n = sqlite3_column_int64(s, 2);
		assert_true(n > 0 && n <= STORE_CHUNK_MAX);
		/* A chunk row fits a page (store_int.h). */
		if (chunks)
			assert_true(sqlite3_column_bytes(s, 3) <=
			    (int)STORE_CHUNK_BYTES(16384));
		steps = xcalloc((size_t)n, sizeof *steps);
		vals = xcalloc((size_t)n, sizeof *vals);
		if (chunk_decode(sqlite3_column_blob(s, 3),
		    (size_t)sqlite3_column_bytes(s, 3), steps, vals, (size_t)n,
		    &got, &cause) == -1)
			fail_msg("series %lld: %s", (long long)sid, cause);
		assert_int_equal(got, n);
		assert_int_equal(steps[0], first);
		assert_int_equal(steps[n - 1], last);
		havefin = 0;
		nonfinite = 0;
		for (i = 0; i < n; i++) {
			step = steps[i];
			v = vals[i];
			assert_true(step >= 0 && step < MAXSTEP);
			/* No step in two rows, ascending within one. */
			assert_int_equal(out->present[step], 0);
			if (i > 0)
				assert_true(steps[i - 1] < step);
			out->present[step] = 1;
			out->vals[step] = v;
			if (!isfinite(v)) {
				nonfinite++;
				continue;
			}
			if (!havefin || v < minv) {
				minv = v;
				minstep = step;
			}
			if (!havefin || v > maxv) {
				maxv = v;
				maxstep = step;
			}
			havefin = 1;
		}
		if (chunks)
			check_blocks(s, steps, vals, (size_t)n);
		free(steps);
		free(vals);
		if (!chunks)
			continue;
		assert_int_equal(sqlite3_column_int64(s, 8), nonfinite);
		if (havefin) {
			assert_true(sqlite3_column_double(s, 4) == minv);
			assert_int_equal(sqlite3_column_int64(s, 5), minstep);
			assert_true(sqlite3_column_double(s, 6) == maxv);
			assert_int_equal(sqlite3_column_int64(s, 7), maxstep);
		} else {
			assert_int_equal(sqlite3_column_type(s, 4),
			    SQLITE_NULL);
			assert_int_equal(sqlite3_column_type(s, 6),
			    SQLITE_NULL);
		}
	}
	sqlite3_finalize(s);
	return nrows;
}

/* Every point of series sid, chunks and tails; the row count. */
static int64_t
read_series(sqlite3 *db, int64_t sid, struct model *out)
{
	memset(out, 0, sizeof *out);
	return read_rows(db, sid, out, 1) + read_rows(db, sid, out, 0);
}

/*
 * Check series (run, kind, name) against model m: the same steps with
 * the same bits, series.points, last_step and last_value/last_class.
 * Returns the chunk count.
 */
static int64_t
check_series(sqlite3 *db, const char *run, const char *kind,
    const char *name, const struct model *m)
{
	struct model	*got = xcalloc(1, sizeof *got);
	sqlite3_stmt	*s;
	int64_t		 sid, nchunks, npoints = 0, last = -1, i;
	int		 class;

	sid = series_id(db, run, kind, name);
	assert_true(sid > 0);
	nchunks = read_series(db, sid, got);
	for (i = 0; i < MAXSTEP; i++) {
		if (m->present[i] != got->present[i])
			fail_msg("%s/%s step %lld: present %d, stored %d", run,
			    name, (long long)i, m->present[i], got->present[i]);
		if (!m->present[i])
			continue;
		if (!same_bits(m->vals[i], got->vals[i]))
			fail_msg("%s/%s step %lld: sent %.17g, stored %.17g",
			    run, name, (long long)i, m->vals[i], got->vals[i]);
		npoints++;
		last = i;
	}
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT points, last_step, "
	    "last_value, last_class FROM series WHERE id = ?1", -1, &s, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(s, 1, sid);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(s, 0), npoints);
	if (npoints > 0) {
		assert_int_equal(sqlite3_column_int64(s, 1), last);
		class = sqlite3_column_int(s, 3);
		if (isnan(m->vals[last]))
			assert_int_equal(class, 1);
		else if (isinf(m->vals[last]))
			assert_int_equal(class, m->vals[last] > 0 ? 2 : 3);
		else {
			assert_int_equal(class, 0);
			assert_true(sqlite3_column_double(s, 2) ==
			    m->vals[last]);
		}
		if (class != 0)
			assert_int_equal(sqlite3_column_type(s, 2),
			    SQLITE_NULL);
	}
	sqlite3_finalize(s);
	/* No row spans more than series.max_span (readers rely on it). */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT max_span "
	    "FROM series WHERE id = ?1) >= coalesce(max(last_step - "
	    "first_step), 0) FROM (SELECT first_step, last_step FROM chunks "
	    "WHERE series_id = ?1 UNION ALL SELECT first_step, last_step "
	    "FROM tails WHERE series_id = ?1)", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, sid);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 1);
	sqlite3_finalize(s);
	free(got);
	return nchunks;
}

/* ---- migrations ------------------------------------------------------- */

static void
test_migrate_memory(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);

	(void)state;
	assert_int_equal(store_schema_version(), (int)schema_sql_count);
	assert_true(store_schema_version() >= 1);
	assert_int_equal(query_int(db, "PRAGMA user_version"),
	    store_schema_version());
	/* Migrations cascade; the writer keeps references itself. */
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name IN ('runs', 'series', 'chunks', 'alerts')"), 4);
	store_close(st);
	store_close(NULL);
}

/* A database of schema version 1 (as gradwatchd 0.1 wrote it) is upgraded. */
static void
test_upgrade_from_v1(void **state)
{
	struct store	*st;
	const char	*path = ((struct tmpdb *)*state)->path;
	char		*cause = NULL;
	sqlite3		*db;

	(void)state;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, schema_sql[0], NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 1;"
	    " INSERT INTO runs (id, key, started_at, last_seen)"
	    "  VALUES (1, 'old', 1, 2);"
	    " INSERT INTO alerts (run_id, kind, severity, state, fired_at,"
	    "  message) VALUES (1, 'nonfinite', 'critical', 'firing', 2, 'm')",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	st = store_open(path, &cause);
	if (st == NULL)
		fail_msg("upgrade: %s", cause);
	db = store_db(st);
	assert_true(store_schema_version() >= 2);
	assert_int_equal(query_int(db, "PRAGMA user_version"),
	    store_schema_version());
	assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE"
	    " key = 'old' AND last_seen = 2"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alerts WHERE"
	    " state = 'firing'"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM notices"), 0);
	assert_int_equal(query_int(db, "SELECT length(value) FROM settings"
	    " WHERE name = 'instance'"), 16);
	store_close(st);
}

static void
test_reopen_file(void **state)
{
	struct store	*st;
	struct model	*m = xcalloc(1, sizeof *m);
	const char	*path = ((struct tmpdb *)*state)->path;
	char		*cause = NULL;
	sqlite3		*db;

	st = store_open(path, &cause);
	assert_non_null(st);
	db = store_db(st);
	assert_int_equal(query_int(db, "PRAGMA user_version"),
	    store_schema_version());
	/* NORMAL: the writer's walsync adds FULL's sync (walsync.h). */
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 1);
	send_range(st, m, "r", SERIES_LOSS, "loss", 0, 10, 0.5);
	store_close(st);

	/* Reopening applies nothing again and finds the data. */
	st = store_open(path, &cause);
	if (st == NULL)
		fail_msg("reopen: %s", cause);
	db = store_db(st);
	assert_int_equal(query_int(db, "PRAGMA user_version"),
	    store_schema_version());
	assert_int_equal(query_int(db, "SELECT count(*) FROM "
	    "pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
	/* A cold cache appends a tail row; nothing is rewritten. */
	send_range(st, m, "r", SERIES_LOSS, "loss", 10, 12, 0.5);
	assert_int_equal(check_series(db, "r", "loss", "loss", m), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 0);
	/* And a cold cache sees a resend as one. */
	store_close(st);
	st = store_open(path, &cause);
	assert_non_null(st);
	db = store_db(st);
	send_range(st, m, "r", SERIES_LOSS, "loss", 5, 8, 2.0);
	assert_int_equal(check_series(db, "r", "loss", "loss", m), 1);
	assert_int_equal(query_int(db, "SELECT points FROM runs"), 12);
	store_close(st);
	free(m);
}

static void
test_newer_refused(void **state)
{
	struct store	*st;
	sqlite3		*db;
	const char	*path = ((struct tmpdb *)*state)->path;
	char		*sql, *want, *cause = NULL;
	int		 newer = store_schema_version() + 6;

	st = store_open(path, &cause);
	assert_non_null(st);
	store_close(st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	xasprintf(&sql, "PRAGMA user_version = %d", newer);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	st = store_open(path, &cause);
	assert_null(st);
	assert_non_null(cause);
	xasprintf(&want, "%s: schema version %d is newer than this "
	    "gradwatchd (%d); upgrade gradwatchd", path, newer,
	    store_schema_version());
	assert_string_equal(cause, want);
	free(cause);
	free(want);
	free(sql);

	/* The refused database is left as it was. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(query_int(db, "PRAGMA user_version"), newer);
	sqlite3_close(db);
}

static void
test_open_bad_path(void **state)
{
	char	*cause = NULL;

	(void)state;
	assert_null(store_open("/nonexistent-dir/x/gw.db", &cause));
	assert_non_null(cause);
	assert_non_null(strstr(cause, "/nonexistent-dir/x/gw.db"));
	free(cause);
}

/* ---- points ------------------------------------------------------------- */

static void
test_append_nonfinite(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	int64_t		 steps[6] = { 0, 1, 2, 3, 4, 5 }, sid;
	double		 vals[6] = { 1.5, nan_payload(), INFINITY, -INFINITY,
			    -2.25, 7.0 };
	size_t		 i;

	(void)state;
	for (i = 0; i < 6; i++) {
		m->present[steps[i]] = 1;
		m->vals[steps[i]] = vals[i];
	}
	apply1(st, batch1("r1", SERIES_LAYER_GRAD, "fc.weight", steps, vals,
	    6), 10.0);
	assert_int_equal(check_series(db, "r1", "layer_grad", "fc.weight", m),
	    1);
	sid = series_id(db, "r1", "layer_grad", "fc.weight");
	/* One commit, one tail row of the series; no chunk yet. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM tails"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 0);
	assert_int_equal(query_int(db, "SELECT series_id FROM tails"), sid);

	/* The last value may be non-finite: NULL and a class. */
	steps[0] = 6;
	vals[0] = -INFINITY;
	m->present[6] = 1;
	m->vals[6] = -INFINITY;
	apply1(st, batch1("r1", SERIES_LAYER_GRAD, "fc.weight", steps, vals,
	    1), 11.0);
	check_series(db, "r1", "layer_grad", "fc.weight", m);
	assert_int_equal(query_int(db, "SELECT last_class FROM series"), 3);
	steps[0] = 7;
	vals[0] = nan_payload();
	m->present[7] = 1;
	m->vals[7] = nan_payload();
	apply1(st, batch1("r1", SERIES_LAYER_GRAD, "fc.weight", steps, vals,
	    1), 12.0);
	check_series(db, "r1", "layer_grad", "fc.weight", m);
	assert_int_equal(query_int(db, "SELECT last_class FROM series"), 1);
	assert_int_equal(query_int(db, "SELECT kind = 'layer_grad' "
	    "FROM series"), 1);
	/* A chunk of non-finite values only has no min or max. */
	steps[0] = 100;
	steps[1] = 102;
	vals[0] = INFINITY;
	vals[1] = nan_payload();
	for (i = 0; i < 2; i++) {
		m->present[steps[i]] = 1;
		m->vals[steps[i]] = vals[i];
	}
	apply1(st, batch1("r1", SERIES_LAYER_GRAD, "fc.weight", steps, vals,
	    2), 13.0);
	check_series(db, "r1", "layer_grad", "fc.weight", m);
	store_close(st);
	free(m);
}

static void
test_resend_replaces(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);

	(void)state;
	send_range(st, m, "r", SERIES_LOSS, "loss", 0, 100, 1.0);
	send_range(st, m, "r", SERIES_LOSS, "loss", 100, 200, 1.0);
	/* Resend the same two requests with other values. */
	send_range(st, m, "r", SERIES_LOSS, "loss", 0, 100, 3.0);
	check_series(db, "r", "loss", "loss", m);
	send_range(st, m, "r", SERIES_LOSS, "loss", 100, 200, 5.0);
	assert_true(check_series(db, "r", "loss", "loss", m) <= 2);
	/* A retry of the last step only. */
	send_range(st, m, "r", SERIES_LOSS, "loss", 199, 200, -1.0);
	check_series(db, "r", "loss", "loss", m);
	assert_int_equal(query_int(db, "SELECT points FROM series"), 200);
	/* The run counts distinct points: resends are not counted again. */
	assert_int_equal(query_int(db, "SELECT points FROM runs"), 200);
	/*
	 * A chunk that schema 0006 gave summaries in its own row loses
	 * them when a resend rewrites it; chunk_blocks gets the new ones.
	 */
	send_range(st, m, "r", SERIES_LOSS, "loss", 200, 4200, 1.0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunk_blocks"),
	    query_int(db, "SELECT count(*) FROM chunks"));
	assert_int_equal(sqlite3_exec(db, "UPDATE chunks SET blocks = "
	    "x'0000'; DELETE FROM chunk_blocks", NULL, NULL, NULL), SQLITE_OK);
	send_range(st, m, "r", SERIES_LOSS, "loss", 150, 250, 7.0);
	check_series(db, "r", "loss", "loss", m);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks WHERE "
	    "blocks IS NOT NULL"), 0);
	assert_true(query_int(db, "SELECT count(*) FROM chunk_blocks") > 0);
	/* The writer keeps the references it does not have enforced. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM "
	    "pragma_foreign_key_check"), 0);
	store_close(st);
	free(m);
}

static void
test_overlap_partial(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);

	(void)state;
	send_range(st, m, "r", SERIES_GRAD_NORM, "grad_norm", 0, 100, 1.0);
	send_range(st, m, "r", SERIES_GRAD_NORM, "grad_norm", 50, 150, 2.0);
	check_series(db, "r", "grad_norm", "grad_norm", m);
	send_range(st, m, "r", SERIES_GRAD_NORM, "grad_norm", 20, 31, 3.0);
	check_series(db, "r", "grad_norm", "grad_norm", m);
	assert_int_equal(query_int(db, "SELECT points FROM series"), 150);
	assert_int_equal(query_int(db, "SELECT last_step FROM series"), 149);
	assert_true(query_int(db, "SELECT last_value FROM series") == 298);
	/* Older steps only: the last value stays. */
	send_range(st, m, "r", SERIES_GRAD_NORM, "grad_norm", 0, 5, 9.0);
	check_series(db, "r", "grad_norm", "grad_norm", m);
	assert_true(query_int(db, "SELECT last_value FROM series") == 298);
	/* A resend reaching past the end moves it. */
	send_range(st, m, "r", SERIES_GRAD_NORM, "grad_norm", 140, 160, 4.0);
	check_series(db, "r", "grad_norm", "grad_norm", m);
	assert_int_equal(query_int(db, "SELECT last_step FROM series"), 159);
	/* Spanning many chunks: resend over split chunks. */
	send_range(st, m, "r", SERIES_GRAD_NORM, "grad_norm", 160, 9000, 1.0);
	send_range(st, m, "r", SERIES_GRAD_NORM, "grad_norm", 4000, 8500, 6.0);
	check_series(db, "r", "grad_norm", "grad_norm", m);
	store_close(st);
	free(m);
}

static void
test_interleaved(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	struct batch	*b;
	int64_t		 s;

	(void)state;
	b = batch_new("r");
	for (s = 0; s < 200; s += 2) {
		add_point(b, SERIES_METRIC, "acc", s, (double)s);
		m->present[s] = 1;
		m->vals[s] = (double)s;
	}
	apply1(st, b, 1.0);
	check_series(db, "r", "metric", "acc", m);
	b = batch_new("r");
	for (s = 1; s < 200; s += 2) {
		add_point(b, SERIES_METRIC, "acc", s, -(double)s);
		m->present[s] = 1;
		m->vals[s] = -(double)s;
	}
	apply1(st, b, 2.0);
	check_series(db, "r", "metric", "acc", m);
	assert_int_equal(query_int(db, "SELECT points FROM series"), 200);
	assert_int_equal(query_int(db, "SELECT last_step FROM series"), 199);
	/* Steps far apart interleave with the existing range. */
	b = batch_new("r");
	for (s = 0; s < 3; s++) {
		add_point(b, SERIES_METRIC, "acc", 1000 + s * 1000, 1.0);
		add_point(b, SERIES_METRIC, "acc", 150 + s, 2.0);
		m->present[1000 + s * 1000] = 1;
		m->vals[1000 + s * 1000] = 1.0;
		m->present[150 + s] = 1;
		m->vals[150 + s] = 2.0;
	}
	apply1(st, b, 3.0);
	check_series(db, "r", "metric", "acc", m);
	assert_int_equal(query_int(db, "SELECT last_step FROM series"), 3000);
	store_close(st);
	free(m);
}

/* Layer i's norm at step s: float32, as random as a gradient's. */
static double
layer_value(int i, int64_t s)
{
	uint64_t	h = ((uint64_t)s * 1000003 + (uint64_t)i) *
	    UINT64_C(0x9e3779b97f4a7c15);

	return (double)(float)(1.0 + (double)(h >> 40) / 1e6);
}

/*
 * Between transactions: no tail point is unwritten, and the count of
 * those in memory is the sum of the series' live tails.
 */
static void
check_tail_counts(const struct store *st)
{
	const struct store_ent	*e;
	size_t			 i, live = 0;

	assert_int_equal(st->pending, 0);
	for (i = 0; i < st->tabsize; i++) {
		e = st->tab[i];
		if (e != NULL && e->kind != -1 && !e->s.stale &&
		    e->s.tail == STORE_TAIL_LOADED) {
			assert_int_equal(e->s.tflushed, e->s.tn);
			live += e->s.tn - e->s.toff;
		}
	}
	assert_int_equal(st->tpoints, live);
}

/* Send steps [from, to) of layer "w" by stride into m. */
static void
late_batch(struct store *st, struct model *m, int64_t from, int64_t to,
    int64_t stride, int commit)
{
	struct batch	*b = batch_new("r");
	char		*cause = NULL;
	int64_t		 s, rid = -1;

	for (s = from; s < to; s += stride) {
		add_point(b, SERIES_LAYER_GRAD, "w", s, layer_value(0, s));
		m->present[s] = 1;
		m->vals[s] = layer_value(0, s);
	}
	if (!commit) {
		assert_int_equal(store_apply(st, b, 1.0, &rid, &cause), 0);
		batch_free(b);
		return;
	}
	apply1(st, b, 1.0);
}

/*
 * Points that arrive late (several connections of one run) but fall in
 * a series' open tail join it without a chunk being sealed early or
 * rewritten: written tail rows get a row of late points beside them,
 * unwritten points take them in; a restart merges the rows back, and
 * the tail still seals as whole chunks.
 */
static void
test_late_points(void **state)
{
	const char	*path = ((struct tmpdb *)*state)->path;
	struct store	*st;
	struct model	*m = xcalloc(1, sizeof *m);
	sqlite3		*db;
	char		*cause = NULL;
	int64_t		 s;

	st = store_open(path, &cause);
	assert_non_null(st);
	db = store_db(st);
	/* 0 .. 99 and 200 .. 299 in one row, 100 .. 199 after it. */
	assert_int_equal(store_begin(st, &cause), 0);
	late_batch(st, m, 0, 100, 1, 0);
	late_batch(st, m, 200, 300, 1, 0);
	assert_int_equal(store_commit(st, &cause), 0);
	late_batch(st, m, 100, 200, 1, 1);
	check_series(db, "r", "layer_grad", "w", m);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM tails"), 2);
	assert_int_equal(query_int(db, "SELECT points FROM series"), 300);
	assert_int_equal(query_int(db, "SELECT last_step FROM series"), 299);
	/* In one commit: odd steps, then the even ones late, unwritten. */
	assert_int_equal(store_begin(st, &cause), 0);
	late_batch(st, m, 301, 400, 2, 0);
	late_batch(st, m, 302, 400, 2, 0);
	assert_int_equal(store_commit(st, &cause), 0);
	check_series(db, "r", "layer_grad", "w", m);
	check_tail_counts(st);
	assert_int_equal(query_int(db, "SELECT count(*) FROM tails"), 3);
	assert_int_equal(query_int(db, "SELECT n FROM tails ORDER BY id DESC "
	    "LIMIT 1"), 99);
	/* Late points reaching past the last step, and one step again. */
	late_batch(st, m, 400, 450, 2, 1);
	late_batch(st, m, 401, 501, 2, 1);
	check_series(db, "r", "layer_grad", "w", m);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 0);
	late_batch(st, m, 10, 12, 1, 1);	/* a resend: rewritten */
	check_series(db, "r", "layer_grad", "w", m);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 1);
	/* Late rows, read back after a restart, merge into the tail. */
	late_batch(st, m, 500, 600, 2, 1);
	late_batch(st, m, 501, 600, 2, 1);
	late_batch(st, m, 650, 800, 1, 1);
	late_batch(st, m, 600, 650, 1, 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM tails"), 4);
	store_close(st);
	st = store_open(path, &cause);
	assert_non_null(st);
	db = store_db(st);
	check_series(db, "r", "layer_grad", "w", m);
	late_batch(st, m, 800, 850, 1, 1);
	check_series(db, "r", "layer_grad", "w", m);
	/* Points before the tail's first rewrite the chunks they meet. */
	late_batch(st, m, 300, 301, 1, 1);
	check_series(db, "r", "layer_grad", "w", m);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM tails"), 5);
	/*
	 * The tail fills whole chunk rows (about 4,200 of these points a
	 * page), with one commit in five late (none of them next to a seal).
	 */
	for (s = 850; s < 9050; s += 100) {
		if (s % 500 != 0) {
			late_batch(st, m, s, s + 100, 1, 1);
			continue;
		}
		late_batch(st, m, s + 50, s + 100, 1, 1);
		late_batch(st, m, s, s + 50, 1, 1);
	}
	check_series(db, "r", "layer_grad", "w", m);
	check_tail_counts(st);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks WHERE "
	    "length(data) > 16200 - 64"), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 3);
	store_close(st);
	free(m);
}

/*
 * A chunk may span far (sparse steps merged into a tail): a resend must
 * find it although it starts long before the resent step, with the
 * cache warm or cold.
 */
static void
test_wide_chunk(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	char		*cause = NULL;

	(void)state;
	send_range(st, m, "r", SERIES_LOSS, "loss", 0, 100, 1.0);
	send_range(st, m, "r", SERIES_LOSS, "loss", 100, 101, 1.0);
	send_range(st, m, "r", SERIES_LOSS, "loss", 15000, 15001, 1.0);
	check_series(db, "r", "loss", "loss", m);
	send_range(st, m, "r", SERIES_LOSS, "loss", 15001, 15101, 1.0);
	send_range(st, m, "r", SERIES_LOSS, "loss", 15101, 15201, 1.0);
	check_series(db, "r", "loss", "loss", m);
	send_range(st, m, "r", SERIES_LOSS, "loss", 15000, 15001, 2.0);
	check_series(db, "r", "loss", "loss", m);
	/* A rollback empties the cache: the bound is read again. */
	assert_int_equal(store_begin(st, &cause), 0);
	store_rollback(st);
	send_range(st, m, "r", SERIES_LOSS, "loss", 100, 101, 3.0);
	send_range(st, m, "r", SERIES_LOSS, "loss", 14990, 15002, 4.0);
	check_series(db, "r", "loss", "loss", m);
	store_close(st);
	free(m);
}

static void
test_unsorted_duplicates(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	int64_t		 steps[8] = { 5, 3, 5, 4, 3, 9, 5, 0 };
	double		 vals[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	(void)state;
	apply1(st, batch1("r", SERIES_LR, "lr", steps, vals, 8), 1.0);
	m->present[0] = m->present[3] = m->present[4] = 1;
	m->present[5] = m->present[9] = 1;
	m->vals[0] = 8;
	m->vals[3] = 5;
	m->vals[4] = 4;
	m->vals[5] = 7;
	m->vals[9] = 6;
	check_series(db, "r", "lr", "lr", m);
	assert_int_equal(query_int(db, "SELECT points FROM series"), 5);
	assert_int_equal(query_int(db, "SELECT points FROM runs"), 5);
	assert_int_equal(query_int(db, "SELECT first_step FROM runs"), 0);
	assert_int_equal(query_int(db, "SELECT last_step FROM runs"), 9);
	store_close(st);
	free(m);
}

static void
test_tail_merge(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	struct batch	*b;
	char		*cause = NULL;
	int64_t		 s, rid;

	(void)state;
	/* 1000 single-step requests, ten per transaction. */
	for (s = 0; s < 1000; s++) {
		if (s % 10 == 0)
			assert_int_equal(store_begin(st, &cause), 0);
		b = batch_new("r");
		add_step(b, s);
		add_point(b, SERIES_LOSS, "loss", s, 1.0 / (double)(s + 1));
		add_point(b, SERIES_LAYER_GRAD, "a", s, (double)s);
		m->present[s] = 1;
		m->vals[s] = 1.0 / (double)(s + 1);
		assert_int_equal(store_apply(st, b, 1.0, &rid, &cause), 0);
		batch_free(b);
		if (s % 10 == 9)
			assert_int_equal(store_commit(st, &cause), 0);
	}
	/* One tail row a commit, none rewritten, no chunk yet. */
	assert_int_equal(check_series(db, "r", "loss", "loss", m), 100);
	assert_int_equal(chunk_count(db, series_id(db, "r", "layer_grad",
	    "a")), 0);
	/* A big append seals the tail into chunk rows that fill pages. */
	send_range(st, m, "r", SERIES_LOSS, "loss", 1000, 20000, 0.1);
	assert_true(check_series(db, "r", "loss", "loss", m) <= 12);
	assert_true(query_int(db, "SELECT count(*) FROM chunks") >= 2);
	assert_true(query_int(db, "SELECT min(length(data)) FROM chunks") >
	    (int64_t)STORE_CHUNK_BYTES(16384) - 64);
	store_close(st);
	free(m);
}

/* Commits of 50 steps of layers l0 .. l<nseries - 1>, from step *next on. */
#define ROUND_SERIES	200
static void
send_layers(struct store *st, struct model **m, int nseries, int commits,
    int64_t *next)
{
	struct batch	*b;
	char		 name[16];
	size_t		 si;
	int64_t		 s;
	int		 c, i;

	for (c = 0; c < commits; c++) {
		b = batch_new("r");
		for (i = 0; i < nseries; i++) {
			snprintf(name, sizeof name, "l%d", i);
			si = batch_series_get(b, SERIES_LAYER_GRAD, name);
			for (s = *next; s < *next + 50; s++) {
				batch_series_push(b, si, s, layer_value(i, s));
				m[i]->present[s] = 1;
				m[i]->vals[s] = layer_value(i, s);
			}
		}
		for (s = *next; s < *next + 50; s++)
			add_step(b, s);
		*next += 50;
		apply1(st, b, 1.0);
	}
}

static void
check_layers(sqlite3 *db, struct model **m)
{
	char	name[16];
	int	i;

	for (i = 0; i < ROUND_SERIES; i++) {
		snprintf(name, sizeof name, "l%d", i);
		check_series(db, "r", "layer_grad", name, m[i]);
	}
}

/* The least and the most bytes of tails rows of layers [lo, hi). */
static void
tail_bytes(sqlite3 *db, int lo, int hi, int64_t *least, int64_t *most)
{
	char	*sql;
	int	 k;

	for (k = 0; k < 2; k++) {
		xasprintf(&sql, "SELECT %s(b) FROM (SELECT "
		    "coalesce(sum(length(t.data)), 0) b FROM series s LEFT "
		    "JOIN tails t ON t.series_id = s.id WHERE "
		    "CAST(substr(s.name, 2) AS INTEGER) BETWEEN %d AND %d "
		    "GROUP BY s.id)", k == 0 ? "min" : "max", lo, hi - 1);
		*(k == 0 ? least : most) = query_int(db, sql);
		free(sql);
	}
}

/*
 * A tail seals a whole chunk row (a page) in the commit that fills one;
 * a round after that commit seals every other tail past half a row as
 * half rows (store_tails_seal_round), in a transaction of its own.  A
 * round that fails changes nothing committed, and a later one seals.
 */
static void
test_seal_round(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m[ROUND_SERIES];
	int64_t		 next = 0, least, most;
	int		 i, c, half = ROUND_SERIES / 2;

	(void)state;
	for (i = 0; i < ROUND_SERIES; i++)
		m[i] = xcalloc(1, sizeof *m[i]);
	/* 60 commits of every series: past half a row, no chunk yet. */
	send_layers(st, m, ROUND_SERIES, 60, &next);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM tails"),
	    60 * ROUND_SERIES);
	tail_bytes(db, 0, ROUND_SERIES, &least, &most);
	assert_true(least > (int64_t)STORE_CHUNK_HALF(16384) &&
	    most < (int64_t)STORE_CHUNK_BYTES(16384));
	/*
	 * The first half goes on until each seals a whole row, in the
	 * commit that fills it.  The round after it fails (no half row may
	 * be inserted): the commits stand, the second half's tails stay
	 * rows.
	 */
	assert_int_equal(sqlite3_exec(db, "CREATE TEMP TRIGGER no_join "
	    "BEFORE INSERT ON chunks WHEN length(NEW.data) <= 8040 BEGIN "
	    "SELECT RAISE(ABORT, 'no join'); END", NULL, NULL, NULL),
	    SQLITE_OK);
	for (c = 0; c < 100 && query_int(db, "SELECT count(*) FROM chunks") <
	    half; c++)
		send_layers(st, m, half, 1, &next);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), half);
	assert_int_equal(query_int(db, "SELECT count(DISTINCT series_id) "
	    "FROM chunks"), half);
	/* Whole rows: each fills its page but for a point and a header. */
	assert_true(query_int(db, "SELECT min(length(data)) FROM chunks") >
	    (int64_t)STORE_CHUNK_BYTES(16384) - 64);
	assert_int_equal(query_int(db, "SELECT count(*) FROM tails t JOIN "
	    "series s ON s.id = t.series_id WHERE CAST(substr(s.name, 2) AS "
	    "INTEGER) >= 100"), 60 * half);
	check_layers(db, m);
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER no_join", NULL, NULL,
	    NULL), SQLITE_OK);
	/*
	 * The failed round emptied the cache.  One commit of every series
	 * loads their tails again; when the first half's next rows fill,
	 * their round seals the second half's tails with them, as one half
	 * row each, together.
	 */
	send_layers(st, m, ROUND_SERIES, 1, &next);
	for (c = 0; c < 100 && query_int(db, "SELECT count(*) FROM chunks") <
	    2 * half; c++)
		send_layers(st, m, half, 1, &next);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks c JOIN "
	    "series s ON s.id = c.series_id WHERE CAST(substr(s.name, 2) AS "
	    "INTEGER) >= 100"), half);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks c JOIN "
	    "series s ON s.id = c.series_id WHERE CAST(substr(s.name, 2) AS "
	    "INTEGER) >= 100 AND length(c.data) <= 8040 AND "
	    "length(c.data) > 8040 - 64"), half);
	tail_bytes(db, half, ROUND_SERIES, &least, &most);
	assert_true(most < (int64_t)STORE_CHUNK_HALF(16384));
	/* The first half: whole rows, or half rows from the round. */
	assert_int_equal(query_int(db, "SELECT min(k) FROM (SELECT count(*) k "
	    "FROM chunks c JOIN series s ON s.id = c.series_id WHERE "
	    "CAST(substr(s.name, 2) AS INTEGER) < 100 GROUP BY s.id)"), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks WHERE NOT "
	    "(length(data) > 16200 - 64 OR (length(data) <= 8040 AND "
	    "length(data) > 8040 - 64))"), 0);
	/*
	 * Every chunk has its block summaries in chunk_blocks, with its
	 * last step (schema 0007), and none in its own row.
	 */
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks c "
	    "JOIN chunk_blocks b ON b.chunk_id = c.id AND "
	    "b.last_step = c.last_step"), query_int(db, "SELECT count(*) FROM "
	    "chunks"));
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunk_blocks"),
	    query_int(db, "SELECT count(*) FROM chunks"));
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks WHERE "
	    "blocks IS NOT NULL"), 0);
	check_layers(db, m);
	for (i = 0; i < ROUND_SERIES; i++)
		free(m[i]);
	store_close(st);
}

/* Rewrite the chunk_blocks rows of series sid without extremes. */
static void
strip_extremes(sqlite3 *db, int64_t sid)
{
	sqlite3_stmt		*s, *u;
	struct chunk_buf	 b;
	int64_t			 steps[STORE_CHUNK_MAX];
	double			 vals[STORE_CHUNK_MAX];
	size_t			 n;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT c.id, c.data FROM "
	    "chunks c JOIN chunk_blocks b ON b.chunk_id = c.id WHERE "
	    "c.series_id = ?1", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE chunk_blocks SET "
	    "blocks = ?2 WHERE chunk_id = ?1", -1, &u, NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, sid);
	chunk_buf_init(&b);
	while (sqlite3_step(s) == SQLITE_ROW) {
		assert_int_equal(chunk_decode(sqlite3_column_blob(s, 1),
		    (size_t)sqlite3_column_bytes(s, 1), steps, vals,
		    STORE_CHUNK_MAX, &n, NULL), 0);
		b.len = 0;
		assert_true(chunk_blocks_encode(&b, steps, vals, n, 0) > 0);
		sqlite3_bind_int64(u, 1, sqlite3_column_int64(s, 0));
		sqlite3_bind_blob(u, 2, b.data, (int)b.len, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(u), SQLITE_DONE);
		sqlite3_reset(u);
	}
	chunk_buf_cleanup(&b);
	sqlite3_finalize(s);
	sqlite3_finalize(u);
}

/*
 * Chunks an older gradwatchd wrote without block summaries, or without
 * extremes, get them a step at a time, the cursor kept across a
 * restart; a sparse chunk gets none and a damaged one is left to the
 * queries that meet it.
 */
static void
test_backfill(void **state)
{
	const char	*path = ((struct tmpdb *)*state)->path;
	struct store	*st;
	struct model	*m[2];
	sqlite3		*db;
	char		*cause = NULL;
	int64_t		 next = 0, sid;
	int		 done = 0, steps;

	st = store_open(path, &cause);
	assert_non_null(st);
	db = store_db(st);
	m[0] = xcalloc(1, sizeof *m[0]);
	m[1] = xcalloc(1, sizeof *m[1]);
	send_layers(st, m, 1, 150, &next);	/* l0 */
	send_range(st, m[1], "r", SERIES_LOSS, "loss", 0, 12000, 0.1);
	assert_true(query_int(db, "SELECT count(*) FROM chunks") >= 6);
	/* As an older gradwatchd left them. */
	sid = series_id(db, "r", "loss", "loss");
	strip_extremes(db, sid);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM chunk_blocks WHERE "
	    "chunk_id % 2 = 0", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO series (run_id, kind, "
	    "name) SELECT id, 'metric', 'odd' FROM runs; INSERT INTO chunks "
	    "(series_id, first_step, last_step, n, data) SELECT id, 0, 5, 2, "
	    "x'0100' FROM series WHERE name = 'odd'; INSERT INTO chunks "
	    "(series_id, first_step, last_step, n, data) SELECT id, 0, 100000, "
	    "2, x'0100' FROM series WHERE name = 'odd'", NULL, NULL, NULL),
	    SQLITE_OK);
	store_close(st);
	st = store_open(path, &cause);
	assert_non_null(st);
	db = store_db(st);
	/* A few steps, a restart, then the rest. */
	assert_int_equal(store_backfill_step(st, 3, &done, &cause), 0);
	assert_int_equal(done, 0);
	assert_int_equal(query_int(db, "SELECT value FROM settings WHERE "
	    "name = 'blocks_backfilled_through'"), query_int(db, "SELECT "
	    "min(id) FROM chunks") + 2);
	store_close(st);
	st = store_open(path, &cause);
	assert_non_null(st);
	db = store_db(st);
	for (steps = 0; !done && steps < 100; steps++)
		assert_int_equal(store_backfill_step(st, 3, &done, &cause), 0);
	assert_true(done && steps > 1);
	check_series(db, "r", "layer_grad", "l0", m[0]);
	check_series(db, "r", "loss", "loss", m[1]);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunk_blocks b "
	    "JOIN chunks c ON c.id = b.chunk_id JOIN series s ON s.id = "
	    "c.series_id WHERE s.name = 'odd'"), 0);
	assert_int_equal(query_int(db, "SELECT value FROM settings WHERE "
	    "name = 'blocks_backfilled_through'"), query_int(db, "SELECT "
	    "max(id) FROM chunks"));
	assert_int_equal(store_backfill_step(st, 3, &done, &cause), 0);
	assert_int_equal(done, 1);
	free(m[0]);
	free(m[1]);
	store_close(st);
}

/*
 * A file made with smaller pages (an early gradwatchd's 4 KiB) gets
 * chunk rows sized to them.
 */
static void
test_small_pages(void **state)
{
	const char	*path = ((struct tmpdb *)*state)->path;
	struct store	*st;
	struct model	*m[1];
	sqlite3		*db;
	char		*cause = NULL;
	int64_t		 next = 0;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA page_size = 4096; "
	    "CREATE TABLE x (a); DROP TABLE x", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	st = store_open(path, &cause);
	assert_non_null(st);
	db = store_db(st);
	assert_int_equal(query_int(db, "PRAGMA page_size"), 4096);
	m[0] = xcalloc(1, sizeof *m[0]);
	send_layers(st, m, 1, 100, &next);
	check_series(db, "r", "layer_grad", "l0", m[0]);
	assert_true(query_int(db, "SELECT count(*) FROM chunks") >= 3);
	assert_true(query_int(db, "SELECT max(length(data)) FROM chunks") <=
	    (int64_t)STORE_CHUNK_BYTES(4096));
	assert_true(query_int(db, "SELECT min(length(data)) FROM chunks") >
	    (int64_t)STORE_CHUNK_BYTES(4096) - 64);
	free(m[0]);
	store_close(st);
}

/*
 * Past the bound on tail points in memory, a round seals the biggest
 * tails: their whole half rows, or all of a tail that has none.  The
 * points stay where they were sent.
 */
static void
test_tail_memory(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m[ROUND_SERIES];
	int64_t		 next = 0;
	int		 i;

	(void)state;
	for (i = 0; i < ROUND_SERIES; i++)
		m[i] = xcalloc(1, sizeof *m[i]);
	/* Ten tails past half a row each, then the bound is passed. */
	st->tpoints_max = 24000;
	send_layers(st, m, 10, 48, &next);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 0);
	send_layers(st, m, 10, 1, &next);
	assert_true(st->tpoints <= 18000);
	assert_true(query_int(db, "SELECT count(*) FROM chunks") >= 3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks WHERE "
	    "length(data) > 8040 OR length(data) <= 8040 - 64"), 0);
	check_tail_counts(st);
	for (i = 0; i < 10; i++) {
		char	name[16];

		snprintf(name, sizeof name, "l%d", i);
		check_series(db, "r", "layer_grad", name, m[i]);
	}
	/* Two hundred small tails: sealed whole. */
	st->tpoints_max = 20000;
	send_layers(st, m, ROUND_SERIES, 3, &next);
	assert_true(st->tpoints <= 15000);
	assert_true(query_int(db, "SELECT count(*) FROM chunks WHERE "
	    "length(data) < 2000") >= 100);
	check_tail_counts(st);
	check_layers(db, m);
	for (i = 0; i < ROUND_SERIES; i++)
		free(m[i]);
	store_close(st);
}

/*
 * A resend that does not reach the last step may delete the tail chunk,
 * and SQLite reuses the greatest rowid: the next append must not merge
 * into another series' chunk.
 */
static void
test_tail_deleted(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*mx = xcalloc(1, sizeof *mx);
	struct model	*my = xcalloc(1, sizeof *my);

	(void)state;
	send_range(st, mx, "r", SERIES_LAYER_GRAD, "x", 0, 100, 1.0);
	send_range(st, mx, "r", SERIES_LAYER_GRAD, "x", 100, 200, 1.0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM tails"), 2);
	send_range(st, mx, "r", SERIES_LAYER_GRAD, "x", 50, 151, 2.0);
	check_series(db, "r", "layer_grad", "x", mx);
	send_range(st, my, "r", SERIES_LAYER_GRAD, "y", 0, 100, 3.0);
	send_range(st, mx, "r", SERIES_LAYER_GRAD, "x", 200, 201, 4.0);
	check_series(db, "r", "layer_grad", "x", mx);
	check_series(db, "r", "layer_grad", "y", my);
	store_close(st);
	free(mx);
	free(my);
}

/*
 * A run removed by hand, in a session that enforces the schema's
 * references (the writer's connection does not: store_open).
 */
#define DELETE_RUNS							\
	"PRAGMA foreign_keys = ON; DELETE FROM runs; PRAGMA foreign_keys = OFF"

/* Rows deleted behind the cache's back (a run removed by hand). */
static void
test_run_deleted(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	int64_t		 rid1, rid2;

	(void)state;
	rid1 = apply1(st, batch_new("r"), 1.0);
	assert_int_equal(sqlite3_exec(db, DELETE_RUNS, NULL, NULL, NULL),
	    SQLITE_OK);
	rid2 = apply1(st, batch_new("r"), 2.0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 1);
	assert_int_equal(query_int(db, "SELECT id FROM runs"), rid2);
	assert_int_equal(query_int(db, "SELECT started_at FROM runs"), 2);
	(void)rid1;
	send_range(st, m, "r", SERIES_LOSS, "loss", 0, 3, 1.0);
	check_series(db, "r", "loss", "loss", m);
	/* A run's chunks take their block summaries with them. */
	send_range(st, NULL, "r", SERIES_LAYER_GRAD, "x", 0, 20000, 1.0);
	assert_true(query_int(db, "SELECT count(*) FROM chunk_blocks") > 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunk_blocks"),
	    query_int(db, "SELECT count(*) FROM chunks"));
	assert_int_equal(sqlite3_exec(db, DELETE_RUNS, NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunk_blocks"), 0);
	store_close(st);
	free(m);
}

/*
 * Several requests in one transaction: appends are buffered, a resend
 * flushes them first, and the commit writes one chunk per series.
 */
static void
test_group(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	struct model	*m2 = xcalloc(1, sizeof *m2);
	struct batch	*b;
	char		*cause = NULL;
	int64_t		 rid, s, k;

	(void)state;
	assert_int_equal(store_begin(st, &cause), 0);
	for (k = 0; k < 3; k++) {
		b = batch_new("r");
		for (s = k * 10; s < k * 10 + 10; s++) {
			add_point(b, SERIES_LOSS, "loss", s, (double)s);
			m->present[s] = 1;
			m->vals[s] = (double)s;
		}
		if (k == 2) {
			/* Resend buffered steps and the batch's own. */
			for (s = 5; s < 15; s++) {
				add_point(b, SERIES_LOSS, "loss", s, -1.0);
				m->vals[s] = -1.0;
			}
		}
		assert_int_equal(store_apply(st, b, 1.0, &rid, &cause), 0);
		batch_free(b);
	}
	b = batch_new("r");
	add_point(b, SERIES_LOSS, "loss", 30, 30.0);
	m->present[30] = 1;
	m->vals[30] = 30.0;
	assert_int_equal(store_apply(st, b, 1.0, &rid, &cause), 0);
	batch_free(b);
	/* 100 requests of 50 steps, in one transaction. */
	for (k = 0; k < 100; k++) {
		b = batch_new("r");
		for (s = k * 50; s < k * 50 + 50; s++) {
			add_point(b, SERIES_LAYER_GRAD, "big", s, (double)k);
			m2->present[s] = 1;
			m2->vals[s] = (double)k;
		}
		assert_int_equal(store_apply(st, b, 1.0, &rid, &cause), 0);
		batch_free(b);
	}
	assert_int_equal(store_commit(st, &cause), 0);
	assert_true(check_series(db, "r", "loss", "loss", m) <= 3);
	/* 5,000 points that take less than a chunk row: one tails row. */
	assert_int_equal(check_series(db, "r", "layer_grad", "big", m2), 1);
	assert_int_equal(query_int(db, "SELECT points FROM runs"),
	    query_int(db, "SELECT sum(points) FROM series"));
	store_close(st);
	free(m);
	free(m2);
}

/* ---- atomicity ---------------------------------------------------------- */

/* Make any batch that creates a series named "poison" fail. */
static void
install_poison(sqlite3 *db)
{
	assert_int_equal(sqlite3_exec(db, "CREATE TEMP TRIGGER poison "
	    "BEFORE INSERT ON series WHEN NEW.name = 'poison' "
	    "BEGIN SELECT RAISE(ABORT, 'poisoned'); END", NULL, NULL, NULL),
	    SQLITE_OK);
}

static void
test_failed_batch(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	struct batch	*b;
	char		*cause = NULL;
	int64_t		 rid = -1, s;

	(void)state;
	install_poison(db);
	assert_int_equal(store_begin(st, &cause), 0);
	b = batch_new("r");
	b->dropped = 2;
	for (s = 0; s < 10; s++) {
		add_step(b, s);
		add_point(b, SERIES_LOSS, "loss", s, (double)s);
		m->present[s] = 1;
		m->vals[s] = (double)s;
	}
	assert_int_equal(store_apply(st, b, 1.0, &rid, &cause), 0);
	batch_free(b);

	/* Appends (tail merge), a resend, a new series, then the poison. */
	b = batch_new("r");
	b->dropped = 5;
	b->project = xstrdup("p");
	for (s = 5; s < 20; s++) {
		add_step(b, s);
		add_point(b, SERIES_LOSS, "loss", s, 100.0);
		add_point(b, SERIES_LR, "lr", s, 100.0);
	}
	add_point(b, SERIES_METRIC, "poison", 3, 1.0);
	assert_int_equal(store_apply(st, b, 2.0, &rid, &cause), -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "poisoned"));
	assert_true(strncmp(cause, "store: ", 7) == 0);
	free(cause);
	cause = NULL;
	batch_free(b);
	/* A failed batch of a new run leaves no run. */
	b = batch_new("other");
	add_point(b, SERIES_METRIC, "poison", 3, 1.0);
	assert_int_equal(store_apply(st, b, 2.0, &rid, &cause), -1);
	free(cause);
	cause = NULL;
	batch_free(b);

	/* The transaction goes on, and the cache agrees with the rows. */
	b = batch_new("r");
	for (s = 10; s < 12; s++) {
		add_step(b, s);
		add_point(b, SERIES_LOSS, "loss", s, -(double)s);
		m->present[s] = 1;
		m->vals[s] = -(double)s;
	}
	assert_int_equal(store_apply(st, b, 3.0, &rid, &cause), 0);
	batch_free(b);
	assert_int_equal(store_commit(st, &cause), 0);

	check_series(db, "r", "loss", "loss", m);
	assert_int_equal(series_id(db, "r", "lr", "lr"), -1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 1);
	assert_int_equal(query_int(db, "SELECT points FROM runs"), 12);
	assert_int_equal(query_int(db, "SELECT dropped FROM runs"), 2);
	assert_int_equal(query_int(db, "SELECT last_step FROM runs"), 11);
	assert_int_equal(query_int(db, "SELECT project IS NULL FROM runs"), 1);
	assert_int_equal(query_int(db, "SELECT last_seen FROM runs"), 3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM series"), 1);
	store_close(st);
	free(m);
}

/* Make the writing of any chunk that meets steps 7777-7786 fail. */
static void
install_bad_chunk(sqlite3 *db)
{
	assert_int_equal(sqlite3_exec(db, "CREATE TEMP TRIGGER bad_chunk_i "
	    "BEFORE INSERT ON chunks WHEN NEW.first_step <= 7786 AND "
	    "NEW.last_step >= 7777 BEGIN SELECT RAISE(ABORT, 'bad chunk'); END;"
	    "CREATE TEMP TRIGGER bad_chunk_u "
	    "BEFORE UPDATE ON chunks WHEN NEW.first_step <= 7786 AND "
	    "NEW.last_step >= 7777 BEGIN SELECT RAISE(ABORT, 'bad chunk'); END;"
	    "CREATE TEMP TRIGGER bad_tail_i "
	    "BEFORE INSERT ON tails WHEN NEW.first_step <= 7786 AND "
	    "NEW.last_step >= 7777 BEGIN SELECT RAISE(ABORT, 'bad chunk'); END",
	    NULL, NULL, NULL), SQLITE_OK);
}

static void
drop_bad_chunk(sqlite3 *db)
{
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER bad_chunk_i; "
	    "DROP TRIGGER bad_chunk_u; DROP TRIGGER bad_tail_i", NULL, NULL,
	    NULL), SQLITE_OK);
}

static void
test_commit_fails(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	struct batch	*b;
	char		*cause = NULL;
	int64_t		 rid, s;
	int		 pass;

	(void)state;
	install_bad_chunk(db);
	send_range(st, m, "r", SERIES_LOSS, "loss", 0, 10, 1.0);
	for (pass = 0; pass < 2; pass++) {
		assert_int_equal(store_begin(st, &cause), 0);
		b = batch_new("r");
		for (s = 7777; s < 7787; s++)
			add_point(b, SERIES_LOSS, "loss", s, 2.0);
		assert_int_equal(store_apply(st, b, 2.0, &rid, &cause), 0);
		batch_free(b);
		b = batch_new("q");
		add_point(b, SERIES_LOSS, "loss", 1, 2.0);
		assert_int_equal(store_apply(st, b, 2.0, &rid, &cause), 0);
		batch_free(b);
		if (pass == 1)
			break;
		/* The flush at commit fails: all of it is rolled back. */
		assert_int_equal(store_commit(st, &cause), -1);
		assert_non_null(cause);
		assert_true(strncmp(cause, "store: ", 7) == 0);
		assert_non_null(strstr(cause, "bad chunk"));
		free(cause);
		cause = NULL;
		assert_int_equal(sqlite3_get_autocommit(db), 1);
		assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 1);
		assert_int_equal(query_int(db, "SELECT points FROM runs"), 10);
		check_series(db, "r", "loss", "loss", m);
		drop_bad_chunk(db);
	}
	/* The same again goes through: no stale cache entry remains. */
	assert_int_equal(store_commit(st, &cause), 0);
	for (s = 7777; s < 7787; s++) {
		m->present[s] = 1;
		m->vals[s] = 2.0;
	}
	check_series(db, "r", "loss", "loss", m);
	assert_int_equal(query_int(db, "SELECT points FROM runs WHERE "
	    "key = 'r'"), 20);
	assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 2);
	store_close(st);
	free(m);
}

/* A resend must flush the buffered appends first; that may fail too. */
static void
test_preflush_fails(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	struct batch	*b;
	char		*cause = NULL;
	int64_t		 rid, s;

	(void)state;
	install_bad_chunk(db);
	assert_int_equal(store_begin(st, &cause), 0);
	b = batch_new("r");
	for (s = 7777; s < 7787; s++) {
		add_point(b, SERIES_LOSS, "loss", s, 1.0);
		m->present[s] = 1;
		m->vals[s] = 1.0;
	}
	assert_int_equal(store_apply(st, b, 1.0, &rid, &cause), 0);
	batch_free(b);
	b = batch_new("r");
	b->dropped = 9;
	add_point(b, SERIES_LR, "lr", 1, 1.0);
	add_point(b, SERIES_LOSS, "loss", 7780, 5.0);
	assert_int_equal(store_apply(st, b, 2.0, &rid, &cause), -1);
	assert_non_null(strstr(cause, "bad chunk"));
	free(cause);
	cause = NULL;
	batch_free(b);
	/* The buffered points survived; the failed batch left nothing. */
	drop_bad_chunk(db);
	assert_int_equal(store_commit(st, &cause), 0);
	check_series(db, "r", "loss", "loss", m);
	assert_int_equal(series_id(db, "r", "lr", "lr"), -1);
	assert_int_equal(query_int(db, "SELECT points FROM runs"), 10);
	assert_int_equal(query_int(db, "SELECT dropped FROM runs"), 0);
	store_close(st);
	free(m);
}

static void
test_rollback(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct model	*m = xcalloc(1, sizeof *m);
	struct batch	*b;
	char		*cause = NULL;
	int64_t		 rid, s;

	(void)state;
	send_range(st, m, "r", SERIES_LOSS, "loss", 0, 5, 1.0);
	assert_int_equal(store_begin(st, &cause), 0);
	b = batch_new("r");
	for (s = 3; s < 8; s++)
		add_point(b, SERIES_LOSS, "loss", s, 50.0);
	add_point(b, SERIES_LR, "lr", 0, 1.0);
	assert_int_equal(store_apply(st, b, 2.0, &rid, &cause), 0);
	batch_free(b);
	b = batch_new("new-run");
	add_point(b, SERIES_LOSS, "loss", 0, 1.0);
	assert_int_equal(store_apply(st, b, 2.0, &rid, &cause), 0);
	batch_free(b);
	store_rollback(st);

	check_series(db, "r", "loss", "loss", m);
	assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 1);
	/* Later appends see the rolled-back state, not the cached one. */
	send_range(st, m, "r", SERIES_LOSS, "loss", 5, 7, 2.0);
	send_range(st, NULL, "new-run", SERIES_LOSS, "loss", 0, 1, 2.0);
	b = batch_new("r");
	add_point(b, SERIES_LR, "lr", 0, 1.0);
	apply1(st, b, 3.0);
	check_series(db, "r", "loss", "loss", m);
	assert_int_equal(query_int(db, "SELECT points FROM runs WHERE "
	    "key = 'r'"), 8);
	assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM series"), 3);
	/* Rolling back with no transaction open is harmless. */
	store_rollback(st);
	store_close(st);
	free(m);
}

/* ---- runs ------------------------------------------------------------- */

static void
test_finish_run(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	char		*cause = NULL;
	int64_t		 rid, fid = -1;

	(void)state;
	rid = apply1(st, batch_new("r"), 1.0);
	assert_true(rid > 0);
	assert_int_equal(query_int(db, "SELECT status = 'running' FROM runs"),
	    1);
	assert_int_equal(store_begin(st, &cause), 0);
	assert_int_equal(store_finish_run(st, "r", "finished", 5.0, &fid,
	    &cause), 0);
	assert_int_equal(fid, rid);
	assert_int_equal(store_finish_run(st, "nope", "finished", 5.0, &fid,
	    &cause), 1);
	assert_int_equal(store_commit(st, &cause), 0);
	assert_int_equal(query_int(db, "SELECT status = 'finished' FROM runs"),
	    1);
	assert_int_equal(query_int(db, "SELECT last_seen FROM runs"), 5);
	assert_int_equal(query_int(db, "SELECT started_at FROM runs"), 1);

	assert_int_equal(store_begin(st, &cause), 0);
	assert_int_equal(store_finish_run(st, "r", "failed", 6.0, &fid,
	    &cause), 0);
	assert_int_equal(store_finish_run(st, "r", "exploded", 7.0, &fid,
	    &cause), -1);
	assert_non_null(cause);
	assert_true(strncmp(cause, "store: ", 7) == 0);
	free(cause);
	cause = NULL;
	assert_int_equal(store_commit(st, &cause), 0);
	assert_int_equal(query_int(db, "SELECT status = 'failed' FROM runs"),
	    1);
	assert_int_equal(query_int(db, "SELECT last_seen FROM runs"), 6);
	assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 1);
	store_close(st);
}

/* Tags and a note: each set alone leaves the other; ingest keeps both. */
static void
test_annotate_run(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	char		*cause = NULL;
	int64_t		 rid, aid = -1;

	(void)state;
	rid = apply1(st, batch_new("r"), 1.0);
	assert_true(rid > 0);
	assert_int_equal(query_int(db, "SELECT tags IS NULL AND note IS NULL "
	    "FROM runs"), 1);
	assert_int_equal(store_begin(st, &cause), 0);
	assert_int_equal(store_annotate_run(st, "r", "[\"a\",\"b\"]", "hi",
	    &aid, &cause), 0);
	assert_int_equal(aid, rid);
	assert_int_equal(store_annotate_run(st, "nope", "[]", NULL, &aid,
	    &cause), 1);
	assert_int_equal(store_commit(st, &cause), 0);
	assert_int_equal(query_int(db, "SELECT tags = '[\"a\",\"b\"]' AND "
	    "note = 'hi' FROM runs"), 1);

	assert_int_equal(store_begin(st, &cause), 0);
	assert_int_equal(store_annotate_run(st, "r", NULL, "there", &aid,
	    &cause), 0);
	assert_int_equal(store_commit(st, &cause), 0);
	assert_int_equal(query_int(db, "SELECT tags = '[\"a\",\"b\"]' AND "
	    "note = 'there' FROM runs"), 1);
	assert_int_equal(store_begin(st, &cause), 0);
	assert_int_equal(store_annotate_run(st, "r", "[]", NULL, &aid,
	    &cause), 0);
	assert_int_equal(store_commit(st, &cause), 0);
	assert_int_equal(query_int(db, "SELECT tags = '[]' AND "
	    "note = 'there' FROM runs"), 1);

	/* Ingest and finish leave them alone; last_seen is not touched. */
	assert_int_equal(apply1(st, batch_new("r"), 9.0), rid);
	assert_int_equal(store_begin(st, &cause), 0);
	assert_int_equal(store_finish_run(st, "r", "finished", 10.0, &aid,
	    &cause), 0);
	assert_int_equal(store_annotate_run(st, "r", "[\"c\"]", NULL, &aid,
	    &cause), 0);
	assert_int_equal(store_commit(st, &cause), 0);
	assert_int_equal(query_int(db, "SELECT tags = '[\"c\"]' AND "
	    "note = 'there' AND last_seen = 10 FROM runs"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 1);
	store_close(st);
}

static void
test_run_counters(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct batch	*b;
	char		*cause = NULL;
	int64_t		 rid1, rid2, s;

	(void)state;
	b = batch_new("r");
	b->project = xstrdup("cifar");
	b->config_json = xstrdup("{\"lr\":0.1}");
	b->meta_json = xstrdup("{\"project\":\"cifar\"}");
	b->dropped = 3;
	for (s = 100; s < 110; s++) {
		add_step(b, s);
		add_point(b, SERIES_LOSS, "loss", s, 1.0);
		add_point(b, SERIES_LR, "lr", s, 0.1);
	}
	rid1 = apply1(st, b, 10.0);

	/* No meta: kept.  Earlier steps: first_step moves. */
	b = batch_new("r");
	b->dropped = 4;
	for (s = 50; s < 55; s++) {
		add_step(b, s);
		add_point(b, SERIES_LOSS, "loss", s, 1.0);
	}
	rid2 = apply1(st, b, 20.0);
	assert_int_equal(rid1, rid2);
	assert_int_equal(query_int(db, "SELECT points FROM runs"), 25);
	assert_int_equal(query_int(db, "SELECT dropped FROM runs"), 7);
	assert_int_equal(query_int(db, "SELECT first_step FROM runs"), 50);
	assert_int_equal(query_int(db, "SELECT last_step FROM runs"), 109);
	assert_int_equal(query_int(db, "SELECT started_at FROM runs"), 10);
	assert_int_equal(query_int(db, "SELECT last_seen FROM runs"), 20);
	assert_int_equal(query_int(db, "SELECT project = 'cifar' AND "
	    "config = '{\"lr\":0.1}' AND meta = '{\"project\":\"cifar\"}' "
	    "FROM runs"), 1);

	/* A meta-only batch updates metadata but no step. */
	b = batch_new("r");
	b->project = xstrdup("imagenet");
	rid2 = apply1(st, b, 30.0);
	assert_int_equal(rid1, rid2);
	assert_int_equal(query_int(db, "SELECT project = 'imagenet' AND "
	    "config = '{\"lr\":0.1}' FROM runs"), 1);
	assert_int_equal(query_int(db, "SELECT first_step FROM runs"), 50);
	assert_int_equal(query_int(db, "SELECT last_step FROM runs"), 109);
	assert_int_equal(query_int(db, "SELECT points FROM runs"), 25);

	/* A new run without steps has NULL steps; another run is separate. */
	rid2 = apply1(st, batch_new("r2"), 40.0);
	assert_true(rid2 != rid1);
	assert_int_equal(query_int(db, "SELECT first_step IS NULL AND "
	    "last_step IS NULL AND points = 0 AND status = 'running' AND "
	    "health = 'ok' FROM runs WHERE key = 'r2'"), 1);
	b = batch_new("r2");
	add_point(b, SERIES_LOSS, "loss", 7, 1.0);
	apply1(st, b, 41.0);
	assert_int_equal(query_int(db, "SELECT first_step = 7 AND "
	    "last_step = 7 FROM runs WHERE key = 'r2'"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM series WHERE "
	    "name = 'loss'"), 2);

	/* Without store_begin, a batch is its own transaction. */
	b = batch_new("r3");
	add_point(b, SERIES_LOSS, "loss", 1, 1.0);
	assert_int_equal(store_apply(st, b, 50.0, &rid2, &cause), 0);
	batch_free(b);
	assert_int_equal(sqlite3_get_autocommit(db), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 3);
	assert_int_equal(query_int(db, "SELECT points = 1 AND last_step = 1 "
	    "FROM series WHERE run_id = (SELECT id FROM runs WHERE "
	    "key = 'r3')"), 1);
	b = batch_new("r3");
	add_point(b, SERIES_LOSS, "loss", 1, 2.5);
	add_point(b, SERIES_LOSS, "loss", 2, 3.5);
	assert_int_equal(store_apply(st, b, 51.0, &rid2, &cause), 0);
	batch_free(b);
	assert_int_equal(query_int(db, "SELECT points = 2 AND last_step = 2 "
	    "AND last_value = 3.5 FROM series WHERE run_id = (SELECT id FROM "
	    "runs WHERE key = 'r3')"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunks WHERE "
	    "series_id IN (SELECT id FROM series WHERE run_id = (SELECT id "
	    "FROM runs WHERE key = 'r3'))"), 1);
	store_close(st);
}

static void
test_layer_meta(void **state)
{
	struct store	*st = open_mem();
	sqlite3		*db = store_db(st);
	struct batch	*b;

	(void)state;
	b = batch_new("r");
	b->layers_meta = xcalloc(2, sizeof *b->layers_meta);
	b->nlayers_meta = 2;
	b->layers_meta[0].name = xstrdup("conv1.weight");
	b->layers_meta[0].numel = 1728;
	b->layers_meta[0].depth = 0;
	b->layers_meta[0].shape_json = xstrdup("[64,3,3,3]");
	b->layers_meta[1].name = xstrdup("fc.bias");
	b->layers_meta[1].numel = 10;
	b->layers_meta[1].depth = -1;
	add_point(b, SERIES_LAYER_GRAD, "conv1.weight", 0, 0.5);
	apply1(st, b, 1.0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM series"), 2);
	assert_int_equal(query_int(db, "SELECT numel = 1728 AND depth = 0 AND "
	    "shape = '[64,3,3,3]' AND points = 1 AND kind = 'layer_grad' "
	    "FROM series WHERE name = 'conv1.weight'"), 1);
	assert_int_equal(query_int(db, "SELECT numel = 10 AND depth IS NULL "
	    "AND shape IS NULL AND points = 0 AND last_step IS NULL AND "
	    "kind = 'layer_grad' FROM series WHERE name = 'fc.bias'"), 1);

	/* Partial metadata keeps what it does not give; data joins it. */
	b = batch_new("r");
	b->layers_meta = xcalloc(1, sizeof *b->layers_meta);
	b->nlayers_meta = 1;
	b->layers_meta[0].name = xstrdup("fc.bias");
	b->layers_meta[0].numel = -1;
	b->layers_meta[0].depth = 3;
	add_point(b, SERIES_LAYER_GRAD, "fc.bias", 4, 0.25);
	add_point(b, SERIES_LAYER_WEIGHT, "fc.bias", 4, 2.0);
	apply1(st, b, 2.0);
	assert_int_equal(query_int(db, "SELECT numel = 10 AND depth = 3 AND "
	    "points = 1 AND last_step = 4 FROM series WHERE name = 'fc.bias' "
	    "AND kind = 'layer_grad'"), 1);
	assert_int_equal(query_int(db, "SELECT numel IS NULL FROM series "
	    "WHERE kind = 'layer_weight'"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM series"), 3);
	store_close(st);
}

/* ---- randomized ------------------------------------------------------- */

#define RND_RUNS	2
#define RND_SERIES	3
#define RND_STEPS	3000

static uint64_t	rnd_state = 0x243f6a8885a308d3ULL;

static uint64_t
rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static double
rnd_value(void)
{
	switch (rnd() % 16) {
	case 0:
		return nan_payload();
	case 1:
		return INFINITY;
	case 2:
		return -INFINITY;
	default:
		return (double)(int64_t)(rnd() % 2000000) / 1000.0 - 1000.0;
	}
}

/*
 * Random batches (appends, resends, scattered and duplicate steps,
 * single steps), grouped into transactions, some batches poisoned and
 * some transactions rolled back; after each transaction every series
 * must match the model.  On a file, reopened now and then so that the
 * cache starts cold.
 */
static void
test_random(void **state)
{
	static const char *const runs[RND_RUNS] = { "ra", "rb" };
	static const char *const names[RND_SERIES] = { "x", "y", "z" };
	struct store	*st;
	sqlite3		*db;
	struct model	*m, *saved, *pend;
	struct batch	*b;
	const char	*path = ((struct tmpdb *)*state)->path;
	char		*cause = NULL, *sql;
	int64_t		 rid, from, len, s, next[RND_RUNS][RND_SERIES];
	int64_t		 points[RND_RUNS], savedpoints[RND_RUNS];
	int64_t		 savednext[RND_RUNS][RND_SERIES];
	size_t		 nm = RND_RUNS * RND_SERIES, tx, i, k, r, j, op, n;
	int		 poison;
	int64_t		 overlaps = 0;

	m = xcalloc(nm, sizeof *m);
	saved = xcalloc(nm, sizeof *saved);
	pend = xcalloc(nm, sizeof *pend);
	memset(next, 0, sizeof next);
	memset(points, 0, sizeof points);
	st = store_open(path, &cause);
	assert_non_null(st);
	db = store_db(st);
	install_poison(db);
	for (tx = 0; tx < 150; tx++) {
		if (tx % 20 == 19) {
			store_close(st);
			st = store_open(path, &cause);
			assert_non_null(st);
			db = store_db(st);
			install_poison(db);
		}
		memcpy(saved, m, nm * sizeof *m);
		memcpy(savedpoints, points, sizeof points);
		memcpy(savednext, next, sizeof next);
		assert_int_equal(store_begin(st, &cause), 0);
		for (k = 0; k < 1 + rnd() % 8; k++) {
			r = rnd() % RND_RUNS;
			b = batch_new(runs[r]);
			memcpy(pend, m, nm * sizeof *m);
			n = 0;
			for (j = 0; j < RND_SERIES; j++) {
				struct model	*pm = &pend[r * RND_SERIES + j];
				int64_t		*nx = &next[r][j];
				size_t		 si;

				if (rnd() % 4 == 0)
					continue;
				si = batch_series_get(b, SERIES_LAYER_GRAD,
				    names[j]);
				op = rnd() % 10;
				if (op == 3) {		/* fill holes late */
					len = 1 + (int64_t)(rnd() % 100);
					for (s = (int64_t)(rnd() % (uint64_t)
					    (*nx + 1)); s < *nx && len > 0;
					    s++) {
						double	v = rnd_value();

						if (pm->present[s])
							continue;
						batch_series_push(b, si, s, v);
						pm->present[s] = 1;
						pm->vals[s] = v;
						len--;
						n++;
					}
					continue;
				}
				if (op < 3) {		/* append */
					len = op == 0 ? 1 + (int64_t)(rnd() %
					    3) : 1 + (int64_t)(rnd() % 200);
					/* Leaving a hole now and then. */
					from = *nx + (op == 1 ? (int64_t)(rnd() %
					    40) : 0);
				} else if (op < 7) {	/* resend a range */
					from = (int64_t)(rnd() % (uint64_t)
					    (*nx + 1));
					len = 1 + (int64_t)(rnd() % 300);
				} else {		/* scattered steps */
					from = -1;
					len = 1 + (int64_t)(rnd() % 40);
				}
				if (op == 9 && rnd() % 4 == 0)
					len = 5000;	/* a split */
				for (s = 0; s < len; s++) {
					int64_t	step;
					double	v = rnd_value();

					step = from >= 0 ? from + s :
					    (int64_t)(rnd() % RND_STEPS);
					if (step >= RND_STEPS)
						break;
					batch_series_push(b, si, step, v);
					pm->present[step] = 1;
					pm->vals[step] = v;
					if (step >= *nx)
						*nx = step + 1;
					n++;
				}
			}
			poison = rnd() % 7 == 0;
			if (poison)
				add_point(b, SERIES_METRIC, "poison", 1, 1.0);
			if (store_apply(st, b, (double)tx, &rid, &cause) ==
			    0) {
				assert_false(poison);
				memcpy(m, pend, nm * sizeof *m);
				points[r] += (int64_t)n;
			} else {
				assert_true(poison);
				free(cause);
				cause = NULL;
				/* Undo the steps the batch would have added. */
				for (j = 0; j < RND_SERIES; j++) {
					struct model	*pm;

					pm = &m[r * RND_SERIES + j];
					next[r][j] = 0;
					for (s = 0; s < RND_STEPS; s++)
						if (pm->present[s])
							next[r][j] = s + 1;
				}
			}
			batch_free(b);
		}
		if (rnd() % 5 == 0) {
			store_rollback(st);
			memcpy(m, saved, nm * sizeof *m);
			memcpy(points, savedpoints, sizeof points);
			memcpy(next, savednext, sizeof next);
		} else
			assert_int_equal(store_commit(st, &cause), 0);

		check_tail_counts(st);
		/* Late points in a tail got rows of their own. */
		overlaps += query_int(db, "SELECT count(*) FROM tails a JOIN "
		    "tails b ON a.series_id = b.series_id AND a.id < b.id AND "
		    "b.first_step < a.last_step AND a.first_step < "
		    "b.last_step");
		for (i = 0; i < nm; i++) {
			r = i / RND_SERIES;
			if (series_id(db, runs[r], "layer_grad",
			    names[i % RND_SERIES]) == -1) {
				for (s = 0; s < RND_STEPS; s++)
					assert_int_equal(m[i].present[s], 0);
				continue;
			}
			check_series(db, runs[r], "layer_grad",
			    names[i % RND_SERIES], &m[i]);
		}
		for (r = 0; r < RND_RUNS; r++) {
			/* Distinct points: the sum of its series' (checked). */
			xasprintf(&sql, "SELECT coalesce((SELECT points FROM "
			    "runs WHERE key = '%s'), 0) = coalesce((SELECT "
			    "sum(s.points) FROM series s JOIN runs r ON "
			    "r.id = s.run_id WHERE r.key = '%s'), 0)", runs[r],
			    runs[r]);
			assert_int_equal(query_int(db, sql), 1);
			free(sql);
		}
	}
	assert_int_equal(query_int(db, "SELECT count(*) FROM series WHERE "
	    "name = 'poison'"), 0);
	assert_true(overlaps > 0);
	/* Rewritten and deleted chunks took their summaries with them. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM chunk_blocks "
	    "WHERE chunk_id NOT IN (SELECT id FROM chunks)"), 0);
	assert_true(query_int(db, "SELECT count(*) FROM chunk_blocks") > 0);
	store_close(st);
	free(m);
	free(saved);
	free(pend);
}


/* 1 when st writes no remote_log rows (no remote-write target). */
static int
store_int_remote_off(const struct store *st)
{
	return st->remote_log == NULL;
}

/*
 * Apply steps [from, to) of loss (and of layer, when not NULL) as one
 * batch of run, in descending order when rev, with step dup twice when
 * dup >= 0: its remote_log row when store_remote_row() says it is plain,
 * else 0 (a row is written either way when remote-write is on).
 */
static int64_t
plain_after(struct store *st, const char *run, const char *layer,
    int64_t from, int64_t to, int rev, int64_t dup)
{
	struct batch	*b = batch_new(run);
	char		*cause = NULL;
	int64_t		 rid, i, step, got;
	int		 plain;

	for (i = from; i < to; i++) {
		step = rev ? to - 1 - (i - from) : i;
		add_point(b, SERIES_LOSS, "loss", step, (double)step);
		if (layer != NULL)
			add_point(b, SERIES_LAYER_GRAD, layer, step, 1.0);
		add_step(b, step);
		if (step == dup)
			add_point(b, SERIES_LOSS, "loss", step, -1.0);
	}
	assert_int_equal(store_begin(st, &cause), 0);
	if (store_apply(st, b, 1.0, &rid, &cause) != 0)
		fail_msg("store_apply: %s", cause);
	got = store_remote_row(st, &plain);
	assert_true(got > 0 || store_int_remote_off(st));
	got = plain ? got : 0;
	if (store_commit(st, &cause) != 0)
		fail_msg("store_commit: %s", cause);
	batch_free(b);
	return got;
}

/*
 * store_remote_row: a batch is "plain" (sent to remote-write from
 * memory) only when it holds exactly what its log row names: each
 * series ascending and distinct, every step above the run's earlier
 * ones.  A wrong "plain" would send a re-sent step without the values
 * stored around it; a wrong "not plain" only costs a read.
 */
static void
test_plain_log(void **state)
{
	struct store		*st = open_mem();
	struct store_remote	*sr;
	char			 name[] = "t", *cause = NULL;
	struct remote_target	 t = { .name = name, .layer_every = 1 };
	int64_t			 a, b;

	(void)state;
	/* Without remote-write there is no log row to name. */
	assert_int_equal(plain_after(st, "r0", NULL, 0, 10, 0, -1), 0);
	if ((sr = store_remote_new(st, &t, 1, &cause)) == NULL)
		fail_msg("store_remote_new: %s", cause);
	/* A new run's first batch, and the next one above it. */
	a = plain_after(st, "r", "l1", 0, 10, 0, -1);
	assert_true(a > 0);
	b = plain_after(st, "r", "l1", 10, 20, 0, -1);
	assert_true(b > a);
	assert_int_equal(query_int(store_db(st),
	    "SELECT max(id) FROM remote_log"), b);
	/* Steps sent again, in part or whole: not plain. */
	assert_int_equal(plain_after(st, "r", "l1", 15, 25, 0, -1), 0);
	assert_int_equal(plain_after(st, "r", "l1", 25, 26, 0, -1) > 0, 1);
	/* Descending, or a step twice (the store reorders, the last wins). */
	assert_int_equal(plain_after(st, "r", "l1", 30, 40, 1, -1), 0);
	assert_int_equal(plain_after(st, "r", "l1", 40, 50, 0, 45), 0);
	/* A new series below the run's last step: the series appends, the run does not. */
	assert_int_equal(plain_after(st, "r", "l2", 0, 5, 0, -1), 0);
	/* A new series above it: plain. */
	assert_true(plain_after(st, "r", "l3", 50, 60, 0, -1) > 0);
	/* After the cache is emptied the run's steps are learnt again. */
	store_rollback(st);
	assert_int_equal(plain_after(st, "r", "l1", 60, 70, 0, -1), 0);
	assert_true(plain_after(st, "r", "l1", 70, 80, 0, -1) > 0);
	assert_int_equal(plain_after(st, "r", "l1", 79, 90, 0, -1), 0);
	/* Another run is its own. */
	assert_true(plain_after(st, "r2", NULL, 0, 10, 0, -1) > 0);
	store_remote_free(sr);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_memory),
		cmocka_unit_test_setup_teardown(test_reopen_file, tmpdb_setup,
		    tmpdb_teardown),
		cmocka_unit_test_setup_teardown(test_newer_refused, tmpdb_setup,
		    tmpdb_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_v1, tmpdb_setup,
		    tmpdb_teardown),
		cmocka_unit_test(test_open_bad_path),
		cmocka_unit_test(test_append_nonfinite),
		cmocka_unit_test(test_resend_replaces),
		cmocka_unit_test(test_overlap_partial),
		cmocka_unit_test(test_interleaved),
		cmocka_unit_test(test_wide_chunk),
		cmocka_unit_test(test_unsorted_duplicates),
		cmocka_unit_test(test_tail_merge),
		cmocka_unit_test(test_tail_deleted),
		cmocka_unit_test(test_run_deleted),
		cmocka_unit_test(test_group),
		cmocka_unit_test(test_failed_batch),
		cmocka_unit_test(test_commit_fails),
		cmocka_unit_test(test_preflush_fails),
		cmocka_unit_test(test_rollback),
		cmocka_unit_test(test_seal_round),
		cmocka_unit_test(test_tail_memory),
		cmocka_unit_test_setup_teardown(test_small_pages, tmpdb_setup,
		    tmpdb_teardown),
		cmocka_unit_test_setup_teardown(test_backfill, tmpdb_setup,
		    tmpdb_teardown),
		cmocka_unit_test(test_plain_log),
		cmocka_unit_test(test_finish_run),
		cmocka_unit_test(test_annotate_run),
		cmocka_unit_test(test_run_counters),
		cmocka_unit_test(test_layer_meta),
		cmocka_unit_test_setup_teardown(test_late_points, tmpdb_setup,
		    tmpdb_teardown),
		cmocka_unit_test_setup_teardown(test_random, tmpdb_setup,
		    tmpdb_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

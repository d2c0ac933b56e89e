/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of publish.c, the writer's side of the live stream, on a
 * real store (a database file in a scratch folder).  The stream is
 * replaced by a recorder (this file defines ws_stream_publish,
 * ws_stream_publish_lazy and ws_stream_clients) that builds every lazy
 * message at once, so each test reads the messages a viewer would get:
 * nothing while nobody watches; one step message for a batch's last
 * step with its loss, norms and layers; a message for every step with
 * a non-finite value (the earliest PUBLISH_MAX_NONFINITE), never
 * coalescable; a run message only when the run is new or its status or
 * health changed; an alert message with the alert's API object.
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
#include "publish.h"
#include "store.h"
#include "store_int.h"
#include "ws_stream.h"
#include "xmalloc.h"

/* ---- the recorder standing in for the stream -------------------------- */

#define MAX_MSGS	256

struct msg {
	enum ws_stream_kind	 kind;
	char			*run;
	json_t			*json;
};

static struct msg	msgs[MAX_MSGS];
static size_t		nmsgs;
static size_t		viewers;

static void
record(enum ws_stream_kind kind, const char *run, const char *s, size_t len)
{
	json_error_t	err;

	assert_true(nmsgs < MAX_MSGS);
	msgs[nmsgs].kind = kind;
	msgs[nmsgs].run = xstrdup(run);
	msgs[nmsgs].json = json_loadb(s, len, 0, &err);
	if (msgs[nmsgs].json == NULL)
		fail_msg("not JSON (%s): %.*s", err.text, (int)len, s);
	nmsgs++;
}

void
ws_stream_publish(struct ws_stream *ws, enum ws_stream_kind kind,
    const char *run, const char *json, size_t len)
{
	(void)ws;
	record(kind, run, json, len);
}

void
ws_stream_publish_lazy(struct ws_stream *ws, enum ws_stream_kind kind,
    const char *run, void *arg, size_t size, ws_stream_build_cb build,
    ws_stream_free_cb free_arg)
{
	char	*s;
	size_t	 len;

	(void)ws;
	assert_true(size > 0);
	s = build(arg, &len);
	record(kind, run, s, len);
	free(s);
	free_arg(arg);
}

size_t
ws_stream_clients(struct ws_stream *ws)
{
	(void)ws;
	return viewers;
}

static void
msgs_clear(void)
{
	size_t	i;

	for (i = 0; i < nmsgs; i++) {
		free(msgs[i].run);
		json_decref(msgs[i].json);
	}
	nmsgs = 0;
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	char		 dir[64];
	char		 path[96];
	struct store	*st;
	struct publish	*p;
};

/* A non-NULL stream pointer: the recorder never looks at it. */
static struct ws_stream	*const fake_ws = (struct ws_stream *)&viewers;

static int
fx_setup(void **state)
{
	struct fx	*fx = xcalloc(1, sizeof *fx);
	char		*cause = NULL;

	snprintf(fx->dir, sizeof fx->dir, "/tmp/gw-publish.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/t.db", fx->dir);
	if ((fx->st = store_open(fx->path, &cause)) == NULL)
		fail_msg("store_open: %s", cause);
	fx->p = publish_new(fake_ws);
	viewers = 1;
	nmsgs = 0;
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx	*fx = *state;
	char		 path[128];

	msgs_clear();
	publish_free(fx->p);
	store_close(fx->st);
	unlink(fx->path);
	snprintf(path, sizeof path, "%s-wal", fx->path);
	unlink(path);
	snprintf(path, sizeof path, "%s-shm", fx->path);
	unlink(path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void
add_step(struct batch *b, int64_t step)
{
	b->steps = xreallocarray(b->steps, b->nsteps + 1, sizeof *b->steps);
	b->steps[b->nsteps++] = step;
}

static void
add_point(struct batch *b, enum series_kind kind, const char *name,
    int64_t step, double v)
{
	batch_series_push(b, batch_series_get(b, kind, name), step, v);
}

/* Steps from..to of loss (1/step), grad_norm (step) and layer fc1 (2). */
static struct batch *
healthy(const char *run, int64_t from, int64_t to)
{
	struct batch	*b = batch_new(run);
	int64_t		 s;

	for (s = from; s <= to; s++) {
		add_step(b, s);
		add_point(b, SERIES_LOSS, "loss", s, 1.0 / (double)s);
		add_point(b, SERIES_GRAD_NORM, "grad_norm", s, (double)s);
		add_point(b, SERIES_LAYER_GRAD, "fc1", s, 2.0);
		add_point(b, SERIES_METRIC, "acc", s, 0.5);
	}
	return b;
}

/* Store b in a transaction of its own; its run id. */
static int64_t
commit(struct fx *fx, const struct batch *b)
{
	char	*cause = NULL;
	int64_t	 rid = -1;

	assert_int_equal(store_begin(fx->st, &cause), 0);
	if (store_apply(fx->st, b, 100.0, &rid, &cause) != 0)
		fail_msg("store_apply: %s", cause);
	if (store_commit(fx->st, &cause) != 0)
		fail_msg("store_commit: %s", cause);
	return rid;
}

static int64_t
step_of(const struct msg *m)
{
	return json_integer_value(json_object_get(m->json, "step"));
}

/* ---- tests -------------------------------------------------------------- */

static void
test_nobody_watches(void **state)
{
	struct fx	*fx = *state;
	struct batch	*b = healthy("r1", 1, 5);
	int64_t		 rid = commit(fx, b);

	viewers = 0;
	assert_false(publish_is_wanted(fx->p));
	publish_batch(fx->p, b);
	publish_run(fx->p, fx->st, rid, 1);
	assert_int_equal(nmsgs, 0);
	viewers = 1;
	assert_true(publish_is_wanted(fx->p));
	batch_free(b);
}

static void
test_last_step(void **state)
{
	struct fx	*fx = *state;
	struct batch	*b = healthy("r1", 1, 50);
	json_t		*o;

	commit(fx, b);
	publish_batch(fx->p, b);
	assert_int_equal(nmsgs, 1);
	assert_int_equal(msgs[0].kind, WS_STREAM_STEP);
	assert_string_equal(msgs[0].run, "r1");
	o = msgs[0].json;
	assert_string_equal(json_string_value(json_object_get(o, "type")),
	    "step");
	assert_int_equal(step_of(&msgs[0]), 50);
	assert_true(json_real_value(json_object_get(o, "loss")) == 1.0 / 50);
	assert_true(json_real_value(json_object_get(o, "grad_norm")) == 50);
	assert_true(json_real_value(json_object_get(json_object_get(o,
	    "layers"), "fc1")) == 2.0);
	/* Metrics are not step series. */
	assert_null(json_object_get(o, "acc"));
	batch_free(b);
}

static void
test_nonfinite_steps(void **state)
{
	struct fx	*fx = *state;
	struct batch	*b = healthy("r1", 1, 10);
	json_t		*o;

	/* A NaN loss at 3, an infinite layer at 7: both steps get a message. */
	add_point(b, SERIES_LOSS, "loss", 3, NAN);
	add_point(b, SERIES_LAYER_GRAD, "fc1", 7, INFINITY);
	commit(fx, b);
	publish_batch(fx->p, b);
	assert_int_equal(nmsgs, 3);
	assert_int_equal(msgs[0].kind, WS_STREAM_STEP_NONFINITE);
	assert_int_equal(step_of(&msgs[0]), 3);
	/* For a repeated step the last value wins, as the store keeps it. */
	o = msgs[0].json;
	assert_string_equal(json_string_value(json_object_get(o, "loss")),
	    "NaN");
	assert_int_equal(msgs[1].kind, WS_STREAM_STEP_NONFINITE);
	assert_int_equal(step_of(&msgs[1]), 7);
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(msgs[1].json, "layers"), "fc1")), "Infinity");
	assert_int_equal(msgs[2].kind, WS_STREAM_STEP);
	assert_int_equal(step_of(&msgs[2]), 10);
	batch_free(b);
}

static void
test_nonfinite_bounded(void **state)
{
	struct fx	*fx = *state;
	struct batch	*b = batch_new("r1");
	int64_t		 s, n = 3 * PUBLISH_MAX_NONFINITE;
	size_t		 i;

	/* Every step NaN, given latest first: the earliest are kept. */
	for (s = n; s >= 1; s--) {
		add_step(b, s);
		add_point(b, SERIES_GRAD_NORM, "grad_norm", s, NAN);
	}
	commit(fx, b);
	publish_batch(fx->p, b);
	assert_int_equal(nmsgs, PUBLISH_MAX_NONFINITE + 1);
	for (i = 0; i < PUBLISH_MAX_NONFINITE; i++) {
		assert_int_equal(msgs[i].kind, WS_STREAM_STEP_NONFINITE);
		assert_int_equal(step_of(&msgs[i]), (int64_t)i + 1);
	}
	assert_int_equal(msgs[i].kind, WS_STREAM_STEP);
	assert_int_equal(step_of(&msgs[i]), n);
	batch_free(b);
}

static void
test_run_changes(void **state)
{
	struct fx	*fx = *state;
	struct batch	*b = healthy("r1", 1, 5);
	char		*cause = NULL;
	int64_t		 rid = commit(fx, b), got;
	json_t		*run;

	publish_run(fx->p, fx->st, rid, 0);
	assert_int_equal(nmsgs, 1);
	assert_int_equal(msgs[0].kind, WS_STREAM_RUN);
	run = json_object_get(msgs[0].json, "run");
	assert_string_equal(json_string_value(json_object_get(run, "run")),
	    "r1");
	assert_string_equal(json_string_value(json_object_get(run, "status")),
	    "running");
	assert_null(json_object_get(run, "meta"));	/* not on the stream */
	/* Known and unchanged: no query, no message. */
	publish_run(fx->p, fx->st, rid, 0);
	publish_run(fx->p, fx->st, rid, 1);
	assert_int_equal(nmsgs, 1);
	/* The run finishes: one message with the new status. */
	assert_int_equal(store_begin(fx->st, &cause), 0);
	assert_int_equal(store_finish_run(fx->st, "r1", "finished", 101.0,
	    &got, &cause), 0);
	assert_int_equal(store_commit(fx->st, &cause), 0);
	assert_int_equal(got, rid);
	publish_run(fx->p, fx->st, rid, 1);
	assert_int_equal(nmsgs, 2);
	run = json_object_get(msgs[1].json, "run");
	assert_string_equal(json_string_value(json_object_get(run, "status")),
	    "finished");
	/* New tags: a message though status and health are the same. */
	assert_int_equal(store_begin(fx->st, &cause), 0);
	assert_int_equal(store_annotate_run(fx->st, "r1", "[\"a\"]", "n",
	    &got, &cause), 0);
	assert_int_equal(store_commit(fx->st, &cause), 0);
	publish_run(fx->p, fx->st, rid, 1);
	assert_int_equal(nmsgs, 2);
	publish_run(fx->p, fx->st, rid, PUBLISH_RUN_ALWAYS);
	assert_int_equal(nmsgs, 3);
	run = json_object_get(msgs[2].json, "run");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(run, "tags"), 0)), "a");
	assert_string_equal(json_string_value(json_object_get(run, "note")),
	    "n");
	/* An unknown run: nothing. */
	publish_run(fx->p, fx->st, rid + 100, PUBLISH_RUN_ALWAYS);
	assert_int_equal(nmsgs, 3);
	batch_free(b);
}

static void
test_alert(void **state)
{
	struct fx	*fx = *state;
	struct batch	*b = healthy("r1", 1, 5);
	int64_t		 rid = commit(fx, b), aid;
	sqlite3_stmt	*s;
	json_t		*a;

	assert_int_equal(sqlite3_prepare_v2(fx->st->db,
	    "INSERT INTO alerts (run_id, kind, severity, state, series,"
	    " onset_step, fire_step, fired_at, value, value_class, baseline,"
	    " threshold, message) VALUES (?1, 'nonfinite', 'critical',"
	    " 'firing', 'loss', 4, 4, 100.0, NULL, 1, 0.5, NULL, 'loss is NaN')",
	    -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, rid);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	aid = sqlite3_last_insert_rowid(fx->st->db);

	publish_alert(fx->p, fx->st, aid);
	assert_int_equal(nmsgs, 1);
	assert_int_equal(msgs[0].kind, WS_STREAM_ALERT);
	assert_string_equal(msgs[0].run, "r1");
	assert_string_equal(json_string_value(json_object_get(msgs[0].json,
	    "type")), "alert");
	a = json_object_get(msgs[0].json, "alert");
	assert_int_equal(json_integer_value(json_object_get(a, "id")), aid);
	assert_string_equal(json_string_value(json_object_get(a, "kind")),
	    "nonfinite");
	assert_string_equal(json_string_value(json_object_get(a, "value")),
	    "NaN");
	/* An alert that is not there: nothing. */
	publish_alert(fx->p, fx->st, aid + 1);
	assert_int_equal(nmsgs, 1);
	batch_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nobody_watches,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_last_step,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_nonfinite_steps,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_nonfinite_bounded,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_run_changes,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_alert,
		    fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

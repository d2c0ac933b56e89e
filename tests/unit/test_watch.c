/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of watch.c, the writer's side of detection, with the real
 * detector on its own thread and a real store (a database file in a
 * scratch folder): a committed batch handed over gets a ticket; a
 * healthy one is answered without a transaction; a NaN's alert is
 * written in the writer's next transaction (the alert row, the run's
 * health) and reported as changed; tickets only grow; after a restart
 * the restored detector knows the alert still fires and does not write
 * it twice, and so does a run evicted and refilled from its history.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "batch.h"
#include "detector.h"
#include "store.h"
#include "store_int.h"
#include "watch.h"
#include "xmalloc.h"

#define NOW	1764061200.0

struct fx {
	char			 dir[64];
	char			 path[96];
	struct store		*st;
	struct detector_config	*cfg;
	struct watch		*w;
	atomic_int		 wakes;
};

static void
wake_cb(void *arg)
{
	struct fx	*fx = arg;

	atomic_fetch_add(&fx->wakes, 1);
}

static void
fx_watch(struct fx *fx)
{
	fx->w = watch_new(fx->cfg, NULL);
	watch_restore(fx->w, fx->st, NULL);
	watch_start(fx->w, 1 << 20, wake_cb, fx);
}

static int
fx_setup(void **state)
{
	struct fx	*fx = xcalloc(1, sizeof *fx);
	char		*cause = NULL;

	snprintf(fx->dir, sizeof fx->dir, "/tmp/gw-watch.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/t.db", fx->dir);
	if ((fx->st = store_open(fx->path, &cause)) == NULL)
		fail_msg("store_open: %s", cause);
	fx->cfg = detector_config_new();
	fx_watch(fx);
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx	*fx = *state;
	char		 path[128];

	watch_free(fx->w);
	detector_config_free(fx->cfg);
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

static int64_t
int_of(struct fx *fx, const char *sql)
{
	sqlite3_stmt	*s;
	int64_t		 v = -1;

	assert_int_equal(sqlite3_prepare_v2(fx->st->db, sql, -1, &s, NULL),
	    SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static char *
text_of(struct fx *fx, const char *sql)
{
	sqlite3_stmt	*s;
	char		*v = NULL;

	assert_int_equal(sqlite3_prepare_v2(fx->st->db, sql, -1, &s, NULL),
	    SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
		v = xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return v;
}

/* Steps from..to of a healthy run; nan_at (0: none) has a NaN loss. */
static struct batch *
steps(int64_t from, int64_t to, int64_t nan_at)
{
	struct batch	*b = batch_new("r1");
	int64_t		 s;
	double		 loss;

	for (s = from; s <= to; s++) {
		b->steps = xreallocarray(b->steps, b->nsteps + 1,
		    sizeof *b->steps);
		b->steps[b->nsteps++] = s;
		loss = s == nan_at ? NAN : 2.0 / (1.0 + 0.01 * (double)s);
		batch_series_push(b, batch_series_get(b, SERIES_LOSS, "loss"),
		    s, loss);
		batch_series_push(b, batch_series_get(b, SERIES_GRAD_NORM,
		    "grad_norm"), s, 1.0 + 0.05 * (double)(s % 7));
	}
	return b;
}

/*
 * What the writer does with a request: commit b, hand it to detection
 * (which takes it), wait for detection, then write what came back in a
 * transaction when there is anything.  Returns the batch's ticket; sets
 * *events to how many events were waiting.
 */
static uint64_t
round_trip(struct fx *fx, struct batch *b, double now, size_t *events)
{
	char		*cause = NULL;
	int64_t		 rid = -1;
	uint64_t	 ticket, done = 0, written;

	assert_int_equal(store_begin(fx->st, &cause), 0);
	if (store_apply(fx->st, b, now, &rid, &cause) != 0)
		fail_msg("store_apply: %s", cause);
	assert_int_equal(store_commit(fx->st, &cause), 0);
	ticket = watch_batch(fx->w, rid, b, now);
	assert_int_equal(watch_last(fx->w), ticket);
	watch_drain(fx->w);
	*events = watch_poll(fx->w, &done);
	if (*events == 0) {
		/* Nothing to write: every ticket so far is answered as is. */
		assert_true(done >= ticket);
		return ticket;
	}
	assert_int_equal(store_begin(fx->st, &cause), 0);
	written = watch_apply(fx->w, fx->st, now);
	assert_int_equal(store_commit(fx->st, &cause), 0);
	assert_true(written >= ticket);
	return ticket;
}

static void
test_healthy_needs_no_transaction(void **state)
{
	struct fx	*fx = *state;
	const int64_t	*alerts, *runs;
	size_t		 na, nr, events;
	uint64_t	 t1, t2;

	t1 = round_trip(fx, steps(1, 50, 0), NOW, &events);
	assert_int_equal(events, 0);
	t2 = round_trip(fx, steps(51, 100, 0), NOW + 1, &events);
	assert_int_equal(events, 0);
	assert_true(t2 > t1);
	watch_changes(fx->w, &alerts, &na, &runs, &nr);
	assert_int_equal(na, 0);
	assert_int_equal(int_of(fx, "SELECT count(*) FROM alerts"), 0);
	assert_true(atomic_load(&fx->wakes) >= 1);
}

static void
test_nan_is_written(void **state)
{
	struct fx	*fx = *state;
	const int64_t	*alerts, *runs;
	size_t		 na, nr, events;
	int64_t		 rid;
	char		*s;

	round_trip(fx, steps(1, 50, 0), NOW, &events);
	watch_changes_clear(fx->w);
	round_trip(fx, steps(51, 60, 55), NOW + 1, &events);
	assert_true(events > 0);

	rid = int_of(fx, "SELECT id FROM runs WHERE key = 'r1'");
	watch_changes(fx->w, &alerts, &na, &runs, &nr);
	assert_true(na >= 1);
	assert_int_equal(nr, 1);
	assert_int_equal(runs[0], rid);
	assert_int_equal(int_of(fx, "SELECT count(*) FROM alerts WHERE"
	    " kind = 'nonfinite' AND state = 'firing'"), 1);
	assert_int_equal(int_of(fx, "SELECT fire_step FROM alerts WHERE"
	    " kind = 'nonfinite'"), 55);
	assert_int_equal(alerts[0], int_of(fx, "SELECT id FROM alerts WHERE"
	    " kind = 'nonfinite'"));
	s = text_of(fx, "SELECT health FROM runs WHERE key = 'r1'");
	assert_string_equal(s, "critical");
	free(s);
	assert_int_equal(watch_notices(fx->w), 0);	/* no outbox */
	watch_changes_clear(fx->w);
	watch_changes(fx->w, &alerts, &na, &runs, &nr);
	assert_int_equal(na, 0);
	assert_int_equal(nr, 0);
}

static void
test_restore_keeps_firing(void **state)
{
	struct fx	*fx = *state;
	size_t		 events;

	round_trip(fx, steps(1, 50, 0), NOW, &events);
	round_trip(fx, steps(51, 60, 55), NOW + 1, &events);
	assert_int_equal(int_of(fx, "SELECT count(*) FROM alerts"), 1);

	/* A restart: the detector is rebuilt from the database. */
	watch_free(fx->w);
	fx_watch(fx);
	round_trip(fx, steps(61, 70, 65), NOW + 2, &events);
	assert_int_equal(int_of(fx, "SELECT count(*) FROM alerts WHERE"
	    " kind = 'nonfinite'"), 1);
	assert_int_equal(int_of(fx, "SELECT count(*) FROM alerts WHERE"
	    " state = 'firing'"), 1);
}

/* Evict run r1 as the writer does when it goes quiet; wait for detection. */
static int64_t
evict_r1(struct fx *fx)
{
	int64_t	rid = int_of(fx, "SELECT id FROM runs WHERE key = 'r1'");
	size_t	entries, points;

	store_cache_stats(fx->st, &entries, &points);
	assert_true(entries >= 3);	/* the run, its loss and grad_norm */
	store_cache_evict(fx->st, &rid, 1);
	store_cache_stats(fx->st, &entries, &points);
	assert_int_equal(entries, 0);
	assert_int_equal(points, 0);
	watch_evict(fx->w, rid);
	watch_drain(fx->w);
	return rid;
}

/*
 * An evicted run comes back: its history up to its last step is
 * replayed first; a spike in the batch that brought it back is caught
 * against its baselines, and a firing alert is not raised again.
 */
static void
test_evict_refill(void **state)
{
	struct fx	*fx = *state;
	struct batch	*b;
	size_t		 events, i, gi;
	int64_t		 rid;

	round_trip(fx, steps(1, 120, 0), NOW, &events);
	rid = evict_r1(fx);
	b = steps(121, 130, 0);
	gi = batch_series_get(b, SERIES_GRAD_NORM, "grad_norm");
	for (i = 0; i < b->series[gi].n; i++)
		if (b->series[gi].steps[i] >= 125)
			b->series[gi].values[i] *= 1e4;
	watch_refill(fx->w, fx->st, rid, 120, NOW + 2);
	round_trip(fx, b, NOW + 2, &events);
	assert_int_equal(int_of(fx, "SELECT min(fire_step) FROM alerts WHERE"
	    " kind IN ('grad_spike', 'grad_explosion')"), 125);

	round_trip(fx, steps(131, 140, 135), NOW + 3, &events);
	assert_int_equal(int_of(fx, "SELECT count(*) FROM alerts WHERE"
	    " kind = 'nonfinite' AND state = 'firing'"), 1);
	rid = evict_r1(fx);
	watch_refill(fx->w, fx->st, rid, 140, NOW + 4);
	round_trip(fx, steps(141, 150, 145), NOW + 4, &events);
	assert_int_equal(int_of(fx, "SELECT count(*) FROM alerts WHERE"
	    " kind = 'nonfinite'"), 1);
	assert_int_equal(int_of(fx, "SELECT count(*) FROM alerts WHERE"
	    " kind = 'nonfinite' AND state = 'firing'"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_healthy_needs_no_transaction,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_nan_is_written,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_restore_keeps_firing,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_evict_refill,
		    fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

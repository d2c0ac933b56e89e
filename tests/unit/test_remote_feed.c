/* SPDX-License-Identifier: MIT */
/*
 * test_remote_feed: the batches kept for the remote-write senders
 * (daemon/remote_feed.c): a span is taken only when every row's batch
 * is there and of the row's run; trimming and the points bound drop the
 * oldest; a series' points come out concatenated in row order, by
 * (kind, name), whatever the batches' own order of series.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "query_remote.h"
#include "remote_feed.h"

/* Run run's batch of steps [from, to): loss = step, layer "a" and "b" = -step. */
static struct batch *
mkbatch(const char *run, int64_t from, int64_t to, int layers_first)
{
	struct batch	*b = batch_new(run);
	size_t		 loss, la, lb;
	int64_t		 s;

	if (layers_first) {
		lb = batch_series_get(b, SERIES_LAYER_GRAD, "b");
		la = batch_series_get(b, SERIES_LAYER_GRAD, "a");
		loss = batch_series_get(b, SERIES_LOSS, "loss");
	} else {
		loss = batch_series_get(b, SERIES_LOSS, "loss");
		la = batch_series_get(b, SERIES_LAYER_GRAD, "a");
		lb = batch_series_get(b, SERIES_LAYER_GRAD, "b");
	}
	for (s = from; s < to; s++) {
		batch_series_push(b, loss, s, (double)s);
		batch_series_push(b, la, s, (double)-s);
		batch_series_push(b, lb, s, (double)-s - 0.5);
	}
	return b;
}

static struct remote_row
row(int64_t id, int64_t run_id, int64_t first, int64_t last)
{
	struct remote_row	r = { id, run_id, first, last, last - first + 1, 0 };

	return r;
}

static void
test_take_and_points(void **state)
{
	struct remote_feed	*f = remote_feed_new(1000, 0);
	struct remote_feed_span	 sp = { 0 };
	struct remote_points	 p = { 0 };
	struct remote_row	 rows[3];
	char			 nloss[] = "loss", nb[] = "b", nc[] = "c";
	struct remote_series	 loss = { 1, SERIES_LOSS, nloss };
	struct remote_series	 lb = { 2, SERIES_LAYER_GRAD, nb };
	struct remote_series	 none = { 3, SERIES_LAYER_GRAD, nc };
	struct batch		*b1 = mkbatch("r", 0, 10, 0);
	struct batch		*b2 = mkbatch("r", 10, 20, 1);
	size_t			 i;

	(void)state;
	remote_feed_add(f, 5, 7, b1);
	remote_feed_add(f, 6, 7, b2);
	batch_free(b1);		/* the feed holds its own references */
	batch_free(b2);
	rows[0] = row(5, 7, 0, 9);
	rows[1] = row(6, 7, 10, 19);
	assert_int_equal(remote_feed_take(f, rows, 2, &sp), 1);
	assert_int_equal(sp.n, 2);
	assert_int_equal(remote_feed_points(&sp, &loss, 0, 19, &p, NULL), 0);
	assert_int_equal(p.n, 20);
	for (i = 0; i < 20; i++) {
		assert_int_equal(p.steps[i], (int64_t)i);
		assert_true(p.vals[i] == (double)i);
	}
	/* The second batch lists its series in another order. */
	assert_int_equal(remote_feed_points(&sp, &lb, 5, 14, &p, NULL), 0);
	assert_int_equal(p.n, 10);
	assert_int_equal(p.steps[0], 5);
	assert_true(p.vals[9] == -14.5);
	assert_int_equal(remote_feed_points(&sp, &none, 0, 19, &p, NULL), 0);
	assert_int_equal(p.n, 0);
	/* A row the feed lacks, or of another run: nothing is taken. */
	rows[2] = row(8, 7, 20, 29);
	assert_int_equal(remote_feed_take(f, rows, 3, &sp), 0);
	assert_int_equal(sp.n, 0);
	rows[1].run_id = 9;
	assert_int_equal(remote_feed_take(f, rows, 2, &sp), 0);
	/* Trimmed through row 5: row 6 is still there. */
	remote_feed_trim(f, 5);
	assert_int_equal(remote_feed_take(f, rows, 1, &sp), 0);
	rows[1].run_id = 7;
	assert_int_equal(remote_feed_take(f, &rows[1], 1, &sp), 1);
	remote_feed_span_free(&sp);
	remote_points_cleanup(&p);
	remote_feed_free(f);
}

/* At most max_points: the oldest batches go first; one too big is never kept. */
static void
test_bound(void **state)
{
	struct remote_feed	*f = remote_feed_new(100, 0);	/* 3 points a step */
	struct remote_feed_span	 sp = { 0 };
	struct remote_row	 r;
	struct batch		*b;
	int64_t			 id;

	(void)state;
	for (id = 1; id <= 10; id++) {
		b = mkbatch("r", (id - 1) * 10, id * 10, 0);	/* 30 points */
		remote_feed_add(f, id, 1, b);
		batch_free(b);
	}
	/* 3 batches fit in 100 points: rows 8 to 10. */
	for (id = 1; id <= 10; id++) {
		r = row(id, 1, (id - 1) * 10, id * 10 - 1);
		assert_int_equal(remote_feed_take(f, &r, 1, &sp), id >= 8);
	}
	b = mkbatch("r", 100, 140, 0);	/* 120 points */
	remote_feed_add(f, 11, 1, b);
	batch_free(b);
	r = row(11, 1, 100, 139);
	assert_int_equal(remote_feed_take(f, &r, 1, &sp), 0);
	r = row(10, 1, 90, 99);
	assert_int_equal(remote_feed_take(f, &r, 1, &sp), 1);
	remote_feed_span_free(&sp);
	remote_feed_free(f);
}

/* Rows are told of in order, with or without a batch; through is the last. */
static void
test_through(void **state)
{
	struct remote_feed	*f = remote_feed_new(1000, 41);
	struct remote_feed_span	 sp = { 0 };
	struct remote_row	 r = row(43, 1, 0, 9);
	struct batch		*b = mkbatch("r", 0, 10, 0);

	(void)state;
	assert_int_equal(remote_feed_through(f), 41);
	remote_feed_add(f, 42, 1, NULL);	/* not plain: read back */
	assert_int_equal(remote_feed_through(f), 42);
	remote_feed_add(f, 43, 1, b);
	batch_free(b);
	assert_int_equal(remote_feed_through(f), 43);
	assert_int_equal(remote_feed_take(f, &r, 1, &sp), 1);
	assert_int_equal(remote_feed_has(f, 43, 1), 1);
	assert_int_equal(remote_feed_has(f, 43, 2), 0);	/* another run's row */
	assert_int_equal(remote_feed_has(f, 42, 1), 0);
	r.id = 42;
	assert_int_equal(remote_feed_take(f, &r, 1, &sp), 0);
	remote_feed_span_free(&sp);
	remote_feed_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_and_points),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_through),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

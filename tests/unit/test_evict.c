/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of evict.c, the writer's list of runs and their last
 * batches: a run is due once quiet for the time, and only once; its next
 * batch says it was evicted, with its last step before; a finished run
 * is forgotten; many runs grow the table without losing one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "evict.h"

static void
test_due_once(void **state)
{
	struct evict	*ev = evict_new(10);
	const int64_t	*ids;
	int64_t		 prev = 99;

	(void)state;
	assert_int_equal(evict_seen(ev, 7, 41, 100, &prev), 0);
	assert_int_equal(prev, -1);		/* new: no step before */
	assert_int_equal(evict_seen(ev, 8, -1, 105, NULL), 0);
	assert_int_equal(evict_due(ev, 109.9, &ids), 0);
	assert_int_equal(evict_due(ev, 110, &ids), 1);
	assert_int_equal(ids[0], 7);
	assert_int_equal(evict_due(ev, 200, &ids), 1);	/* 7 is done */
	assert_int_equal(ids[0], 8);
	assert_int_equal(evict_due(ev, 300, &ids), 0);

	/* Back: it says so, with the last step before this batch. */
	assert_int_equal(evict_seen(ev, 7, 45, 301, &prev), 1);
	assert_int_equal(prev, 41);
	assert_int_equal(evict_seen(ev, 7, 44, 302, &prev), 0);	/* a resend */
	assert_int_equal(prev, 45);
	assert_int_equal(evict_due(ev, 312, &ids), 1);
	assert_int_equal(ids[0], 7);

	/* Finished: forgotten; a later batch starts it anew. */
	evict_forget(ev, 7);
	evict_forget(ev, 7);
	assert_int_equal(evict_seen(ev, 7, 50, 400, &prev), 0);
	assert_int_equal(prev, -1);
	evict_free(ev);
	evict_free(NULL);
}

static void
test_many(void **state)
{
	struct evict	*ev = evict_new(1);
	const int64_t	*ids;
	int64_t		 i, sum = 0;
	size_t		 n, k;

	(void)state;
	for (i = 1; i <= 1000; i++)
		assert_int_equal(evict_seen(ev, i, i, i % 2 ? 0 : 10, NULL),
		    0);
	for (i = 2; i <= 1000; i += 4)
		evict_forget(ev, i);
	n = evict_due(ev, 5, &ids);		/* the odd ones, seen at 0 */
	assert_int_equal(n, 500);
	for (k = 0; k < n; k++) {
		assert_int_equal(ids[k] % 2, 1);
		sum += ids[k];
	}
	assert_int_equal(sum, 500 * 500);
	n = evict_due(ev, 11, &ids);		/* the even ones left */
	assert_int_equal(n, 250);
	for (k = 0; k < n; k++)
		assert_int_equal(ids[k] % 4, 0);
	evict_free(ev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_once),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

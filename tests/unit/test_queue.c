/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of queue.c: FIFO order (also across the ring's wrap), the
 * two bounds (item count and weight: a full queue refuses at once, it
 * never blocks the producer, and one heavy item still fits an empty
 * queue), pop_many's count and weight limits, pop_wait's timeout, close
 * (refuses pushes, the rest drains, every waiting consumer wakes), and
 * several producers and consumers on pthreads: every item arrives
 * exactly once and each producer's items in the order pushed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"

/* Distinct pointers to queue. */
static int	items[64];

static double
mono(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
	struct timespec	ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
test_fifo_order(void **state)
{
	void		*out[16];
	struct queue	*q;
	size_t		 i, n;

	(void)state;
	q = queue_new(8, 100);
	assert_int_equal(queue_depth(q), 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(queue_push(q, &items[i], 1), 0);
		assert_int_equal(queue_depth(q), i + 1);
	}
	n = queue_pop_many(q, out, 16, 0);
	assert_int_equal(n, 5);
	for (i = 0; i < n; i++)
		assert_ptr_equal(out[i], &items[i]);
	assert_int_equal(queue_depth(q), 0);
	queue_close(q);
	queue_free(q);
}

/* A ring of 3 slots, pushed and popped in uneven steps, wraps many times. */
static void
test_fifo_wraps(void **state)
{
	void		*out[3];
	struct queue	*q;
	size_t		 pushed = 0, popped = 0, i, n, round;

	(void)state;
	q = queue_new(3, 3);
	for (round = 0; round < 40; round++) {
		while (queue_push(q, &items[pushed % 64], 1) == 0)
			pushed++;
		assert_int_equal(queue_depth(q), 3);
		n = queue_pop_many(q, out, 1 + round % 3, 0);
		assert_int_equal(n, 1 + round % 3);
		for (i = 0; i < n; i++, popped++)
			assert_ptr_equal(out[i], &items[popped % 64]);
	}
	queue_close(q);
	while ((n = queue_pop_many(q, out, 3, 0)) > 0)
		for (i = 0; i < n; i++, popped++)
			assert_ptr_equal(out[i], &items[popped % 64]);
	assert_int_equal(popped, pushed);
	assert_true(pushed > 40);
	queue_free(q);
}

/* A full queue refuses at once (the producer never waits). */
static void
test_full_by_count(void **state)
{
	void		*out[8];
	struct queue	*q;
	double		 t0;
	size_t		 i;

	(void)state;
	q = queue_new(4, 1000);
	for (i = 0; i < 4; i++)
		assert_int_equal(queue_push(q, &items[i], 1), 0);
	t0 = mono();
	assert_int_equal(queue_push(q, &items[4], 1), -1);
	assert_int_equal(queue_push(q, &items[4], 0), -1);
	assert_true(mono() - t0 < 0.5);
	assert_int_equal(queue_depth(q), 4);

	/* Room again after one pop; the refused item never went in. */
	assert_int_equal(queue_pop_many(q, out, 1, 0), 1);
	assert_ptr_equal(out[0], &items[0]);
	assert_int_equal(queue_push(q, &items[5], 1), 0);
	assert_int_equal(queue_pop_many(q, out, 8, 0), 4);
	assert_ptr_equal(out[0], &items[1]);
	assert_ptr_equal(out[1], &items[2]);
	assert_ptr_equal(out[2], &items[3]);
	assert_ptr_equal(out[3], &items[5]);
	queue_close(q);
	queue_free(q);
}

static void
test_full_by_weight(void **state)
{
	void		*out[8];
	struct queue	*q;

	(void)state;
	q = queue_new(10, 10);
	assert_int_equal(queue_push(q, &items[0], 4), 0);
	assert_int_equal(queue_push(q, &items[1], 4), 0);
	assert_int_equal(queue_push(q, &items[2], 3), -1);	/* 11 > 10 */
	assert_int_equal(queue_depth(q), 2);
	assert_int_equal(queue_push(q, &items[3], 2), 0);	/* 10 */
	assert_int_equal(queue_push(q, &items[4], 1), -1);
	assert_int_equal(queue_push(q, &items[5], 0), 0);	/* w 0 */
	assert_int_equal(queue_pop_many(q, out, 8, 0), 4);
	assert_ptr_equal(out[2], &items[3]);
	assert_ptr_equal(out[3], &items[5]);

	/* One item heavier than the bound fits an empty queue, alone. */
	assert_int_equal(queue_push(q, &items[6], 50), 0);
	assert_int_equal(queue_push(q, &items[7], 1), -1);
	assert_int_equal(queue_push(q, &items[8], 50), -1);
	assert_int_equal(queue_pop_many(q, out, 8, 0), 1);
	assert_ptr_equal(out[0], &items[6]);
	/* ... and its weight is gone with it. */
	assert_int_equal(queue_push(q, &items[9], 10), 0);
	assert_int_equal(queue_pop_many(q, out, 8, 0), 1);
	queue_close(q);
	queue_free(q);
}

/* pop_many stops at max items, and before the weight would pass the limit. */
static void
test_pop_limits(void **state)
{
	void		*out[8];
	struct queue	*q;
	size_t		 i;

	(void)state;
	q = queue_new(16, 1000);
	for (i = 0; i < 6; i++)
		assert_int_equal(queue_push(q, &items[i], 3), 0);
	assert_int_equal(queue_pop_many(q, out, 2, 0), 2);	/* by count */
	assert_ptr_equal(out[1], &items[1]);
	assert_int_equal(queue_pop_many(q, out, 8, 7), 2);	/* 6, not 9 */
	assert_ptr_equal(out[0], &items[2]);
	assert_ptr_equal(out[1], &items[3]);
	assert_int_equal(queue_pop_many(q, out, 8, 6), 2);	/* = 6 */
	assert_ptr_equal(out[1], &items[5]);
	assert_int_equal(queue_depth(q), 0);

	/* The first item is taken even when it alone is over the limit. */
	assert_int_equal(queue_push(q, &items[10], 20), 0);
	assert_int_equal(queue_push(q, &items[11], 1), 0);
	assert_int_equal(queue_pop_many(q, out, 8, 5), 1);
	assert_ptr_equal(out[0], &items[10]);
	assert_int_equal(queue_pop_many(q, out, 8, 5), 1);
	assert_ptr_equal(out[0], &items[11]);
	queue_close(q);
	queue_free(q);
}

static void
test_pop_wait_timeout(void **state)
{
	void		*out[4];
	struct queue	*q;
	double		 t0, dt;
	int		 closed = -1;

	(void)state;
	q = queue_new(4, 4);
	t0 = mono();
	assert_int_equal(queue_pop_wait(q, out, 4, 0, 80, &closed), 0);
	dt = mono() - t0;
	assert_int_equal(closed, 0);
	assert_true(dt >= 0.07);
	assert_true(dt < 2.0);

	closed = -1;
	t0 = mono();
	assert_int_equal(queue_pop_wait(q, out, 4, 0, 0, &closed), 0);
	assert_int_equal(closed, 0);
	assert_true(mono() - t0 < 0.5);

	/* An item already there is taken at once. */
	assert_int_equal(queue_push(q, &items[1], 1), 0);
	t0 = mono();
	assert_int_equal(queue_pop_wait(q, out, 4, 0, 5000, &closed), 1);
	assert_ptr_equal(out[0], &items[1]);
	assert_true(mono() - t0 < 0.5);
	queue_close(q);
	queue_free(q);
}

/* Closed: pushes refused, what was queued still drains, then 0 at once. */
static void
test_close(void **state)
{
	void		*out[4];
	struct queue	*q;
	double		 t0;
	int		 closed;

	(void)state;
	q = queue_new(4, 100);
	assert_int_equal(queue_push(q, &items[0], 1), 0);
	assert_int_equal(queue_push(q, &items[1], 1), 0);
	queue_close(q);
	assert_int_equal(queue_push(q, &items[2], 1), -1);
	assert_int_equal(queue_depth(q), 2);

	assert_int_equal(queue_pop_wait(q, out, 1, 0, 1000, &closed), 1);
	assert_ptr_equal(out[0], &items[0]);
	assert_int_equal(queue_pop_many(q, out, 4, 0), 1);
	assert_ptr_equal(out[0], &items[1]);

	t0 = mono();
	assert_int_equal(queue_pop_many(q, out, 4, 0), 0);
	closed = 0;
	assert_int_equal(queue_pop_wait(q, out, 4, 0, 5000, &closed), 0);
	assert_int_equal(closed, 1);
	assert_true(mono() - t0 < 0.5);
	queue_close(q);		/* twice is harmless */
	assert_int_equal(queue_push(q, &items[3], 1), -1);
	queue_free(q);
	queue_free(NULL);
}

struct waiter {
	struct queue	*q;
	int		 timed;		/* pop_wait (5 s), not pop_many */
	size_t		 max;		/* items to take at most */
	size_t		 n;
	int		 closed;
	void		*item;
	double		 waited;
};

static void *
waiter_main(void *arg)
{
	struct waiter	*w = arg;
	void		*out[4];
	double		 t0 = mono();

	w->closed = -1;
	if (w->timed)
		w->n = queue_pop_wait(w->q, out, w->max, 0, 5000,
		    &w->closed);
	else
		w->n = queue_pop_many(w->q, out, w->max, 0);
	w->item = w->n > 0 ? out[0] : NULL;
	w->waited = mono() - t0;
	return NULL;
}

/* Closing an empty queue wakes every consumer blocked on it. */
static void
test_close_wakes_all(void **state)
{
	struct waiter	 w[4];
	pthread_t	 t[4];
	struct queue	*q;
	size_t		 i;

	(void)state;
	q = queue_new(4, 4);
	for (i = 0; i < 4; i++) {
		w[i] = (struct waiter){ .q = q, .timed = (i % 2 == 1),
		    .max = 4 };
		assert_int_equal(pthread_create(&t[i], NULL, waiter_main,
		    &w[i]), 0);
	}
	sleep_ms(50);
	queue_close(q);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].n, 0);
		assert_true(w[i].waited < 2.0);	/* not the 5 s timeout */
		if (w[i].timed)
			assert_int_equal(w[i].closed, 1);
	}
	queue_free(q);
}

/* A push wakes a waiting consumer long before its timeout. */
static void
test_push_wakes(void **state)
{
	struct waiter	 w[2];
	pthread_t	 t[2];
	struct queue	*q;
	size_t		 i;

	(void)state;
	q = queue_new(4, 4);
	for (i = 0; i < 2; i++) {
		w[i] = (struct waiter){ .q = q, .timed = (int)i, .max = 1 };
		assert_int_equal(pthread_create(&t[i], NULL, waiter_main,
		    &w[i]), 0);
	}
	sleep_ms(50);
	assert_int_equal(queue_push(q, &items[7], 1), 0);
	assert_int_equal(queue_push(q, &items[8], 1), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	/* Each took one, and between them both items, each once. */
	assert_int_equal(w[0].n, 1);
	assert_int_equal(w[1].n, 1);
	assert_true(w[0].item != w[1].item);
	assert_true(w[0].item == &items[7] || w[0].item == &items[8]);
	assert_true(w[1].item == &items[7] || w[1].item == &items[8]);
	for (i = 0; i < 2; i++)
		assert_true(w[i].waited < 2.0);
	assert_int_equal(w[1].closed, 0);
	queue_close(q);
	queue_free(q);
}

#define PC_PRODUCERS	4
#define PC_CONSUMERS	3
#define PC_ITEMS	3000	/* per producer */

struct pc_item {
	unsigned int	producer;
	unsigned int	seq;
};

static struct pc_item	pc_items[PC_PRODUCERS][PC_ITEMS];

struct producer {
	struct queue	*q;
	unsigned int	 id;
	size_t		 refused;
};

struct consumer {
	struct queue	*q;
	unsigned int	 seen[PC_PRODUCERS][PC_ITEMS];
	long		 last[PC_PRODUCERS];
	size_t		 got;
	size_t		 disorder;
	size_t		 batches;
};

static void *
producer_main(void *arg)
{
	struct producer	*p = arg;
	unsigned int	 i;

	for (i = 0; i < PC_ITEMS; i++) {
		/* Weight 1 to 3: both bounds are met along the way. */
		while (queue_push(p->q, &pc_items[p->id][i], 1 + i % 3) == -1) {
			p->refused++;
			sched_yield();
		}
	}
	return NULL;
}

static void *
consumer_main(void *arg)
{
	struct consumer	*c = arg;
	struct pc_item	*it;
	void		*out[8];
	size_t		 n, i;
	unsigned int	 k;

	for (k = 0; k < PC_PRODUCERS; k++)
		c->last[k] = -1;
	while ((n = queue_pop_many(c->q, out, 8, 0)) > 0) {
		c->batches++;
		for (i = 0; i < n; i++) {
			it = out[i];
			c->seen[it->producer][it->seq]++;
			if ((long)it->seq <= c->last[it->producer])
				c->disorder++;
			c->last[it->producer] = (long)it->seq;
			c->got++;
		}
	}
	return NULL;
}

static void
test_producers_consumers(void **state)
{
	struct producer	 prod[PC_PRODUCERS];
	struct consumer	*cons;
	pthread_t	 pt[PC_PRODUCERS], ct[PC_CONSUMERS];
	struct queue	*q;
	size_t		 total = 0, refused = 0;
	unsigned int	 i, j, k, times;
	double		 t0 = mono();

	(void)state;
	for (i = 0; i < PC_PRODUCERS; i++)
		for (j = 0; j < PC_ITEMS; j++)
			pc_items[i][j] = (struct pc_item){ i, j };
	cons = calloc(PC_CONSUMERS, sizeof *cons);
	assert_non_null(cons);
	q = queue_new(16, 24);
	for (k = 0; k < PC_CONSUMERS; k++) {
		cons[k].q = q;
		assert_int_equal(pthread_create(&ct[k], NULL, consumer_main,
		    &cons[k]), 0);
	}
	for (i = 0; i < PC_PRODUCERS; i++) {
		prod[i] = (struct producer){ .q = q, .id = i };
		assert_int_equal(pthread_create(&pt[i], NULL, producer_main,
		    &prod[i]), 0);
	}
	for (i = 0; i < PC_PRODUCERS; i++) {
		assert_int_equal(pthread_join(pt[i], NULL), 0);
		refused += prod[i].refused;
	}
	queue_close(q);
	for (k = 0; k < PC_CONSUMERS; k++)
		assert_int_equal(pthread_join(ct[k], NULL), 0);

	for (k = 0; k < PC_CONSUMERS; k++) {
		total += cons[k].got;
		/* One producer's items reach any one consumer in order. */
		assert_int_equal(cons[k].disorder, 0);
	}
	assert_int_equal(total, PC_PRODUCERS * PC_ITEMS);
	for (i = 0; i < PC_PRODUCERS; i++)
		for (j = 0; j < PC_ITEMS; j++) {
			times = 0;
			for (k = 0; k < PC_CONSUMERS; k++)
				times += cons[k].seen[i][j];
			if (times != 1)
				fail_msg("item %u/%u arrived %u times", i, j,
				    times);
		}
	assert_int_equal(queue_depth(q), 0);
	assert_true(mono() - t0 < 5.0);
	print_message("# %zu pushes refused while full\n", refused);
	queue_free(q);
	free(cons);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_order),
		cmocka_unit_test(test_fifo_wraps),
		cmocka_unit_test(test_full_by_count),
		cmocka_unit_test(test_full_by_weight),
		cmocka_unit_test(test_pop_limits),
		cmocka_unit_test(test_pop_wait_timeout),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_close_wakes_all),
		cmocka_unit_test(test_push_wakes),
		cmocka_unit_test(test_producers_consumers),
	};

	alarm(30);	/* a hang ends the run instead of stalling it */
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* queue: bounded mutex+condvar FIFO; see queue.h.  Any thread. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "now.h"
#include "queue.h"
#include "xmalloc.h"

struct queue_slot {
	void	*item;
	size_t	 weight;
};

struct queue {
	pthread_mutex_t		 lock;
	pthread_cond_t		 nonempty;
	struct queue_slot	*slots;		/* {lock} ring of max_items */
	size_t			 max_items;
	size_t			 max_weight;
	size_t			 head;		/* {lock} */
	size_t			 count;		/* {lock} */
	size_t			 weight;	/* {lock} */
	int			 closed;	/* {lock} */
};

struct queue *
queue_new(size_t max_items, size_t max_weight)
{
	struct queue	*q;

	q = xcalloc(1, sizeof *q);
	q->slots = xcalloc(max_items, sizeof *q->slots);
	q->max_items = max_items;
	q->max_weight = max_weight;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->nonempty, NULL);
	return q;
}

void
queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	pthread_cond_destroy(&q->nonempty);
	pthread_mutex_destroy(&q->lock);
	free(q->slots);
	free(q);
}

int
queue_push(struct queue *q, void *item, size_t w)
{
	int	rc = -1;

	pthread_mutex_lock(&q->lock);
	if (q->closed || q->count == q->max_items)
		goto out;
	if (q->count > 0 && q->weight + w > q->max_weight)
		goto out;
	q->slots[(q->head + q->count) % q->max_items] =
	    (struct queue_slot){ item, w };
	q->count++;
	q->weight += w;
	pthread_cond_signal(&q->nonempty);
	rc = 0;
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* Move up to max items out; q->lock is held. */
static size_t
queue_take(struct queue *q, void **out, size_t max, size_t max_weight)
{
	size_t	n = 0, w = 0;

	while (n < max && q->count > 0) {
		struct queue_slot	*s = &q->slots[q->head];

		if (n > 0 && max_weight != 0 && w + s->weight > max_weight)
			break;
		out[n++] = s->item;
		w += s->weight;
		q->weight -= s->weight;
		q->head = (q->head + 1) % q->max_items;
		q->count--;
	}
	return n;
}

size_t
queue_pop_many(struct queue *q, void **out, size_t max, size_t max_weight)
{
	size_t	n;

	pthread_mutex_lock(&q->lock);
	while (q->count == 0 && !q->closed)
		pthread_cond_wait(&q->nonempty, &q->lock);
	n = queue_take(q, out, max, max_weight);
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t
queue_pop_wait(struct queue *q, void **out, size_t max, size_t max_weight,
    int timeout_ms, int *closed)
{
	struct timespec	until;
	size_t		n;

	now_deadline(&until, timeout_ms);
	pthread_mutex_lock(&q->lock);
	while (q->count == 0 && !q->closed)
		if (pthread_cond_timedwait(&q->nonempty, &q->lock,
		    &until) != 0)
			break;
	n = queue_take(q, out, max, max_weight);
	*closed = q->closed && q->count == 0;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void
queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

size_t
queue_depth(struct queue *q)
{
	size_t	n;

	pthread_mutex_lock(&q->lock);
	n = q->count;
	pthread_mutex_unlock(&q->lock);
	return n;
}

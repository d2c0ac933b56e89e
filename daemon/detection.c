/* SPDX-License-Identifier: MIT */
/*
 * detection: the detector's thread; see detection.h.  A FIFO of items
 * under a mutex, one condition variable for the thread to wait for work
 * and one for the writer to wait for room or for the end of a drain.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "detection.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"
#include "thread_name.h"

enum detection_what {
	DETECTION_BATCH,
	DETECTION_FORGET,
	DETECTION_TICK,
	DETECTION_EVICT,
	DETECTION_RESTORE
};

struct detection_item {
	struct detection_item	*next;
	enum detection_what	 what;
	uint64_t		 seq;
	int64_t			 run_id;
	struct batch		*batch;		/* BATCH, RESTORE: owned */
	double			 now;
};

struct detection {
	struct detector		*det;		/* the thread's */
	void			(*wake)(void *);
	void			*wake_arg;
	size_t			 max_points;
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 work;		/* items came, or stop */
	pthread_cond_t		 room;		/* points left, or items done */
	struct detection_item	*head, *tail;	/* {lock} */
	size_t			 points;	/* {lock} waiting */
	uint64_t		 seq;		/* {lock} last handed over */
	uint64_t		 done;		/* {lock} last finished */
	struct detector_events	 events;	/* {lock} made, not yet taken */
	int			 stopping;	/* {lock} */
};

/* Move the events of src to the end of dst (the strings move too). */
static void
detection_move(struct detector_events *dst, struct detector_events *src)
{
	if (src->n == 0)
		return;
	if (dst->n + src->n > dst->cap) {
		dst->cap = dst->n + src->n + 16;
		dst->ev = xreallocarray(dst->ev, dst->cap, sizeof *dst->ev);
	}
	memcpy(dst->ev + dst->n, src->ev, src->n * sizeof *src->ev);
	dst->n += src->n;
	src->n = 0;	/* their strings now belong to dst */
}

/* Publish what the detector holds (the /metrics gauges). */
static void
detection_gauges(struct detection *dt)
{
	size_t	runs, evicted, tensors;

	detector_counts(dt->det, &runs, &evicted, &tensors);
	metrics_detector(runs, evicted, tensors);
}

static void *
detection_main(void *arg)
{
	struct detection	*dt = arg;
	struct detection_item	*it;
	struct detector_events	 local = { 0 };
	size_t			 points;
	int			 freed = 0, idle;

	thread_name("gw-detect");
	for (;;) {
		pthread_mutex_lock(&dt->lock);
		while (dt->head == NULL && !dt->stopping)
			pthread_cond_wait(&dt->work, &dt->lock);
		if ((it = dt->head) == NULL) {
			pthread_mutex_unlock(&dt->lock);
			break;
		}
		dt->head = it->next;
		if (dt->head == NULL)
			dt->tail = NULL;
		pthread_mutex_unlock(&dt->lock);

		points = it->batch != NULL ? it->batch->npoints : 0;
		switch (it->what) {
		case DETECTION_BATCH:
			/* Never expected: the writer restores a run first. */
			if (detector_is_evicted(dt->det, it->run_id))
				detector_refill(dt->det, it->run_id, NULL,
				    it->now, &local);
			detector_feed(dt->det, it->run_id, it->batch, it->now, 0,
			    &local);
			break;
		case DETECTION_FORGET:
			detector_forget(dt->det, it->run_id);
			freed = 1;
			break;
		case DETECTION_TICK:
			detector_tick(dt->det, it->now, &local);
			break;
		case DETECTION_EVICT:
			detector_evict(dt->det, it->run_id);
			freed = 1;
			break;
		case DETECTION_RESTORE:
			detector_refill(dt->det, it->run_id, it->batch, it->now,
			    &local);
			detector_events_clear(&local);	/* a replay's: none */
			break;
		}
		batch_free(it->batch);
		if (it->what != DETECTION_BATCH)
			detection_gauges(dt);

		pthread_mutex_lock(&dt->lock);
		detection_move(&dt->events, &local);
		dt->points -= points;
		dt->done = it->seq;
		idle = dt->head == NULL;
		pthread_cond_broadcast(&dt->room);
		pthread_mutex_unlock(&dt->lock);
		free(it);
		dt->wake(dt->wake_arg);
		/* After a run's state went, once nothing waits: give it back. */
		if (freed && idle) {
			xmalloc_release();
			freed = 0;
		}
	}
	detector_events_cleanup(&local);
	return NULL;
}

struct detection *
detection_start(struct detector *det, size_t max_points,
    void (*wake)(void *), void *arg)
{
	struct detection	*dt;
	int			 rc;

	dt = xcalloc(1, sizeof *dt);
	dt->det = det;
	dt->wake = wake;
	dt->wake_arg = arg;
	dt->max_points = max_points;
	pthread_mutex_init(&dt->lock, NULL);
	pthread_cond_init(&dt->work, NULL);
	pthread_cond_init(&dt->room, NULL);
	if ((rc = pthread_create(&dt->thread, NULL, detection_main, dt)) != 0)
		fatalx("detection: pthread_create: %s", strerror(rc));
	return dt;
}

/* Queue it (taken); waits while the batches waiting hold too many points. */
static uint64_t
detection_put(struct detection *dt, struct detection_item *it)
{
	size_t	points = it->batch != NULL ? it->batch->npoints : 0;
	uint64_t seq;

	pthread_mutex_lock(&dt->lock);
	while (points > 0 && dt->points > 0 &&
	    dt->points + points > dt->max_points)
		pthread_cond_wait(&dt->room, &dt->lock);
	it->seq = seq = ++dt->seq;
	dt->points += points;
	if (dt->tail != NULL)
		dt->tail->next = it;
	else
		dt->head = it;
	dt->tail = it;
	pthread_cond_signal(&dt->work);
	pthread_mutex_unlock(&dt->lock);
	return seq;
}

/* Queue an item of what (b taken). */
static uint64_t
detection_queue(struct detection *dt, enum detection_what what,
    int64_t run_id, struct batch *b, double now)
{
	struct detection_item	*it = xcalloc(1, sizeof *it);

	it->what = what;
	it->run_id = run_id;
	it->batch = b;
	it->now = now;
	return detection_put(dt, it);
}

uint64_t
detection_batch(struct detection *dt, int64_t run_id, struct batch *b,
    double now)
{
	return detection_queue(dt, DETECTION_BATCH, run_id, b, now);
}

uint64_t
detection_forget(struct detection *dt, int64_t run_id)
{
	return detection_queue(dt, DETECTION_FORGET, run_id, NULL, 0);
}

uint64_t
detection_evict(struct detection *dt, int64_t run_id)
{
	return detection_queue(dt, DETECTION_EVICT, run_id, NULL, 0);
}

uint64_t
detection_restore(struct detection *dt, int64_t run_id, struct batch *b,
    double now)
{
	return detection_queue(dt, DETECTION_RESTORE, run_id, b, now);
}

uint64_t
detection_tick(struct detection *dt, double now)
{
	return detection_queue(dt, DETECTION_TICK, 0, NULL, now);
}

uint64_t
detection_take(struct detection *dt, struct detector_events *out)
{
	uint64_t	done;

	pthread_mutex_lock(&dt->lock);
	detection_move(out, &dt->events);
	done = dt->done;
	pthread_mutex_unlock(&dt->lock);
	return done;
}

uint64_t
detection_last(struct detection *dt)
{
	uint64_t	seq;

	pthread_mutex_lock(&dt->lock);
	seq = dt->seq;
	pthread_mutex_unlock(&dt->lock);
	return seq;
}

void
detection_drain(struct detection *dt)
{
	pthread_mutex_lock(&dt->lock);
	while (dt->done < dt->seq)
		pthread_cond_wait(&dt->room, &dt->lock);
	pthread_mutex_unlock(&dt->lock);
}

void
detection_stop(struct detection *dt)
{
	struct detection_item	*it, *next;

	if (dt == NULL)
		return;
	pthread_mutex_lock(&dt->lock);
	dt->stopping = 1;
	pthread_cond_signal(&dt->work);
	pthread_mutex_unlock(&dt->lock);
	pthread_join(dt->thread, NULL);
	for (it = dt->head; it != NULL; it = next) {
		next = it->next;
		batch_free(it->batch);
		free(it);
	}
	detector_events_cleanup(&dt->events);
	pthread_cond_destroy(&dt->work);
	pthread_cond_destroy(&dt->room);
	pthread_mutex_destroy(&dt->lock);
	free(dt);
}

/* SPDX-License-Identifier: MIT */
/*
 * evict: the runs' last batches; see evict.h.  A chained hash table of
 * runs by id; evict_due() walks it whole, once a second, which costs
 * little next to a single batch for any realistic number of runs.
 * Writer thread only.
 */
#include <stdint.h>
#include <stdlib.h>

#include "evict.h"
#include "xmalloc.h"

struct evict_run {
	struct evict_run	*next;		/* hash chain */
	int64_t			 id;
	int64_t			 last_step;	/* -1: none */
	double			 seen;		/* monotonic seconds */
	int			 evicted;
};

struct evict {
	double			  seconds;
	struct evict_run	**bucket;
	size_t			  nbucket;	/* a power of two */
	size_t			  n;
	int64_t			 *due;		/* evict_due()'s answer */
	size_t			  capdue;
};

struct evict *
evict_new(double seconds)
{
	struct evict	*ev;

	ev = xcalloc(1, sizeof *ev);
	ev->seconds = seconds;
	ev->nbucket = 64;
	ev->bucket = xcalloc(ev->nbucket, sizeof *ev->bucket);
	return ev;
}

void
evict_free(struct evict *ev)
{
	struct evict_run	*r, *next;
	size_t			 i;

	if (ev == NULL)
		return;
	for (i = 0; i < ev->nbucket; i++)
		for (r = ev->bucket[i]; r != NULL; r = next) {
			next = r->next;
			free(r);
		}
	free(ev->bucket);
	free(ev->due);
	free(ev);
}

static size_t
evict_slot(const struct evict *ev, int64_t id)
{
	uint64_t	h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 32) & (ev->nbucket - 1);
}

/* Twice the buckets, once there are more runs than buckets. */
static void
evict_grow(struct evict *ev)
{
	struct evict_run	**old = ev->bucket, *r, *next;
	size_t			  oldn = ev->nbucket, i, j;

	ev->nbucket *= 2;
	ev->bucket = xcalloc(ev->nbucket, sizeof *ev->bucket);
	for (i = 0; i < oldn; i++)
		for (r = old[i]; r != NULL; r = next) {
			next = r->next;
			j = evict_slot(ev, r->id);
			r->next = ev->bucket[j];
			ev->bucket[j] = r;
		}
	free(old);
}

int
evict_seen(struct evict *ev, int64_t run_id, int64_t last_step, double now,
    int64_t *prev)
{
	struct evict_run	*r;
	size_t			 i = evict_slot(ev, run_id);
	int			 was;

	for (r = ev->bucket[i]; r != NULL; r = r->next)
		if (r->id == run_id)
			break;
	if (r == NULL) {
		if (ev->n + 1 > ev->nbucket) {
			evict_grow(ev);
			i = evict_slot(ev, run_id);
		}
		r = xcalloc(1, sizeof *r);
		r->id = run_id;
		r->last_step = -1;
		r->next = ev->bucket[i];
		ev->bucket[i] = r;
		ev->n++;
	}
	was = r->evicted;
	if (prev != NULL)
		*prev = r->last_step;
	if (last_step > r->last_step)
		r->last_step = last_step;
	r->seen = now;
	r->evicted = 0;
	return was;
}

void
evict_forget(struct evict *ev, int64_t run_id)
{
	struct evict_run	**pp, *r;

	for (pp = &ev->bucket[evict_slot(ev, run_id)]; (r = *pp) != NULL;
	    pp = &r->next)
		if (r->id == run_id) {
			*pp = r->next;
			free(r);
			ev->n--;
			return;
		}
}

size_t
evict_due(struct evict *ev, double now, const int64_t **ids)
{
	struct evict_run	*r;
	size_t			 i, n = 0;

	for (i = 0; i < ev->nbucket; i++)
		for (r = ev->bucket[i]; r != NULL; r = r->next) {
			if (r->evicted || now - r->seen < ev->seconds)
				continue;
			if (n == ev->capdue) {
				ev->capdue = ev->capdue == 0 ? 16 :
				    ev->capdue * 2;
				ev->due = xreallocarray(ev->due, ev->capdue,
				    sizeof *ev->due);
			}
			ev->due[n++] = r->id;
			r->evicted = 1;
		}
	*ids = ev->due;
	return n;
}

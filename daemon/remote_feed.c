/* SPDX-License-Identifier: MIT */
/* remote_feed: committed batches kept for the senders; see remote_feed.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "query_remote.h"
#include "remote_feed.h"
#include "xmalloc.h"

struct remote_feed_item {
	int64_t		 id;		/* its remote_log row */
	int64_t		 run_id;
	struct batch	*b;
};

struct remote_feed {
	pthread_mutex_t		 lock;
	struct remote_feed_item	*items;		/* {lock}: [head, n), ids rising */
	size_t			 head;
	size_t			 n;
	size_t			 cap;
	size_t			 points;	/* {lock}: of the items held */
	size_t			 max_points;
	int64_t			 through;	/* {lock} */
};

struct remote_feed *
remote_feed_new(size_t max_points, int64_t through)
{
	struct remote_feed	*f;

	f = xcalloc(1, sizeof *f);
	pthread_mutex_init(&f->lock, NULL);
	f->max_points = max_points;
	f->through = through;
	return f;
}

int64_t
remote_feed_through(struct remote_feed *f)
{
	int64_t	through;

	pthread_mutex_lock(&f->lock);
	through = f->through;
	pthread_mutex_unlock(&f->lock);
	return through;
}

/* Drop the oldest item.  {lock} */
static void
remote_feed_pop(struct remote_feed *f)
{
	struct remote_feed_item	*it = &f->items[f->head++];

	f->points -= it->b->npoints;
	batch_free(it->b);
	it->b = NULL;
}

void
remote_feed_free(struct remote_feed *f)
{
	if (f == NULL)
		return;
	while (f->head < f->n)
		remote_feed_pop(f);
	free(f->items);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void
remote_feed_add(struct remote_feed *f, int64_t id, int64_t run_id,
    struct batch *b)
{
	pthread_mutex_lock(&f->lock);
	if (id > f->through)
		f->through = id;
	/* A batch bigger than the whole feed is read back instead. */
	if (b == NULL || b->npoints > f->max_points) {
		pthread_mutex_unlock(&f->lock);
		return;
	}
	while (f->head < f->n && f->points + b->npoints > f->max_points)
		remote_feed_pop(f);
	if (f->n == f->cap && f->head > 0) {
		memmove(f->items, f->items + f->head,
		    (f->n - f->head) * sizeof *f->items);
		f->n -= f->head;
		f->head = 0;
	}
	if (f->n == f->cap) {
		f->cap = f->cap == 0 ? 64 : f->cap * 2;
		f->items = xreallocarray(f->items, f->cap, sizeof *f->items);
	}
	f->items[f->n].id = id;
	f->items[f->n].run_id = run_id;
	f->items[f->n].b = batch_ref(b);
	f->n++;
	f->points += b->npoints;
	pthread_mutex_unlock(&f->lock);
}

void
remote_feed_trim(struct remote_feed *f, int64_t id)
{
	pthread_mutex_lock(&f->lock);
	while (f->head < f->n && f->items[f->head].id <= id)
		remote_feed_pop(f);
	pthread_mutex_unlock(&f->lock);
}

/* The item of row id, or NULL.  {lock} */
static const struct remote_feed_item *
remote_feed_find(const struct remote_feed *f, int64_t id)
{
	size_t	lo = f->head, hi = f->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (f->items[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->n && f->items[lo].id == id ? &f->items[lo] : NULL;
}

static int
remote_feed_series_cmp(const struct batch_series *a, int kind,
    const char *name)
{
	if ((int)a->kind != kind)
		return (int)a->kind < kind ? -1 : 1;
	return strcmp(a->name, name);
}

static int
remote_feed_order_cmp(const void *x, const void *y)
{
	const struct batch_series	*a = *(const struct batch_series *const *)x;
	const struct batch_series	*b = *(const struct batch_series *const *)y;

	return remote_feed_series_cmp(a, (int)b->kind, b->name);
}

/* sp's batch i's series in (kind, name) order, into sp->order[i]. */
static void
remote_feed_order(struct remote_feed_span *sp, size_t i)
{
	const struct batch		 *b = sp->b[i];
	const struct batch_series	**o;
	size_t				  k;

	o = xreallocarray(sp->order[i], b->nseries + 1, sizeof *o);
	for (k = 0; k < b->nseries; k++)
		o[k] = &b->series[k];
	qsort(o, b->nseries, sizeof *o, remote_feed_order_cmp);
	sp->order[i] = o;
	sp->sorted[i] = 1;
}

int
remote_feed_has(struct remote_feed *f, int64_t id, int64_t run_id)
{
	const struct remote_feed_item	*it;
	int				 has;

	pthread_mutex_lock(&f->lock);
	it = remote_feed_find(f, id);
	has = it != NULL && it->run_id == run_id;
	pthread_mutex_unlock(&f->lock);
	return has;
}

int
remote_feed_take(struct remote_feed *f, const struct remote_row *rows,
    size_t n, struct remote_feed_span *sp)
{
	const struct remote_feed_item	*it;
	size_t				 i;

	remote_feed_span_clear(sp);
	if (n > sp->cap) {
		sp->b = xreallocarray(sp->b, n, sizeof *sp->b);
		sp->order = xreallocarray(sp->order, n, sizeof *sp->order);
		memset(sp->order + sp->cap, 0, (n - sp->cap) *
		    sizeof *sp->order);
		sp->sorted = xreallocarray(sp->sorted, n, sizeof *sp->sorted);
		sp->hint = xreallocarray(sp->hint, n, sizeof *sp->hint);
		sp->cap = n;
	}
	pthread_mutex_lock(&f->lock);
	for (i = 0; i < n; i++) {
		if ((it = remote_feed_find(f, rows[i].id)) == NULL ||
		    it->run_id != rows[i].run_id)
			break;
		sp->b[sp->n++] = batch_ref(it->b);
	}
	pthread_mutex_unlock(&f->lock);
	if (sp->n < n) {
		remote_feed_span_clear(sp);
		return 0;
	}
	for (i = 0; i < n; i++)
		sp->sorted[i] = sp->hint[i] = 0;
	return 1;
}

void
remote_feed_span_clear(struct remote_feed_span *sp)
{
	for (; sp->n > 0; sp->n--)
		batch_free(sp->b[sp->n - 1]);
}

void
remote_feed_span_free(struct remote_feed_span *sp)
{
	size_t	i;

	remote_feed_span_clear(sp);
	for (i = 0; i < sp->cap; i++)
		free(sp->order[i]);
	free(sp->order);
	free(sp->sorted);
	free(sp->hint);
	free(sp->b);
	memset(sp, 0, sizeof *sp);
}

/*
 * Series (kind, name) of sp's batch i, or NULL: the one after the last
 * found, as it nearly always is, else by bisection.
 */
static const struct batch_series *
remote_feed_series(struct remote_feed_span *sp, size_t i, int kind,
    const char *name)
{
	const struct batch		 *b = sp->b[i];
	const struct batch_series	**o;
	size_t				  lo = 0, hi = b->nseries, mid;
	int				  c;

	if (sp->hint[i] < b->nseries && remote_feed_series_cmp(
	    &b->series[sp->hint[i]], kind, name) == 0)
		return &b->series[sp->hint[i]++];
	if (!sp->sorted[i])
		remote_feed_order(sp, i);
	o = sp->order[i];
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = remote_feed_series_cmp(o[mid], kind, name)) == 0) {
			sp->hint[i] = (size_t)(o[mid] - b->series) + 1;
			return o[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int
remote_feed_points(void *arg, const struct remote_series *s, int64_t lo,
    int64_t hi, struct remote_points *p, char **cause)
{
	struct remote_feed_span		*sp = arg;
	const struct batch_series	*bs;
	size_t				 i, k;

	(void)cause;
	p->n = 0;
	for (i = 0; i < sp->n; i++) {
		if ((bs = remote_feed_series(sp, i, s->kind, s->name)) == NULL)
			continue;
		remote_points_reserve(p, bs->n);
		/* Plain: ascending and distinct, above the batch before. */
		for (k = 0; k < bs->n; k++)
			if (bs->steps[k] >= lo && bs->steps[k] <= hi) {
				p->steps[p->n] = bs->steps[k];
				p->vals[p->n++] = bs->values[k];
			}
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * ring: the bounded multi-producer, single-consumer queue of fixed-size
 * records between the logging calls and the sender (Dmitry Vyukov's
 * bounded queue).  Producers, on any thread, use gw__ring_push() from
 * internal.h; the consumer side here runs on the sender thread only.
 * The cells are written at init so that no page fault lands on the hot
 * path later.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int
gw__ring_init(struct gw__ring *r, size_t size)
{
	uint64_t	i;

	memset(r, 0, sizeof *r);
	if (size < 2 || (size & (size - 1)) != 0 || size > GW__RING_MAX)
		return GW_EINVAL;
	r->cells = malloc(size * sizeof *r->cells);
	if (r->cells == NULL)
		return GW_ENOMEM;
	r->mask = size - 1;
	for (i = 0; i < size; i++) {
		atomic_init(&r->cells[i].seq, (uint32_t)i);
		r->cells[i].key = 0;
		r->cells[i].step = 0;
		r->cells[i].value = 0;
	}
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	return GW_OK;
}

void
gw__ring_cleanup(struct gw__ring *r)
{
	free(r->cells);
	r->cells = NULL;
}

int
gw__ring_peek(struct gw__ring *r, uint32_t *key, int64_t *step,
    double *value)
{
	struct gw__cell	*cell;
	uint64_t	 pos;

	pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	cell = &r->cells[pos & r->mask];
	if (atomic_load_explicit(&cell->seq, memory_order_acquire) !=
	    (uint32_t)(pos + 1))
		return -1;
	*key = cell->key;
	*step = cell->step;
	*value = cell->value;
	return 0;
}

void
gw__ring_pop(struct gw__ring *r)
{
	struct gw__cell	*cell;
	uint64_t	 pos;

	pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	cell = &r->cells[pos & r->mask];
	/* The cell is free for the producer one lap later. */
	atomic_store_explicit(&cell->seq, (uint32_t)(pos + r->mask + 1),
	    memory_order_release);
	atomic_store_explicit(&r->head, pos + 1, memory_order_release);
}

uint64_t
gw__ring_level(struct gw__ring *r)
{
	uint64_t	tail, head;

	head = atomic_load_explicit(&r->head, memory_order_acquire);
	tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	return tail > head ? tail - head : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * queue: a bounded FIFO of pointers, guarded by one mutex and condvar,
 * where daemon threads meet.  Bounded both by item count and by a
 * caller-given weight (e.g. points), so producers learn at once when
 * consumers cannot keep up instead of the queue growing without limit.
 * Producers never block; consumers wait.  Includes no project headers.
 */
#ifndef GW_QUEUE_H
#define GW_QUEUE_H

#include <stddef.h>

struct queue;

/* A queue holding at most max_items items and max_weight total weight. */
struct queue	*queue_new(size_t max_items, size_t max_weight);
/* Free q; it must be empty (closed and drained).  NULL is fine. */
void		 queue_free(struct queue *q);
/*
 * Append item with weight w.  0, or -1 if the queue is full or closed.
 * An item heavier than max_weight is accepted into an empty queue, so
 * a single large request is never refused forever.
 */
int		 queue_push(struct queue *q, void *item, size_t w);
/*
 * Wait until at least one item is queued or the queue is closed, then
 * move up to max items into out, stopping early once their weight
 * reaches max_weight (0: no weight limit).  Returns the count; 0 means
 * closed and empty.
 */
size_t		 queue_pop_many(struct queue *q, void **out, size_t max,
		    size_t max_weight);
/*
 * As queue_pop_many, but wait at most timeout_ms: 0 items then means
 * a timeout, or (with *closed set) closed and empty.
 */
size_t		 queue_pop_wait(struct queue *q, void **out, size_t max,
		    size_t max_weight, int timeout_ms, int *closed);
/* Refuse further pushes and wake every waiting consumer. */
void		 queue_close(struct queue *q);
/* Items queued now (a snapshot). */
size_t		 queue_depth(struct queue *q);

#endif

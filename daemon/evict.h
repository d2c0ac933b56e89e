/* SPDX-License-Identifier: MIT */
/*
 * evict: which runs went quiet.  The writer notes each run's committed
 * batches (when, and the last step) and, once a second, asks which runs
 * sent none for the configured time (run-idle-evict): it then evicts
 * what memory holds of them, detection's tensors (detection.h) and the
 * store's cache (store.h), and marks them evicted here.  The next batch
 * of an evicted run says so, with the last step before it, so that the
 * writer restores the run's detection from its history first.  A finished
 * run is forgotten.  About 40 bytes a run; writer thread only.
 */
#ifndef GW_EVICT_H
#define GW_EVICT_H

#include <stddef.h>
#include <stdint.h>

struct evict;

/* A table evicting runs quiet for seconds (> 0). */
struct evict	*evict_new(double seconds);
/* NULL is fine. */
void		 evict_free(struct evict *ev);
/*
 * A batch of run_id whose last step is last_step (-1: none) was
 * committed at now (monotonic seconds).  Returns 1 if the run was
 * evicted, with *prev its last step before this batch (-1: none), and
 * 0 otherwise; either way the run is now active.  prev may be NULL.
 */
int		 evict_seen(struct evict *ev, int64_t run_id, int64_t last_step,
		    double now, int64_t *prev);
/* The run finished or failed: forget it. */
void		 evict_forget(struct evict *ev, int64_t run_id);
/*
 * The active runs that saw no batch since now - seconds, marked evicted
 * as they are returned: their ids in *ids (borrowed until the next
 * call) and their number.
 */
size_t		 evict_due(struct evict *ev, double now, const int64_t **ids);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * store_history: reads a run's recent points back from the database as
 * a struct batch, so that after a restart the detector's baselines can
 * be rebuilt by replaying them: the points of its chunks and of its
 * tail rows, both decoded with chunk.h; and, the same way, an evicted
 * run's when it comes back (watch.h).  Part of the store: writer thread
 * only, outside a transaction, with the store's statements.
 */
#ifndef GW_STORE_HISTORY_H
#define GW_STORE_HISTORY_H

#include <stdint.h>

#include "batch.h"

struct store;

/*
 * The points of run_id with steps in [from_step, to_step], ascending in
 * each series, with the layer metadata the run's series carry.  A
 * damaged chunk or tail row is skipped (and logged), not trusted.  NULL
 * with *cause on error.
 */
struct batch	*store_history_load(struct store *st, int64_t run_id,
		    int64_t from_step, int64_t to_step, char **cause);

/* Called by store_history_each_active() with a running or stalled run. */
typedef void	(*store_history_run_cb)(void *arg, int64_t run_id,
		    const char *key, int64_t last_step);
/* Visit every running or stalled run. */
int		 store_history_each_active(struct store *st,
		    store_history_run_cb cb, void *arg, char **cause);

#endif

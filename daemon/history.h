/* SPDX-License-Identifier: MIT */
/*
 * history: reads a run's recent points back from the database as a
 * struct batch, so that after a restart the detector's baselines can be
 * rebuilt by replaying them.  Any thread, on a connection it owns; used
 * by the writer at start-up.
 */
#ifndef GW_HISTORY_H
#define GW_HISTORY_H

#include <stdint.h>

#include <sqlite3.h>

#include "batch.h"

/*
 * The points of run_id with step >= from_step, in step order, with the
 * layer metadata the run's series carry.  NULL with *cause on error.
 */
struct batch	*history_load(sqlite3 *db, int64_t run_id, int64_t from_step,
		    char **cause);

/* Called by history_each_active() with a running or stalled run. */
typedef void	(*history_run_cb)(void *arg, int64_t run_id, const char *key,
		    int64_t last_step);
/* Visit every running or stalled run. */
int		 history_each_active(sqlite3 *db, history_run_cb cb, void *arg,
		    char **cause);

#endif

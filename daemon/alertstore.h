/* SPDX-License-Identifier: MIT */
/*
 * alertstore: writes the detector's events into the alerts table and
 * keeps each run's health (and its "stalled" status) in step with its
 * firing alerts.  Writer thread only, on the store's connection, inside
 * the writer's open transaction, so an ingest answer and the alerts it
 * caused are committed together.
 */
#ifndef GW_ALERTSTORE_H
#define GW_ALERTSTORE_H

#include <stdint.h>

#include <sqlite3.h>

#include "detector.h"

/*
 * Apply ev at time now: insert a fired alert, update a firing one, or
 * resolve it.  *alert_id is the row's id (-1 if an update or resolve
 * found no firing alert).  0, or -1 with *cause.
 */
int	alertstore_apply(sqlite3 *db, const struct detector_event *ev,
	    double now, int64_t *alert_id, char **cause);
/*
 * Recompute run_id's health from its firing alerts, and move its status
 * between "running" and "stalled" with its stall alert.  *changed is
 * set to 1 when health or status changed.  0, or -1 with *cause.
 */
int	alertstore_sync_run(sqlite3 *db, int64_t run_id, int *changed,
	    char **cause);
/*
 * Resolve the firing stall alert of run_id (the run ended); *alert_id
 * is its id, or -1 when none was firing.
 */
int	alertstore_resolve_stall(sqlite3 *db, int64_t run_id, int64_t step,
	    double now, int64_t *alert_id, char **cause);

/* Called for each firing alert by alertstore_each_firing(). */
typedef void	(*alertstore_firing_cb)(void *arg, int64_t run_id,
		    const char *kind, const char *series, const char *severity,
		    int64_t onset_step, int64_t fire_step);
/* Visit the firing alerts of every running or stalled run. */
int	alertstore_each_firing(sqlite3 *db, alertstore_firing_cb cb, void *arg,
	    char **cause);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * store_alerts: writes the detector's events into the alerts table and
 * keeps each run's health (and its "stalled" status) in step with its
 * firing alerts; reads the firing alerts back after a restart.  Part of
 * the store: writer thread only, on the store's connection with its
 * statements prepared once, inside the writer's open transaction (but
 * for store_alerts_each_firing), so an ingest answer and the alerts it
 * caused are committed together.
 */
#ifndef GW_STORE_ALERTS_H
#define GW_STORE_ALERTS_H

#include <stdint.h>

#include "detector.h"

struct store;

/*
 * Apply ev at time now: insert a fired alert, update a firing one, or
 * resolve it.  *alert_id is the row's id (-1 if an update or resolve
 * found no firing alert).  0, or -1 with *cause.
 */
int	store_alerts_apply(struct store *st, const struct detector_event *ev,
	    double now, int64_t *alert_id, char **cause);
/*
 * Recompute run_id's health from its firing alerts, and move its status
 * between "running" and "stalled" with its stall alert.  *changed is
 * set to 1 when health or status changed.  0, or -1 with *cause.
 */
int	store_alerts_sync_run(struct store *st, int64_t run_id, int *changed,
	    char **cause);
/*
 * Resolve the firing stall alert of run_id (the run ended) at step (-1:
 * none); *alert_id is its id, or -1 when none was firing.
 */
int	store_alerts_resolve_stall(struct store *st, int64_t run_id,
	    int64_t step, double now, int64_t *alert_id, char **cause);

/* Called for each firing alert by store_alerts_each_firing(). */
typedef void	(*store_alerts_firing_cb)(void *arg, int64_t run_id,
		    const char *kind, const char *series, const char *severity,
		    int64_t onset_step, int64_t fire_step);
/* Visit the firing alerts of every running or stalled run. */
int	store_alerts_each_firing(struct store *st, store_alerts_firing_cb cb,
	    void *arg, char **cause);

#endif

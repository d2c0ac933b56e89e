/* SPDX-License-Identifier: MIT */
/*
 * watch: the writer thread's glue between the detector and the
 * database.  It feeds each batch the writer stores to the detector,
 * writes the resulting alert events and run health in the same
 * transaction, runs the stall timer, and after a restart rebuilds the
 * detector from the stored history.  Writer thread only.
 */
#ifndef GW_WATCH_H
#define GW_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "batch.h"

struct detector_config;
struct store_outbox;
struct watch;

/*
 * A watch using cfg, adding the notices of every alert change to
 * outbox (both borrowed: they must outlive the watch; outbox NULL: no
 * notices).
 */
struct watch	*watch_new(const struct detector_config *cfg,
		    struct store_outbox *outbox);
void		 watch_free(struct watch *w);
/*
 * Outside a transaction, at start: restore the firing alerts of active
 * runs and replay their recent steps so baselines pick up where they
 * were.  Failures are logged; detection then starts afresh.
 */
void		 watch_restore(struct watch *w, sqlite3 *db);
/*
 * Inside the writer's transaction, after run_id's batch b was applied:
 * detect, and write alert changes and health.  Failures are logged, not
 * returned: the points are stored either way.
 */
void		 watch_batch(struct watch *w, sqlite3 *db, int64_t run_id,
		    const struct batch *b, double now);
/* Inside the transaction: run_id finished or failed. */
void		 watch_finish(struct watch *w, sqlite3 *db, int64_t run_id,
		    double now);
/* Inside a transaction: the stall timer (about once a second). */
void		 watch_tick(struct watch *w, sqlite3 *db, double now);
/*
 * What the calls since the last watch_changes_clear() changed: the ids
 * of the alerts they fired, updated or resolved (an id may repeat), and
 * the runs whose health or status changed.  Borrowed until the next
 * call; the writer publishes them once the transaction has committed.
 */
void		 watch_changes(struct watch *w, const int64_t **alert_ids,
		    size_t *nalerts, const int64_t **run_ids, size_t *nruns);
/* Notices added to the outbox since the last watch_changes_clear(). */
size_t		 watch_notices(struct watch *w);
void		 watch_changes_clear(struct watch *w);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * watch: the writer's side of detection.  After a restart it rebuilds
 * the detector from the stored history; then the detector runs on its
 * own thread (detection.h): the writer hands it each committed batch
 * and, in its next transaction, writes the alert events that came back
 * (alert rows, the run's health, the notices of the outbox).  Each hand
 * over returns a ticket; watch_apply() says up to which ticket the
 * events are written, so the writer answers a request once its alerts
 * are.  Writer thread only.
 */
#ifndef GW_WATCH_H
#define GW_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

struct detector_config;
struct evict;
struct store;
struct store_outbox;
struct watch;

/*
 * A watch using cfg, adding the notices of every alert change to
 * outbox (both borrowed: they must outlive the watch; outbox NULL: no
 * notices).
 */
struct watch	*watch_new(const struct detector_config *cfg,
		    struct store_outbox *outbox);
/* Stop the detection thread and free w.  NULL is fine. */
void		 watch_free(struct watch *w);
/*
 * Before watch_start, outside a transaction: restore the firing alerts
 * of active runs and replay their recent steps so baselines pick up
 * where they were; each run is noted as seen now in ev (NULL: none).
 * Failures are logged; detection then starts afresh.
 */
void		 watch_restore(struct watch *w, struct store *st,
		    struct evict *ev);
/*
 * Start the detection thread (max_points: the points of the batches it
 * may have waiting); wake(arg) is called from it when it has done an
 * item, so the writer comes to take the events.
 */
void		 watch_start(struct watch *w, size_t max_points,
		    void (*wake)(void *), void *arg);
/* After run_id's batch b was committed: hand it to detection (taken).  Its ticket. */
uint64_t	 watch_batch(struct watch *w, int64_t run_id, struct batch *b,
		    double now);
/* Inside the transaction that finished or failed run_id: end its stall alert. */
void		 watch_finish(struct watch *w, struct store *st, int64_t run_id,
		    double now);
/* After that commit: detection forgets the run.  Its ticket. */
uint64_t	 watch_forget(struct watch *w, int64_t run_id);
/* The run went quiet (evict.h): detection evicts its tensors.  Its ticket. */
uint64_t	 watch_evict(struct watch *w, int64_t run_id);
/*
 * Outside a transaction, before the first batch of an evicted run since:
 * read its recent steps up to last_step (the last before that batch; -1:
 * none) and have detection replay them, as after a restart.  A read
 * that fails is logged: its tensors then start afresh.  Its ticket.
 */
uint64_t	 watch_refill(struct watch *w, struct store *st, int64_t run_id,
		    int64_t last_step, double now);
/* The stall timer (about once a second).  Its ticket. */
uint64_t	 watch_tick(struct watch *w, double now);
/*
 * Inside a transaction: write the alert events detection made so far
 * (alert rows, health, notices).  Returns the last ticket whose events
 * are now written.  Failures are logged: the points are stored anyway.
 */
uint64_t	 watch_apply(struct watch *w, struct store *st, double now);
/*
 * Outside a transaction: take the events detection made so far (kept
 * for the next watch_apply()) and set *done as watch_apply() would.
 * Returns how many events wait to be written: with none, every ticket up
 * to *done is answered as it stands, with no transaction.
 */
size_t		 watch_poll(struct watch *w, uint64_t *done);
/* The last ticket handed out. */
uint64_t	 watch_last(struct watch *w);
/* Wait until detection has done every ticket handed out. */
void		 watch_drain(struct watch *w);
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

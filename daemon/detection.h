/* SPDX-License-Identifier: MIT */
/*
 * detection: the detector's own thread.  The writer hands it each
 * committed batch (and a run's end, its eviction when it goes quiet
 * and its restore when it comes back, and the stall timer's ticks) in
 * order; it feeds the detector and collects the alert events, which the
 * writer takes and writes in its next transaction.  So the writer's
 * commits never wait for the rules, and ingest keeps its rate with
 * detection on.  Items are numbered: detection_take() says how far the
 * thread got, so the writer answers a request only once its batch's
 * alerts are written (an answer still carries them, as before).
 *
 * Threads: detection_start/stop on the main thread; the others on the
 * writer thread; the struct detector belongs to the detection thread
 * from detection_start on.  The queue and the event list are {lock}.
 */
#ifndef GW_DETECTION_H
#define GW_DETECTION_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "detector.h"

struct detection;

/*
 * Start the thread on det (borrowed: the caller frees it after
 * detection_stop).  wake(arg) is called, from the detection thread,
 * after each item it finishes (the writer then takes the events).
 * max_points bounds the points of the batches waiting: detection_batch
 * waits when they are past it.
 */
struct detection *detection_start(struct detector *det, size_t max_points,
		    void (*wake)(void *), void *arg);
/* Writer: hand batch b of run run_id, received at now (b is taken).  Its item number. */
uint64_t	 detection_batch(struct detection *dt, int64_t run_id,
		    struct batch *b, double now);
/* Writer: the run ended (its state is forgotten).  The item number. */
uint64_t	 detection_forget(struct detection *dt, int64_t run_id);
/* Writer: the run went quiet: its tensors' state is evicted.  The item number. */
uint64_t	 detection_evict(struct detection *dt, int64_t run_id);
/*
 * Writer: before the next batch of an evicted run, rebuild it from b, its
 * recent history (taken; NULL: none).  The item number.
 */
uint64_t	 detection_restore(struct detection *dt, int64_t run_id,
		    struct batch *b, double now);
/* Writer: the stall timer, at now.  The item number. */
uint64_t	 detection_tick(struct detection *dt, double now);
/*
 * Writer: append the events made so far to out (moved: the thread's
 * list is emptied) and return the number of the last item done (0 before
 * the first).
 */
uint64_t	 detection_take(struct detection *dt, struct detector_events *out);
/* Writer: the number of the last item handed over. */
uint64_t	 detection_last(struct detection *dt);
/* Writer: wait until every item handed over is done. */
void		 detection_drain(struct detection *dt);
/* Stop the thread (after the writer) and free dt.  NULL is fine. */
void		 detection_stop(struct detection *dt);

#endif

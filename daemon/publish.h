/* SPDX-License-Identifier: MIT */
/*
 * publish: the writer thread's side of the live stream.  After each
 * COMMIT it turns what the round changed into the stream's messages
 * (API.md, "Stream"): step summaries of each ingested batch, the runs
 * whose status or health changed, and the alerts that fired, changed
 * or resolved.  Run and alert JSON is built here, from the writer's own
 * connection; a step summary is only copied out of the batch here, and
 * made JSON on the stream's thread if a viewer is sent it (coalescing
 * drops most unsent).  Writer thread only.
 */
#ifndef GW_PUBLISH_H
#define GW_PUBLISH_H

#include <stdint.h>

#include "batch.h"

struct store;

struct publish;
struct ws_stream;

/* Publishing into ws (borrowed; NULL: every call does nothing). */
struct publish	*publish_new(struct ws_stream *ws);
void		 publish_free(struct publish *p);
/* 1 when someone watches the stream (else skip building messages). */
int		 publish_is_wanted(struct publish *p);
/*
 * b was committed: a step message for its last step, and one for each
 * step with a non-finite loss, grad_norm or layer value (at most
 * PUBLISH_MAX_NONFINITE of them, the earliest).  Costs a copy of the
 * last step's values and a pass over b's values for non-finite ones.
 */
void		 publish_batch(struct publish *p, const struct batch *b);
#define PUBLISH_MAX_NONFINITE	100
/*
 * A run message for run_id when it is new here or its status or health
 * changed.  With maybe_changed 0 (an ingest, which changes neither) a
 * run already published costs nothing: no query.  With
 * PUBLISH_RUN_ALWAYS (its tags or note changed) the message goes out
 * whatever its status and health.
 */
#define PUBLISH_RUN_ALWAYS	2
void		 publish_run(struct publish *p, struct store *st, int64_t run_id,
		    int maybe_changed);
/* An alert message for alert_id (it fired, changed or resolved). */
void		 publish_alert(struct publish *p, struct store *st,
		    int64_t alert_id);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * remote: the remote-write senders.  Each target (remote_target.h) has
 * a thread of its own, gw-remote, with its own read-only connection
 * (query_remote.h) and curl handle: it reads the remote_log rows after
 * its cursor (schema/0004), the points they name as stored now, and
 * POSTs them in order as Prometheus remote-write 1.0 requests of at
 * most REMOTE_MAX_SAMPLES samples (remote_encode.h).  Ingest never
 * waits for a target: the writer only adds log rows and wakes the
 * senders after a commit.
 *
 * A 2xx moves the cursor on; a refused connection, a timeout, a 429 or
 * a 5xx is retried, the same request again, with capped exponential
 * backoff, for as long as it takes (the log keeps the backlog, across
 * restarts too); any other answer drops the request with a log line, as
 * the spec says (the data would be refused again).  Cursors go back to
 * the writer (remote_acked), which writes them in its next transaction
 * and prunes the log: a crash between a send and its mark sends those
 * samples again, which a time-series database takes as the same
 * samples (VictoriaMetrics and Prometheus keep one sample a series and
 * timestamp; a step re-sent with a new value replaces it there too).
 */
#ifndef GW_REMOTE_H
#define GW_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#define REMOTE_MAX_SAMPLES	100000	/* a request's samples, about */

struct batch;
struct config;
struct remote;

/*
 * Start a sender for each of cfg's remote-write targets (cfg borrowed;
 * it must outlive them), each reading its cursor first.  NULL and
 * *cause on failure.  Call with at least one target.
 */
struct remote	*remote_start(const struct config *cfg, char **cause);
/*
 * Writer, after a COMMIT, for each batch in log order: batch b of run
 * run_id was stored as log row log_id (0: none).  Senders send rows only
 * once they are told of them.  b, when it only appended to its run
 * (store_remote_row; NULL: it did not), may be sent from memory
 * (remote_feed.h); a reference to it is taken.  NULL r is fine.
 */
void		 remote_keep(struct remote *r, int64_t log_id, int64_t run_id,
		    struct batch *b);
/* Any thread: points more were committed; senders look for them now. */
void		 remote_wake(struct remote *r, size_t points);
/*
 * Writer thread: each target's cursor, in cfg's order (an array owned
 * by r, valid until the next call).
 */
const int64_t	*remote_acked(struct remote *r);
/* Any thread: the senders' lines of /metrics (allocated). */
char		*remote_metrics(struct remote *r);
/* Stop the threads, abandoning requests in flight.  NULL is fine. */
void		 remote_stop(struct remote *r);
/* Free r after remote_stop. */
void		 remote_free(struct remote *r);

#endif

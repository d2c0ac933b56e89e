/* SPDX-License-Identifier: MIT */
/*
 * notify: the notifier thread, which delivers the outbox's notices to
 * their receivers (Alertmanagers, webhooks, Slack) over libcurl's multi
 * interface: every receiver has at most one request in flight and its
 * own retry clock, so a receiver that hangs or is down holds up nobody
 * else, and nothing here ever waits for the writer or holds it up.
 *
 * Each receiver gets its notices in outbox order.  A 2xx delivers one;
 * a timeout, a refused connection, a 408, a 429 or a 5xx is retried
 * with capped exponential backoff (Retry-After respected), for as long
 * as the daemon lives and after a restart; any other answer drops the
 * notice with a log line.  Outcomes go back to the writer
 * (notify_results), which marks the rows in its next transaction, so
 * the writer stays the database's only writer: a crash in the second
 * between a delivery and its mark sends that notice again (receivers
 * tell repeats by id and seq).  Alertmanagers are also re-sent every
 * firing alert they know of every notify-resend, as Prometheus does,
 * each with an endsAt four resend intervals ahead.
 */
#ifndef GW_NOTIFY_H
#define GW_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct notify;

/* One delivery outcome, for the writer to mark. */
struct notify_result {
	int64_t		 id;		/* the notice */
	int		 sent;		/* 1 delivered, 0 dropped */
	int		 attempts;
	char		*error;		/* the last failure, or NULL */
	double		 at;		/* wall-clock time of the outcome */
};

/*
 * Start delivering for cfg's receivers (cfg borrowed; it must outlive
 * the notifier), reading the outbox on a connection of its own.  NULL
 * and *cause on failure.  Call with at least one receiver.
 */
struct notify	*notify_start(const struct config *cfg, char **cause);
/* Any thread: notices were committed; look for them now. */
void		 notify_wake(struct notify *n);
/*
 * Writer thread: take the outcomes reported since the last call (an
 * allocated array of *count, or NULL); free with notify_results_free.
 */
struct notify_result *notify_results(struct notify *n, size_t *count);
void		 notify_results_free(struct notify_result *r, size_t count);
/* Any thread: the notifier's lines of /metrics (allocated). */
char		*notify_metrics(struct notify *n);
/* Stop the thread, abandoning requests in flight.  NULL is fine. */
void		 notify_stop(struct notify *n);
/* Free n after notify_stop (outcomes not taken are lost: sent again). */
void		 notify_free(struct notify *n);

#endif

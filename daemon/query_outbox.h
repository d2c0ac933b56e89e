/* SPDX-License-Identifier: MIT */
/*
 * query_outbox: the notifier's read-only view of the outbox
 * (schema/0002_notices.sql): the next notice a receiver is owed, the
 * firing alerts it must keep hearing of, how many it is owed.  One
 * connection of its own, used by the notifier thread only.
 */
#ifndef GW_QUERY_OUTBOX_H
#define GW_QUERY_OUTBOX_H

#include <stdint.h>

#include <jansson.h>

struct query_outbox;

/* Open path read-only.  NULL and *cause on failure (":memory:" too). */
struct query_outbox	*query_outbox_open(const char *path, char **cause);
void			 query_outbox_close(struct query_outbox *qo);
/*
 * The pending notice of receiver with the least id above after: 1 with
 * *id and *body (the notice JSON, allocated), 0 when there is none, -1
 * with *cause.
 */
int			 query_outbox_next(struct query_outbox *qo,
			    const char *receiver, int64_t after, int64_t *id,
			    char **body, char **cause);
/*
 * Notices (as notice_new makes them, status firing) of the alerts that
 * fire now in runs still running or stalled and seen since since, and
 * that receiver has heard of: what an Alertmanager is re-sent.  An
 * array (maybe empty), or NULL with *cause.
 */
json_t			*query_outbox_firing(struct query_outbox *qo,
			    const char *receiver, double since,
			    const char *external_url, double now, char **cause);
/* Pending notices of receiver, or -1 on error. */
int64_t			 query_outbox_depth(struct query_outbox *qo,
			    const char *receiver);

#endif

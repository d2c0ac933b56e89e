/* SPDX-License-Identifier: MIT */
/*
 * store_outbox: the writer's side of the notification outbox
 * (schema/0002_notices.sql).  Inside the writer's open transaction it
 * turns an alert change into one notice row per receiver that must
 * hear of it, and marks rows done as the notifier reports deliveries.
 * Writer thread only, on the writer's connection; statements are
 * prepared once.
 *
 * Who hears what: a receiver hears of an alert once the alert reaches
 * its least severity in one of its projects (receiver_wants), and from
 * then on of every change of that alert up to its resolve, whatever the
 * severity then.
 */
#ifndef GW_STORE_OUTBOX_H
#define GW_STORE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "notice.h"

struct receiver;
struct store;
struct store_outbox;

/*
 * An outbox on st's connection for the n receivers rcv (borrowed; they must outlive
 * it), linking to external_url (borrowed).  NULL and *cause on failure.
 */
struct store_outbox	*store_outbox_new(struct store *st,
			    const struct receiver *rcv, size_t n,
			    const char *external_url, char **cause);
void			 store_outbox_free(struct store_outbox *ob);
/*
 * Inside a transaction: alert alert_id changed as change says
 * (prev_severity: its severity before a NOTICE_SEVERITY change, as
 * enum alert_severity) at time now.  Adds its notices; returns how
 * many, or -1 with *cause.
 */
int			 store_outbox_add(struct store_outbox *ob,
			    int64_t alert_id, enum notice_change change,
			    int prev_severity, double now, char **cause);
/*
 * Inside a transaction: notice id was delivered (sent 1) or given up
 * (sent 0) after attempts tries; error is the last failure or NULL.
 */
int			 store_outbox_done(struct store_outbox *ob, int64_t id,
			    int sent, int attempts, const char *error,
			    double now, char **cause);
/*
 * Inside a transaction: forget done notices of alerts resolved over a
 * week before now, and give up (logging how many) the pending notices
 * of receivers that are no longer configured.
 */
int			 store_outbox_prune(struct store_outbox *ob,
			    double now, char **cause);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * notice: an alert change as receivers see it.  The notice itself is
 * the webhook's JSON (docs/API.md, "Notifications"): version, a stable
 * id and a per-alert sequence number, the status, the alert and run
 * objects of the query API and a link to the run page.  The same object
 * is stored in the outbox and later read into a Slack message or
 * Alertmanager's postable alerts.  Pure: JSON in, JSON or text out; any
 * thread.
 */
#ifndef GW_NOTICE_H
#define GW_NOTICE_H

#include <stdint.h>

#include <jansson.h>

enum notice_change {
	NOTICE_FIRED = 0,	/* a new alert */
	NOTICE_SEVERITY,	/* a firing alert changed its severity */
	NOTICE_RESOLVED		/* the alert ended */
};

/* The parts of a notice that are not the alert and run objects. */
struct notice_head {
	const char		*instance;	/* the database's random id */
	int64_t			 alert_id;
	int64_t			 seq;		/* 1, 2, ... per alert */
	enum notice_change	 change;
	const char		*prev_severity;	/* NOTICE_SEVERITY only */
	const char		*external_url;	/* the dashboard's base URL */
	double			 time;		/* when the change was made */
};

/*
 * The notice for h, taking over alert and run (the query API's
 * objects).  Never NULL.
 */
json_t	*notice_new(const struct notice_head *h, json_t *alert, json_t *run);
/* The link to the alert's steps on the run page (allocated). */
char	*notice_dashboard_url(const char *external_url, const json_t *alert);
/* Slack's incoming-webhook body for notice (allocated text). */
char	*notice_slack(const json_t *notice);
/*
 * Append notice's Alertmanager alerts (API v2 postable alerts) to arr:
 * one, or two for a severity change (the old labels ended at the
 * change, since Alertmanager tells alerts apart by their labels).  A
 * firing alert is given endsAt = now + hold, so that Alertmanager
 * resolves it by itself if gradwatchd stops re-posting it.
 */
void	notice_alertmanager(json_t *arr, const json_t *notice, double now,
	    double hold);
/* A time in seconds since the epoch as RFC 3339 in UTC, into buf[32]. */
void	notice_rfc3339(double t, char buf[32]);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * sender_spool: the sender's side of the run's spool file (spool.c has
 * the format): once the daemon has failed and the ring is half full,
 * requests go to the spool instead; while it holds anything, new
 * requests go there too and its first record is what is posted, until
 * it is drained and removed; at close, what could not be sent and the
 * finish go there.  Sender thread only.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sender_int.h"

/*
 * Open the run's spool file, made if missing when create (else only one
 * left behind earlier).  0, or -1 when there is none or it cannot be
 * opened (said in gw_errmsg, and not tried again for a while).
 */
int
gw__sender_spool_open(struct gw_client *c, struct gw__sender *s, int create)
{
	char	why[GW__ERRMSG_SIZE];
	int	rc;

	if (s->sp != NULL)
		return 0;
	if (c->spool_path == NULL || gw__now_ms() < s->spool_retry)
		return -1;
	rc = gw__spool_open(c->spool_path, GW__SPOOL_REPAIR |
	    (create ? GW__SPOOL_CREATE : 0), c->spool_max, &s->sp, why,
	    sizeof why);
	if (rc != GW_OK) {
		s->spool_retry = gw__now_ms() + GW__SPOOL_RETRY_MS;
		gw__sender_note(c, "spool: %s", why);
		return -1;
	}
	if (why[0] != '\0')
		gw__sender_note(c, "spool: %s", why);
	return s->sp != NULL ? 0 : -1;
}

/* The spool has nothing left to send: remove it, and tell the flushers. */
void
gw__sender_spool_drained(struct gw_client *c, struct gw__sender *s)
{
	gw__spool_close(s->sp, 0);
	s->sp = NULL;
	s->backlog = 0;
	gw__debug(c, "spool: drained");
	gw__sender_publish(c, s);
}

/* Append q to the spool (q is spent); if it does not fit, its values are dropped and counted. */
static void
gw__sender_spool_req(struct gw_client *c, struct gw__sender *s,
    struct gw__req *q)
{
	char	why[GW__ERRMSG_SIZE];
	int	rc;

	if (!q->valid)
		return;
	q->valid = 0;
	rc = gw__spool_append(s->sp, GW__SPOOL_INGEST, c->run, q->body.p,
	    q->body.len, (uint32_t)q->points, 0, why, sizeof why);
	if (rc == 0)
		return;
	atomic_fetch_add(&c->dropped, q->points);
	s->claimed -= q->dropped;	/* a later request reports them */
	if (q->meta)
		s->meta_sent = 0;	/* and the next one carries the meta */
	if (rc == 1)
		gw__sender_note(c, "spool: %s is full (%zu bytes): %zu values "
		    "dropped", c->spool_path, c->spool_max, q->points);
	else
		gw__sender_note(c, "spool: %s: %zu values dropped", why,
		    q->points);
}

/* Move what the rings hold to the spool: all of it, or a batch of requests. */
static void
gw__sender_spool_rings(struct gw_client *c, struct gw__sender *s, int all)
{
	struct gw__req	*q = GW__CUR(s);
	int		 i, more;

	s->backlog = 0;
	for (i = 0;; i++) {
		if (!all && i == 64) {
			s->backlog = 1;
			break;
		}
		gw__sender_build(c, s, q);
		if (!q->valid)
			break;
		more = q->more;
		gw__sender_spool_req(c, s, q);
		if (!more)
			break;
	}
}

/* The daemon is away and the ring passed half full: spool from now on. */
void
gw__sender_spool_begin(struct gw_client *c, struct gw__sender *s)
{
	if (gw__sender_spool_open(c, s, 1) == -1)
		return;		/* without a spool, the ring drops when full */
	gw__debug(c, "spool: the daemon is away and the buffer half full: "
	    "spooling to %s", c->spool_path);
	gw__sender_spool_req(c, s, GW__CUR(s));
	gw__sender_spool_req(c, s, GW__NEXT(s));
	gw__sender_spool_rings(c, s, 0);
	if (!gw__sender_is_spooling(s))
		gw__sender_spool_drained(c, s);	/* nothing fitted */
}

/* Spooling: post the spool's first record once; 0, or -1 when closing ran out of time. */
static int
gw__sender_spool_send(struct gw_client *c, struct gw__sender *s)
{
	struct gw__spool_rec	 rec;
	struct gw__reply	 r;
	char			 why[GW__ERRMSG_SIZE], text[160], *url;
	int64_t			 skipped;
	int			 rc, torn;

	rc = gw__spool_next(s->sp, &rec, &skipped, &torn, why, sizeof why);
	if (skipped > 0)
		gw__sender_note(c, "spool: %s: skipped %lld bytes of %s",
		    c->spool_path, (long long)skipped, torn ? "a torn record" :
		    "damaged records");
	if (rc == 0) {
		gw__sender_spool_drained(c, s);
		return 0;
	}
	if (rc == 1 && rec.type == GW__SPOOL_FINISH &&
	    strcmp(rec.run, c->run) == 0) {
		/* An earlier process's end of this run, which we go on with. */
		gw__debug(c, "spool: skipped the finish of an earlier process");
		gw__spool_done(s->sp, &rec);
		if (!gw__sender_is_spooling(s))
			gw__sender_spool_drained(c, s);
		return 0;
	}
	url = rc == 1 ? gw__spool_url(c->url, &rec) : NULL;
	if (url == NULL) {
		gw__sender_note(c, "spool: %s", rc == -1 ? why :
		    "out of memory");
		s->retry_at = gw__now_ms() + GW__BACKOFF_MAX_MS;
		return 0;
	}
	gw__transport_post(c->tr, url, rec.body, rec.len, &c->flush_deadline,
	    NULL, NULL, &r);
	if (r.aborted) {
		free(url);
		return -1;
	}
	if (r.status >= 200 && r.status < 300) {
		if (rec.type == GW__SPOOL_INGEST)
			gw__sender_answer(c, r.body, r.len);
		if (s->attempts > 0 || !s->accepted)
			gw__debug(c, "%s: accepted (%u spooled values)", url,
			    rec.values);
		s->accepted = 1;
		s->attempts = 0;
		pthread_mutex_lock(&c->lock);
		c->last_err = GW_OK;
		pthread_mutex_unlock(&c->lock);
		gw__spool_done(s->sp, &rec);
	} else if (gw__reply_is_refusal(r.status)) {
		gw__reply_text(&r, text, sizeof text);
		atomic_fetch_add(&c->dropped, rec.values);
		gw__sender_error(c, GW_EREFUSED, "daemon refused a spooled "
		    "record of %u values (%ld %s)", rec.values, r.status, text);
		s->attempts = 0;
		gw__spool_done(s->sp, &rec);
	} else
		gw__sender_retry(c, s, &r, url);
	free(url);
	if (!gw__sender_is_spooling(s))
		gw__sender_spool_drained(c, s);
	return 0;
}

/* Spooling: new values to the spool (on the tick), then its head to the daemon. */
int
gw__sender_spool_work(struct gw_client *c, struct gw__sender *s)
{
	if (s->move) {
		s->move = 0;
		gw__sender_spool_rings(c, s, 0);
	}
	if (gw__now_ms() >= s->retry_at)
		return gw__sender_spool_send(c, s);
	return 0;
}

/* Append the run's finish to the spool; 0, or -1 (said in gw_errmsg). */
int
gw__sender_spool_finish(struct gw_client *c, struct gw__sender *s)
{
	const char	*body = gw__finish_body(c);
	char		 why[GW__ERRMSG_SIZE];

	if (gw__spool_append(s->sp, GW__SPOOL_FINISH, c->run, body,
	    strlen(body), 0, 1, why, sizeof why) != 0) {
		gw__sender_note(c, "spool: %s", why);
		return -1;
	}
	pthread_mutex_lock(&c->lock);
	c->finish_rc = GW_ESPOOLED;
	c->spooled = 1;
	pthread_mutex_unlock(&c->lock);
	gw__debug(c, "closing: the rest is in %s", c->spool_path);
	return 0;
}

/*
 * Closing with a spool and values not sent: all of them go to the spool
 * (whatever the time: gw_close may leave us to it), then a record that
 * reports the values dropped, and the finish.
 */
void
gw__sender_spool_rest(struct gw_client *c, struct gw__sender *s)
{
	char		body[WIRE_RUN_KEY_MAX + 64], why[GW__ERRMSG_SIZE];
	uint64_t	dropped;

	gw__sender_spool_req(c, s, GW__CUR(s));
	gw__sender_spool_req(c, s, GW__NEXT(s));
	gw__sender_spool_rings(c, s, 1);
	dropped = atomic_load(&c->dropped) - s->claimed;
	if (dropped > 0) {
		/* The run key needs no escaping. */
		snprintf(body, sizeof body, "{\"run\":\"%s\",\"steps\":[],"
		    "\"dropped\":%llu}", c->run, (unsigned long long)dropped);
		if (gw__spool_append(s->sp, GW__SPOOL_INGEST, c->run, body,
		    strlen(body), 0, 1, why, sizeof why) == 0)
			s->claimed += dropped;
		else
			gw__sender_note(c, "spool: %s", why);
	}
	gw__sender_spool_finish(c, s);
}

/* SPDX-License-Identifier: MIT */
/*
 * ws_client: one viewer of the stream: its subscriptions, its bounded
 * queue and per-run step slots (the newest step only, at most a few a
 * second), what it is sent next, and the commands it sends us
 * (subscribe, unsubscribe).  Service thread only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "ingest.h"
#include "log.h"
#include "now.h"
#include "wire.h"
#include "ws_stream.h"
#include "ws_stream_int.h"
#include "xmalloc.h"

/* ---- per-client queues ---------------------------------------------- */

static void
ws_client_drop_queue(struct ws_client *c)
{
	struct ws_entry	*e;
	struct ws_slot	*s;

	while ((e = c->head) != NULL) {
		c->head = e->next;
		ws_msg_unref(e->msg);
		free(e);
	}
	c->tail = NULL;
	c->qn = c->qbytes = 0;
	for (s = c->slots; s != NULL; s = s->next) {
		ws_msg_unref(s->pending);
		s->pending = NULL;
	}
	c->resync_pending = 0;
}

void
ws_client_cleanup(struct ws_client *c)
{
	struct ws_slot	*s;
	size_t		 i;

	ws_client_drop_queue(c);
	while ((s = c->slots) != NULL) {
		c->slots = s->next;
		free(s->run);
		free(s);
	}
	for (i = 0; i < c->nsubs; i++)
		free(c->subs[i]);
	c->nsubs = 0;
	free(c->rx);
	c->rx = NULL;
}

/* Append m (the caller's reference is kept by the queue). */
static void
ws_client_append(struct ws_client *c, struct ws_msg *m)
{
	struct ws_entry	*e;

	e = xmalloc(sizeof *e);
	e->next = NULL;
	e->msg = m;
	if (c->tail != NULL)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	c->qn++;
	c->qbytes += m->len;
}

/*
 * c's queue is full.  The first time, everything queued is dropped (it
 * can all be fetched again over HTTP) and a resync message takes its
 * place; if the queue fills again before that message could even be
 * sent, the client cannot keep up and is closed.
 */
static void
ws_client_overflow(struct ws_client *c, const char *why)
{
	if (c->resync_pending) {
		ws_close_why(c, "it cannot keep up: %zu messages (%zu bytes) "
		    "waited for it and its resync was not sent yet", c->qn,
		    c->qbytes);
		ws_client_drop_queue(c);
		c->closing = 1;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
		    LWS_TO_KILL_ASYNC);
		return;
	}
	log_debug("ws_stream: client queue full (%s): resync", why);
	ws_client_drop_queue(c);
	ws_client_append(c, ws_msg_json(WS_KIND_RESYNC,
	    json_pack("{s:s, s:s}", "type", "resync", "reason", why)));
	c->resync_pending = 1;
}

static struct ws_slot *
ws_client_slot(struct ws_client *c, const char *run, int create)
{
	struct ws_slot	*s;

	for (s = c->slots; s != NULL; s = s->next)
		if (strcmp(s->run, run) == 0)
			return s;
	if (!create)
		return NULL;
	s = xcalloc(1, sizeof *s);
	s->run = xstrdup(run);
	s->next = c->slots;
	c->slots = s;
	return s;
}

int
ws_client_is_subscribed(const struct ws_client *c, const char *run)
{
	size_t	i;

	if (c->all)
		return 1;
	if (run == NULL)
		return 0;
	for (i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], run) == 0)
			return 1;
	return 0;
}

/* 1 if c subscribed to run by name (not only through "*"). */
static int
ws_client_is_named(const struct ws_client *c, const char *run)
{
	size_t	i;

	for (i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], run) == 0)
			return 1;
	return 0;
}

/* Hand m to c as its kind says; takes a reference if it keeps m. */
void
ws_client_enqueue(struct ws_client *c, struct ws_msg *m)
{
	struct ws_slot	*s;

	if (c->closing)
		return;
	if (m->kind == WS_STREAM_STEP) {
		s = ws_client_slot(c, m->run, 1);
		/* A step already waiting has its wake-up arranged. */
		if (s->pending == NULL)
			c->need_wake = 1;
		ws_msg_unref(s->pending);	/* superseded: coalesced */
		m->refs++;
		s->pending = m;
		/*
		 * A viewer of one run (the run page) gets its steps 4 times a
		 * second; one that sees it only through "*" (the runs list)
		 * needs no more than its last step now and then.
		 */
		s->interval = ws_client_is_named(c, m->run) ?
		    WS_STEP_INTERVAL_US : WS_STEP_INTERVAL_ALL_US;
		return;
	}
	c->need_wake = 1;
	if (m->kind == WS_STREAM_STEP_NONFINITE &&
	    (s = ws_client_slot(c, m->run, 0)) != NULL) {
		ws_msg_unref(s->pending);	/* an older step */
		s->pending = NULL;
	}
	if (c->qn + 1 > WS_CLIENT_MAX_MSGS ||
	    c->qbytes + m->len > WS_CLIENT_MAX_BYTES) {
		ws_client_overflow(c, c->qn + 1 > WS_CLIENT_MAX_MSGS ?
		    "more than 1000 messages queued" :
		    "more than 4 MiB queued");
		return;		/* m is dropped with the rest */
	}
	m->refs++;
	ws_client_append(c, m);
}

/* The next message c may be sent now (the FIFO first), or NULL. */
static struct ws_msg *
ws_client_next(struct ws_client *c, int64_t now)
{
	struct ws_entry	*e;
	struct ws_slot	*s, *best = NULL;
	struct ws_msg	*m;
	if ((e = c->head) != NULL) {
		c->head = e->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->qn--;
		c->qbytes -= e->msg->len;
		m = e->msg;
		free(e);
		return m;
	}
	for (s = c->slots; s != NULL; s = s->next)
		if (s->pending != NULL &&
		    s->last_sent + s->interval <= now &&
		    (best == NULL || s->last_sent < best->last_sent))
			best = s;
	if (best == NULL)
		return NULL;
	m = best->pending;
	best->pending = NULL;
	best->last_sent = now;
	return m;
}

static int
ws_client_has_output(const struct ws_client *c)
{
	const struct ws_slot	*s;

	if (c->head != NULL)
		return 1;
	for (s = c->slots; s != NULL; s = s->next)
		if (s->pending != NULL)
			return 1;
	return 0;
}

/*
 * Ask for WRITEABLE if c has something to send now; if it only has
 * steps that are not due yet, make sure the timer will wake it then.
 * Waking every viewer for a step it may not be sent yet would cost a
 * callback per viewer per commit.
 */
void
ws_client_wake(struct ws_client *c, int64_t now)
{
	const struct ws_slot	*s;
	int64_t			 due, soonest = 0;

	if (c->closing)
		return;
	if (c->head != NULL) {
		lws_callback_on_writable(c->wsi);
		return;
	}
	for (s = c->slots; s != NULL; s = s->next) {
		if (s->pending == NULL)
			continue;
		due = s->last_sent + s->interval;
		if (due <= now) {
			lws_callback_on_writable(c->wsi);
			return;
		}
		if (soonest == 0 || due < soonest)
			soonest = due;
	}
	if (soonest == 0)
		return;
	/*
	 * Round up to the grid, so that the viewers' timers expire in the
	 * same service pass: one poll() then serves them all.
	 */
	soonest += WS_TIMER_GRID_US - 1 - (soonest + WS_TIMER_GRID_US - 1) %
	    WS_TIMER_GRID_US;
	if (c->timer_due == 0 || soonest < c->timer_due) {
		c->timer_due = soonest;
		lws_set_timer_usecs(c->wsi, soonest - now);
	}
}

/* WRITEABLE: one lws_write.  -1 closes the connection. */
int
ws_client_send_next(struct ws_client *c)
{
	struct ws_msg	*m;
	int64_t		 now;
	size_t		 len;
	int		 n;

	if (c->closing)
		return -1;
	now = now_mono_us();
	if (c->ping_due) {		/* the keepalive's, first */
		if (ws_close_send_ping(c, now) == -1)
			return -1;
		ws_client_wake(c, now);
		return 0;
	}
	m = ws_client_next(c, now);
	if (m == NULL) {
		ws_client_wake(c, now);		/* a timer for later steps */
		return 0;
	}
	if (m->kind == WS_KIND_RESYNC)
		c->resync_pending = 0;
	ws_msg_build(m);	/* once, for every viewer it goes to */
	len = m->len;
	n = lws_write(c->wsi, m->buf + LWS_PRE, len, LWS_WRITE_TEXT);
	ws_msg_unref(m);
	if (n < 0 || (size_t)n < len) {
		ws_close_why(c, "a send failed: the connection broke");
		return -1;
	}
	c->nsent++;
	if (ws_client_has_output(c))
		ws_client_wake(c, now);
	return 0;
}

/* ---- commands from a client ----------------------------------------- */

static void
ws_client_reply(struct ws_client *c, json_t *o)
{
	struct ws_msg	*m = ws_msg_json(WS_KIND_CONTROL, o);

	ws_client_enqueue(c, m);
	ws_msg_unref(m);
	lws_callback_on_writable(c->wsi);
}

void
ws_client_error(struct ws_client *c, const char *message)
{
	ws_client_reply(c, json_pack("{s:s, s:s}", "type", "error",
	    "message", message));
}

/* Add (add=1) or remove run, or "*"; -1 with a message on bad input. */
static int
ws_client_sub(struct ws_client *c, const char *run, int add,
    const char **why)
{
	size_t	i;

	if (strcmp(run, "*") == 0) {
		c->all = add;
		return 0;
	}
	if (!wire_is_run_key(run)) {
		*why = "subscribe: a run key, or \"*\"";
		return -1;
	}
	for (i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], run) == 0)
			break;
	if (add && i == c->nsubs) {
		if (c->nsubs == WS_MAX_SUBS) {
			*why = "subscribe: at most 64 runs (or \"*\")";
			return -1;
		}
		c->subs[c->nsubs++] = xstrdup(run);
	} else if (!add && i < c->nsubs) {
		free(c->subs[i]);
		c->subs[i] = c->subs[--c->nsubs];
	}
	return 0;
}

/* {"subscribe": run | "*" | [...]} and {"unsubscribe": ...}. */
void
ws_client_command(struct ws_client *c, const char *text, size_t len)
{
	json_t		*o, *v, *runs, *item;
	const char	*key, *why = "expected {\"subscribe\": \"<run>\"}";
	size_t		 i;
	int		 add;

	o = json_loadb(text, len, 0, NULL);
	if (!json_is_object(o) || json_object_size(o) != 1) {
		ws_client_error(c, why);
		goto out;
	}
	key = json_object_iter_key(json_object_iter(o));
	v = json_object_iter_value(json_object_iter(o));
	if (strcmp(key, "subscribe") == 0)
		add = 1;
	else if (strcmp(key, "unsubscribe") == 0)
		add = 0;
	else {
		ws_client_error(c, why);
		goto out;
	}
	if (json_is_string(v)) {
		if (ws_client_sub(c, json_string_value(v), add, &why) == -1) {
			ws_client_error(c, why);
			goto out;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			if (!json_is_string(item) || ws_client_sub(c,
			    json_string_value(item), add, &why) == -1) {
				ws_client_error(c, why);
				goto out;
			}
		}
	} else {
		ws_client_error(c, why);
		goto out;
	}
	runs = json_array();
	if (c->all)
		json_array_append_new(runs, json_string("*"));
	for (i = 0; i < c->nsubs; i++)
		json_array_append_new(runs, json_string(c->subs[i]));
	ws_client_reply(c, json_pack("{s:s, s:o}", "type", "subscribed",
	    "runs", runs));
out:
	json_decref(o);
}

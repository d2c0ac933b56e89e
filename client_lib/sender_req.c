/* SPDX-License-Identifier: MIT */
/*
 * sender_req: the sender's requests and their outcomes: records drained
 * from the rings and encoded into a request, the daemon's answer read
 * (health, alerts), a failure's backoff scheduled, and what has been
 * resolved published to the threads waiting in gw_flush and gw_close.
 * Sender thread only; it meets the others under c->lock.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sender_int.h"

static uint64_t
gw__rand(struct gw__sender *s)
{
	s->rng ^= s->rng >> 12;		/* xorshift64* */
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dULL;
}

/* 1 while the spool holds records to send before anything new. */
int
gw__sender_is_spooling(const struct gw__sender *s)
{
	return s->sp != NULL && gw__spool_has_pending(s->sp);
}

/* Under c->lock: what has been resolved (accepted or refused), for flushers. */
void
gw__sender_publish_locked(struct gw_client *c, struct gw__sender *s)
{
	const struct gw__req	*r = GW__CUR(s);

	/* What went to the spool counts once the spool is drained. */
	if (!gw__sender_is_spooling(s)) {
		if (!r->valid)
			r = GW__NEXT(s); /* (never valid without the current) */
		c->done_main = r->valid ? r->main :
		    atomic_load_explicit(&c->ring.head, memory_order_relaxed);
		c->done_prio = r->valid ? r->prio :
		    atomic_load_explicit(&c->prio.head, memory_order_relaxed);
	}
	pthread_cond_broadcast(&c->cv_done);
}

void
gw__sender_publish(struct gw_client *c, struct gw__sender *s)
{
	pthread_mutex_lock(&c->lock);
	gw__sender_publish_locked(c, s);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Set gw_errmsg's text and the debug line; with is_error also the
 * failure flush reports (code), counting refusals.
 */
static void __attribute__((format(printf, 4, 0)))
gw__sender_report(struct gw_client *c, int is_error, int code,
    const char *fmt, va_list ap)
{
	char	msg[GW__ERRMSG_SIZE];

	vsnprintf(msg, sizeof msg, fmt, ap);
	pthread_mutex_lock(&c->lock);
	if (is_error) {
		c->last_err = code;
		if (code == GW_EREFUSED)
			c->nrefused++;
	}
	memcpy(c->errmsg, msg, sizeof msg);
	pthread_mutex_unlock(&c->lock);
	gw__debug(c, "%s", msg);
}

/* Record the sender's latest failure for gw_errmsg and gw_flush. */
void
gw__sender_error(struct gw_client *c, int code, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	gw__sender_report(c, 1, code, fmt, ap);
	va_end(ap);
}

/* A problem with the spool, for gw_errmsg; flush's verdict stays as it is. */
void
gw__sender_note(struct gw_client *c, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	gw__sender_report(c, 0, 0, fmt, ap);
	va_end(ap);
}

/* Take one record off r into s->recs; -1 when none is ready (or no memory). */
static int
gw__sender_take(struct gw__sender *s, struct gw__ring *r)
{
	struct gw__srec	*rec, *p;
	size_t		 want;

	if (s->n == s->cap) {
		want = s->cap == 0 ? 4096 : s->cap * 2;
		if ((p = realloc(s->recs, want * sizeof *p)) == NULL)
			return -1;
		s->recs = p;
		s->cap = want;
	}
	rec = &s->recs[s->n];
	if (gw__ring_peek(r, &rec->key, &rec->step, &rec->value) == -1)
		return -1;
	rec->ord = (uint32_t)s->n;
	s->n++;
	gw__ring_pop(r);
	return 0;
}

/*
 * Drain up to a request's worth into s->recs: the reserve first (it is
 * small), then the main ring, stopping before a new step once the
 * request is full.  r gets the ring positions it starts from.
 */
static void
gw__sender_drain(struct gw_client *c, struct gw__sender *s, struct gw__req *r)
{
	uint32_t	key;
	int64_t		step, last = 0;
	double		value;
	size_t		steps = 0, bytes = 256;

	s->n = 0;
	r->more = 0;
	r->main = atomic_load_explicit(&c->ring.head, memory_order_relaxed);
	r->prio = atomic_load_explicit(&c->prio.head, memory_order_relaxed);
	while (gw__sender_take(s, &c->prio) == 0)
		bytes += 32;
	while (gw__ring_peek(&c->ring, &key, &step, &value) == 0) {
		if (steps == 0 || step != last) {
			if (steps >= GW__REQ_STEPS || bytes >= GW__REQ_BYTES) {
				r->more = 1;
				break;
			}
			steps++;
			bytes += 48;
			last = step;
		}
		if (gw__sender_take(s, &c->ring) == -1) {
			r->more = 1;
			break;
		}
		bytes += 24;
	}
	atomic_store(&c->wake_pending, 0);
}

/* Drain and encode (with the meta when it changed) into r. */
void
gw__sender_build(struct gw_client *c, struct gw__sender *s, struct gw__req *r)
{
	uint64_t	dropped;
	uint32_t	nlayers;
	int		with_meta;

	gw__sender_drain(c, s, r);
	nlayers = atomic_load_explicit(&c->layers.count, memory_order_acquire);
	with_meta = !s->meta_sent || nlayers > s->meta_layers;
	if (s->n == 0 && !with_meta)
		return;
	dropped = atomic_load(&c->dropped) - s->claimed;
	if (gw__encode_request(c, &s->enc, s->recs, s->n, nlayers, with_meta,
	    dropped, gw__wall_time(), &r->body) == -1) {
		atomic_fetch_add(&c->dropped, s->n);
		gw__sender_error(c, GW_ENOMEM, "out of memory: %zu values "
		    "dropped", s->n);
		s->n = 0;
		return;
	}
	if (with_meta) {
		s->meta_sent = 1;
		s->meta_layers = nlayers;
	}
	s->claimed += dropped;
	r->valid = 1;
	r->meta = with_meta;
	r->points = s->n;
	r->dropped = dropped;
	s->n = 0;
}

/*
 * Called by the transport while it waits for the answer to the current
 * request: with a backlog behind it, encode the next one now.  Returns 1
 * when there is nothing more to do while waiting.
 */
int
gw__sender_idle_cb(void *arg)
{
	struct gw__sender	*s = arg;

	if (!GW__NEXT(s)->valid && GW__CUR(s)->more)
		gw__sender_build(s->c, s, GW__NEXT(s));
	return 1;
}

static int
gw__health_code(const char *h)
{
	if (h == NULL)
		return GW_HEALTH_UNKNOWN;
	if (strcmp(h, "ok") == 0)
		return GW_HEALTH_OK;
	if (strcmp(h, "warning") == 0)
		return GW_HEALTH_WARNING;
	if (strcmp(h, "critical") == 0)
		return GW_HEALTH_CRITICAL;
	return GW_HEALTH_UNKNOWN;
}

/* Copy a JSON string into dst, cut at a UTF-8 character boundary. */
static void
gw__copy_str(char *dst, size_t size, json_t *v)
{
	const char	*s;
	size_t		 n;

	dst[0] = '\0';
	if (!json_is_string(v))
		return;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n >= size) {
		n = size - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static int64_t
gw__json_step(json_t *v)
{
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* A 200's body: the run's health and its firing alerts. */
void
gw__sender_answer(struct gw_client *c, const char *body, size_t len)
{
	struct gw_alert	 tmp[GW__ALERTS_MAX] = { 0 };
	json_t		*root, *alerts, *a;
	size_t		 i, n = 0, total = 0;
	int		 health;

	root = json_loadb(body, len, 0, NULL);
	if (root == NULL || !json_is_object(root))
		goto out;
	health = gw__health_code(json_string_value(json_object_get(root,
	    "health")));
	alerts = json_object_get(root, "alerts");
	if (json_is_array(alerts)) {
		total = json_array_size(alerts);
		json_array_foreach(alerts, i, a) {
			if (n == GW__ALERTS_MAX)
				break;
			if (!json_is_object(a))
				continue;
			memset(&tmp[n], 0, sizeof tmp[n]);
			gw__copy_str(tmp[n].kind, sizeof tmp[n].kind,
			    json_object_get(a, "kind"));
			gw__copy_str(tmp[n].severity, sizeof tmp[n].severity,
			    json_object_get(a, "severity"));
			gw__copy_str(tmp[n].series, sizeof tmp[n].series,
			    json_object_get(a, "series"));
			gw__copy_str(tmp[n].message, sizeof tmp[n].message,
			    json_object_get(a, "message"));
			tmp[n].onset_step = gw__json_step(json_object_get(a,
			    "onset_step"));
			tmp[n].fire_step = gw__json_step(json_object_get(a,
			    "fire_step"));
			n++;
		}
	}
	pthread_mutex_lock(&c->lock);
	memcpy(c->alerts, tmp, n * sizeof tmp[0]);
	c->nalerts_kept = (int)n;
	c->nalerts = total > (size_t)INT32_MAX ? INT32_MAX : (int)total;
	atomic_store(&c->health, health);
	pthread_mutex_unlock(&c->lock);
out:
	json_decref(root);
}

/* An attempt failed in a way worth repeating: back off, and say why. */
void
gw__sender_retry(struct gw_client *c, struct gw__sender *s,
    const struct gw__reply *r, const char *url)
{
	char	text[160];
	int64_t	delay;

	s->attempts++;
	delay = gw__backoff_ms(s->attempts, r->retry_after_ms, gw__rand(s));
	s->retry_at = gw__now_ms() + delay;
	if (r->status == 0)
		gw__sender_error(c, GW_ECONN, "%s: %s (retry %d in %lld ms)",
		    url, r->error, s->attempts, (long long)delay);
	else {
		gw__reply_text(r, text, sizeof text);
		gw__sender_error(c, GW_ETIMEDOUT, "%s: %ld %s (retry %d in "
		    "%lld ms)", url, r->status, text, s->attempts,
		    (long long)delay);
	}
}

/* The body of the run's finish request. */
const char *
gw__finish_body(struct gw_client *c)
{
	int	failed;

	pthread_mutex_lock(&c->lock);
	failed = c->close_status == GW_RUN_FAILED;
	pthread_mutex_unlock(&c->lock);
	return failed ? "{\"status\":\"failed\"}" : "{\"status\":\"finished\"}";
}

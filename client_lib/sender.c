/* SPDX-License-Identifier: MIT */
/*
 * sender: the one background thread of a client.  It wakes on its flush
 * interval (or when the ring passes half full, or for gw_flush and
 * gw_close), drains the rings into requests of at most GW__REQ_STEPS
 * steps or about GW__REQ_BYTES, and posts them one at a time, in order:
 * a request is resent (the daemon replaces a resent step) until it is
 * accepted or refused, with exponential backoff, jitter and Retry-After,
 * and nothing later goes out before it.  While it waits for an answer
 * with more backlog behind, it encodes the next request (so encoding and
 * the daemon's commit overlap), but sends it only after.  While it waits,
 * the ring keeps filling and drops when full.  Only this thread touches
 * s, the encoder and the transport; it meets the others under c->lock.
 */
#define _GNU_SOURCE		/* pthread_setname_np */
#include <errno.h>
#include <jansson.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

/* An encoded request: the one in flight, or the next. */
struct gw__req {
	struct gw__buf	 body;
	int		 valid;
	size_t		 points;
	uint64_t	 dropped;	/* "dropped" in body */
	uint64_t	 main;		/* ring positions before its records */
	uint64_t	 prio;
	int		 more;		/* its drain stopped at a limit */
};

struct gw__sender {
	struct gw__srec	*recs;		/* drained, not yet encoded */
	size_t		 n;
	size_t		 cap;
	struct gw__enc	 enc;
	struct gw__req	 req[2];	/* req[cur] goes first */
	int		 cur;

	uint64_t	 claimed;	/* drops counted in built requests */
	uint32_t	 meta_layers;	/* layers sent in meta so far */
	int		 meta_sent;
	int		 accepted;	/* the daemon has taken a request */
	int		 attempts;	/* failures in a row */
	int64_t		 retry_at;	/* ms, monotonic */
	int64_t		 next_tick;	/* ms, monotonic */
	uint64_t	 rng;
	uint64_t	 drops_logged;
	locale_t	 loc;
	struct gw_client *c;
};

#define GW__CUR(s)	(&(s)->req[(s)->cur])
#define GW__NEXT(s)	(&(s)->req[1 - (s)->cur])

enum gw__next {
	GW__WORK,		/* drain and send, or resend */
	GW__FINISH,		/* closing: mark the run and stop */
	GW__EXIT		/* closing and out of time */
};

static uint64_t
gw__rand(struct gw__sender *s)
{
	s->rng ^= s->rng >> 12;		/* xorshift64* */
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dULL;
}

void
gw__sender_free(struct gw__sender *s)
{
	if (s == NULL)
		return;
	free(s->recs);
	gw__buf_free(&s->req[0].body);
	gw__buf_free(&s->req[1].body);
	gw__enc_free(&s->enc);
	free(s);
}

/* Under c->lock: what has been resolved (accepted or refused), for flushers. */
static void
gw__sender_publish_locked(struct gw_client *c, struct gw__sender *s)
{
	const struct gw__req	*r = GW__CUR(s);

	if (!r->valid)
		r = GW__NEXT(s);	/* (never valid without the current) */
	c->done_main = r->valid ? r->main :
	    atomic_load_explicit(&c->ring.head, memory_order_relaxed);
	c->done_prio = r->valid ? r->prio :
	    atomic_load_explicit(&c->prio.head, memory_order_relaxed);
	pthread_cond_broadcast(&c->cv_done);
}

static void
gw__sender_publish(struct gw_client *c, struct gw__sender *s)
{
	pthread_mutex_lock(&c->lock);
	gw__sender_publish_locked(c, s);
	pthread_mutex_unlock(&c->lock);
}

static void
gw__sender_error(struct gw_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the sender's latest failure for gw_errmsg and gw_flush. */
static void
gw__sender_error(struct gw_client *c, int code, const char *fmt, ...)
{
	char	msg[GW__ERRMSG_SIZE];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->lock);
	c->last_err = code;
	memcpy(c->errmsg, msg, sizeof msg);
	if (code == GW_EREFUSED)
		c->nrefused++;
	pthread_mutex_unlock(&c->lock);
	gw__debug(c, "%s", msg);
}

/* Decide, under c->lock, what to do next; waits until there is something. */
static enum gw__next
gw__sender_wait(struct gw_client *c, struct gw__sender *s)
{
	struct timespec	ts;
	enum gw__next	next;
	int64_t		now, wake_at, flush_end, end;
	int		have;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		now = gw__now_ms();
		end = atomic_load(&c->deadline);
		flush_end = atomic_load(&c->flush_deadline);
		if (c->closing && now >= end) {
			next = GW__EXIT;
			break;
		}
		if (c->closing && now >= flush_end) {
			next = GW__FINISH;	/* no time left to flush */
			break;
		}
		have = gw__ring_level(&c->ring) > 0 ||
		    gw__ring_level(&c->prio) > 0;
		if (GW__CUR(s)->valid) {
			if (now >= s->retry_at) {
				next = GW__WORK;
				break;
			}
			wake_at = s->retry_at;
		} else if (have && (GW__NEXT(s)->more || c->wake ||
		    c->flush_req ||
		    now >= s->next_tick)) {
			next = GW__WORK;
			break;
		} else if (!have && c->closing) {
			next = !s->meta_sent || atomic_load(&c->layers.count) >
			    s->meta_layers ? GW__WORK : GW__FINISH;
			break;
		} else {
			if (now >= s->next_tick)
				s->next_tick = now + c->flush_ms;
			wake_at = s->next_tick;
		}
		if (c->closing && flush_end < wake_at)
			wake_at = flush_end;
		ts.tv_sec = wake_at / 1000;
		ts.tv_nsec = (wake_at % 1000) * 1000000;
		pthread_cond_timedwait(&c->cv_sender, &c->lock, &ts);
	}
	if (next == GW__WORK && !GW__CUR(s)->valid) {
		c->wake = 0;
		c->flush_req = 0;
		s->next_tick = now + (c->closing ? 1 : c->flush_ms);
	}
	pthread_mutex_unlock(&c->lock);
	return next;
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
static void
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
	r->points = s->n;
	r->dropped = dropped;
	s->n = 0;
}

/*
 * Called by the transport while it waits for the answer to the current
 * request: with a backlog behind it, encode the next one now.  Returns 1
 * when there is nothing more to do while waiting.
 */
static int
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
static void
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

/* A short "code: message" from an error answer, for gw_errmsg. */
static void
gw__error_text(const struct gw__reply *r, char *out, size_t size)
{
	json_t	*root;

	root = json_loadb(r->body, r->len, 0, NULL);
	if (root != NULL && json_is_string(json_object_get(root, "message")))
		snprintf(out, size, "%s: %s",
		    json_is_string(json_object_get(root, "error")) ?
		    json_string_value(json_object_get(root, "error")) : "error",
		    json_string_value(json_object_get(root, "message")));
	else
		snprintf(out, size, "%.120s", r->len > 0 ? r->body : "no body");
	json_decref(root);
}

/* The current request is resolved: the next one (if built) is current. */
static void
gw__sender_next(struct gw_client *c, struct gw__sender *s)
{
	GW__CUR(s)->valid = 0;
	s->cur = 1 - s->cur;
	s->attempts = 0;
	pthread_mutex_lock(&c->lock);
	gw__sender_publish_locked(c, s);
	pthread_mutex_unlock(&c->lock);
}

/* Post the current request once; 0, or -1 when closing ran out of time. */
static int
gw__sender_send(struct gw_client *c, struct gw__sender *s)
{
	struct gw__req		*q = GW__CUR(s);
	struct gw__reply	 r;
	char			 text[160];
	int64_t			 base, delay;

	gw__transport_post(c->tr, c->url_ingest, q->body.p, q->body.len,
	    &c->flush_deadline, gw__sender_idle_cb, s, &r);
	if (r.aborted)
		return -1;
	if (r.status >= 200 && r.status < 300) {
		gw__sender_answer(c, r.body, r.len);
		if (s->attempts > 0 || !s->accepted)
			gw__debug(c, "%s: accepted (%zu values)", c->url_ingest,
			    q->points);
		s->accepted = 1;
		pthread_mutex_lock(&c->lock);
		c->last_err = GW_OK;
		pthread_mutex_unlock(&c->lock);
		gw__sender_next(c, s);
		return 0;
	}
	if (r.status != 0 && r.status != 408 && r.status != 429 &&
	    r.status < 500) {
		/* A refusal: resending the same body cannot help. */
		gw__error_text(&r, text, sizeof text);
		atomic_fetch_add(&c->dropped, q->points);
		s->claimed -= q->dropped;	/* the next request reports them */
		gw__sender_error(c, GW_EREFUSED, "daemon refused %zu values "
		    "(%ld %s)", q->points, r.status, text);
		gw__sender_next(c, s);
		return 0;
	}
	s->attempts++;
	base = (int64_t)GW__BACKOFF_MIN_MS << (s->attempts < 8 ?
	    s->attempts - 1 : 7);
	if (base > GW__BACKOFF_MAX_MS)
		base = GW__BACKOFF_MAX_MS;
	delay = base / 2 + (int64_t)(gw__rand(s) % (uint64_t)(base / 2 + 1));
	if (r.retry_after_ms > delay)
		delay = r.retry_after_ms + (int64_t)(gw__rand(s) %
		    (uint64_t)(r.retry_after_ms / 10 + 1));
	s->retry_at = gw__now_ms() + delay;
	if (r.status == 0)
		gw__sender_error(c, GW_ECONN, "%s: %s (retry %d in %lld ms)",
		    c->url_ingest, r.error, s->attempts, (long long)delay);
	else {
		gw__error_text(&r, text, sizeof text);
		gw__sender_error(c, GW_ETIMEDOUT, "%s: %ld %s (retry %d in "
		    "%lld ms)", c->url_ingest, r.status, text, s->attempts,
		    (long long)delay);
	}
	return 0;
}

/* Closing: POST finish within what is left of the deadline. */
static void
gw__sender_finish(struct gw_client *c)
{
	struct gw__reply	r;
	char			text[160];
	const char		*body;
	int			rc;

	pthread_mutex_lock(&c->lock);
	body = c->close_status == GW_RUN_FAILED ? "{\"status\":\"failed\"}" :
	    "{\"status\":\"finished\"}";
	pthread_mutex_unlock(&c->lock);
	gw__transport_post(c->tr, c->url_finish, body, strlen(body),
	    &c->deadline, NULL, NULL, &r);
	if (r.status == 200)
		rc = GW_OK;
	else if (r.aborted) {
		rc = GW_ETIMEDOUT;
		gw__debug(c, "%s: no time left", c->url_finish);
	} else if (r.status == 0) {
		rc = GW_ECONN;
		gw__debug(c, "%s: %s", c->url_finish, r.error);
	} else {
		gw__error_text(&r, text, sizeof text);
		rc = r.status >= 500 ? GW_ETIMEDOUT : GW_EREFUSED;
		gw__debug(c, "%s: %ld %s", c->url_finish, r.status, text);
	}
	pthread_mutex_lock(&c->lock);
	c->finish_rc = rc;
	pthread_mutex_unlock(&c->lock);
}

static void *
gw__sender_main(void *arg)
{
	struct gw_client	*c = arg;
	struct gw__sender	*s = c->snd;
	enum gw__next		 next;
	uint64_t		 dropped, unsent;
	int			 abandoned;

	pthread_setname_np(pthread_self(), "gw-sender");
	s->loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (s->loc != (locale_t)0)
		uselocale(s->loc);	/* %g writes '.', whatever the program set */
	while ((next = gw__sender_wait(c, s)) == GW__WORK) {
		if (!GW__CUR(s)->valid) {
			gw__sender_build(c, s, GW__CUR(s));
			if (!GW__CUR(s)->valid) {
				gw__sender_publish(c, s);
				continue;
			}
		}
		if (gw__sender_send(c, s) == -1)
			break;
		dropped = atomic_load(&c->dropped);
		if (c->debug && dropped != s->drops_logged) {
			gw__debug(c, "%llu values dropped so far (buffer full "
			    "or refused)", (unsigned long long)dropped);
			s->drops_logged = dropped;
		}
	}
	if (next == GW__FINISH || next == GW__WORK)
		gw__sender_finish(c);
	unsent = (GW__CUR(s)->valid ? GW__CUR(s)->points : 0) +
	    (GW__NEXT(s)->valid ? GW__NEXT(s)->points : 0) +
	    gw__ring_level(&c->ring) + gw__ring_level(&c->prio);
	if (unsent > 0)
		gw__debug(c, "closing: %llu values not sent",
		    (unsigned long long)unsent);
	uselocale(LC_GLOBAL_LOCALE);
	if (s->loc != (locale_t)0)
		freelocale(s->loc);

	pthread_mutex_lock(&c->lock);
	abandoned = c->abandoned;
	c->sender_done = 1;
	pthread_cond_broadcast(&c->cv_done);
	pthread_mutex_unlock(&c->lock);
	if (abandoned)
		gw__client_free(c);	/* gw_close gave up waiting for us */
	return NULL;
}

int
gw__sender_start(struct gw_client *c)
{
	sigset_t	all, old;
	int		rc;

	if ((c->snd = calloc(1, sizeof *c->snd)) == NULL)
		return GW_ENOMEM;
	c->snd->c = c;
	if (getrandom(&c->snd->rng, sizeof c->snd->rng, GRND_NONBLOCK) !=
	    sizeof c->snd->rng)
		c->snd->rng = (uint64_t)gw__now_ms() ^ (uintptr_t)c;
	c->snd->rng |= 1;
	c->snd->next_tick = gw__now_ms() + c->flush_ms;
	/* Signals belong to the program's threads, not to ours. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->thread, NULL, gw__sender_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return GW_ENOMEM;
	/* Named here too, so that it has its name as soon as we return. */
	pthread_setname_np(c->thread, "gw-sender");
	c->thread_started = 1;
	return GW_OK;
}

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
 * the ring keeps filling and drops when full, unless there is a spool:
 * then, once the daemon has failed and the ring is half full, requests go
 * to the run's spool file instead (spool.c), and while that holds
 * anything, every new request goes there too and the file's first record
 * is what is posted, until the file is drained and removed.  At close,
 * what could not be sent and the finish go to the spool.  Only this
 * thread touches s, the encoder, the transport and the spool file; it
 * meets the others under c->lock.
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
	int		 meta;		/* it carries the meta */
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

	struct gw__spool *sp;		/* the run's spool file while open */
	int		 move;		/* spooling: move the rings to sp now */
	int		 backlog;	/* spooling: the last move stopped early */
	int64_t		 spool_retry;	/* ms, monotonic: no open before */
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
	gw__spool_close(s->sp, 0);
	free(s->recs);
	gw__buf_free(&s->req[0].body);
	gw__buf_free(&s->req[1].body);
	gw__enc_free(&s->enc);
	free(s);
}

/* 1 while the spool holds records to send before anything new. */
static int
gw__sender_is_spooling(const struct gw__sender *s)
{
	return s->sp != NULL && gw__spool_has_pending(s->sp);
}

/* Under c->lock: what has been resolved (accepted or refused), for flushers. */
static void
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

static void
gw__sender_note(struct gw_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A problem with the spool, for gw_errmsg; flush's verdict stays as it is. */
static void
gw__sender_note(struct gw_client *c, const char *fmt, ...)
{
	char	msg[GW__ERRMSG_SIZE];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->lock);
	memcpy(c->errmsg, msg, sizeof msg);
	pthread_mutex_unlock(&c->lock);
	gw__debug(c, "%s", msg);
}

/* Under c->lock or not: the daemon failed and the ring passed half full. */
static int
gw__sender_spool_is_due(struct gw_client *c, struct gw__sender *s,
    int64_t now)
{
	return c->spool_path != NULL && s->attempts > 0 &&
	    now >= s->spool_retry && gw__ring_level(&c->ring) >= c->wake_level;
}

/* Decide, under c->lock, what to do next; waits until there is something. */
static enum gw__next
gw__sender_wait(struct gw_client *c, struct gw__sender *s)
{
	struct timespec	ts;
	enum gw__next	next;
	int64_t		now, wake_at, flush_end, end;
	int		have, spooling = gw__sender_is_spooling(s);

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
		if (spooling) {
			/* New values join the spool each tick; its head goes at retry_at. */
			s->move = have && (s->backlog || c->wake ||
			    c->flush_req || now >= s->next_tick);
			if (s->move || now >= s->retry_at) {
				next = GW__WORK;
				break;
			}
			if (now >= s->next_tick)
				s->next_tick = now + c->flush_ms;
			wake_at = s->retry_at < s->next_tick ? s->retry_at :
			    s->next_tick;
		} else if (GW__CUR(s)->valid) {
			if (now >= s->retry_at ||
			    gw__sender_spool_is_due(c, s, now)) {
				next = GW__WORK;
				break;
			}
			wake_at = s->retry_at;
			if (c->spool_path != NULL) {
				/* Look at the level each tick, wake-up or not. */
				if (now >= s->next_tick)
					s->next_tick = now + c->flush_ms;
				if (s->next_tick < wake_at)
					wake_at = s->next_tick;
			}
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
	if (next == GW__WORK && (spooling ? s->move : !GW__CUR(s)->valid)) {
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

/* An attempt failed in a way worth repeating: back off, and say why. */
static void
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
	if (gw__reply_is_refusal(r.status)) {
		/* A refusal: resending the same body cannot help. */
		gw__reply_text(&r, text, sizeof text);
		atomic_fetch_add(&c->dropped, q->points);
		s->claimed -= q->dropped;	/* the next request reports them */
		gw__sender_error(c, GW_EREFUSED, "daemon refused %zu values "
		    "(%ld %s)", q->points, r.status, text);
		gw__sender_next(c, s);
		return 0;
	}
	gw__sender_retry(c, s, &r, c->url_ingest);
	return 0;
}

/* The body of the run's finish request. */
static const char *
gw__finish_body(struct gw_client *c)
{
	int	failed;

	pthread_mutex_lock(&c->lock);
	failed = c->close_status == GW_RUN_FAILED;
	pthread_mutex_unlock(&c->lock);
	return failed ? "{\"status\":\"failed\"}" : "{\"status\":\"finished\"}";
}

/*
 * Open the run's spool file, made if missing when create (else only one
 * left behind earlier).  0, or -1 when there is none or it cannot be
 * opened (said in gw_errmsg, and not tried again for a while).
 */
static int
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
static void
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
static void
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
static int
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
static int
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
static void
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

/* Closing: POST finish within what is left of the deadline (or spool it). */
static void
gw__sender_finish(struct gw_client *c, struct gw__sender *s)
{
	struct gw__reply	 r;
	char			 text[160];
	const char		*body = gw__finish_body(c);
	int			 rc;

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
		gw__reply_text(&r, text, sizeof text);
		rc = r.status >= 500 ? GW_ETIMEDOUT : GW_EREFUSED;
		gw__debug(c, "%s: %ld %s", c->url_finish, r.status, text);
	}
	pthread_mutex_lock(&c->lock);
	c->finish_rc = rc;
	pthread_mutex_unlock(&c->lock);
	if (rc != GW_OK && rc != GW_EREFUSED && c->spool_path != NULL &&
	    gw__sender_spool_open(c, s, 1) == 0)
		gw__sender_spool_finish(c, s);
}

/*
 * After the loop: the run's finish (next says why the loop ended) and,
 * with a spool, whatever could not be sent.
 */
static void
gw__sender_close_out(struct gw_client *c, struct gw__sender *s,
    enum gw__next next)
{
	int	left;

	left = gw__sender_is_spooling(s) || GW__CUR(s)->valid ||
	    GW__NEXT(s)->valid || gw__ring_level(&c->ring) > 0 ||
	    gw__ring_level(&c->prio) > 0 || !s->meta_sent ||
	    atomic_load(&c->layers.count) > s->meta_layers;
	s->spool_retry = 0;		/* a last try, whatever failed before */
	if (left && c->spool_path != NULL && gw__sender_spool_open(c, s, 1) == 0)
		gw__sender_spool_rest(c, s);
	else if (next == GW__FINISH || next == GW__WORK)
		gw__sender_finish(c, s);
	else if (c->spool_path != NULL && gw__sender_spool_open(c, s, 1) == 0)
		gw__sender_spool_finish(c, s);	/* no time to post it */
	gw__spool_close(s->sp, 0);
	s->sp = NULL;
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
	/* A spool file left by an earlier process of this run goes first. */
	if (c->spool_path != NULL && gw__sender_spool_open(c, s, 0) == 0 &&
	    !gw__sender_is_spooling(s))
		gw__sender_spool_drained(c, s);
	while ((next = gw__sender_wait(c, s)) == GW__WORK) {
		if (gw__sender_is_spooling(s)) {
			if (gw__sender_spool_work(c, s) == -1)
				break;
			continue;
		}
		if (GW__CUR(s)->valid &&
		    gw__sender_spool_is_due(c, s, gw__now_ms())) {
			gw__sender_spool_begin(c, s);
			continue;
		}
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
	gw__sender_close_out(c, s, next);
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

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

#include "sender_int.h"

/* Free s and its buffers, not its spool file. */
static void
gw__sender_free_bufs(struct gw__sender *s)
{
	free(s->recs);
	gw__buf_free(&s->req[0].body);
	gw__buf_free(&s->req[1].body);
	gw__enc_free(&s->enc);
	free(s);
}

void
gw__sender_free(struct gw__sender *s)
{
	if (s == NULL)
		return;
	gw__spool_close(s->sp, 0);
	gw__sender_free_bufs(s);
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
		/*
		 * Parked: nothing of s or c->tr is half-changed while we
		 * wait, so a child forked now may free them.  Unparked by a
		 * seq_cst exchange, which no later store passes.
		 */
		atomic_store_explicit(&c->parked, 1, memory_order_release);
		pthread_cond_timedwait(&c->cv_sender, &c->lock, &ts);
		(void)atomic_exchange(&c->parked, 0);
	}
	if (next == GW__WORK && (spooling ? s->move : !GW__CUR(s)->valid)) {
		c->wake = 0;
		c->flush_req = 0;
		s->next_tick = now + (c->closing ? 1 : c->flush_ms);
	}
	pthread_mutex_unlock(&c->lock);
	return next;
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

/* The rings and the options: set in gw_open, never changed after. */
static void
gw__client_free_fixed(struct gw_client *c)
{
	gw__ring_cleanup(&c->ring);
	gw__ring_cleanup(&c->prio);
	free(c->url);
	free(c->url_ingest);
	free(c->url_finish);
	free(c->run);
	free(c->project);
	free(c->config_json);
	free(c->meta_extra);
	free(c->spool_path);
	if (c->auth != NULL)
		explicit_bzero(c->auth, strlen(c->auth));
	free(c->auth);
}

/*
 * Free c and all it owns.  Here, not in client.c, because the sender
 * thread is c's last owner when gw_close() returns before it is done.
 */
void
gw__client_free(struct gw_client *c)
{
	if (c == NULL)
		return;
	gw__sender_free(c->snd);
	gw__transport_free(c->tr);
	gw__names_cleanup(&c->layers);
	gw__names_cleanup(&c->metrics);
	gw__client_free_fixed(c);
	pthread_cond_destroy(&c->cv_sender);
	pthread_cond_destroy(&c->cv_done);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/*
 * The parent's threads are gone, perhaps in the middle of something: no
 * lock of c is taken (one may be held for ever) and no condition variable
 * destroyed (glibc's pthread_cond_destroy waits for the vanished sender
 * that was waiting on it).  The sender's state and libcurl's are freed
 * only if the sender was parked at the fork; in the middle of a request
 * or of its encoding they may be half-changed, and are left.  The spool
 * file and the parent's connection are left as they are.
 */
void
gw__client_forget(struct gw_client *c)
{
	struct gw__sender	*s = c->snd;

	if (atomic_load(&c->parked)) {
		if (s != NULL) {
			gw__spool_forget(s->sp);
			/* Not s->loc: freelocale takes glibc's locale lock
			   (and the "C" locale glibc gave is static). */
			gw__sender_free_bufs(s);
		}
		gw__transport_forget(c->tr);
	}
	gw__names_forget(&c->layers);
	gw__names_forget(&c->metrics);
	gw__client_free_fixed(c);
	free(c);
}

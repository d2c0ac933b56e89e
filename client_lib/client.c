/* SPDX-License-Identifier: MIT */
/*
 * client: the public API of libgradwatch.  gw_open builds a handle and
 * starts its sender thread; the logging calls, on any thread, copy one
 * record into the handle's ring (internal.h) and return; gw_flush and
 * gw_close wait on the sender's progress, each bounded by its timeout.
 * After fork() a child's copies of the parent's handles are inert: an
 * atfork handler bumps a global generation that every call compares
 * with its handle's before it touches anything else, so a child never
 * takes a lock the parent's threads may have held, nor sends their data;
 * gw_close there frees the copy (gw__client_forget).
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

_Atomic unsigned		 gw__fork_gen = 1;
static pthread_once_t		 gw__once = PTHREAD_ONCE_INIT;
static _Thread_local char	 gw__open_why[GW__ERRMSG_SIZE];
static _Thread_local char	 gw__msg[GW__ERRMSG_SIZE];

/* In the child of a fork: every handle of the parent stops working. */
static void
gw__atfork_child(void)
{
	unsigned	g = atomic_load(&gw__fork_gen) + 1;

	if (g == GW__GEN_CLOSED)
		g = 1;
	atomic_store(&gw__fork_gen, g);
}

static void
gw__init_once(void)
{
	/*
	 * Jansson seeds its hash function on first use, and a thread that
	 * comes second spins until the first is done: a child forked while
	 * our sender was seeding would spin forever.  Seed it here, before
	 * any sender exists (a no-op when the program already has).
	 */
	json_object_seed(0);
	pthread_atfork(NULL, NULL, gw__atfork_child);
}

void
gw__wake(struct gw_client *c)
{
	if (atomic_exchange_explicit(&c->wake_pending, 1, memory_order_relaxed))
		return;
	/*
	 * Never wait for the lock here: the sender may hold it, and may be
	 * preempted while it does.  When it is busy, it drains soon anyway
	 * (at the latest on its next tick), so the wake-up is only lost
	 * time, never lost data.
	 */
	if (pthread_mutex_trylock(&c->lock) != 0)
		return;
	c->wake = 1;
	pthread_cond_signal(&c->cv_sender);
	pthread_mutex_unlock(&c->lock);
}

/* 1 if c is usable by this process; a child's copy or a closing one is not. */
static int
gw__is_live(struct gw_client *c)
{
	return atomic_load_explicit(&c->gen, memory_order_relaxed) ==
	    atomic_load_explicit(&gw__fork_gen, memory_order_relaxed);
}

static size_t
gw__pow2(size_t n)
{
	size_t	p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

int
gw_open(struct gw_client **out, const struct gw_options *opt)
{
	struct gw_client	*c = NULL;
	pthread_condattr_t	 ca;
	void			*mem;
	size_t			 size, psize;
	int			 rc;

	gw__open_why[0] = '\0';
	if (out == NULL)
		return GW_EINVAL;
	*out = NULL;
	pthread_once(&gw__once, gw__init_once);
	if (posix_memalign(&mem, 64, sizeof *c) != 0) {
		snprintf(gw__open_why, sizeof gw__open_why, "out of memory");
		return GW_ENOMEM;
	}
	c = mem;
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv_sender, &ca);
	pthread_cond_init(&c->cv_done, &ca);
	pthread_condattr_destroy(&ca);
	gw__names_init(&c->layers);
	gw__names_init(&c->metrics);
	atomic_init(&c->gen, GW__GEN_CLOSED);
	atomic_init(&c->wake_pending, 0);
	atomic_init(&c->dropped, 0);
	atomic_init(&c->health, GW_HEALTH_UNKNOWN);
	atomic_init(&c->deadline, INT64_MAX);
	atomic_init(&c->flush_deadline, INT64_MAX);
	atomic_init(&c->parked, 0);

	if ((rc = gw__options_apply(c, opt, gw__open_why,
	    sizeof gw__open_why)) != GW_OK)
		goto fail;
	size = opt != NULL && opt->buffer_points != 0 ? opt->buffer_points :
	    GW__RING_DEFAULT;
	size = gw__pow2(size < 16 ? 16 : size);
	psize = gw__pow2(size / 16);
	psize = psize < 64 ? 64 : psize > 65536 ? 65536 : psize;
	if ((rc = gw__ring_init(&c->ring, size)) != GW_OK ||
	    (rc = gw__ring_init(&c->prio, psize)) != GW_OK) {
		snprintf(gw__open_why, sizeof gw__open_why, "out of memory "
		    "for a buffer of %zu values", size);
		goto fail;
	}
	c->wake_level = size / 2;
	c->wake_mask = size >= 8192 ? 1023 : size / 8 - 1;
	rc = GW_ENOMEM;
	if ((c->tr = gw__transport_new(c->auth)) == NULL) {
		snprintf(gw__open_why, sizeof gw__open_why, "libcurl could "
		    "not be initialised");
		goto fail;
	}
	atomic_store(&c->gen, atomic_load(&gw__fork_gen));
	if ((rc = gw__sender_start(c)) != GW_OK) {
		snprintf(gw__open_why, sizeof gw__open_why, "cannot start "
		    "the sender thread");
		goto fail;
	}
	gw__debug(c, "sending to %s every %u ms, buffer %zu values",
	    c->url, c->flush_ms, size);
	*out = c;
	return GW_OK;

fail:
	gw__client_free(c);
	return rc;
}

int
gw_layer(struct gw_client *c, const char *name, int64_t numel, int depth)
{
	if (c == NULL)
		return 0;
	if (!gw__is_live(c))
		return GW_ECLOSED;
	return gw__names_add(&c->layers, name, numel, depth, NULL, 0);
}

int
gw_layer_shape(struct gw_client *c, const char *name, const int64_t *shape,
    int ndim, int depth)
{
	int64_t	numel = 1;
	int	i;

	if (c == NULL)
		return 0;
	if (!gw__is_live(c))
		return GW_ECLOSED;
	if (ndim < 0 || (ndim > 0 && shape == NULL))
		return GW_EINVAL;
	for (i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return GW_EINVAL;
		if (numel >= 0 && shape[i] != 0 &&
		    numel > INT64_MAX / shape[i])
			numel = -1;		/* too large to say */
		else if (numel >= 0)
			numel *= shape[i];
	}
	return gw__names_add(&c->layers, name, numel, depth,
	    shape != NULL ? shape : &numel, ndim);
}

int
gw_metric(struct gw_client *c, const char *name)
{
	if (c == NULL)
		return 0;
	if (!gw__is_live(c))
		return GW_ECLOSED;
	return gw__names_add(&c->metrics, name, -1, -1, NULL, 0);
}

int
gw_loss(struct gw_client *c, int64_t step, double loss)
{
	if (c == NULL)
		return GW_OK;
	if (step < 0)
		return GW_EINVAL;
	return gw__log(c, GW__KEY(GW__LOSS, 0), step, loss);
}

int
gw_grad_norm(struct gw_client *c, int64_t step, double norm)
{
	if (c == NULL)
		return GW_OK;
	if (step < 0)
		return GW_EINVAL;
	return gw__log(c, GW__KEY(GW__GRAD_NORM, 0), step, norm);
}

int
gw_lr(struct gw_client *c, int64_t step, double lr)
{
	if (c == NULL)
		return GW_OK;
	if (step < 0)
		return GW_EINVAL;
	return gw__log(c, GW__KEY(GW__LR, 0), step, lr);
}

int
gw_layer_grad(struct gw_client *c, int64_t step, int layer, double norm)
{
	if (c == NULL)
		return GW_OK;
	if (step < 0 || (uint32_t)layer >= atomic_load_explicit(
	    &c->layers.count, memory_order_relaxed))
		return gw__is_live(c) ? GW_EINVAL : GW_ECLOSED;
	return gw__log(c, GW__KEY(GW__LAYER_GRAD, layer), step, norm);
}

int
gw_layer_weight(struct gw_client *c, int64_t step, int layer, double norm)
{
	if (c == NULL)
		return GW_OK;
	if (step < 0 || (uint32_t)layer >= atomic_load_explicit(
	    &c->layers.count, memory_order_relaxed))
		return gw__is_live(c) ? GW_EINVAL : GW_ECLOSED;
	return gw__log(c, GW__KEY(GW__LAYER_WEIGHT, layer), step, norm);
}

/* A per-tensor value of kind for layer at step (the layer_* calls). */
static int
gw__log_tensor(struct gw_client *c, unsigned kind, int64_t step, int layer,
    double v)
{
	if (c == NULL)
		return GW_OK;
	if (step < 0 || (uint32_t)layer >= atomic_load_explicit(
	    &c->layers.count, memory_order_relaxed))
		return gw__is_live(c) ? GW_EINVAL : GW_ECLOSED;
	return gw__log(c, GW__KEY(kind, layer), step, v);
}

int
gw_layer_update(struct gw_client *c, int64_t step, int layer, double norm)
{
	return gw__log_tensor(c, GW__LAYER_UPDATE, step, layer, norm);
}

int
gw_layer_adam_ratio(struct gw_client *c, int64_t step, int layer,
    double ratio)
{
	return gw__log_tensor(c, GW__LAYER_ADAM, step, layer, ratio);
}

int
gw_metric_value(struct gw_client *c, int64_t step, int metric, double value)
{
	if (c == NULL)
		return GW_OK;
	if (step < 0 || (uint32_t)metric >= atomic_load_explicit(
	    &c->metrics.count, memory_order_relaxed))
		return gw__is_live(c) ? GW_EINVAL : GW_ECLOSED;
	return gw__log(c, GW__KEY(GW__METRIC, metric), step, value);
}

int
gw_clip(struct gw_client *c, int64_t step, double max_norm, double pre_norm)
{
	int	rc;

	if (c == NULL)
		return GW_OK;
	if (step < 0)
		return GW_EINVAL;
	rc = gw__log(c, GW__KEY(GW__CLIP_MAX, 0), step, max_norm);
	if (rc == GW_ECLOSED)
		return rc;
	if (gw__log(c, GW__KEY(GW__CLIP_PRE, 0), step, pre_norm) != GW_OK)
		rc = GW_EFULL;
	return rc;
}

int
gw_skipped(struct gw_client *c, int64_t step, int skipped, double loss_scale)
{
	int	rc;

	if (c == NULL)
		return GW_OK;
	if (step < 0)
		return GW_EINVAL;
	rc = gw__log(c, GW__KEY(GW__SKIPPED, 0), step, skipped ? 1.0 : 0.0);
	if (rc == GW_ECLOSED || loss_scale <= 0)
		return rc;
	if (gw__log(c, GW__KEY(GW__LOSS_SCALE, 0), step, loss_scale) != GW_OK)
		rc = GW_EFULL;
	return rc;
}

int
gw_step_time(struct gw_client *c, int64_t step, double time)
{
	if (c == NULL)
		return GW_OK;
	if (step < 0 || !isfinite(time) || time < 0)
		return GW_EINVAL;
	return gw__log(c, GW__KEY(GW__TIME, 0), step, time);
}

int
gw_health(struct gw_client *c)
{
	if (c == NULL)
		return GW_HEALTH_UNKNOWN;
	return atomic_load_explicit(&c->health, memory_order_relaxed);
}

int
gw_alerts(struct gw_client *c, struct gw_alert *out, int max)
{
	int	n, total;

	if (c == NULL || !gw__is_live(c))
		return 0;
	pthread_mutex_lock(&c->lock);
	n = max < c->nalerts_kept ? max : c->nalerts_kept;
	if (out != NULL && n > 0)
		memcpy(out, c->alerts, (size_t)n * sizeof *out);
	total = c->nalerts;
	pthread_mutex_unlock(&c->lock);
	return total;
}

uint64_t
gw_dropped(struct gw_client *c)
{
	if (c == NULL)
		return 0;
	return atomic_load_explicit(&c->dropped, memory_order_relaxed);
}

const char *
gw_run(struct gw_client *c)
{
	return c == NULL ? "" : c->run;
}

const char *
gw_errmsg(struct gw_client *c)
{
	if (c == NULL)
		return gw__open_why;
	if (!gw__is_live(c))
		return "the handle is closing, or belongs to the parent of "
		    "this forked process";
	pthread_mutex_lock(&c->lock);
	memcpy(gw__msg, c->errmsg, sizeof gw__msg);
	pthread_mutex_unlock(&c->lock);
	return gw__msg;
}

/* Under c->lock: 1 once everything below the targets is resolved. */
static int
gw__is_flushed(const struct gw_client *c, uint64_t main, uint64_t prio)
{
	return c->done_main >= main && c->done_prio >= prio;
}

/* Under c->lock: wait on cv_done until flushed or the deadline (ms). */
static int
gw__wait_flushed(struct gw_client *c, uint64_t main, uint64_t prio,
    int64_t end)
{
	struct timespec	ts;

	ts.tv_sec = end / 1000;
	ts.tv_nsec = (end % 1000) * 1000000;
	while (!gw__is_flushed(c, main, prio) && gw__now_ms() < end)
		pthread_cond_timedwait(&c->cv_done, &c->lock, &ts);
	return gw__is_flushed(c, main, prio);
}

int
gw_flush(struct gw_client *c, int timeout_ms)
{
	uint64_t	main, prio, refused;
	int64_t		end;
	int		rc;

	if (c == NULL)
		return GW_OK;
	if (!gw__is_live(c))
		return GW_ECLOSED;
	end = gw__now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	main = atomic_load(&c->ring.tail);
	prio = atomic_load(&c->prio.tail);
	pthread_mutex_lock(&c->lock);
	refused = c->nrefused;
	if (!gw__is_flushed(c, main, prio)) {
		c->flush_req = 1;
		pthread_cond_signal(&c->cv_sender);
	}
	if (gw__wait_flushed(c, main, prio, end))
		rc = c->nrefused != refused ? GW_EREFUSED : GW_OK;
	else
		rc = c->last_err == GW_ECONN ? GW_ECONN : GW_ETIMEDOUT;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int
gw_close_status(struct gw_client *c, int status, int timeout_ms)
{
	struct timespec	ts;
	uint64_t	main, prio, refused;
	int64_t		start, end, reserve, grace;
	int		rc;

	if (c == NULL)
		return GW_OK;
	if (!gw__is_live(c)) {
		/*
		 * A fork child's copy is freed here, without a lock or a
		 * wait; one a thread of the parent was closing at the fork
		 * (or this process is closing) is left alone.
		 */
		if (atomic_load(&c->gen) != GW__GEN_CLOSED)
			gw__client_forget(c);
		return GW_ECLOSED;
	}
	atomic_store(&c->gen, GW__GEN_CLOSED);	/* no more logging */
	if (timeout_ms < 0)
		timeout_ms = 0;
	start = gw__now_ms();
	end = start + timeout_ms;
	/*
	 * Keep a fifth (at most 250 ms) of the time for the finish request,
	 * and have the sender give up a little before we do, so that we can
	 * join it rather than leave it behind.
	 */
	reserve = timeout_ms / 5 < 250 ? timeout_ms / 5 : 250;
	grace = timeout_ms / 10 < 20 ? timeout_ms / 10 : 20;
	main = atomic_load(&c->ring.tail);
	prio = atomic_load(&c->prio.tail);

	pthread_mutex_lock(&c->lock);
	refused = c->nrefused;
	c->closing = 1;
	c->close_status = status == GW_RUN_FAILED ? GW_RUN_FAILED :
	    GW_RUN_FINISHED;
	c->flush_req = 1;
	c->finish_rc = GW_ETIMEDOUT;
	atomic_store(&c->flush_deadline, end - grace - reserve);
	atomic_store(&c->deadline, end - grace);
	pthread_cond_signal(&c->cv_sender);
	pthread_mutex_unlock(&c->lock);
	gw__transport_wakeup(c->tr);	/* re-read the deadlines */

	pthread_mutex_lock(&c->lock);
	ts.tv_sec = end / 1000;
	ts.tv_nsec = (end % 1000) * 1000000;
	while (!c->sender_done && gw__now_ms() < end)
		pthread_cond_timedwait(&c->cv_done, &c->lock, &ts);
	if (!c->sender_done) {
		/* It is inside libcurl past the deadline: it frees c itself. */
		c->abandoned = 1;
		gw__debug(c, "closing: the sender is still busy after %d ms; "
		    "leaving it to finish alone", timeout_ms);
		pthread_mutex_unlock(&c->lock);
		pthread_detach(c->thread);
		return GW_ETIMEDOUT;
	}
	if (!gw__is_flushed(c, main, prio))
		rc = c->spooled ? GW_ESPOOLED : c->last_err == GW_ECONN ?
		    GW_ECONN : GW_ETIMEDOUT;
	else if (c->nrefused != refused)
		rc = GW_EREFUSED;
	else
		rc = c->finish_rc;
	gw__debug(c, "closed in %lld ms: %s, %llu values dropped",
	    (long long)(gw__now_ms() - start), gw_strerror(rc),
	    (unsigned long long)atomic_load(&c->dropped));
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	gw__client_free(c);
	return rc;
}

int
gw_close(struct gw_client *c, int timeout_ms)
{
	return gw_close_status(c, GW_RUN_FINISHED, timeout_ms);
}

const char *
gw_strerror(int code)
{
	switch (code) {
	case GW_OK:
		return "success";
	case GW_EINVAL:
		return "invalid argument";
	case GW_ENOMEM:
		return "out of memory";
	case GW_EFULL:
		return "buffer full: value dropped";
	case GW_ECONN:
		return "cannot reach the gradwatch daemon";
	case GW_ETIMEDOUT:
		return "timed out before everything was sent";
	case GW_ECLOSED:
		return "handle closed, or inherited across fork";
	case GW_EREFUSED:
		return "the daemon refused the data";
	case GW_ESPOOLED:
		return "not everything reached the daemon: the rest is in the "
		    "spool file";
	case GW_EBUSY:
		return "a spool file is in use by a running program";
	default:
		return "unknown error";
	}
}

const char *
gw_version(void)
{
	return GW_VERSION;
}

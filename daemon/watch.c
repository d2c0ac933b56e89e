/* SPDX-License-Identifier: MIT */
/*
 * watch: the writer's side of detection; see watch.h.  Replay after a
 * restart feeds at most WATCH_REPLAY_STEPS recent steps of each active
 * run, enough for every baseline's warm-up and slow averages; then the
 * detector moves to its own thread (detection.h).  An evicted run that
 * comes back has the same steps replayed, on that thread.
 */
#include <stdlib.h>
#include <string.h>

#include "store_alerts.h"
#include "detection.h"
#include "detector.h"
#include "evict.h"
#include "store_history.h"
#include "log.h"
#include "notice.h"
#include "now.h"
#include "store_outbox.h"
#include "watch.h"
#include "xmalloc.h"

#define WATCH_REPLAY_STEPS	2000

/* A growable list of ids. */
struct watch_ids {
	int64_t		*id;
	size_t		 n, cap;
};

struct watch {
	struct detector		*det;		/* the detection thread's once started */
	struct detection	*thread;	/* NULL before watch_start */
	struct detector_events	 events;	/* reused between calls */
	struct watch_ids	 alerts;	/* changed since the last clear */
	struct watch_ids	 runs;
	struct store_outbox	*outbox;	/* NULL: no notices */
	size_t			 notices;	/* added since the last clear */
};

static void
watch_ids_add(struct watch_ids *l, int64_t id)
{
	if (l->n > 0 && l->id[l->n - 1] == id)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 16 : l->cap * 2;
		l->id = xreallocarray(l->id, l->cap, sizeof *l->id);
	}
	l->id[l->n++] = id;
}

struct watch *
watch_new(const struct detector_config *cfg, struct store_outbox *outbox)
{
	struct watch	*w;

	w = xcalloc(1, sizeof *w);
	w->det = detector_new(cfg);
	w->outbox = outbox;
	return w;
}

/* Queue the notices of a change to alert id (in the same transaction). */
static void
watch_notify(struct watch *w, int64_t id, enum notice_change change,
    enum alert_severity prev, double now)
{
	char	*cause = NULL;
	int	 n;

	if (w->outbox == NULL)
		return;
	if ((n = store_outbox_add(w->outbox, id, change, (int)prev, now,
	    &cause)) == -1) {
		log_warnx("watch: alert %lld: %s", (long long)id, cause);
		free(cause);
		return;
	}
	w->notices += (size_t)n;
}

void
watch_free(struct watch *w)
{
	if (w == NULL)
		return;
	detection_stop(w->thread);	/* before the detector it borrows */
	detector_free(w->det);
	detector_events_cleanup(&w->events);
	free(w->alerts.id);
	free(w->runs.id);
	free(w);
}

/* Write w->events, then bring the runs they touched up to date. */
static void
watch_apply_events(struct watch *w, struct store *st, double now)
{
	struct detector_event	*ev;
	int64_t			 id, last_run = -1;
	char			*cause = NULL;
	int			 changed;
	size_t			 i;

	for (i = 0; i < w->events.n; i++) {
		ev = &w->events.ev[i];
		if (store_alerts_apply(st, ev, now, &id, &cause) == -1) {
			log_warnx("watch: %s", cause);
			free(cause);
			cause = NULL;
			continue;
		}
		if (id != -1)
			watch_ids_add(&w->alerts, id);
		if (id != -1 && ev->type != DETECTOR_UPDATE)
			watch_notify(w, id, ev->type == DETECTOR_FIRE ?
			    NOTICE_FIRED : NOTICE_RESOLVED, ev->prev_severity,
			    now);
		else if (id != -1 && ev->severity != ev->prev_severity)
			watch_notify(w, id, NOTICE_SEVERITY, ev->prev_severity,
			    now);
		log_debug("watch: run %lld: %s %s %s%s%s at step %lld",
		    (long long)ev->run_id, ev->type == DETECTOR_FIRE ? "fire" :
		    ev->type == DETECTOR_UPDATE ? "update" : "resolve",
		    alert_severity_name(ev->severity), alert_kind_name(ev->kind),
		    *ev->series != '\0' ? " on " : "", ev->series,
		    (long long)(ev->type == DETECTOR_RESOLVE ?
		    ev->resolve_step : ev->fire_step));
	}
	/* Events come grouped by run; sync each run once. */
	for (i = 0; i < w->events.n; i++) {
		ev = &w->events.ev[i];
		if (ev->run_id == last_run)
			continue;
		last_run = ev->run_id;
		if (store_alerts_sync_run(st, ev->run_id, &changed,
		    &cause) == -1) {
			log_warnx("watch: %s", cause);
			free(cause);
			cause = NULL;
		} else if (changed)
			watch_ids_add(&w->runs, ev->run_id);
	}
	detector_events_clear(&w->events);
}

void
watch_start(struct watch *w, size_t max_points, void (*wake)(void *),
    void *arg)
{
	w->thread = detection_start(w->det, max_points, wake, arg);
}

uint64_t
watch_batch(struct watch *w, int64_t run_id, struct batch *b, double now)
{
	return detection_batch(w->thread, run_id, b, now);
}

uint64_t
watch_apply(struct watch *w, struct store *st, double now)
{
	uint64_t	done = detection_take(w->thread, &w->events);

	if (w->events.n > 0)
		watch_apply_events(w, st, now);
	return done;
}

size_t
watch_poll(struct watch *w, uint64_t *done)
{
	*done = detection_take(w->thread, &w->events);
	return w->events.n;
}

void
watch_finish(struct watch *w, struct store *st, int64_t run_id, double now)
{
	char	*cause = NULL;
	int64_t	 stall;
	int	 changed;

	if (store_alerts_resolve_stall(st, run_id, -1, now, &stall,
	    &cause) == -1 ||
	    store_alerts_sync_run(st, run_id, &changed, &cause) == -1) {
		log_warnx("watch: %s", cause);
		free(cause);
	} else {
		if (changed)
			watch_ids_add(&w->runs, run_id);
		if (stall != -1) {
			watch_ids_add(&w->alerts, stall);
			watch_notify(w, stall, NOTICE_RESOLVED, ALERT_WARNING,
			    now);
		}
	}
}

uint64_t
watch_forget(struct watch *w, int64_t run_id)
{
	return detection_forget(w->thread, run_id);
}

uint64_t
watch_tick(struct watch *w, double now)
{
	return detection_tick(w->thread, now);
}

uint64_t
watch_last(struct watch *w)
{
	return detection_last(w->thread);
}

void
watch_drain(struct watch *w)
{
	detection_drain(w->thread);
}

void
watch_changes(struct watch *w, const int64_t **alert_ids, size_t *nalerts,
    const int64_t **run_ids, size_t *nruns)
{
	*alert_ids = w->alerts.id;
	*nalerts = w->alerts.n;
	*run_ids = w->runs.id;
	*nruns = w->runs.n;
}

size_t
watch_notices(struct watch *w)
{
	return w->notices;
}

void
watch_changes_clear(struct watch *w)
{
	w->alerts.n = 0;
	w->runs.n = 0;
	w->notices = 0;
}

static void
watch_restore_alert_cb(void *arg, int64_t run_id, const char *kind,
    const char *series, const char *severity, int64_t onset_step,
    int64_t fire_step)
{
	struct watch	*w = arg;
	int		 k = alert_kind_parse(kind);
	int		 sev = alert_severity_parse(severity);

	if (k < 0 || sev < 0)
		return;
	detector_restore(w->det, run_id, (enum alert_kind)k, series,
	    (enum alert_severity)sev, onset_step, fire_step);
}

/*
 * The recent steps of run_id up to last_step (>= 0), to replay: NULL
 * when they cannot be read (logged).
 */
static struct batch *
watch_history(struct store *st, int64_t run_id, const char *key,
    int64_t last_step)
{
	struct batch	*b;
	char		*cause = NULL;
	int64_t		 from;

	from = last_step >= WATCH_REPLAY_STEPS ?
	    last_step - WATCH_REPLAY_STEPS + 1 : 0;
	if ((b = store_history_load(st, run_id, from, last_step,
	    &cause)) == NULL) {
		if (key != NULL)
			log_warnx("watch: run %s: %s", key, cause);
		else
			log_warnx("watch: run %lld: %s", (long long)run_id,
			    cause);
		free(cause);
	}
	return b;
}

struct watch_replay {
	struct watch	*w;
	struct store	*st;
	struct evict	*ev;	/* NULL: no eviction */
	size_t		 runs;
	double		 now;	/* for steps stored without a time */
};

static void
watch_replay_run_cb(void *arg, int64_t run_id, const char *key,
    int64_t last_step)
{
	struct watch_replay	*r = arg;
	struct batch		*b;

	if (r->ev != NULL)
		(void)evict_seen(r->ev, run_id, last_step, now_mono(), NULL);
	if (last_step < 0 ||
	    (b = watch_history(r->st, run_id, key, last_step)) == NULL)
		return;
	detector_feed(r->w->det, run_id, b, r->now, 1, &r->w->events);
	detector_events_clear(&r->w->events);
	batch_free(b);
	r->runs++;
}

void
watch_restore(struct watch *w, struct store *st, struct evict *ev)
{
	struct watch_replay	 r = { w, st, ev, 0, 0 };
	char			*cause = NULL;

	r.now = now_wall();
	if (store_alerts_each_firing(st, watch_restore_alert_cb, w,
	    &cause) == -1 ||
	    store_history_each_active(st, watch_replay_run_cb, &r, &cause) == -1) {
		log_warnx("watch: restore: %s", cause);
		free(cause);
	}
	if (r.runs > 0)
		log_info("watch: rebuilt the detector for %zu active runs",
		    r.runs);
}

uint64_t
watch_evict(struct watch *w, int64_t run_id)
{
	return detection_evict(w->thread, run_id);
}

uint64_t
watch_refill(struct watch *w, struct store *st, int64_t run_id,
    int64_t last_step, double now)
{
	struct batch	*b = NULL;

	if (last_step >= 0)
		b = watch_history(st, run_id, NULL, last_step);
	return detection_restore(w->thread, run_id, b, now);
}

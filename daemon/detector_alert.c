/* SPDX-License-Identifier: MIT */
/*
 * detector_alert: an alert's lifecycle inside the detector (arm, fire,
 * update, resolve, cool-down, flapping, baseline freeze) and the event
 * list the detector hands out.  Called by the rules (detector_rules.c,
 * detector_group.c) and the walk (detector.c) on the thread that owns
 * the struct detector.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "detector_int.h"
#include "xmalloc.h"

/* ---- events ------------------------------------------------------------- */

void
detector_events_clear(struct detector_events *list)
{
	size_t	i;

	for (i = 0; i < list->n; i++) {
		free(list->ev[i].series);
		free(list->ev[i].message);
		free(list->ev[i].detail_json);
	}
	list->n = 0;
}

void
detector_events_cleanup(struct detector_events *list)
{
	detector_events_clear(list);
	free(list->ev);
	memset(list, 0, sizeof *list);
}

/* ---- lifecycle ---------------------------------------------------------- */

/* A new event for al (kind, series) of run r, appended to d->out. */
struct detector_event *
detector_event_of(struct detector *d, struct run *r,
    enum detector_event_type type, enum alert_kind kind, const char *series,
    const struct alert *al)
{
	struct detector_events	*out = d->out;
	struct detector_event	*ev;

	if (out->n == out->cap) {
		out->cap = out->cap == 0 ? 16 : out->cap * 2;
		out->ev = xreallocarray(out->ev, out->cap, sizeof *out->ev);
	}
	ev = &out->ev[out->n++];
	memset(ev, 0, sizeof *ev);
	ev->type = type;
	ev->run_id = r->id;
	ev->kind = kind;
	ev->severity = (enum alert_severity)al->severity;
	ev->prev_severity = ev->severity;
	ev->series = xstrdup(series != NULL ? series : "");
	ev->onset_step = al->onset_step;
	ev->fire_step = al->fire_step;
	ev->resolve_step = -1;
	ev->value = ev->baseline = ev->threshold = NAN;
	return ev;
}

int
detector_alert_may_fire(const struct detector *d, const struct run *r,
    const struct alert *al, enum alert_kind kind, enum alert_severity sev,
    int64_t step)
{
	if (d->replay || al->firing)
		return 0;
	/* Hard, immediate kinds have no cool-down: every NaN, every stall. */
	if (kind == ALERT_NONFINITE || kind == ALERT_STALL)
		return 1;
	if (al->resolved_step >= 0 &&
	    step - al->resolved_step < (int64_t)r->cfg->cooldown &&
	    (int)sev <= (int)al->last_severity)
		return 0;
	return 1;
}

/* Give ev the report's figures; the event takes its strings. */
static void
detector_event_report(struct detector_event *ev,
    const struct detector_report *rep)
{
	ev->value = rep->value;
	ev->baseline = rep->baseline;
	ev->threshold = rep->threshold;
	ev->message = rep->message;
	ev->detail_json = rep->detail;
}

void
detector_alert_arm(const struct run *r, struct alert *al,
    enum alert_severity sev, int64_t onset, int64_t step, double value)
{
	if (al->window_start < 0 ||
	    step - al->window_start > (int64_t)r->cfg->flap_window) {
		al->window_start = step;
		al->cycles = 0;
	}
	if (al->cycles < UINT8_MAX)
		al->cycles++;
	al->firing = 1;
	al->severity = (uint8_t)sev;
	al->onset_step = onset >= 0 && onset <= step ? onset : step;
	al->fire_step = step;
	al->ok = 0;
	al->count = 1;
	al->peak = value;
}

void
detector_alert_disarm(struct alert *al, int64_t step)
{
	al->firing = 0;
	al->last_severity = al->severity;
	al->resolved_step = step;
	al->ok = 0;
}

void
detector_alert_fire(struct detector *d, struct run *r, struct alert *al,
    enum alert_kind kind, const char *series, enum alert_severity sev,
    int64_t onset, int64_t step, const struct detector_report *rep)
{
	struct detector_event	*ev;

	detector_alert_arm(r, al, sev, onset, step, rep->value);
	ev = detector_event_of(d, r, DETECTOR_FIRE, kind, series, al);
	detector_event_report(ev, rep);
}

void
detector_alert_update(struct detector *d, struct run *r, struct alert *al,
    enum alert_kind kind, const char *series, enum alert_severity sev,
    const struct detector_report *rep)
{
	struct detector_event	*ev;
	enum alert_severity	 prev;

	if (d->replay || !al->firing) {
		free(rep->message);
		free(rep->detail);
		return;
	}
	prev = (enum alert_severity)al->severity;
	al->severity = (uint8_t)sev;
	ev = detector_event_of(d, r, DETECTOR_UPDATE, kind, series, al);
	ev->prev_severity = prev;
	detector_event_report(ev, rep);
}

void
detector_alert_resolve(struct detector *d, struct run *r, struct alert *al,
    enum alert_kind kind, const char *series, int64_t step,
    char *message, char *detail)
{
	struct detector_event	*ev;

	if (d->replay || !al->firing) {
		free(message);
		free(detail);
		return;
	}
	ev = detector_event_of(d, r, DETECTOR_RESOLVE, kind, series, al);
	ev->resolve_step = step;
	ev->value = al->peak;
	ev->message = message;
	ev->detail_json = detail;
	detector_alert_disarm(al, step);
}

/*
 * Count one evaluation of a firing alert: ok says the resolve condition
 * held.  1 when it has held long enough (steps, doubled for a flapping
 * alert).
 */
int
detector_alert_settled(const struct run *r, struct alert *al, int ok,
    double steps)
{
	if (!ok) {
		al->ok = 0;
		return 0;
	}
	al->ok++;
	/* A double compare: the setting may exceed what cycles can count. */
	if ((double)al->cycles > r->cfg->flap_cycles)
		steps *= 2;
	return al->ok >= steps;
}

/* 1 if al fires and the point at step must not move its baseline. */
int
detector_alert_freezes(const struct alert *al, int64_t step)
{
	return al->firing && step >= al->fire_step;
}

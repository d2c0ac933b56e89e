/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for detector_alert, an alert's lifecycle inside the
 * detector, driven directly on a hand-built run and detector: a fire
 * emits one event with the right kind, severity, series, onset and fire
 * step and takes the report's strings; a firing alert fires no second
 * event and freezes its baseline; an update emits one event with the
 * previous severity; a resolve emits one event with the peak and the
 * resolve step; nothing is emitted while replaying or for an alert that
 * is not firing (the strings are freed); the cool-down, the resolve
 * count and its doubling for flapping alerts; the event list's growth,
 * clear and cleanup.  Then alert_kind: every kind and severity to its
 * API name (docs/API.md) and back, unknown names and values refused.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alert_kind.h"
#include "detector.h"
#include "detector_int.h"

/* ---- helpers ------------------------------------------------------------ */

#define RUN_ID		42
#define COOLDOWN	100
#define FLAP_CYCLES	3
#define FLAP_WINDOW	1000

/* A detector with one run and its events, as detector.c would set them. */
struct fx {
	struct detector_config	cfg;
	struct detector		d;
	struct run		r;
	struct detector_events	out;
};

/* An alert as detector.c initialises it: never fired, never resolved. */
static void
alert_init(struct alert *al)
{
	memset(al, 0, sizeof *al);
	al->onset_step = al->fire_step = -1;
	al->resolved_step = -1;
	al->window_start = -1;
}

static struct fx *
fx_new(void)
{
	struct fx	*f;

	f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->cfg.cooldown = COOLDOWN;
	f->cfg.flap_cycles = FLAP_CYCLES;
	f->cfg.flap_window = FLAP_WINDOW;
	f->r.id = RUN_ID;
	f->r.cfg = &f->cfg;
	f->r.last_step = f->r.first_step = -1;
	f->d.cfg = &f->cfg;
	f->d.out = &f->out;
	return f;
}

static void
fx_free(struct fx *f)
{
	detector_events_cleanup(&f->out);
	free(f);
}

static char *
sdup(const char *s)
{
	char	*p;

	if (s == NULL)
		return NULL;
	p = strdup(s);
	assert_non_null(p);
	return p;
}

/* A report with allocated strings (the lifecycle takes or frees them). */
static struct detector_report
report(double value, double baseline, double threshold, const char *msg,
    const char *detail)
{
	struct detector_report	rep;

	rep.value = value;
	rep.baseline = baseline;
	rep.threshold = threshold;
	rep.message = sdup(msg);
	rep.detail = sdup(detail);
	return rep;
}

/* Fire al as a rule would: only if it may. */
static int
rule_fire(struct fx *f, struct alert *al, enum alert_kind kind,
    const char *series, enum alert_severity sev, int64_t onset, int64_t step,
    double value)
{
	struct detector_report	rep;

	if (!detector_alert_may_fire(&f->d, &f->r, al, kind, sev, step))
		return 0;
	rep = report(value, 1, 10, "fired", NULL);
	detector_alert_fire(&f->d, &f->r, al, kind, series, sev, onset, step,
	    &rep);
	return 1;
}

static void
rule_resolve(struct fx *f, struct alert *al, enum alert_kind kind,
    const char *series, int64_t step)
{
	detector_alert_resolve(&f->d, &f->r, al, kind, series, step,
	    sdup("resolved"), NULL);
}

/* ---- fire --------------------------------------------------------------- */

/* A fire: one event with every field, the alert armed, the strings taken. */
static void
test_fire_event(void **state)
{
	struct fx		*f = fx_new();
	struct alert		 al;
	struct detector_report	 rep;
	struct detector_event	*ev;

	(void)state;
	alert_init(&al);
	assert_true(detector_alert_may_fire(&f->d, &f->r, &al,
	    ALERT_GRAD_SPIKE, ALERT_WARNING, 100));
	rep = report(50, 2, 10, "grad_spike on l3.weight", "{\"z\":9}");
	detector_alert_fire(&f->d, &f->r, &al, ALERT_GRAD_SPIKE, "l3.weight",
	    ALERT_WARNING, 95, 100, &rep);

	assert_int_equal(f->out.n, 1);
	ev = &f->out.ev[0];
	assert_int_equal(ev->type, DETECTOR_FIRE);
	assert_int_equal(ev->run_id, RUN_ID);
	assert_int_equal(ev->kind, ALERT_GRAD_SPIKE);
	assert_int_equal(ev->severity, ALERT_WARNING);
	assert_int_equal(ev->prev_severity, ALERT_WARNING);
	assert_string_equal(ev->series, "l3.weight");
	assert_int_equal(ev->onset_step, 95);
	assert_int_equal(ev->fire_step, 100);
	assert_int_equal(ev->resolve_step, -1);
	assert_true(ev->value == 50);
	assert_true(ev->baseline == 2);
	assert_true(ev->threshold == 10);
	/* The event owns the report's strings (no copy, no leak). */
	assert_ptr_equal(ev->message, rep.message);
	assert_ptr_equal(ev->detail_json, rep.detail);
	assert_string_equal(ev->message, "grad_spike on l3.weight");
	assert_string_equal(ev->detail_json, "{\"z\":9}");

	/* The alert is armed. */
	assert_int_equal(al.firing, 1);
	assert_int_equal(al.severity, ALERT_WARNING);
	assert_int_equal(al.onset_step, 95);
	assert_int_equal(al.fire_step, 100);
	assert_int_equal(al.count, 1);
	assert_int_equal(al.ok, 0);
	assert_int_equal(al.cycles, 1);
	assert_int_equal(al.window_start, 100);
	assert_int_equal(al.resolved_step, -1);
	assert_true(al.peak == 50);
	fx_free(f);
}

/* A run-level alert (series NULL) has series ""; onsets are clamped. */
static void
test_fire_series_and_onset(void **state)
{
	struct fx		*f = fx_new();
	struct alert		 al[5];
	struct detector_report	 rep;
	const int64_t		 onset[5] = { -1, 10, 11, 0, 500 };
	const int64_t		 want[5] = { 10, 10, 10, 0, 10 };
	size_t			 i;

	(void)state;
	for (i = 0; i < 5; i++) {
		alert_init(&al[i]);
		rep = report(NAN, NAN, NAN, NULL, NULL);
		detector_alert_fire(&f->d, &f->r, &al[i], ALERT_LOSS_SPIKE,
		    i == 0 ? NULL : "", ALERT_CRITICAL, onset[i], 10, &rep);
		assert_int_equal(f->out.n, i + 1);
		assert_string_equal(f->out.ev[i].series, "");
		assert_int_equal(f->out.ev[i].onset_step, want[i]);
		assert_int_equal(al[i].onset_step, want[i]);
		assert_int_equal(f->out.ev[i].fire_step, 10);
		assert_int_equal(f->out.ev[i].severity, ALERT_CRITICAL);
		assert_null(f->out.ev[i].message);
		assert_null(f->out.ev[i].detail_json);
		assert_true(isnan(f->out.ev[i].value));
		assert_true(isnan(f->out.ev[i].baseline));
	}
	fx_free(f);
}

/* While firing: no second fire (no repeated events) and a frozen baseline. */
static void
test_stays_firing(void **state)
{
	struct fx	*f = fx_new();
	struct alert	 al;
	int64_t		 step;
	int		 sev, fired = 0;

	(void)state;
	alert_init(&al);
	assert_false(detector_alert_freezes(&al, 0));	/* never fired */
	for (step = 100; step < 400; step++)
		fired += rule_fire(f, &al, ALERT_DIVERGENCE, "", ALERT_WARNING,
		    step - 3, step, 2.0);
	assert_int_equal(fired, 1);
	assert_int_equal(f->out.n, 1);
	assert_int_equal(al.fire_step, 100);
	assert_int_equal(al.onset_step, 97);
	/* No severity, not even the hard kinds, fires it again. */
	for (sev = ALERT_INFO; sev <= ALERT_CRITICAL; sev++) {
		assert_false(detector_alert_may_fire(&f->d, &f->r, &al,
		    ALERT_DIVERGENCE, (enum alert_severity)sev, 500));
		assert_false(detector_alert_may_fire(&f->d, &f->r, &al,
		    ALERT_NONFINITE, (enum alert_severity)sev, 500));
		assert_false(detector_alert_may_fire(&f->d, &f->r, &al,
		    ALERT_STALL, (enum alert_severity)sev, 500));
	}
	/* Points from the fire step on are frozen out of the baseline. */
	assert_false(detector_alert_freezes(&al, 99));
	assert_true(detector_alert_freezes(&al, 100));
	assert_true(detector_alert_freezes(&al, 399));
	rule_resolve(f, &al, ALERT_DIVERGENCE, "", 400);
	assert_false(detector_alert_freezes(&al, 400));
	assert_false(detector_alert_freezes(&al, 401));
	assert_int_equal(f->out.n, 2);
	fx_free(f);
}

/* ---- update ------------------------------------------------------------- */

/* A severity change: one UPDATE with the previous severity. */
static void
test_update_severity(void **state)
{
	struct fx		*f = fx_new();
	struct alert		 al;
	struct detector_report	 rep;
	struct detector_event	*ev;

	(void)state;
	alert_init(&al);
	assert_true(rule_fire(f, &al, ALERT_CLIP_SATURATION, NULL,
	    ALERT_WARNING, 180, 200, 0.93));
	rep = report(0.995, 0.5, 0.99, "now critical", "{\"p_s\":0.995}");
	detector_alert_update(&f->d, &f->r, &al, ALERT_CLIP_SATURATION, NULL,
	    ALERT_CRITICAL, &rep);
	assert_int_equal(f->out.n, 2);
	ev = &f->out.ev[1];
	assert_int_equal(ev->type, DETECTOR_UPDATE);
	assert_int_equal(ev->run_id, RUN_ID);
	assert_int_equal(ev->kind, ALERT_CLIP_SATURATION);
	assert_int_equal(ev->severity, ALERT_CRITICAL);
	assert_int_equal(ev->prev_severity, ALERT_WARNING);
	assert_string_equal(ev->series, "");
	assert_int_equal(ev->onset_step, 180);	/* the alert's, unchanged */
	assert_int_equal(ev->fire_step, 200);
	assert_int_equal(ev->resolve_step, -1);
	assert_true(ev->value == 0.995);
	assert_true(ev->baseline == 0.5);
	assert_true(ev->threshold == 0.99);
	assert_ptr_equal(ev->message, rep.message);
	assert_ptr_equal(ev->detail_json, rep.detail);
	/* The alert: still firing, at the new severity, same fire step. */
	assert_int_equal(al.firing, 1);
	assert_int_equal(al.severity, ALERT_CRITICAL);
	assert_int_equal(al.fire_step, 200);
	assert_int_equal(al.cycles, 1);
	/* The first event is untouched. */
	assert_int_equal(f->out.ev[0].type, DETECTOR_FIRE);
	assert_int_equal(f->out.ev[0].severity, ALERT_WARNING);

	/* And back down: prev is what it was just before. */
	rep = report(0.7, 0.5, 0.99, "down", NULL);
	detector_alert_update(&f->d, &f->r, &al, ALERT_CLIP_SATURATION, NULL,
	    ALERT_INFO, &rep);
	assert_int_equal(f->out.n, 3);
	assert_int_equal(f->out.ev[2].prev_severity, ALERT_CRITICAL);
	assert_int_equal(f->out.ev[2].severity, ALERT_INFO);
	assert_int_equal(al.severity, ALERT_INFO);
	fx_free(f);
}

/* No update of an alert that does not fire, nor while replaying. */
static void
test_update_ignored(void **state)
{
	struct fx		*f = fx_new();
	struct alert		 al;
	struct detector_report	 rep;

	(void)state;
	alert_init(&al);
	rep = report(1, 1, 1, "nobody takes this", "{}");
	detector_alert_update(&f->d, &f->r, &al, ALERT_STALL, "",
	    ALERT_CRITICAL, &rep);		/* freed: valgrind checks */
	assert_int_equal(f->out.n, 0);
	assert_int_equal(al.firing, 0);
	assert_int_equal(al.severity, ALERT_INFO);

	assert_true(rule_fire(f, &al, ALERT_STALL, "", ALERT_WARNING, 7, 7,
	    300));
	f->d.replay = 1;
	rep = report(1, 1, 1, "nor this", NULL);
	detector_alert_update(&f->d, &f->r, &al, ALERT_STALL, "",
	    ALERT_CRITICAL, &rep);
	assert_int_equal(f->out.n, 1);
	assert_int_equal(al.severity, ALERT_WARNING);
	assert_int_equal(al.firing, 1);
	fx_free(f);
}

/* ---- resolve ------------------------------------------------------------ */

/* A resolve: one event with the peak and the step; the alert disarmed. */
static void
test_resolve_event(void **state)
{
	struct fx		*f = fx_new();
	struct alert		 al;
	struct detector_event	*ev;
	char			*msg, *detail;

	(void)state;
	alert_init(&al);
	assert_true(rule_fire(f, &al, ALERT_GRAD_EXPLOSION, "", ALERT_CRITICAL,
	    290, 300, 25.0));
	al.peak = 80;			/* the rules raise it while firing */
	al.ok = 7;
	msg = sdup("grad_explosion resolved");
	detail = sdup("{\"peak\":80}");
	detector_alert_resolve(&f->d, &f->r, &al, ALERT_GRAD_EXPLOSION, "",
	    360, msg, detail);
	assert_int_equal(f->out.n, 2);
	ev = &f->out.ev[1];
	assert_int_equal(ev->type, DETECTOR_RESOLVE);
	assert_int_equal(ev->run_id, RUN_ID);
	assert_int_equal(ev->kind, ALERT_GRAD_EXPLOSION);
	assert_int_equal(ev->severity, ALERT_CRITICAL);
	assert_int_equal(ev->prev_severity, ALERT_CRITICAL);
	assert_string_equal(ev->series, "");
	assert_int_equal(ev->onset_step, 290);
	assert_int_equal(ev->fire_step, 300);
	assert_int_equal(ev->resolve_step, 360);
	assert_true(ev->value == 80);
	assert_true(isnan(ev->baseline));
	assert_true(isnan(ev->threshold));
	assert_ptr_equal(ev->message, msg);
	assert_ptr_equal(ev->detail_json, detail);
	/* Disarmed, remembering how it ended. */
	assert_int_equal(al.firing, 0);
	assert_int_equal(al.last_severity, ALERT_CRITICAL);
	assert_int_equal(al.resolved_step, 360);
	assert_int_equal(al.ok, 0);

	/* A second resolve: nothing (the strings are freed). */
	rule_resolve(f, &al, ALERT_GRAD_EXPLOSION, "", 361);
	assert_int_equal(f->out.n, 2);
	assert_int_equal(al.resolved_step, 360);
	fx_free(f);
}

/* Replaying: no event, and the alert stays firing. */
static void
test_resolve_replay(void **state)
{
	struct fx	*f = fx_new();
	struct alert	 al;

	(void)state;
	alert_init(&al);
	assert_true(rule_fire(f, &al, ALERT_VANISHING, "l0.weight",
	    ALERT_WARNING, 1, 5, 3));
	f->d.replay = 1;
	assert_false(detector_alert_may_fire(&f->d, &f->r, &al,
	    ALERT_VANISHING, ALERT_CRITICAL, 6));
	detector_alert_resolve(&f->d, &f->r, &al, ALERT_VANISHING, "l0.weight",
	    9, sdup("not now"), sdup("{}"));
	assert_int_equal(f->out.n, 1);
	assert_int_equal(al.firing, 1);
	assert_int_equal(al.resolved_step, -1);
	f->d.replay = 0;
	rule_resolve(f, &al, ALERT_VANISHING, "l0.weight", 10);
	assert_int_equal(f->out.n, 2);
	assert_string_equal(f->out.ev[1].series, "l0.weight");
	assert_int_equal(f->out.ev[1].resolve_step, 10);
	fx_free(f);
}

/* ---- cool-down, settling, flapping -------------------------------------- */

/* After a resolve, the same or a lower severity waits cooldown steps. */
static void
test_cooldown(void **state)
{
	struct fx	*f = fx_new();
	struct alert	 al;
	int64_t		 step;

	(void)state;
	alert_init(&al);
	assert_true(rule_fire(f, &al, ALERT_LOSS_SPIKE, "", ALERT_WARNING, 10,
	    10, 2));
	rule_resolve(f, &al, ALERT_LOSS_SPIKE, "", 50);
	for (step = 50; step < 50 + COOLDOWN; step++) {
		assert_false(detector_alert_may_fire(&f->d, &f->r, &al,
		    ALERT_LOSS_SPIKE, ALERT_WARNING, step));
		assert_false(detector_alert_may_fire(&f->d, &f->r, &al,
		    ALERT_LOSS_SPIKE, ALERT_INFO, step));
		/* A worse one may fire at once. */
		assert_true(detector_alert_may_fire(&f->d, &f->r, &al,
		    ALERT_LOSS_SPIKE, ALERT_CRITICAL, step));
		/* The hard kinds have no cool-down. */
		assert_true(detector_alert_may_fire(&f->d, &f->r, &al,
		    ALERT_NONFINITE, ALERT_WARNING, step));
		assert_true(detector_alert_may_fire(&f->d, &f->r, &al,
		    ALERT_STALL, ALERT_INFO, step));
	}
	assert_true(detector_alert_may_fire(&f->d, &f->r, &al,
	    ALERT_LOSS_SPIKE, ALERT_WARNING, 50 + COOLDOWN));
	assert_true(detector_alert_may_fire(&f->d, &f->r, &al,
	    ALERT_LOSS_SPIKE, ALERT_INFO, 50 + COOLDOWN));
	/* Replaying, nothing may fire, not even the hard kinds. */
	f->d.replay = 1;
	assert_false(detector_alert_may_fire(&f->d, &f->r, &al,
	    ALERT_NONFINITE, ALERT_CRITICAL, 1000));
	assert_false(detector_alert_may_fire(&f->d, &f->r, &al,
	    ALERT_LOSS_SPIKE, ALERT_CRITICAL, 1000));
	f->d.replay = 0;

	/* A cool-down of 0 blocks nothing. */
	f->cfg.cooldown = 0;
	assert_true(detector_alert_may_fire(&f->d, &f->r, &al,
	    ALERT_LOSS_SPIKE, ALERT_WARNING, 50));
	fx_free(f);
}

/* settled: ok evaluations in a row, reset by a bad one. */
static void
test_settled(void **state)
{
	struct fx	*f = fx_new();
	struct alert	 al;

	(void)state;
	alert_init(&al);
	assert_true(rule_fire(f, &al, ALERT_DEAD_LAYER, "l1.weight",
	    ALERT_WARNING, 0, 0, 0));
	assert_false(detector_alert_settled(&f->r, &al, 1, 3));
	assert_false(detector_alert_settled(&f->r, &al, 1, 3));
	assert_int_equal(al.ok, 2);
	assert_false(detector_alert_settled(&f->r, &al, 0, 3));	/* reset */
	assert_int_equal(al.ok, 0);
	assert_false(detector_alert_settled(&f->r, &al, 1, 3));
	assert_false(detector_alert_settled(&f->r, &al, 1, 3));
	assert_true(detector_alert_settled(&f->r, &al, 1, 3));
	assert_true(detector_alert_settled(&f->r, &al, 1, 3));	/* stays */
	/* A fractional count rounds up. */
	al.ok = 0;
	assert_false(detector_alert_settled(&f->r, &al, 1, 1.5));
	assert_true(detector_alert_settled(&f->r, &al, 1, 1.5));
	fx_free(f);
}

/*
 * More than flap.cycles firings within flap.window double the resolve
 * wait; a firing after the window starts a new count.
 */
static void
test_flapping(void **state)
{
	struct fx	*f = fx_new();
	struct alert	 al;
	int64_t		 step = 1000;
	int		 cycle, i;

	(void)state;
	alert_init(&al);
	for (cycle = 1; cycle <= FLAP_CYCLES + 2; cycle++) {
		/* A hard kind: no cool-down between the cycles. */
		assert_true(rule_fire(f, &al, ALERT_NONFINITE, "",
		    ALERT_CRITICAL, step, step, 1));
		assert_int_equal(al.cycles, cycle);
		assert_int_equal(al.window_start, 1000);
		/* Resolving takes 5 ok steps, 10 once flapping. */
		for (i = 1; !detector_alert_settled(&f->r, &al, 1, 5); i++)
			assert_true(i < 100);
		assert_int_equal(i, cycle > FLAP_CYCLES ? 10 : 5);
		step += i;
		rule_resolve(f, &al, ALERT_NONFINITE, "", step);
		step += 10;
	}
	assert_int_equal(f->out.n, 2 * (FLAP_CYCLES + 2));
	/* Past the window: counted afresh, the wait is back to normal. */
	step = 1000 + FLAP_WINDOW + 1;
	assert_true(rule_fire(f, &al, ALERT_NONFINITE, "", ALERT_CRITICAL,
	    step, step, 1));
	assert_int_equal(al.cycles, 1);
	assert_int_equal(al.window_start, step);
	for (i = 1; !detector_alert_settled(&f->r, &al, 1, 5); i++)
		assert_true(i < 100);
	assert_int_equal(i, 5);
	rule_resolve(f, &al, ALERT_NONFINITE, "", step + 5);
	fx_free(f);
}

/* The whole lifecycle: fire, hold, update, resolve, cool down, fire again. */
static void
test_lifecycle(void **state)
{
	static const enum detector_event_type want[] = {
		DETECTOR_FIRE, DETECTOR_UPDATE, DETECTOR_RESOLVE, DETECTOR_FIRE
	};
	struct fx		*f = fx_new();
	struct alert		 al;
	struct detector_report	 rep;
	int64_t			 step;
	size_t			 i;
	int			 bad, sev = ALERT_WARNING;

	(void)state;
	alert_init(&al);
	/* A condition bad over steps 10..59, worse at 30..39, then good. */
	for (step = 0; step < 200; step++) {
		bad = step >= 10 && step < 60;
		if (!al.firing) {
			if (bad)
				rule_fire(f, &al, ALERT_GRAD_SPIKE, "",
				    ALERT_WARNING, step, step, 10);
		} else if (step >= 30 && step < 40 && sev != ALERT_CRITICAL) {
			sev = ALERT_CRITICAL;
			rep = report(20, 1, 10, "worse", NULL);
			detector_alert_update(&f->d, &f->r, &al,
			    ALERT_GRAD_SPIKE, "", ALERT_CRITICAL, &rep);
		} else if (detector_alert_settled(&f->r, &al, !bad, 10))
			rule_resolve(f, &al, ALERT_GRAD_SPIKE, "", step);
	}
	assert_int_equal(f->out.n, 3);
	assert_int_equal(f->out.ev[0].fire_step, 10);
	assert_int_equal(f->out.ev[1].fire_step, 10);
	assert_int_equal(f->out.ev[1].severity, ALERT_CRITICAL);
	assert_int_equal(f->out.ev[2].resolve_step, 69);	/* 60..69 ok */
	assert_int_equal(f->out.ev[2].severity, ALERT_CRITICAL);
	/* Bad again at 100: within the cool-down, but not worse: nothing. */
	assert_false(rule_fire(f, &al, ALERT_GRAD_SPIKE, "", ALERT_CRITICAL,
	    100, 100, 10));
	assert_true(rule_fire(f, &al, ALERT_GRAD_SPIKE, "", ALERT_WARNING,
	    169, 169, 10));
	assert_int_equal(f->out.n, 4);
	for (i = 0; i < 4; i++)
		assert_int_equal(f->out.ev[i].type, want[i]);
	assert_int_equal(f->out.ev[3].fire_step, 169);
	assert_int_equal(al.cycles, 2);
	fx_free(f);
}

/* ---- the event list ----------------------------------------------------- */

/* It grows (doubling from 16); clear keeps the array; cleanup frees it. */
static void
test_event_list(void **state)
{
	struct fx		*f = fx_new();
	struct alert		 al[40];
	struct detector_event	*ev;
	char			 name[32];
	size_t			 i, cap;

	(void)state;
	detector_events_clear(&f->out);		/* empty: harmless */
	assert_int_equal(f->out.n, 0);
	for (i = 0; i < 40; i++) {
		alert_init(&al[i]);
		snprintf(name, sizeof name, "layer%zu", i);
		assert_true(rule_fire(f, &al[i], (enum alert_kind)(i %
		    ALERT_KIND_COUNT), name, ALERT_INFO, (int64_t)i, (int64_t)i,
		    (double)i));
		assert_int_equal(f->out.n, i + 1);
		assert_true(f->out.cap >= f->out.n);
		assert_int_equal(f->out.cap, i < 16 ? 16 : i < 32 ? 32 : 64);
	}
	/* Every event survived the reallocations. */
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof name, "layer%zu", i);
		assert_string_equal(f->out.ev[i].series, name);
		assert_int_equal(f->out.ev[i].kind, i % ALERT_KIND_COUNT);
		assert_int_equal(f->out.ev[i].fire_step, (int64_t)i);
		assert_true(f->out.ev[i].value == (double)i);
		assert_string_equal(f->out.ev[i].message, "fired");
	}
	ev = f->out.ev;
	cap = f->out.cap;
	detector_events_clear(&f->out);
	assert_int_equal(f->out.n, 0);
	assert_ptr_equal(f->out.ev, ev);	/* keeps the array */
	assert_int_equal(f->out.cap, cap);
	/* Reused from the start. */
	rule_resolve(f, &al[3], ALERT_GRAD_SPIKE, "layer3", 50);
	assert_int_equal(f->out.n, 1);
	assert_ptr_equal(f->out.ev, ev);
	assert_int_equal(f->out.ev[0].type, DETECTOR_RESOLVE);
	assert_string_equal(f->out.ev[0].series, "layer3");
	detector_events_cleanup(&f->out);
	assert_null(f->out.ev);
	assert_int_equal(f->out.n, 0);
	assert_int_equal(f->out.cap, 0);
	detector_events_cleanup(&f->out);	/* twice: harmless */
	/* Usable again after cleanup. */
	rule_resolve(f, &al[4], ALERT_GRAD_SPIKE, "layer4", 51);
	assert_int_equal(f->out.n, 1);
	assert_int_equal(f->out.cap, 16);
	for (i = 0; i < 40; i++)
		if (al[i].firing)
			rule_resolve(f, &al[i], (enum alert_kind)(i %
			    ALERT_KIND_COUNT), "", 60);
	assert_int_equal(f->out.n, 39);
	fx_free(f);
}

/* ---- alert_kind --------------------------------------------------------- */

/* docs/API.md's kinds, in enum order, and the severities. */
static const char *const api_kinds[] = {
	"nonfinite", "grad_explosion", "grad_spike", "vanishing", "loss_spike",
	"divergence", "clip_saturation", "clip_surge", "dead_layer",
	"no_gradient", "stall", "instability"
};
static const char *const api_severities[] = { "info", "warning", "critical" };

static void
test_kind_names(void **state)
{
	size_t	i, j;

	(void)state;
	assert_int_equal(sizeof api_kinds / sizeof *api_kinds,
	    ALERT_KIND_COUNT);
	for (i = 0; i < ALERT_KIND_COUNT; i++) {
		assert_string_equal(alert_kind_name((enum alert_kind)i),
		    api_kinds[i]);
		assert_int_equal(alert_kind_parse(api_kinds[i]), (int)i);
		assert_int_equal(alert_kind_parse(alert_kind_name(
		    (enum alert_kind)i)), (int)i);
		for (j = 0; j < i; j++)
			assert_string_not_equal(alert_kind_name(
			    (enum alert_kind)i), alert_kind_name(
			    (enum alert_kind)j));
	}
	for (i = 0; i <= ALERT_CRITICAL; i++) {
		assert_string_equal(alert_severity_name(
		    (enum alert_severity)i), api_severities[i]);
		assert_int_equal(alert_severity_parse(api_severities[i]),
		    (int)i);
	}
	/* Severities are ordered: the cool-down compares them. */
	assert_true(ALERT_INFO < ALERT_WARNING);
	assert_true(ALERT_WARNING < ALERT_CRITICAL);
}

static void
test_kind_unknown(void **state)
{
	static const char *const bad[] = {
		"", "unknown", "NONFINITE", "Stall", "grad-spike", "grad spike",
		"stall ", " stall", "stal", "stalls", "instabilit",
		"info", "warning", "critical", "nonfinite\n"
	};
	static const char *const bad_sev[] = {
		"", "unknown", "INFO", "Warning", "warn", "crit", "critical ",
		"error", "stall", "nonfinite", "infos"
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof *bad; i++)
		if (alert_kind_parse(bad[i]) != -1)
			fail_msg("kind \"%s\" was accepted", bad[i]);
	for (i = 0; i < sizeof bad_sev / sizeof *bad_sev; i++)
		if (alert_severity_parse(bad_sev[i]) != -1)
			fail_msg("severity \"%s\" was accepted", bad_sev[i]);
	/* Out-of-range values have a name that parses as nothing. */
	assert_string_equal(alert_kind_name(ALERT_KIND_COUNT), "unknown");
	assert_string_equal(alert_kind_name((enum alert_kind)-1), "unknown");
	assert_string_equal(alert_kind_name((enum alert_kind)1000), "unknown");
	assert_string_equal(alert_severity_name((enum alert_severity)3),
	    "unknown");
	assert_string_equal(alert_severity_name((enum alert_severity)-1),
	    "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fire_event),
		cmocka_unit_test(test_fire_series_and_onset),
		cmocka_unit_test(test_stays_firing),
		cmocka_unit_test(test_update_severity),
		cmocka_unit_test(test_update_ignored),
		cmocka_unit_test(test_resolve_event),
		cmocka_unit_test(test_resolve_replay),
		cmocka_unit_test(test_cooldown),
		cmocka_unit_test(test_settled),
		cmocka_unit_test(test_flapping),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_event_list),
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_kind_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

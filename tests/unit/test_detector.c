/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the detector: the statistics (median and MAD warm-up,
 * winsorized updates, CUSUM, selection, the log domain), the alert
 * lifecycle on synthetic runs (one alert per condition, hysteresis,
 * cool-down, supersession, escalation), skipped and absent values,
 * per-run overrides, stalls on a fake clock, restore and replay.  Then
 * every recorded trace in tests/data/traces/ ($GW_TOP, or the current
 * directory) is replayed through ingest_parse() in bodies of 100 steps
 * and its labelled outcome asserted; the alerts of each trace are
 * printed as TAP diagnostics.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "baseline.h"
#include "batch.h"
#include "detector.h"
#include "ingest.h"

/* ---- helpers ------------------------------------------------------------ */

/* A batch under construction. */
struct tb {
	struct batch	*b;
	size_t		 cap;
};

static void
tb_start(struct tb *t)
{
	t->b = batch_new("t");
	t->cap = 0;
}

static void
tb_step(struct tb *t, int64_t step)
{
	if (t->b->nsteps == t->cap) {
		t->cap = t->cap == 0 ? 64 : t->cap * 2;
		t->b->steps = realloc(t->b->steps, t->cap * sizeof *t->b->steps);
		assert_non_null(t->b->steps);
	}
	t->b->steps[t->b->nsteps++] = step;
}

/* A value; for a scalar kind name is NULL.  A second put at a step wins. */
static void
tb_put(struct tb *t, enum series_kind kind, const char *name, int64_t step,
    double v)
{
	batch_series_push(t->b, batch_series_get(t->b, kind,
	    name != NULL ? name : series_kind_name(kind)), step, v);
}

/* Feed and free the batch. */
static void
tb_feed(struct tb *t, struct detector *d, int64_t run, double now,
    int replay, struct detector_events *out)
{
	detector_feed(d, run, t->b, now, replay, out);
	batch_free(t->b);
	t->b = NULL;
}

/* A healthy synthetic run: NL tensors, log-normal noise of sd around levels. */
#define NL	4
static const char *const gen_names[NL] = {
	"l0.weight", "l1.weight", "l2.weight", "l3.weight"
};
static const double gen_level[NL] = { 0.02, 0.05, 0.08, 0.1 };

struct gen {
	uint64_t	rng;
	double		sd;		/* ln-sd of the norms */
	double		gscale;		/* every norm times this */
	int64_t		zero_from;	/* l3 exactly 0 from here; -1 never */
};

static double
gen_gauss(struct gen *g)
{
	double	u1, u2;

	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	u1 = ((g->rng >> 11) + 0.5) / 9007199254740992.0;
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	u2 = ((g->rng >> 11) + 0.5) / 9007199254740992.0;
	return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static void
gen_init(struct gen *g)
{
	memset(g, 0, sizeof *g);
	g->rng = 0x2545f4914f6cdd1dULL;
	g->sd = 0.02;
	g->gscale = 1;
	g->zero_from = -1;
}

/* Step step into t: tensors, global norm x gmul, loss x lmul, lr, time. */
static void
gen_step(struct gen *g, struct tb *t, int64_t step, double gmul, double lmul)
{
	double	v, g2 = 0;
	int	i;

	/* The global norm is gmul times its usual value; l1 carries it. */
	tb_step(t, step);
	for (i = 0; i < NL; i++) {
		v = gen_level[i] * g->gscale * exp(g->sd * gen_gauss(g));
		if (i == NL - 1 && g->zero_from >= 0 && step >= g->zero_from)
			v = 0;
		g2 += v * v;
		tb_put(t, SERIES_LAYER_GRAD, gen_names[i], step,
		    i == 1 ? v * gmul : v);
	}
	tb_put(t, SERIES_GRAD_NORM, NULL, step, sqrt(g2) * gmul);
	tb_put(t, SERIES_LOSS, NULL, step, 0.5 * exp(0.02 * gen_gauss(g)) *
	    lmul);
	tb_put(t, SERIES_LR, NULL, step, 1e-3);
	tb_put(t, SERIES_TIME, NULL, step, 1767225600.0 + (double)step);
}

/* Healthy steps [from, to) of run in batches of 50, now = step time. */
static void
gen_run(struct gen *g, struct detector *d, int64_t run, int64_t from,
    int64_t to, int replay, struct detector_events *out)
{
	struct tb	t;
	int64_t		s;

	while (from < to) {
		tb_start(&t);
		for (s = from; s < to && s < from + 50; s++)
			gen_step(g, &t, s, 1, 1);
		tb_feed(&t, d, run, 1767225600.0 + (double)(s - 1), replay,
		    out);
		from = s;
	}
}

/* One step of run with global/loss multipliers, fed on its own. */
static void
gen_one(struct gen *g, struct detector *d, int64_t run, int64_t step,
    double gmul, double lmul, struct detector_events *out)
{
	struct tb	t;

	tb_start(&t);
	gen_step(g, &t, step, gmul, lmul);
	tb_feed(&t, d, run, 1767225600.0 + (double)step, 0, out);
}

static size_t
count_ev(const struct detector_events *out, enum detector_event_type type,
    enum alert_kind kind, const char *series)
{
	size_t	i, n = 0;

	for (i = 0; i < out->n; i++)
		if (out->ev[i].type == type && out->ev[i].kind == kind &&
		    (series == NULL || strcmp(out->ev[i].series, series) == 0))
			n++;
	return n;
}

static const struct detector_event *
find_ev(const struct detector_events *out, enum detector_event_type type,
    enum alert_kind kind, const char *series)
{
	size_t	i;

	for (i = 0; i < out->n; i++)
		if (out->ev[i].type == type && out->ev[i].kind == kind &&
		    (series == NULL || strcmp(out->ev[i].series, series) == 0))
			return &out->ev[i];
	return NULL;
}

/* Every event has words and, if any, a JSON object as its detail. */
static void
check_event(const struct detector_event *ev)
{
	json_t		*j;
	json_error_t	 err;

	assert_non_null(ev->series);
	assert_non_null(ev->message);
	assert_true(strlen(ev->message) > 10);
	if (ev->detail_json == NULL)
		return;
	if ((j = json_loads(ev->detail_json, 0, &err)) == NULL)
		fail_msg("bad detail JSON (%s): %s", err.text, ev->detail_json);
	assert_true(json_is_object(j));
	json_decref(j);
}

static void
check_events(const struct detector_events *out)
{
	size_t	i;

	for (i = 0; i < out->n; i++)
		check_event(&out->ev[i]);
}

/* ---- statistics --------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
test_select_median(void **state)
{
	double		a[64], s[64], c[64], want;
	uint64_t	r = 88172645463325252ULL;
	size_t		n, k, i;
	int		it;

	(void)state;
	for (it = 0; it < 5000; it++) {
		r ^= r << 13; r ^= r >> 7; r ^= r << 17;
		n = 1 + r % 60;
		for (i = 0; i < n; i++) {
			r ^= r << 13; r ^= r >> 7; r ^= r << 17;
			a[i] = (double)(r % 17);	/* many duplicates */
			s[i] = a[i];
		}
		qsort(s, n, sizeof *s, cmp_double);
		k = (size_t)(r >> 20) % n;
		memcpy(c, a, n * sizeof *a);
		assert_true(baseline_select(c, n, k) == s[k]);
		memcpy(c, a, n * sizeof *a);
		want = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
		assert_true(baseline_median(c, n) == want);
	}
}

static void
test_baseline_warmup(void **state)
{
	struct baseline	b;
	double		ys[5] = { 4, 1, 100, 3, 2 };
	int		i;

	(void)state;
	baseline_init(&b, 5);
	for (i = 0; i < 4; i++) {
		baseline_add(&b, ys[i], 0.1, 0.05, 3);
		assert_false(baseline_is_ready(&b));
		assert_non_null(b.buf);
	}
	baseline_add(&b, ys[4], 0.1, 0.05, 3);
	assert_true(baseline_is_ready(&b));
	assert_null(b.buf);			/* the buffer is freed */
	/* median 3; |x - 3| = 1 2 97 0 1, MAD 1: the outlier is ignored */
	assert_true(b.m == 3);
	assert_true(fabs(b.v - 1.4826 * 1.4826) < 1e-12);
	assert_true(fabs(baseline_scale(&b, 0.05) - 1.4826) < 1e-12);
	assert_true(baseline_scale(&b, 2.0) == 2.0);	/* the floor */
	baseline_cleanup(&b);

	/* An even warm-up takes the mean of the middle two. */
	baseline_init(&b, 4);
	baseline_add(&b, 1, 0.1, 0.05, 3);
	baseline_add(&b, 2, 0.1, 0.05, 3);
	baseline_add(&b, 4, 0.1, 0.05, 3);
	baseline_add(&b, 10, 0.1, 0.05, 3);
	assert_true(b.m == 3);
	baseline_reset(&b, 2);
	assert_false(baseline_is_ready(&b));
	assert_int_equal(b.w, 2);
	baseline_cleanup(&b);
}

static void
test_baseline_winsorized(void **state)
{
	struct baseline	b;

	(void)state;
	baseline_init(&b, 1);
	baseline_add(&b, 0, 0.1, 0.05, 3);	/* m 0, v 0 */
	b.v = 1;
	/* Within m +- 3s: the plain Finch update. */
	baseline_add(&b, 1, 0.1, 0.05, 3);
	assert_true(fabs(b.m - 0.1) < 1e-12);
	assert_true(fabs(b.v - 0.9 * (1 + 0.1 * 1)) < 1e-12);	/* d before */
	/* An outlier is clamped to m + 3s before it moves anything. */
	b.m = 0;
	b.v = 1;
	baseline_add(&b, 100, 0.1, 0.05, 3);
	assert_true(fabs(b.m - 0.3) < 1e-12);
	assert_true(fabs(b.v - 0.9 * (1 + 0.1 * 9)) < 1e-12);
	b.m = 0;
	b.v = 1;
	baseline_add(&b, -100, 0.1, 0.05, 3);
	assert_true(fabs(b.m + 0.3) < 1e-12);
	/* With v below the floor, the clamp uses s_floor. */
	b.m = 0;
	b.v = 0;
	baseline_add(&b, 1, 0.5, 0.1, 3);
	assert_true(fabs(b.m - 0.15) < 1e-12);
	baseline_cleanup(&b);
}

static void
test_cusum(void **state)
{
	struct cusum	cs;

	(void)state;
	cusum_reset(&cs);
	assert_true(cusum_add(&cs, 1, 2, 6, 10) == 0);	/* below k */
	assert_int_equal(cs.onset, -1);
	assert_true(cusum_add(&cs, 6, 2, 6, 11) == 4);
	assert_int_equal(cs.onset, 11);
	assert_true(cusum_add(&cs, 100, 2, 6, 12) == 8);	/* capped */
	assert_true(cusum_add(&cs, 6, 2, 6, 13) == 12);
	assert_int_equal(cs.onset, 11);			/* where it left 0 */
	assert_true(cusum_add(&cs, -50, 2, 6, 14) == 0);
	assert_int_equal(cs.onset, -1);
	assert_true(cusum_add(&cs, 3, 2, 6, 15) == 1);
	assert_int_equal(cs.onset, 15);
}

static void
test_ewmean_and_ln(void **state)
{
	struct ewmean	e = { 0, 0 };
	int		i;

	(void)state;
	/* The warm start makes early values a plain mean. */
	ewmean_add(&e, 1, 0.01);
	assert_true(e.p == 1);
	ewmean_add(&e, 0, 0.01);
	assert_true(e.p == 0.5);
	for (i = 0; i < 1000; i++)
		ewmean_add(&e, 0, 0.01);
	assert_true(e.p < 0.01);
	/* The log domain has a floor instead of -Inf. */
	assert_true(baseline_ln(0) == log(BASELINE_TINY));
	assert_true(fabs(baseline_ln(1e6) - log(1e6)) < 1e-12);
}

/* The rules are scale-free: norms x 1e-6 or x 1e3 give the same alerts. */
static void
test_log_domain(void **state)
{
	struct detector_config	*cfg = detector_config_new();
	struct detector_events	 a = { 0 }, b = { 0 };
	struct detector		*d;
	struct gen		 g;
	size_t			 i;
	int			 k;

	(void)state;
	for (k = 0; k < 2; k++) {
		d = detector_new(cfg);
		gen_init(&g);
		g.gscale = k == 0 ? 1e-6 : 1e3;
		gen_run(&g, d, 1, 0, 300, 0, k == 0 ? &a : &b);
		gen_one(&g, d, 1, 300, 50, 1, k == 0 ? &a : &b);
		gen_run(&g, d, 1, 301, 400, 0, k == 0 ? &a : &b);
		detector_free(d);
	}
	assert_int_equal(a.n, b.n);
	assert_true(a.n >= 2);
	for (i = 0; i < a.n; i++) {
		assert_int_equal(a.ev[i].type, b.ev[i].type);
		assert_int_equal(a.ev[i].kind, b.ev[i].kind);
		assert_int_equal(a.ev[i].fire_step, b.ev[i].fire_step);
		if (a.ev[i].type == DETECTOR_FIRE)
			assert_true(fabs(a.ev[i].value / a.ev[i].baseline -
			    b.ev[i].value / b.ev[i].baseline) < 1e-6 *
			    a.ev[i].value / a.ev[i].baseline);
	}
	assert_non_null(find_ev(&a, DETECTOR_FIRE, ALERT_GRAD_SPIKE, ""));
	detector_events_cleanup(&a);
	detector_events_cleanup(&b);
	detector_config_free(cfg);
}

/*
 * Loss jumps: one that falls back is a loss_spike told at the jump; one
 * to a new level the run learns from (a curriculum switch) raises
 * nothing and starts a new baseline; one that stays up without coming
 * down (an lr typo leaving the model at chance) is divergence.
 */
static void
test_loss_jump_spike(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 300, 0, &out);
	gen_one(&g, d, 1, 300, 1, 20, &out);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_LOSS_SPIKE, ""),
	    0);				/* not yet: a spike must come back */
	gen_one(&g, d, 1, 301, 1, 1, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_LOSS_SPIKE, "");
	assert_non_null(ev);
	assert_int_equal(ev->onset_step, 300);
	assert_int_equal(ev->fire_step, 301);
	assert_non_null(strstr(ev->message, "at step 300"));
	assert_true(ev->value > 9);	/* the jump's loss, not the step's */
	gen_run(&g, d, 1, 302, 500, 0, &out);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_DIVERGENCE, ""),
	    0);
	assert_non_null(find_ev(&out, DETECTOR_RESOLVE, ALERT_LOSS_SPIKE, ""));
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

static void
test_loss_jump_new_level(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	int64_t				 s;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 300, 0, &out);
	/* A harder task: 8x, falling to 4x and on down, slowly. */
	for (s = 300; s < 700; s++)
		gen_one(&g, d, 1, s, 1, 4 + 4 * exp(-(double)(s - 300) / 5) -
		    0.004 * (double)(s - 300), &out);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_LOSS_SPIKE, ""),
	    0);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_DIVERGENCE, ""),
	    0);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

static void
test_loss_jump_stuck(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	int64_t				 s;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 300, 0, &out);
	/* 40x for a step, then stuck at 2.5x, flat. */
	gen_one(&g, d, 1, 300, 1, 40, &out);
	for (s = 301; s < 420; s++)
		gen_one(&g, d, 1, s, 1, 2.5, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_DIVERGENCE, "");
	assert_non_null(ev);
	assert_int_equal(ev->severity, ALERT_CRITICAL);
	assert_int_equal(ev->onset_step, 300);
	assert_int_equal(ev->fire_step, 300 + (int64_t)80);	/* loss.plateau_steps */
	assert_non_null(strstr(ev->message, "stayed up"));
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* One step of 1000x that drops back is a grad_spike; two are an explosion. */
static void
test_hard_ratio_needs_two_steps(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 300, 0, &out);
	gen_one(&g, d, 1, 300, 5000, 1, &out);
	gen_run(&g, d, 1, 301, 400, 0, &out);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION,
	    ""), 0);
	assert_non_null(find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_SPIKE, ""));
	detector_events_clear(&out);
	gen_run(&g, d, 1, 400, 600, 0, &out);
	gen_one(&g, d, 1, 600, 5000, 1, &out);
	gen_one(&g, d, 1, 601, 8000, 1, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION, "");
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 601);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void
test_spike_hysteresis_cooldown(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 300, 0, &out);
	assert_int_equal(out.n, 0);		/* healthy: silent */
	gen_one(&g, d, 1, 300, 50, 1, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_SPIKE, "");
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 300);
	assert_int_equal(ev->onset_step, 300);
	assert_int_equal(ev->severity, ALERT_WARNING);
	assert_true(ev->value / ev->baseline > 40);
	assert_non_null(strstr(ev->message, "l1.weight"));	/* attributed */
	assert_non_null(strstr(ev->message, "step 300"));
	check_event(ev);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION,
	    NULL), 0);				/* one step is not an explosion */
	detector_events_clear(&out);
	/* Hysteresis: resolved after 10 steps of z < 3, not before. */
	gen_run(&g, d, 1, 301, 310, 0, &out);
	assert_int_equal(out.n, 0);
	gen_run(&g, d, 1, 310, 311, 0, &out);
	ev = find_ev(&out, DETECTOR_RESOLVE, ALERT_GRAD_SPIKE, "");
	assert_non_null(ev);
	assert_int_equal(ev->resolve_step, 310);
	check_event(ev);
	detector_events_clear(&out);
	/* Cool-down: the same key cannot fire again within 100 steps. */
	gen_run(&g, d, 1, 311, 350, 0, &out);
	gen_one(&g, d, 1, 350, 50, 1, &out);
	gen_run(&g, d, 1, 351, 450, 0, &out);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_GRAD_SPIKE,
	    NULL), 0);
	gen_one(&g, d, 1, 450, 50, 1, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_SPIKE, "");
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 450);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* Spike, then explosion (supersedes it), then NaN (supersedes that). */
static void
test_supersession(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;
	json_t				*j;
	int64_t				 s, fire;
	double				 mul = 1;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 300, 0, &out);
	for (s = 300; s < 306; s++) {
		mul *= 4;
		gen_one(&g, d, 1, s, mul, 1, &out);
	}
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_SPIKE, "");
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 301);	/* 16x: past grad.spike_ratio */
	ev = find_ev(&out, DETECTOR_RESOLVE, ALERT_GRAD_SPIKE, "");
	assert_non_null(ev);
	assert_non_null(strstr(ev->message, "superseded by grad_explosion"));
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION, "");
	assert_non_null(ev);
	assert_int_equal(ev->severity, ALERT_CRITICAL);
	assert_true(ev->fire_step > 300 && ev->fire_step < 306);
	assert_int_equal(ev->onset_step, 300);	/* where the CUSUM left 0 */
	assert_non_null(strstr(ev->message, "before step 200"));
	check_event(ev);
	fire = ev->fire_step;
	/* Only one explosion however long it grows. */
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION,
	    NULL), 1);
	detector_events_clear(&out);

	/* The NaN: nonfinite fires at its step and ends the explosion. */
	tb_start(&t);
	tb_step(&t, 306);
	tb_put(&t, SERIES_LOSS, NULL, 306, NAN);
	tb_put(&t, SERIES_GRAD_NORM, NULL, 306, INFINITY);
	tb_put(&t, SERIES_LAYER_GRAD, "l1.weight", 306, NAN);
	tb_feed(&t, d, 1, 1767225600.0 + 306, 0, &out);
	check_events(&out);
	ev = find_ev(&out, DETECTOR_RESOLVE, ALERT_GRAD_EXPLOSION, "");
	assert_non_null(ev);
	assert_int_equal(ev->resolve_step, 306);
	assert_non_null(strstr(ev->message, "superseded by nonfinite"));
	j = json_loads(ev->detail_json, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "lead_steps")),
	    306 - fire);
	json_decref(j);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, "");
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 306);
	assert_int_equal(ev->severity, ALERT_CRITICAL);
	assert_non_null(strstr(ev->message, "l1.weight"));
	assert_non_null(strstr(ev->message, "the loss"));
	j = json_loads(ev->detail_json, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "lead_steps")),
	    306 - fire);
	json_decref(j);
	/* The explosion resolved before the nonfinite fired. */
	assert_true(find_ev(&out, DETECTOR_RESOLVE, ALERT_GRAD_EXPLOSION, "") <
	    find_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, ""));
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* An explosion that stops resolves after exactly 50 steps of z < 2. */
static void
test_explosion_resolve(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	int64_t				 s;
	double				 mul = 1;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 300, 0, &out);
	for (s = 300; s < 305; s++) {
		mul *= 3;
		gen_one(&g, d, 1, s, mul, 1, &out);
	}
	assert_non_null(find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION, ""));
	detector_events_clear(&out);
	gen_run(&g, d, 1, 305, 354, 0, &out);
	assert_int_equal(count_ev(&out, DETECTOR_RESOLVE, ALERT_GRAD_EXPLOSION,
	    NULL), 0);
	gen_run(&g, d, 1, 354, 400, 0, &out);
	ev = find_ev(&out, DETECTOR_RESOLVE, ALERT_GRAD_EXPLOSION, "");
	assert_non_null(ev);
	assert_int_equal(ev->resolve_step, 354);	/* 305 .. 354 */
	assert_non_null(strstr(ev->message, "recovered"));
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION,
	    NULL), 0);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/*
 * Sustained but decaying (a burst of bad batches) is a spike; sustained
 * and growing is an explosion.  Both stay >= 10x for 6 steps.
 */
static void
test_burst_vs_explosion(void **state)
{
	static const double	decay[6] = { 30, 20, 15, 12, 11, 10.5 };
	static const double	grow[6] = { 10, 11, 12, 13, 14, 15 };
	struct detector_config	*cfg = detector_config_new();
	struct detector_events	 out = { 0 };
	struct detector		*d = detector_new(cfg);
	struct gen		 g;
	int			 i;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 300, 0, &out);
	for (i = 0; i < 6; i++)
		gen_one(&g, d, 1, 300 + i, decay[i], 1, &out);
	assert_non_null(find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_SPIKE, ""));
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION,
	    NULL), 0);
	detector_events_clear(&out);
	gen_init(&g);
	gen_run(&g, d, 2, 0, 300, 0, &out);
	for (i = 0; i < 6; i++)
		gen_one(&g, d, 2, 300 + i, grow[i], 1, &out);
	assert_non_null(find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION, ""));
	assert_int_equal(find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION,
	    "")->fire_step, 302);		/* S = 4, 8, 12 */
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* 1000 bad steps give one alert each, not 1000. */
static void
test_no_storm(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;
	int64_t				 s, k;

	(void)state;
	/* A tensor that died at step 200 stays one dead_layer alert. */
	gen_init(&g);
	g.zero_from = 200;
	gen_run(&g, d, 1, 0, 1200, 0, &out);
	check_events(&out);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_DEAD_LAYER,
	    NULL), 1);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_DEAD_LAYER, "l3.weight");
	assert_non_null(ev);
	assert_int_equal(ev->onset_step, 200);
	assert_in_range(ev->fire_step, 249, 252);	/* 50 zero steps, seen every 4 */
	assert_int_equal(ev->severity, ALERT_WARNING);
	/* 1 of 4 tensors is over 10%: no_gradient, once. */
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_NO_GRADIENT,
	    NULL), 1);
	assert_int_equal(count_ev(&out, DETECTOR_RESOLVE, ALERT_DEAD_LAYER,
	    NULL), 0);
	detector_events_clear(&out);

	/* 1000 NaN steps: one nonfinite, nothing else. */
	for (k = 0; k < 20; k++) {
		tb_start(&t);
		for (s = 1200 + k * 50; s < 1250 + k * 50; s++) {
			tb_step(&t, s);
			tb_put(&t, SERIES_LOSS, NULL, s, NAN);
			tb_put(&t, SERIES_GRAD_NORM, NULL, s, NAN);
			tb_put(&t, SERIES_LAYER_GRAD, "l0.weight", s, NAN);
		}
		tb_feed(&t, d, 1, 1767225600.0 + (double)s, 0, &out);
	}
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, NULL),
	    1);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.ev[0].fire_step, 1200);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* Escalation: a stall turns critical with an UPDATE, then resolves. */
static void
test_stall(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	double				 t0 = 1767225600.0;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 20, 0, &out);	/* 1 s a step, last at t0 + 19 */
	gen_run(&g, d, 2, 0, 3, 0, &out);	/* too short to have a rhythm */
	detector_tick(d, t0 + 19 + 100, &out);	/* 10 x 1 s, floored at 120 s */
	assert_int_equal(out.n, 0);
	detector_tick(d, t0 + 19 + 121, &out);
	assert_int_equal(out.n, 1);
	ev = &out.ev[0];
	assert_int_equal(ev->type, DETECTOR_FIRE);
	assert_int_equal(ev->kind, ALERT_STALL);
	assert_int_equal(ev->run_id, 1);
	assert_int_equal(ev->severity, ALERT_WARNING);
	assert_int_equal(ev->fire_step, 19);
	assert_true(ev->threshold == 120);
	check_event(ev);
	detector_events_clear(&out);
	detector_tick(d, t0 + 19 + 300, &out);	/* still one alert */
	assert_int_equal(out.n, 0);
	detector_tick(d, t0 + 19 + 361, &out);	/* 3 x 120 s: critical */
	assert_int_equal(out.n, 1);
	assert_int_equal(out.ev[0].type, DETECTOR_UPDATE);
	assert_int_equal(out.ev[0].severity, ALERT_CRITICAL);
	check_event(&out.ev[0]);
	detector_events_clear(&out);
	detector_tick(d, t0 + 19 + 1000, &out);
	assert_int_equal(out.n, 0);
	/* The next step resolves it. */
	gen_one(&g, d, 1, 20, 1, 1, &out);
	ev = find_ev(&out, DETECTOR_RESOLVE, ALERT_STALL, "");
	assert_non_null(ev);
	assert_int_equal(ev->resolve_step, 20);
	detector_events_clear(&out);
	/* A forgotten run has no stall watch. */
	detector_forget(d, 1);
	detector_tick(d, t0 + 1e6, &out);
	assert_int_equal(out.n, 0);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* Escalation: vanishing fires at once at critical when half the net vanishes. */
static void
test_vanishing_depth(void **state)
{
	static const char *const names[8] = {
		"a.weight", "b.weight", "c.weight", "d.weight",
		"e.weight", "f.weight", "g.weight", "h.weight"
	};
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct tb			 t;
	int64_t				 s;
	size_t				 k;
	int				 i, run;

	(void)state;
	/*
	 * a..d are large and come first, e..h tiny.  Without depths the
	 * order of first sight puts the large ones at the input: fine.  With
	 * depths saying e..h are the input side, the net is broken (V3).
	 */
	for (run = 1; run <= 2; run++) {
		tb_start(&t);
		if (run == 2) {
			t.b->layers_meta = calloc(8, sizeof *t.b->layers_meta);
			for (i = 0; i < 8; i++) {
				t.b->layers_meta[i].name = strdup(names[i]);
				t.b->layers_meta[i].numel = 100;
				t.b->layers_meta[i].depth = i < 4 ? 4 + i : i - 4;
				t.b->layers_meta[i].shape_json = strdup("[10,10]");
			}
			t.b->nlayers_meta = 8;
		}
		for (s = 0; s < 150; s++) {
			tb_step(&t, s);
			for (i = 0; i < 8; i++)
				tb_put(&t, SERIES_LAYER_GRAD, names[i], s,
				    (i < 4 ? 0.1 : 1e-6) * (1 + 0.01 * (s % 3)));
			tb_put(&t, SERIES_GRAD_NORM, NULL, s, 0.2);
			tb_put(&t, SERIES_LOSS, NULL, s, 1);
		}
		tb_feed(&t, d, run, 1767225600.0, 0, &out);
	}
	check_events(&out);
	for (k = 0; k < out.n; k++)
		assert_int_equal(out.ev[k].run_id, 2);
	/* One pattern: the shallowest tensor fires it, the others join. */
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_VANISHING, names[4]);
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 24);	/* from step W */
	assert_int_equal(ev->onset_step, 0);	/* broken from the start */
	assert_int_equal(ev->severity, ALERT_CRITICAL);	/* 4 of 8 */
	assert_non_null(strstr(ev->message, names[4]));
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_VANISHING, NULL),
	    1);
	assert_int_equal(count_ev(&out, DETECTOR_UPDATE, ALERT_VANISHING,
	    names[4]), 3);
	ev = &out.ev[out.n - 1];
	assert_int_equal(ev->type, DETECTOR_UPDATE);
	assert_non_null(strstr(ev->message, "on 4 tensors"));
	for (i = 4; i < 8; i++) {
		assert_non_null(strstr(ev->message, names[i]));
		assert_non_null(strstr(ev->detail_json, names[i]));
	}
	assert_non_null(strstr(ev->detail_json, "\"tensor_count\":4"));
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/*
 * A tensor that collapses 1000x mid-run, in the middle of the net (so
 * not V3's quartiles): V2 finds it within 200 steps.
 */
static void
test_vanishing_midrun(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;
	int64_t				 s, k, warned = -1;
	size_t				 i;

	(void)state;
	gen_init(&g);
	for (s = 0; s < 1000; s += 10) {
		tb_start(&t);
		for (k = s; k < s + 10; k++) {
			gen_step(&g, &t, k, 1, 1);
			if (k >= 500)
				tb_put(&t, SERIES_LAYER_GRAD, "l1.weight", k,
				    5e-5 * exp(0.02 * gen_gauss(&g)));
		}
		tb_feed(&t, d, 1, 0, 0, &out);
		for (i = 0; i < out.n; i++) {
			check_event(&out.ev[i]);
			assert_int_equal(out.ev[i].kind, ALERT_VANISHING);
			assert_string_equal(out.ev[i].series, "l1.weight");
			if (warned < 0 && out.ev[i].severity >= ALERT_WARNING &&
			    out.ev[i].type != DETECTOR_RESOLVE) {
				warned = k - 1;
				ev = &out.ev[i];
				assert_non_null(strstr(ev->message, "median"));
				assert_true(ev->onset_step > 500);
			}
		}
		detector_events_clear(&out);
	}
	printf("# 1000x collapse of l1.weight at step 500: warning by step "
	    "%lld\n", (long long)warned);
	assert_true(warned > 500 && warned <= 700);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* Skipped steps (loss-scaler overflows) are no NaN and feed no baseline. */
static void
test_skipped(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;
	int64_t				 s;

	(void)state;
	gen_init(&g);
	for (s = 0; s < 400; s += 50) {
		int64_t k;

		tb_start(&t);
		for (k = s; k < s + 50; k++) {
			gen_step(&g, &t, k, 1, 1);
			tb_put(&t, SERIES_SKIPPED, NULL, k, 0);
			tb_put(&t, SERIES_LOSS_SCALE, NULL, k, 65536);
			if (k < 4 || k % 100 == 40) {	/* overflow */
				tb_put(&t, SERIES_SKIPPED, NULL, k, 1);
				tb_put(&t, SERIES_GRAD_NORM, NULL, k, INFINITY);
				tb_put(&t, SERIES_LAYER_GRAD, "l0.weight", k,
				    INFINITY);
			}
			if (k % 100 == 70) {	/* skipped, huge but finite */
				tb_put(&t, SERIES_SKIPPED, NULL, k, 1);
				tb_put(&t, SERIES_GRAD_NORM, NULL, k, 1e9);
				tb_put(&t, SERIES_LOSS, NULL, k, 1e9);
			}
		}
		tb_feed(&t, d, 1, 1767225600.0 + (double)k, 0, &out);
	}
	assert_int_equal(out.n, 0);
	/* The same values on a step not marked skipped are a NaN event. */
	tb_start(&t);
	tb_step(&t, 400);
	tb_put(&t, SERIES_SKIPPED, NULL, 400, 0);
	tb_put(&t, SERIES_LOSS, NULL, 400, 0.5);
	tb_put(&t, SERIES_GRAD_NORM, NULL, 400, INFINITY);
	tb_feed(&t, d, 1, 1767225600.0 + 400, 0, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, "");
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 400);
	check_event(ev);
	assert_non_null(strstr(ev->detail_json, "\"skipped_steps_before\":12"));
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/*
 * The loss scaler: a skip at the minimum scale, or skips with a NaN loss,
 * are a collapse; a high overflow rate is a warning that can escalate.
 */
static void
test_scaler(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;
	double				 scale = 65536;
	int64_t				 s, k;

	(void)state;
	/* Run 1: healthy, then every step overflows and the scale halves. */
	gen_init(&g);
	for (s = 0; s < 400; s += 50) {
		tb_start(&t);
		for (k = s; k < s + 50; k++) {
			gen_step(&g, &t, k, 1, 1);
			tb_put(&t, SERIES_SKIPPED, NULL, k, k >= 300);
			tb_put(&t, SERIES_LOSS_SCALE, NULL, k, scale);
			if (k >= 300) {
				tb_put(&t, SERIES_GRAD_NORM, NULL, k, INFINITY);
				scale /= 2;
			}
		}
		tb_feed(&t, d, 1, 0, 0, &out);
	}
	check_events(&out);
	assert_int_equal(out.n, 1);
	ev = &out.ev[0];
	assert_int_equal(ev->kind, ALERT_NONFINITE);
	assert_string_equal(ev->series, "loss_scale");
	assert_int_equal(ev->severity, ALERT_CRITICAL);
	assert_int_equal(ev->onset_step, 300);
	assert_int_equal(ev->fire_step, 316);	/* 65536 / 2^16 = 1 */
	assert_non_null(strstr(ev->message, "collapse"));
	detector_events_clear(&out);

	/* Run 2: three skipped steps in a row with a non-finite loss. */
	gen_init(&g);
	tb_start(&t);
	for (k = 0; k < 110; k++) {
		gen_step(&g, &t, k, 1, 1);
		tb_put(&t, SERIES_SKIPPED, NULL, k, k >= 100);
		if (k >= 100)
			tb_put(&t, SERIES_LOSS, NULL, k, NAN);
	}
	tb_feed(&t, d, 2, 0, 0, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, "loss_scale");
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 102);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, ""),
	    0);				/* skipped: not a NaN alarm */
	detector_events_clear(&out);

	/*
	 * Run 3: one step in three skipped, finite loss: the rate passes 5%
	 * (warning, judged from the 200th step), then 25% (UPDATE to critical,
	 * ~1400 steps in: the EW rate over ~1000 steps starts at 0).
	 */
	gen_init(&g);
	for (s = 0; s < 2000; s += 50) {
		tb_start(&t);
		for (k = s; k < s + 50; k++) {
			gen_step(&g, &t, k, 1, 1);
			tb_put(&t, SERIES_SKIPPED, NULL, k, k % 3 == 0);
		}
		tb_feed(&t, d, 3, 0, 0, &out);
	}
	check_events(&out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, "loss_scale");
	assert_non_null(ev);
	assert_int_equal(ev->severity, ALERT_WARNING);
	assert_int_equal(ev->fire_step, 199);	/* the 200th step */
	assert_non_null(strstr(ev->message, "skips"));
	ev = find_ev(&out, DETECTOR_UPDATE, ALERT_NONFINITE, "loss_scale");
	assert_non_null(ev);
	assert_int_equal(ev->severity, ALERT_CRITICAL);
	assert_int_equal(ev->fire_step, 199);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, NULL),
	    1);
	detector_events_clear(&out);
	/* Restored under its series, it is not fired again and resolves. */
	detector_restore(d, 4, ALERT_NONFINITE, "loss_scale", ALERT_CRITICAL,
	    10, 12);
	gen_init(&g);
	tb_start(&t);
	for (k = 0; k < 150; k++) {
		gen_step(&g, &t, k, 1, 1);
		tb_put(&t, SERIES_SKIPPED, NULL, k, 0);
	}
	tb_feed(&t, d, 4, 0, 0, &out);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.ev[0].type, DETECTOR_RESOLVE);
	assert_string_equal(out.ev[0].series, "loss_scale");
	assert_int_equal(out.ev[0].resolve_step, 99);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* A NaN in the loss alone is a nonfinite event. */
static void
test_nan_loss_only(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 100, 0, &out);
	tb_start(&t);
	gen_step(&g, &t, 100, 1, 1);
	tb_put(&t, SERIES_LOSS, NULL, 100, NAN);
	tb_feed(&t, d, 1, 0, 0, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, "");
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 100);
	assert_non_null(strstr(ev->message, "the loss (NaN)"));
	assert_non_null(strstr(ev->message, "gradients are finite"));
	detector_events_clear(&out);
	/* Latched: resolves after 100 finite steps. */
	gen_run(&g, d, 1, 101, 200, 0, &out);
	assert_int_equal(out.n, 0);
	gen_run(&g, d, 1, 200, 201, 0, &out);
	ev = find_ev(&out, DETECTOR_RESOLVE, ALERT_NONFINITE, "");
	assert_non_null(ev);
	assert_int_equal(ev->resolve_step, 200);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* NaN on a run's first step: no last finite value to quote, so say so. */
static void
test_nan_first_step(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct tb			 t;

	(void)state;
	tb_start(&t);
	tb_step(&t, 0);
	tb_put(&t, SERIES_LOSS, NULL, 0, NAN);
	tb_put(&t, SERIES_GRAD_NORM, NULL, 0, NAN);
	tb_feed(&t, d, 1, 0, 0, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, "");
	assert_non_null(ev);
	check_event(ev);
	assert_non_null(strstr(ev->message, "no finite loss seen yet"));
	assert_non_null(strstr(ev->message,
	    "no finite gradient norm seen yet"));
	assert_null(strstr(ev->message, "at step -1"));
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* Absent is not zero; zero from the start is "never active" (info). */
static void
test_absent_vs_zero(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;
	int64_t				 s, k;

	(void)state;
	gen_init(&g);
	for (s = 0; s < 1000; s += 50) {
		tb_start(&t);
		for (k = s; k < s + 50; k++) {
			gen_step(&g, &t, k, 1, 1);
			if (k % 4 == 0)		/* absent 3 steps out of 4 */
				tb_put(&t, SERIES_LAYER_GRAD, "aux.weight", k,
				    0.01);
			tb_put(&t, SERIES_LAYER_GRAD, "unused.weight", k, 0);
			if (k >= 300)
				tb_put(&t, SERIES_LAYER_GRAD, "late.weight", k,
				    k < 400 ? 0.05 : 0);
		}
		tb_feed(&t, d, 1, 1767225600.0 + (double)k, 0, &out);
	}
	check_events(&out);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_DEAD_LAYER,
	    "aux.weight"), 0);
	/* Zero from the first step: never active, a warning (no_gradient). */
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_DEAD_LAYER,
	    "unused.weight"), 0);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_NO_GRADIENT, "unused.weight");
	assert_non_null(ev);
	assert_int_equal(ev->severity, ALERT_WARNING);
	assert_in_range(ev->fire_step, 49, 59);	/* checked every 10 */
	assert_non_null(strstr(ev->detail_json, "never_active"));
	assert_non_null(strstr(ev->detail_json, "\"tensors\":[\"unused.weight\"]"));
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_DEAD_LAYER, "late.weight");
	assert_non_null(ev);
	assert_int_equal(ev->severity, ALERT_WARNING);
	assert_int_equal(ev->onset_step, 400);
	assert_in_range(ev->fire_step, 449, 452);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* A dead layer that recovers, then dies again: cool-down and severity. */
static void
test_cooldown_severity(void **state)
{
	struct detector_config	*cfg = detector_config_new();
	struct detector_events	 out = { 0 };
	struct detector		*d = detector_new(cfg);
	struct gen		 g;
	struct tb		 t;
	int64_t			 s, k;

	(void)state;
	gen_init(&g);
	/* zero 0..99 (never active: info), live 100..119, zero from 120 */
	for (s = 0; s < 400; s += 50) {
		tb_start(&t);
		for (k = s; k < s + 50; k++) {
			gen_step(&g, &t, k, 1, 1);
			tb_put(&t, SERIES_LAYER_GRAD, "x.weight", k,
			    k >= 100 && k < 120 ? 0.05 : 0);
		}
		tb_feed(&t, d, 1, 1767225600.0 + (double)k, 0, &out);
	}
	check_events(&out);
	/* Never active first: no_gradient (warning), until its first gradient. */
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_NO_GRADIENT,
	    "x.weight"), 1);
	assert_int_equal(out.ev[0].kind, ALERT_NO_GRADIENT);
	assert_int_equal(out.ev[0].severity, ALERT_WARNING);
	assert_in_range(out.ev[0].fire_step, 49, 59);
	assert_non_null(find_ev(&out, DETECTOR_RESOLVE, ALERT_NO_GRADIENT,
	    "x.weight"));
	/* Then it dies: a dead layer. */
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_DEAD_LAYER,
	    "x.weight"), 1);
	for (k = 0; k < (int64_t)out.n; k++)
		if (out.ev[k].type == DETECTOR_FIRE &&
		    out.ev[k].kind == ALERT_DEAD_LAYER &&
		    out.ev[k].severity == ALERT_WARNING)
			break;
	assert_true(k < (int64_t)out.n);
	assert_in_range(out.ev[k].fire_step, 169, 172);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

static void
test_config(void **state)
{
	struct detector_config	*cfg = detector_config_new();
	char			*cause = NULL;
	const char		*help = detector_config_help();

	(void)state;
	assert_int_equal(detector_config_set(cfg, "grad.spike_z", "7.5",
	    &cause), 0);
	assert_int_equal(detector_config_set(cfg, "dead.steps", "30", &cause),
	    0);
	assert_int_equal(detector_config_set(cfg, "nope", "1", &cause), -1);
	assert_non_null(strstr(cause, "nope"));
	free(cause);
	assert_int_equal(detector_config_set(cfg, "grad.alpha", "1.5", &cause),
	    -1);
	assert_non_null(strstr(cause, "range"));
	free(cause);
	assert_int_equal(detector_config_set(cfg, "dead.steps", "2.5", &cause),
	    -1);
	free(cause);
	assert_int_equal(detector_config_set(cfg, "loss.spike_z", "x",
	    &cause), -1);
	free(cause);
	assert_int_equal(detector_config_set(cfg, "loss.spike_z", "nan",
	    &cause), -1);
	free(cause);
	/* Every name the brief lists is in the table, with its meaning. */
	assert_non_null(strstr(help, "grad.alpha 0.97"));
	assert_non_null(strstr(help, "grad.warmup 25"));
	assert_non_null(strstr(help, "grad.spike_z 6"));
	assert_non_null(strstr(help, "grad.spike_ratio 10"));
	assert_non_null(strstr(help, "grad.explosion_cusum 12"));
	assert_non_null(strstr(help, "loss.spike_z 6"));
	assert_non_null(strstr(help, "vanish.v1_decades 3"));
	assert_non_null(strstr(help, "clip.saturation_rate 0.9"));
	assert_non_null(strstr(help, "dead.steps 50"));
	assert_non_null(strstr(help, "stall.min_seconds 120"));
	assert_non_null(strstr(help, "min_step 100"));
	detector_config_free(cfg);
}

/* Overrides from a run's meta apply to that run only; bad ones are ignored. */
static void
test_overrides(void **state)
{
	static const char *const metas[3] = {
		"{\"detector\":{\"dead.steps\":10}}",
		NULL,
		"{\"detector\":{\"dead.steps\":\"x\",\"grad.alpha\":7,"
		    "\"nosuch\":1,\"dead.resolve_steps\":true,"
		    "\"stall.factor\":null},\"project\":\"p\"}",
	};
	static const int64_t want[3] = { 109, 149, 149 };
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;
	int64_t				 s;
	int				 run;

	(void)state;
	for (run = 0; run < 3; run++) {
		gen_init(&g);
		g.zero_from = 100;
		tb_start(&t);
		if (metas[run] != NULL)
			t.b->meta_json = strdup(metas[run]);
		for (s = 0; s < 200; s++)
			gen_step(&g, &t, s, 1, 1);
		tb_feed(&t, d, run + 1, 1767225600.0 + 200, 0, &out);
		ev = find_ev(&out, DETECTOR_FIRE, ALERT_DEAD_LAYER, NULL);
		assert_non_null(ev);
		assert_int_equal(ev->run_id, run + 1);
		assert_in_range(ev->fire_step, want[run], want[run] + 3);
		detector_events_clear(&out);
	}
	/* Not even JSON: ignored. */
	tb_start(&t);
	t.b->meta_json = strdup("{\"detector\": nope");
	gen_step(&g, &t, 500, 1, 1);
	tb_feed(&t, d, 9, 0, 0, &out);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* Replay rebuilds state silently; restore keeps a firing alert's identity. */
static void
test_replay_restore(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;

	(void)state;
	gen_init(&g);
	/* Replay with everything that would fire: nothing comes out. */
	gen_run(&g, d, 1, 0, 300, 1, &out);
	tb_start(&t);
	gen_step(&g, &t, 300, 50, 50);
	tb_put(&t, SERIES_LAYER_GRAD, "l2.weight", 300, NAN);
	tb_feed(&t, d, 1, 0, 1, &out);
	gen_run(&g, d, 1, 301, 400, 1, &out);
	assert_int_equal(out.n, 0);
	/* ... but the baselines are warm: a live spike fires at once. */
	gen_one(&g, d, 1, 400, 50, 1, &out);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_GRAD_SPIKE, "");
	assert_non_null(ev);
	assert_int_equal(ev->fire_step, 400);
	detector_events_clear(&out);

	/*
	 * Restored alerts keep their identity: never fired again.  The
	 * replayed history counts: it shows the explosion over and the
	 * tensor alive, so both resolve at the first live step.
	 */
	detector_restore(d, 7, ALERT_GRAD_EXPLOSION, "", ALERT_CRITICAL, 95,
	    100);
	detector_restore(d, 7, ALERT_DEAD_LAYER, "l2.weight", ALERT_WARNING,
	    40, 89);
	gen_init(&g);
	gen_run(&g, d, 7, 0, 300, 1, &out);
	assert_int_equal(out.n, 0);
	gen_run(&g, d, 7, 300, 360, 0, &out);
	check_events(&out);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_GRAD_EXPLOSION,
	    NULL), 0);
	ev = find_ev(&out, DETECTOR_RESOLVE, ALERT_GRAD_EXPLOSION, "");
	assert_non_null(ev);
	assert_int_equal(ev->resolve_step, 300);
	assert_int_equal(ev->fire_step, 100);
	assert_int_equal(ev->onset_step, 95);
	ev = find_ev(&out, DETECTOR_RESOLVE, ALERT_DEAD_LAYER, "l2.weight");
	assert_non_null(ev);
	assert_int_equal(ev->resolve_step, 300);
	assert_int_equal(ev->onset_step, 40);
	assert_int_equal(out.n, 2);
	detector_events_clear(&out);

	/*
	 * Without history: the baseline warms up on live steps (25 from
	 * step 1000), then 50 steps of z < 2 resolve it.
	 */
	detector_restore(d, 8, ALERT_GRAD_EXPLOSION, "", ALERT_CRITICAL, 95,
	    100);
	gen_init(&g);
	gen_run(&g, d, 8, 1000, 1200, 0, &out);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.ev[0].type, DETECTOR_RESOLVE);
	assert_int_equal(out.ev[0].resolve_step, 1074);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/* Steps out of order or repeated in a batch, and steps seen before. */
static void
test_step_order(void **state)
{
	struct detector_config		*cfg = detector_config_new();
	struct detector_events		 out = { 0 };
	const struct detector_event	*ev;
	struct detector			*d = detector_new(cfg);
	struct gen			 g;
	struct tb			 t;

	(void)state;
	gen_init(&g);
	gen_run(&g, d, 1, 0, 100, 0, &out);
	tb_start(&t);
	gen_step(&g, &t, 102, 1, 1);
	gen_step(&g, &t, 101, 1, 1);
	tb_step(&t, 101);			/* a repeat: the last value wins */
	tb_put(&t, SERIES_LOSS, NULL, 101, INFINITY);
	gen_step(&g, &t, 50, 1, 1);		/* seen before: ignored */
	tb_put(&t, SERIES_LOSS, NULL, 50, NAN);
	tb_feed(&t, d, 1, 0, 0, &out);
	assert_int_equal(count_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, NULL),
	    1);
	ev = find_ev(&out, DETECTOR_FIRE, ALERT_NONFINITE, "");
	assert_int_equal(ev->fire_step, 101);
	assert_non_null(strstr(ev->message, "Infinity"));
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

static void
test_names(void **state)
{
	int	k;

	(void)state;
	for (k = 0; k < ALERT_KIND_COUNT; k++)
		assert_int_equal(alert_kind_parse(alert_kind_name(k)), k);
	assert_string_equal(alert_kind_name(ALERT_GRAD_EXPLOSION),
	    "grad_explosion");
	assert_string_equal(alert_kind_name(ALERT_NO_GRADIENT), "no_gradient");
	assert_int_equal(alert_kind_parse("bogus"), -1);
	assert_int_equal(alert_severity_parse("critical"), ALERT_CRITICAL);
	assert_string_equal(alert_severity_name(ALERT_INFO), "info");
	assert_int_equal(alert_severity_parse("page"), -1);
}

/* ---- recorded traces ---------------------------------------------------- */

#define TRACE_BODY_STEPS	100
#define MAX_TRACES		64

struct trace_case {
	char		*path;		/* NAME.jsonl */
	char		*name;
	json_t		*scenario;	/* labels.json's entry (borrowed) */
};

/* An alert as the trace test sees it: its highest severity. */
struct seen {
	enum alert_kind		 kind;
	enum alert_severity	 sev;
	char			 series[128];
	char			 detail[4096];	/* the latest, with a pattern's tensors */
	int64_t			 fire;
	int64_t			 resolve;
};

/* 1 if seen entry e names tensor name: its series, or in its tensors. */
static int
seen_names(const struct seen *e, const char *name, size_t len)
{
	char	q[160];

	if (strncmp(e->series, name, len) == 0)
		return 1;
	snprintf(q, sizeof q, "\"%.*s", (int)len, name);
	return strstr(e->detail, q) != NULL;
}

static json_t	*labels_root;

static int
json_has_string(json_t *arr, const char *s)
{
	size_t	i;
	json_t	*v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

static int64_t
label_int(json_t *labels, const char *key)
{
	json_t	*v = json_object_get(labels, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* The step time of a JSONL line, or 0. */
static double
line_time(const char *line)
{
	const char	*p = strstr(line, "\"time\":");

	return p != NULL ? strtod(p + 7, NULL) : 0;
}

/* Replay path through d as run 1, in bodies of TRACE_BODY_STEPS steps. */
static void
trace_replay(const char *path, struct detector *d, struct seen *seen,
    size_t *nseen, size_t maxseen)
{
	struct detector_events	 out = { 0 };
	struct batch		*b;
	const struct detector_event *ev;
	FILE			*f;
	char			*line = NULL, *body = NULL, *cause = NULL;
	const char		*code = NULL;
	size_t			 cap = 0, blen = 0, bcap = 0, i, k;
	ssize_t			 n;
	double			 now = 0;
	int			 in = 0, eof = 0;

	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("%s: cannot open", path);
	while (!eof) {
		n = getline(&line, &cap, f);
		if (n <= 0)
			eof = 1;
		else {
			while (n > 0 && (line[n - 1] == '\n' ||
			    line[n - 1] == '\r'))
				line[--n] = '\0';
			if (n == 0)
				continue;
			if (blen + (size_t)n + 64 > bcap) {
				bcap = (blen + (size_t)n + 64) * 2;
				body = realloc(body, bcap);
				assert_non_null(body);
			}
			if (in == 0)
				blen = (size_t)snprintf(body, bcap,
				    "{\"run\":\"t\",\"steps\":[");
			else
				body[blen++] = ',';
			memcpy(body + blen, line, (size_t)n);
			blen += (size_t)n;
			now = line_time(line);
			in++;
		}
		if (in == 0 || (in < TRACE_BODY_STEPS && !eof))
			continue;
		blen += (size_t)snprintf(body + blen, bcap - blen, "]}");
		b = ingest_parse(body, blen, SIZE_MAX, &code, &cause);
		if (b == NULL)
			fail_msg("%s: refused (%s): %s", path, code, cause);
		detector_feed(d, 1, b, now, 0, &out);
		batch_free(b);
		detector_tick(d, now + 1, &out);	/* no stall in a trace */
		in = 0;
		for (i = 0; i < out.n; i++) {
			ev = &out.ev[i];
			check_event(ev);
			for (k = 0; k < *nseen; k++)
				if (seen[k].kind == ev->kind &&
				    strcmp(seen[k].series, ev->series) == 0 &&
				    seen[k].resolve < 0)
					break;
			if (ev->type == DETECTOR_FIRE) {
				assert_true(k == *nseen); /* one at a time */
				assert_true(*nseen < maxseen);
				seen[k].kind = ev->kind;
				seen[k].sev = ev->severity;
				snprintf(seen[k].series, sizeof seen[k].series,
				    "%s", ev->series);
				snprintf(seen[k].detail, sizeof seen[k].detail,
				    "%s", ev->detail_json != NULL ?
				    ev->detail_json : "");
				seen[k].fire = ev->fire_step;
				seen[k].resolve = -1;
				(*nseen)++;
			} else {
				assert_true(k < *nseen);
				if (ev->type == DETECTOR_UPDATE &&
				    ev->severity > seen[k].sev)
					seen[k].sev = ev->severity;
				if (ev->type == DETECTOR_UPDATE &&
				    ev->detail_json != NULL)
					snprintf(seen[k].detail,
					    sizeof seen[k].detail, "%s",
					    ev->detail_json);
				if (ev->type == DETECTOR_RESOLVE)
					seen[k].resolve = ev->resolve_step;
			}
		}
		detector_events_clear(&out);
	}
	fclose(f);
	free(line);
	free(body);
	detector_events_cleanup(&out);
}

static void
test_trace(void **state)
{
	struct trace_case	*tc = *state;
	struct detector_config	*cfg = detector_config_new();
	struct detector		*d = detector_new(cfg);
	static struct seen	 seen[4096];
	json_t			*labels, *expected, *acceptable, *arr, *v;
	size_t			 nseen = 0, i, j;
	int64_t			 fnf, onset, dead_from, first_nan = -1;
	int64_t			 first_expl = -1, s;
	int			 ok, healthy, bad = 0;
	char			 layer[128], *dot;

	labels = json_object_get(tc->scenario, "labels");
	expected = json_object_get(tc->scenario, "expected_alerts");
	acceptable = json_object_get(tc->scenario, "acceptable_alerts");
	assert_non_null(labels);
	assert_true(json_is_array(expected));
	healthy = json_array_size(expected) == 0;
	trace_replay(tc->path, d, seen, &nseen, sizeof seen / sizeof seen[0]);
	detector_free(d);
	detector_config_free(cfg);

	printf("# %s: %zu alerts\n", tc->name, nseen);
	for (i = 0; i < nseen; i++) {
		printf("#   %-15s %-8s %-20s fired %lld",
		    alert_kind_name(seen[i].kind),
		    alert_severity_name(seen[i].sev),
		    *seen[i].series ? seen[i].series : "-",
		    (long long)seen[i].fire);
		if (seen[i].resolve >= 0)
			printf(", resolved %lld", (long long)seen[i].resolve);
		printf("\n");
	}
	fnf = label_int(labels, "first_nonfinite_step");
	onset = label_int(labels, "onset_step");
	dead_from = label_int(labels, "dead_from_step");
	for (i = 0; i < nseen; i++) {
		if (seen[i].kind == ALERT_NONFINITE && first_nan < 0)
			first_nan = seen[i].fire;
		if (seen[i].kind == ALERT_GRAD_EXPLOSION && (first_expl < 0 ||
		    (fnf >= 0 && seen[i].fire < fnf)))
			first_expl = seen[i].fire;
	}

	/* No kind outside expected + acceptable at warning or critical. */
	for (i = 0; i < nseen; i++) {
		if (seen[i].sev < ALERT_WARNING)
			continue;
		if (!json_has_string(expected, alert_kind_name(seen[i].kind)) &&
		    !json_has_string(acceptable,
		    alert_kind_name(seen[i].kind))) {
			printf("# FALSE ALERT: %s %s on %s at step %lld\n",
			    alert_severity_name(seen[i].sev),
			    alert_kind_name(seen[i].kind), *seen[i].series ?
			    seen[i].series : "the run", (long long)seen[i].fire);
			bad++;
		}
	}
	if (healthy)
		assert_int_equal(bad, 0);

	/* Every expected kind fires, at warning or above. */
	json_array_foreach(expected, i, v) {
		for (j = 0; j < nseen; j++)
			if (strcmp(alert_kind_name(seen[j].kind),
			    json_string_value(v)) == 0 &&
			    seen[j].sev >= ALERT_WARNING)
				break;
		if (j == nseen) {
			printf("# MISSED: %s\n", json_string_value(v));
			bad++;
		}
	}
	/* NaN/Inf at delay 0. */
	if (fnf >= 0) {
		printf("#   nonfinite: labelled at %lld, fired at %lld\n",
		    (long long)fnf, (long long)first_nan);
		assert_int_equal(first_nan, fnf);
	}
	/* The explosion before the first non-finite value, with a lead. */
	if (onset >= 0) {
		printf("#   grad_explosion: onset %lld, fired %lld, first "
		    "non-finite %lld: lead %lld steps\n", (long long)onset,
		    (long long)first_expl, (long long)fnf,
		    (long long)(fnf - first_expl));
		assert_true(first_expl >= 0);
		assert_true(first_expl < fnf);
	}
	/* Every dead tensor within 200 steps of dead_from_step. */
	arr = json_object_get(labels, "dead_params");
	json_array_foreach(arr, i, v) {
		for (j = 0; j < nseen; j++)
			if (seen[j].kind == ALERT_DEAD_LAYER &&
			    seen_names(&seen[j], json_string_value(v),
			    strlen(json_string_value(v))))
				break;
		ok = j < nseen && seen[j].fire >= dead_from &&
		    seen[j].fire <= dead_from + 200 &&
		    seen[j].sev >= ALERT_WARNING;
		printf("#   dead %s: from %lld, fired %lld%s\n",
		    json_string_value(v), (long long)dead_from,
		    j < nseen ? (long long)seen[j].fire : -1LL,
		    ok ? "" : "  MISSED");
		bad += !ok;
	}
	/*
	 * Every vanishing layer within 200 steps of the start.  Biases and
	 * other 1-D tensors are not eligible (DETECTION.md (b)), so a layer
	 * counts as found when any tensor of it is named.
	 */
	arr = json_object_get(labels, "vanishing_params");
	json_array_foreach(arr, i, v) {
		snprintf(layer, sizeof layer, "%s", json_string_value(v));
		if ((dot = strrchr(layer, '.')) != NULL)
			dot[1] = '\0';
		for (j = 0; j < nseen; j++)
			if (seen[j].kind == ALERT_VANISHING &&
			    seen[j].sev >= ALERT_WARNING &&
			    seen_names(&seen[j], layer, strlen(layer)))
				break;
		ok = j < nseen && seen[j].fire <= 200;
		printf("#   vanishing %s: fired %lld on %s%s\n",
		    json_string_value(v), j < nseen ? (long long)seen[j].fire :
		    -1LL, j < nseen ? seen[j].series : "-", ok ? "" :
		    "  MISSED");
		bad += !ok;
	}
	/* A loss spike within each labelled spike's window. */
	arr = json_object_get(labels, "spike_steps");
	json_array_foreach(arr, i, v) {
		s = json_integer_value(v);
		for (j = 0; j < nseen; j++)
			if (seen[j].kind == ALERT_LOSS_SPIKE &&
			    seen[j].fire >= s && seen[j].fire <= s + 200)
				break;
		printf("#   spike at %lld: loss_spike fired %lld\n",
		    (long long)s, j < nseen ? (long long)seen[j].fire : -1LL);
		bad += j == nseen;
	}
	assert_int_equal(bad, 0);
}

static int
trace_cmp(const void *a, const void *b)
{
	const struct trace_case	*x = a, *y = b;

	return strcmp(x->name, y->name);
}

int
main(void)
{
	static const struct CMUnitTest	fixed[] = {
		cmocka_unit_test(test_select_median),
		cmocka_unit_test(test_baseline_warmup),
		cmocka_unit_test(test_baseline_winsorized),
		cmocka_unit_test(test_cusum),
		cmocka_unit_test(test_ewmean_and_ln),
		cmocka_unit_test(test_log_domain),
		cmocka_unit_test(test_spike_hysteresis_cooldown),
		cmocka_unit_test(test_supersession),
		cmocka_unit_test(test_loss_jump_spike),
		cmocka_unit_test(test_loss_jump_new_level),
		cmocka_unit_test(test_loss_jump_stuck),
		cmocka_unit_test(test_hard_ratio_needs_two_steps),
		cmocka_unit_test(test_explosion_resolve),
		cmocka_unit_test(test_burst_vs_explosion),
		cmocka_unit_test(test_no_storm),
		cmocka_unit_test(test_stall),
		cmocka_unit_test(test_vanishing_depth),
		cmocka_unit_test(test_vanishing_midrun),
		cmocka_unit_test(test_skipped),
		cmocka_unit_test(test_scaler),
		cmocka_unit_test(test_nan_loss_only),
		cmocka_unit_test(test_nan_first_step),
		cmocka_unit_test(test_absent_vs_zero),
		cmocka_unit_test(test_cooldown_severity),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_replay_restore),
		cmocka_unit_test(test_step_order),
		cmocka_unit_test(test_names),
	};
	static struct CMUnitTest	tests[sizeof fixed / sizeof fixed[0] +
					    MAX_TRACES];
	static struct trace_case	cases[MAX_TRACES];
	struct dirent			*de;
	const char			*top;
	char				 dir[4096], path[4600];
	json_t				*scenarios, *sc;
	json_error_t			 err;
	size_t				 n = 0, ncases = 0, i, l;
	DIR				*dp;
	int				 rc;

	for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		tests[n++] = fixed[i];
	if ((top = getenv("GW_TOP")) == NULL)
		top = ".";
	snprintf(dir, sizeof dir, "%s/tests/data/traces", top);
	snprintf(path, sizeof path, "%s/labels.json", dir);
	if ((labels_root = json_load_file(path, 0, &err)) == NULL) {
		fprintf(stderr, "test_detector: %s: %s (run from the top of "
		    "the tree or set GW_TOP)\n", path, err.text);
		return 1;
	}
	scenarios = json_object_get(labels_root, "scenarios");
	if ((dp = opendir(dir)) == NULL) {
		fprintf(stderr, "test_detector: %s: cannot open\n", dir);
		return 1;
	}
	while ((de = readdir(dp)) != NULL) {
		l = strlen(de->d_name);
		if (l <= 6 || strcmp(de->d_name + l - 6, ".jsonl") != 0)
			continue;
		if (ncases == MAX_TRACES) {
			fprintf(stderr, "test_detector: over %d traces\n",
			    MAX_TRACES);
			return 1;
		}
		cases[ncases].name = strndup(de->d_name, l - 6);
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		cases[ncases].path = strdup(path);
		sc = json_object_get(scenarios, cases[ncases].name);
		if (!json_is_object(sc)) {
			fprintf(stderr, "test_detector: %s: no labels\n",
			    cases[ncases].name);
			return 1;
		}
		cases[ncases].scenario = sc;
		ncases++;
	}
	closedir(dp);
	if (ncases < 15) {
		fprintf(stderr, "test_detector: %s: %zu traces, want 15 or "
		    "more\n", dir, ncases);
		return 1;
	}
	qsort(cases, ncases, sizeof *cases, trace_cmp);
	for (i = 0; i < ncases; i++) {
		tests[n] = (struct CMUnitTest)cmocka_unit_test(test_trace);
		tests[n].name = cases[i].name;
		tests[n++].initial_state = &cases[i];
	}
	rc = _cmocka_run_group_tests("detector", tests, n, NULL, NULL);
	for (i = 0; i < ncases; i++) {
		free(cases[i].name);
		free(cases[i].path);
	}
	json_decref(labels_root);
	return rc;
}

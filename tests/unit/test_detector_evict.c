/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of detector_evict.c: a quiet run gives up its tensors and
 * keeps the rest; the stall timer goes on ticking it; refilled from its
 * history, it makes the same events as a run that was never evicted (a
 * firing tensor alert resolves once, never fires again), and its
 * rebuilt tensors still catch what needs their past (a tensor that
 * collapses after the eviction).
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

#include "batch.h"
#include "detector.h"

#define T0	1767225600.0
#define NT	6

static const char *const names[NT] = {
	"in.weight", "h1.weight", "h2.weight", "h3.weight", "h4.weight",
	"out.weight"
};

/* A deterministic run: NT tensors with a little noise; knobs per test. */
struct src {
	uint64_t	rng;
	int64_t		dead_from, dead_to;	/* out.weight exactly 0 */
	int64_t		fall_from;		/* h2.weight 1000x lower */
};

static double
src_noise(struct src *s)
{
	s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((double)(s->rng >> 11) / 9007199254740992.0 - 0.5) * 0.04;
}

static void
src_init(struct src *s)
{
	memset(s, 0, sizeof *s);
	s->rng = 42;
	s->dead_from = s->dead_to = s->fall_from = -1;
}

/* Steps [from, to) of the source as one batch. */
static struct batch *
src_batch(struct src *s, int64_t from, int64_t to)
{
	struct batch	*b = batch_new("t");
	double		 v, g2;
	int64_t		 k;
	int		 i;

	b->steps = calloc((size_t)(to - from) + 1, sizeof *b->steps);
	assert_non_null(b->steps);
	for (k = from; k < to; k++) {
		b->steps[b->nsteps++] = k;
		g2 = 0;
		for (i = 0; i < NT; i++) {
			v = 0.05 * (i + 1) * exp(src_noise(s));
			if (i == NT - 1 && s->dead_from >= 0 &&
			    k >= s->dead_from &&
			    (s->dead_to < 0 || k < s->dead_to))
				v = 0;
			if (i == 2 && s->fall_from >= 0 && k >= s->fall_from)
				v *= 1e-3;
			g2 += v * v;
			batch_series_push(b, batch_series_get(b,
			    SERIES_LAYER_GRAD, names[i]), k, v);
		}
		batch_series_push(b, batch_series_get(b, SERIES_GRAD_NORM,
		    "grad_norm"), k, sqrt(g2));
		batch_series_push(b, batch_series_get(b, SERIES_LOSS, "loss"),
		    k, 2.0 * exp(src_noise(s)));
		batch_series_push(b, batch_series_get(b, SERIES_LR, "lr"), k,
		    1e-3);
		batch_series_push(b, batch_series_get(b, SERIES_TIME, "time"),
		    k, T0 + (double)k);
	}
	return b;
}

/* Feed steps [from, to) live, in batches of 10. */
static void
src_feed(struct src *s, struct detector *d, int64_t run, int64_t from,
    int64_t to, struct detector_events *out)
{
	struct batch	*b;
	int64_t		 k;

	for (k = from; k < to; k += 10) {
		b = src_batch(s, k, k + 10 < to ? k + 10 : to);
		detector_feed(d, run, b, T0 + (double)(k + 9), 0, out);
		batch_free(b);
	}
}

static size_t
count(const struct detector_events *out, enum detector_event_type type,
    enum alert_kind kind)
{
	size_t	i, n = 0;

	for (i = 0; i < out->n; i++)
		if (out->ev[i].type == type && out->ev[i].kind == kind)
			n++;
	return n;
}

static void
assert_counts(struct detector *d, size_t runs, size_t evicted,
    size_t tensors)
{
	size_t	r, e, t;

	detector_counts(d, &r, &e, &t);
	assert_int_equal(r, runs);
	assert_int_equal(e, evicted);
	assert_int_equal(t, tensors);
}

/*
 * Run 1 is evicted at step 300 while out.weight's dead_layer fires, then
 * refilled from steps 0..299 (what the store gives back); run 2 is fed
 * the same without a break.  From step 300 on, both make the same events.
 */
static void
test_same_events(void **state)
{
	struct detector_config	*cfg = detector_config_new();
	struct detector		*d = detector_new(cfg);
	struct detector_events	 a = { 0 }, b = { 0 }, scratch = { 0 };
	struct src		 s1, s2, h;
	struct batch		*hist;
	size_t			 i;

	(void)state;
	src_init(&s1);
	s1.dead_from = 100;
	s1.dead_to = 300;
	s2 = s1;
	h = s1;
	src_feed(&s1, d, 1, 0, 300, &a);
	src_feed(&s2, d, 2, 0, 300, &b);
	assert_int_equal(count(&a, DETECTOR_FIRE, ALERT_DEAD_LAYER), 1);
	assert_int_equal(count(&b, DETECTOR_FIRE, ALERT_DEAD_LAYER), 1);
	detector_events_clear(&a);
	detector_events_clear(&b);
	assert_counts(d, 2, 0, 2 * NT);

	detector_evict(d, 1);
	assert_true(detector_is_evicted(d, 1));
	assert_false(detector_is_evicted(d, 2));
	assert_counts(d, 1, 1, NT);
	detector_evict(d, 1);			/* twice is once */
	detector_evict(d, 99);			/* unknown: nothing */
	assert_counts(d, 1, 1, NT);

	hist = src_batch(&h, 0, 300);
	detector_refill(d, 1, hist, T0 + 1000, &scratch);
	batch_free(hist);
	assert_int_equal(scratch.n, 0);		/* a replay says nothing */
	assert_false(detector_is_evicted(d, 1));
	assert_counts(d, 2, 0, 2 * NT);

	src_feed(&s1, d, 1, 300, 600, &a);
	src_feed(&s2, d, 2, 300, 600, &b);
	/* The kept alert resolves once and is not raised again. */
	assert_int_equal(count(&a, DETECTOR_FIRE, ALERT_DEAD_LAYER), 0);
	assert_int_equal(count(&a, DETECTOR_RESOLVE, ALERT_DEAD_LAYER), 1);
	assert_int_equal(a.n, b.n);
	for (i = 0; i < a.n; i++) {
		assert_int_equal(a.ev[i].type, b.ev[i].type);
		assert_int_equal(a.ev[i].kind, b.ev[i].kind);
		assert_int_equal(a.ev[i].severity, b.ev[i].severity);
		assert_string_equal(a.ev[i].series, b.ev[i].series);
		assert_int_equal(a.ev[i].onset_step, b.ev[i].onset_step);
		assert_int_equal(a.ev[i].fire_step, b.ev[i].fire_step);
		assert_int_equal(a.ev[i].resolve_step, b.ev[i].resolve_step);
	}
	detector_events_cleanup(&a);
	detector_events_cleanup(&b);
	detector_events_cleanup(&scratch);
	detector_free(d);
	detector_config_free(cfg);
}

/* An evicted run still stalls; its next step, after the refill, resolves it. */
static void
test_stall_survives(void **state)
{
	struct detector_config	*cfg = detector_config_new();
	struct detector		*d = detector_new(cfg);
	struct detector_events	 out = { 0 };
	struct src		 s, h;
	struct batch		*hist;

	(void)state;
	src_init(&s);
	h = s;
	src_feed(&s, d, 1, 0, 50, &out);	/* 1 s a step, last at T0 + 49 */
	assert_int_equal(out.n, 0);
	detector_evict(d, 1);
	detector_tick(d, T0 + 49 + 121, &out);	/* 10 x 1 s, floored at 120 s */
	assert_int_equal(count(&out, DETECTOR_FIRE, ALERT_STALL), 1);
	detector_tick(d, T0 + 49 + 361, &out);	/* critical at 3 x */
	assert_int_equal(count(&out, DETECTOR_UPDATE, ALERT_STALL), 1);
	assert_int_equal(out.ev[1].severity, ALERT_CRITICAL);
	detector_events_clear(&out);
	assert_true(detector_is_evicted(d, 1));

	hist = src_batch(&h, 0, 50);
	detector_refill(d, 1, hist, T0 + 500, &out);
	batch_free(hist);
	detector_events_clear(&out);
	src_feed(&s, d, 1, 50, 51, &out);
	assert_int_equal(count(&out, DETECTOR_RESOLVE, ALERT_STALL), 1);
	assert_int_equal(count(&out, DETECTOR_FIRE, ALERT_STALL), 0);
	detector_events_cleanup(&out);
	detector_free(d);
	detector_config_free(cfg);
}

/*
 * h2.weight collapses 1000x after the eviction: caught against the
 * tensors' levels rebuilt from the history, as without an eviction; with
 * no history (tensors afresh) the collapse is their starting level.
 */
static void
test_tensors_rebuilt(void **state)
{
	struct detector_config	*cfg = detector_config_new();
	struct detector		*d = detector_new(cfg);
	struct detector_events	 out[3] = { { 0 }, { 0 }, { 0 } };
	struct src		 s[3], h;
	struct batch		*hist;
	int			 run;

	(void)state;
	for (run = 0; run < 3; run++) {
		src_init(&s[run]);
		s[run].fall_from = 600;
		src_feed(&s[run], d, run, 0, 600, &out[run]);
		assert_int_equal(out[run].n, 0);
	}
	detector_evict(d, 1);
	detector_evict(d, 2);
	src_init(&h);
	hist = src_batch(&h, 0, 600);
	detector_refill(d, 1, hist, T0 + 700, &out[1]);
	batch_free(hist);
	detector_refill(d, 2, NULL, T0 + 700, &out[2]);
	for (run = 0; run < 3; run++)
		src_feed(&s[run], d, run, 600, 900, &out[run]);
	assert_int_equal(count(&out[0], DETECTOR_FIRE, ALERT_VANISHING), 1);
	assert_int_equal(out[1].n, out[0].n);
	assert_int_equal(out[1].ev[0].kind, ALERT_VANISHING);
	assert_string_equal(out[1].ev[0].series, "h2.weight");
	assert_int_equal(out[1].ev[0].fire_step, out[0].ev[0].fire_step);
	printf("# h2.weight 1000x lower from step 600: vanishing at step %lld "
	    "with or without an eviction\n", (long long)out[1].ev[0].fire_step);
	assert_int_equal(count(&out[2], DETECTOR_FIRE, ALERT_VANISHING), 0);
	for (run = 0; run < 3; run++)
		detector_events_cleanup(&out[run]);
	detector_free(d);
	detector_config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_events),
		cmocka_unit_test(test_stall_survives),
		cmocka_unit_test(test_tensors_rebuilt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

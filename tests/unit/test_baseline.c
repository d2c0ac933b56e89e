/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for baseline: selection and the median against a sorted
 * copy, the robust baseline's warm-up (readiness, the buffer's life,
 * median and 1.4826 MAD on known sequences and against a reference
 * computed here), its resistance to one outlier in the warm-up and after
 * it, z-scores against its location and scale, the winsorized Finch
 * updates against a reference recursion and a closed form, re-baselining
 * (reset) and saturation; the capped CUSUM (accumulation, onset, cap,
 * clamp at 0, reset) against a reference; the warm-started EW mean
 * against closed forms; and the floored logarithm.  Expected values are
 * computed here from the documented formulas, never by the module.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "baseline.h"

#define MAD_SIGMA	1.4826	/* DETECTION.md: sigma = 1.4826 MAD */

/* ---- helpers ------------------------------------------------------------ */

/* got is want within tol, relative to max(1, |want|). */
#define assert_near(got, want, tol)					\
	assert_near_at((got), (want), (tol), __FILE__, __LINE__)

static void
assert_near_at(double got, double want, double tol, const char *file,
    int line)
{
	double	scale = fabs(want) > 1 ? fabs(want) : 1;

	if (!(fabs(got - want) <= tol * scale))
		fail_msg("%s:%d: got %.17g, wanted %.17g (tol %g)", file, line,
		    got, want, tol);
}

/* xorshift64: a reproducible stream. */
static uint64_t
rnd(uint64_t *r)
{
	*r ^= *r << 13;
	*r ^= *r >> 7;
	*r ^= *r << 17;
	return *r;
}

/* Uniform in [0, 1). */
static double
rnd_unit(uint64_t *r)
{
	return (double)(rnd(r) >> 11) / 9007199254740992.0;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The reference median: sort a copy. */
static double
ref_median(const double *a, size_t n)
{
	double	*s, med;

	s = malloc(n * sizeof *s);
	assert_non_null(s);
	memcpy(s, a, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_double);
	med = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return med;
}

/* The reference warm-up: m = median, v = (1.4826 MAD)^2. */
static void
ref_warmup(const double *y, size_t n, double *m, double *v)
{
	double	*dev;
	size_t	 i;

	*m = ref_median(y, n);
	dev = malloc(n * sizeof *dev);
	assert_non_null(dev);
	for (i = 0; i < n; i++)
		dev[i] = fabs(y[i] - *m);
	*v = MAD_SIGMA * ref_median(dev, n);
	*v *= *v;
	free(dev);
}

/* The reference update: clamp y to m +- c max(sqrt v, floor), then Finch. */
static void
ref_update(double *m, double *v, double y, double a, double s_floor,
    double c)
{
	double	s, d;

	s = sqrt(*v) > s_floor ? sqrt(*v) : s_floor;
	if (y > *m + c * s)
		y = *m + c * s;
	if (y < *m - c * s)
		y = *m - c * s;
	d = y - *m;
	*m += a * d;
	*v = (1 - a) * (*v + a * d * d);
}

/* Warm b up on y[0..n-1] (n == b->w), checking readiness at each point. */
static void
warm(struct baseline *b, const double *y, size_t n, double a, double s_floor,
    double c)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		assert_false(baseline_is_ready(b));
		baseline_add(b, y[i], a, s_floor, c);
	}
	assert_true(baseline_is_ready(b));
}

/* ---- selection ---------------------------------------------------------- */

/* Every k of random, sorted, reversed and constant arrays; a is permuted. */
static void
test_select_every_k(void **state)
{
	double		a[64], c[64], s[64], after[64];
	uint64_t	r = 0x9e3779b97f4a7c15ULL;
	size_t		n, k, i, shape;

	(void)state;
	for (n = 1; n <= 64; n++) {
		for (shape = 0; shape < 5; shape++) {
			for (i = 0; i < n; i++) {
				switch (shape) {
				case 0:		/* many duplicates */
					a[i] = (double)(rnd(&r) % 5);
					break;
				case 1:		/* distinct-ish, signed */
					a[i] = rnd_unit(&r) * 200 - 100;
					break;
				case 2:		/* ascending */
					a[i] = (double)i;
					break;
				case 3:		/* descending */
					a[i] = (double)(n - i);
					break;
				default:	/* constant */
					a[i] = 7.5;
					break;
				}
				s[i] = a[i];
			}
			qsort(s, n, sizeof *s, cmp_double);
			for (k = 0; k < n; k++) {
				memcpy(c, a, n * sizeof *a);
				if (baseline_select(c, n, k) != s[k])
					fail_msg("n %zu shape %zu k %zu: %g, "
					    "wanted %g", n, shape, k,
					    baseline_select(c, n, k), s[k]);
				/* A permutation, partitioned around k. */
				for (i = 0; i < n; i++) {
					if (i < k)
						assert_true(c[i] <= s[k]);
					if (i > k)
						assert_true(c[i] >= s[k]);
				}
				memcpy(after, c, n * sizeof *c);
				qsort(after, n, sizeof *after, cmp_double);
				assert_memory_equal(after, s, n * sizeof *s);
			}
			memcpy(c, a, n * sizeof *a);
			assert_true(baseline_median(c, n) == ref_median(a, n));
		}
	}
}

/* The median on small known arrays, odd and even. */
static void
test_median_known(void **state)
{
	double	one[] = { -3 };
	double	two[] = { 5, 1 };
	double	odd[] = { 3, 1, 4, 1, 5, 9, 2 };
	double	even[] = { 10, 2, 8, 4 };
	double	dup[] = { 2, 2, 2, 9, 9, 9 };

	(void)state;
	assert_true(baseline_median(one, 1) == -3);
	assert_true(baseline_median(two, 2) == 3);
	assert_true(baseline_median(odd, 7) == 3);
	assert_true(baseline_median(even, 4) == 6);
	assert_true(baseline_median(dup, 6) == 5.5);
}

/* ---- the robust baseline: warm-up --------------------------------------- */

/* Not ready before the w-th point; the buffer lives only during warm-up. */
static void
test_warmup_readiness(void **state)
{
	struct baseline	b;
	uint32_t	i;

	(void)state;
	baseline_init(&b, 6);
	assert_int_equal(b.w, 6);
	assert_int_equal(b.n, 0);
	assert_null(b.buf);
	assert_false(baseline_is_ready(&b));
	for (i = 0; i < 5; i++) {
		baseline_add(&b, (double)i, 0.1, 0.01, 3);
		assert_int_equal(b.n, i + 1);
		assert_non_null(b.buf);
		assert_false(baseline_is_ready(&b));
	}
	baseline_add(&b, 5, 0.1, 0.01, 3);
	assert_true(baseline_is_ready(&b));
	assert_int_equal(b.n, 6);
	assert_null(b.buf);
	baseline_add(&b, 5, 0.1, 0.01, 3);
	assert_int_equal(b.n, 7);
	assert_true(baseline_is_ready(&b));
	baseline_cleanup(&b);
	baseline_cleanup(&b);		/* idempotent */

	/* w = 0 means 1: the first point is the baseline, with no spread. */
	baseline_init(&b, 0);
	assert_int_equal(b.w, 1);
	baseline_add(&b, 42, 0.1, 0.5, 3);
	assert_true(baseline_is_ready(&b));
	assert_null(b.buf);
	assert_true(b.m == 42);
	assert_true(b.v == 0);
	assert_true(baseline_scale(&b, 0.5) == 0.5);
	baseline_cleanup(&b);
}

/* Median and 1.4826 MAD on hand-computed sequences. */
static void
test_warmup_known(void **state)
{
	struct baseline	b;
	/* sorted 1 1 2 3 4 5 9: median 3; |y - 3| 0 1 1 2 2 2 6: MAD 2 */
	const double	odd[] = { 3, 1, 4, 1, 5, 9, 2 };
	/* sorted 2 4 8 10: median 6; |y - 6| = 4 4 2 2: MAD (2 + 4) / 2 = 3 */
	const double	even[] = { 10, 2, 8, 4 };
	/* a signed series: median -1; |y + 1| = 1 3 0 1 4: MAD 1 */
	const double	neg[] = { -2, 2, -1, 0, -5 };

	(void)state;
	baseline_init(&b, 7);
	warm(&b, odd, 7, 0.1, 0.01, 3);
	assert_true(b.m == 3);
	assert_near(b.v, (MAD_SIGMA * 2) * (MAD_SIGMA * 2), 1e-14);
	assert_near(baseline_scale(&b, 0.01), MAD_SIGMA * 2, 1e-14);
	baseline_cleanup(&b);

	baseline_init(&b, 4);
	warm(&b, even, 4, 0.1, 0.01, 3);
	assert_true(b.m == 6);
	assert_near(baseline_scale(&b, 0.01), MAD_SIGMA * 3, 1e-14);
	/* The floor wins over a smaller scale, and only then. */
	assert_true(baseline_scale(&b, 10) == 10);
	assert_near(baseline_scale(&b, MAD_SIGMA * 3 - 1e-9), MAD_SIGMA * 3,
	    1e-14);
	baseline_cleanup(&b);

	baseline_init(&b, 5);
	warm(&b, neg, 5, 0.1, 0.01, 3);
	assert_true(b.m == -1);
	assert_near(baseline_scale(&b, 0.01), MAD_SIGMA, 1e-14);
	baseline_cleanup(&b);

	/* A constant warm-up has no spread: the scale is the floor. */
	{
		const double	flat[] = { 2.5, 2.5, 2.5 };

		baseline_init(&b, 3);
		warm(&b, flat, 3, 0.1, 0.25, 3);
		assert_true(b.m == 2.5);
		assert_true(b.v == 0);
		assert_true(baseline_scale(&b, 0.25) == 0.25);
		baseline_cleanup(&b);
	}
}

/* Random warm-ups of every length against the reference computation. */
static void
test_warmup_reference(void **state)
{
	struct baseline	b;
	double		y[41], m, v;
	uint64_t	r = 12345;
	uint32_t	w, i;

	(void)state;
	for (w = 1; w <= 41; w++) {
		for (i = 0; i < w; i++)
			y[i] = exp(rnd_unit(&r) * 6 - 3); /* log-uniform */
		ref_warmup(y, w, &m, &v);
		baseline_init(&b, w);
		warm(&b, y, w, 0.05, 1e-9, 3);
		assert_near(b.m, m, 1e-15);
		assert_near(b.v, v, 1e-13);
		baseline_cleanup(&b);
	}
}

/* One wild point in the warm-up moves neither the location nor the scale. */
static void
test_warmup_outlier(void **state)
{
	struct baseline	b, c;
	const double	clean[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	double		dirty[9];
	double		mean;
	size_t		i;

	(void)state;
	memcpy(dirty, clean, sizeof dirty);
	dirty[4] = 1e12;		/* replaces the median itself */
	baseline_init(&b, 9);
	warm(&b, clean, 9, 0.1, 0.01, 3);
	baseline_init(&c, 9);
	warm(&c, dirty, 9, 0.1, 0.01, 3);
	/* clean: median 5, |y - 5| sorted 0 1 1 2 2 3 3 4 4: MAD 2 */
	assert_true(b.m == 5);
	assert_near(baseline_scale(&b, 0.01), 2 * MAD_SIGMA, 1e-14);
	/*
	 * dirty: sorted 1 2 3 4 6 7 8 9 1e12: median 6; |y - 6| sorted
	 * 0 1 2 2 3 3 4 5 ~1e12: MAD 3
	 */
	assert_true(c.m == 6);
	assert_near(baseline_scale(&c, 0.01), 3 * MAD_SIGMA, 1e-14);
	/* The mean would have been dragged to ~1e11. */
	mean = 0;
	for (i = 0; i < 9; i++)
		mean += dirty[i] / 9;
	assert_true(mean > 1e10);
	assert_true(fabs(c.m - b.m) <= 1);
	baseline_cleanup(&b);
	baseline_cleanup(&c);
}

/* ---- the robust baseline: updates --------------------------------------- */

/* z = (y - m) / s against the warm-up's known location and scale. */
static void
test_zscore(void **state)
{
	struct baseline	b;
	const double	y[] = { 1, 2, 3, 4, 5 };	/* m 3, MAD 1 */
	double		s;

	(void)state;
	baseline_init(&b, 5);
	warm(&b, y, 5, 0.1, 0.01, 3);
	s = baseline_scale(&b, 0.01);
	assert_near(s, MAD_SIGMA, 1e-14);
	assert_near((3 + 2 * MAD_SIGMA - b.m) / s, 2, 1e-12);
	assert_near((0 - b.m) / s, -3 / MAD_SIGMA, 1e-12);
	assert_true((3 - b.m) / s == 0);
	/* With a larger floor, z shrinks accordingly. */
	s = baseline_scale(&b, 4);
	assert_near((11 - b.m) / s, 2, 1e-12);

	/* After a point within the band: the Finch update's closed form. */
	baseline_add(&b, 4, 0.1, 0.01, 3);	/* d = 1 */
	assert_near(b.m, 3.1, 1e-14);
	assert_near(b.v, 0.9 * (MAD_SIGMA * MAD_SIGMA + 0.1), 1e-14);
	s = baseline_scale(&b, 0.01);
	assert_near(s, sqrt(0.9 * (MAD_SIGMA * MAD_SIGMA + 0.1)), 1e-14);
	assert_near((5 - b.m) / s,
	    1.9 / sqrt(0.9 * (MAD_SIGMA * MAD_SIGMA + 0.1)), 1e-12);
	baseline_cleanup(&b);
}

/*
 * A constant step input without clamping: with q = 1 - a, m_n = 1 - q^n
 * and v_n = q^n (1 - q^n) (the sum of a q^(n+k-1) for k = 1..n).
 */
static void
test_finch_closed_form(void **state)
{
	struct baseline	b;
	const double	a = 0.125, q = 1 - a;
	double		qn;
	int		n;

	(void)state;
	baseline_init(&b, 1);
	baseline_add(&b, 0, a, 1e-100, 1e150);
	assert_true(b.m == 0 && b.v == 0);
	qn = 1;
	for (n = 1; n <= 200; n++) {
		baseline_add(&b, 1, a, 1e-100, 1e150);
		qn *= q;
		assert_near(b.m, 1 - qn, 1e-13);
		assert_near(b.v, qn * (1 - qn), 1e-13);
	}
	assert_int_equal(b.n, 201);
	baseline_cleanup(&b);

	/* a = 1 follows the last point, with no variance left. */
	baseline_init(&b, 1);
	baseline_add(&b, 3, 1, 1e-100, 1e150);
	baseline_add(&b, -8, 1, 1e-100, 1e150);
	assert_true(b.m == -8);
	assert_true(b.v == 0);
	baseline_cleanup(&b);
}

/* Clamping to m +- c s: above, below, at the floor. */
static void
test_winsor_clamp(void **state)
{
	struct baseline	b;
	const double	y[] = { 1, 2, 3, 4, 5 };	/* m 3, s 1.4826 */
	const double	flat[] = { 0, 0, 0 };		/* m 0, v 0 */
	const double	a = 0.2, c = 2.5, s0 = MAD_SIGMA;
	double		d;

	(void)state;
	/* Above: d = c s. */
	baseline_init(&b, 5);
	warm(&b, y, 5, a, 0.01, c);
	baseline_add(&b, 1e9, a, 0.01, c);
	d = c * s0;
	assert_near(b.m, 3 + a * d, 1e-14);
	assert_near(b.v, (1 - a) * (s0 * s0 + a * d * d), 1e-14);
	baseline_cleanup(&b);

	/* Below: d = -c s. */
	baseline_init(&b, 5);
	warm(&b, y, 5, a, 0.01, c);
	baseline_add(&b, -1e9, a, 0.01, c);
	assert_near(b.m, 3 - a * d, 1e-14);
	assert_near(b.v, (1 - a) * (s0 * s0 + a * d * d), 1e-14);
	baseline_cleanup(&b);

	/* Inside the band: not clamped, d = y - m. */
	baseline_init(&b, 5);
	warm(&b, y, 5, a, 0.01, c);
	baseline_add(&b, 3 + 0.5 * s0, a, 0.01, c);
	assert_near(b.m, 3 + a * 0.5 * s0, 1e-14);
	baseline_cleanup(&b);

	/* No spread: the clamp uses the floor. */
	baseline_init(&b, 3);
	warm(&b, flat, 3, a, 0.1, c);
	baseline_add(&b, 50, a, 0.1, c);
	d = c * 0.1;
	assert_near(b.m, a * d, 1e-14);
	assert_near(b.v, (1 - a) * a * d * d, 1e-14);
	baseline_cleanup(&b);
}

/* A long noisy series with outliers against the reference recursion. */
static void
test_update_reference(void **state)
{
	struct baseline	b;
	double		y[2000], m, v, a = 0.03, s_floor = 0.05, c = 3;
	uint64_t	r = 777;
	size_t		i, w = 25;

	(void)state;
	for (i = 0; i < 2000; i++) {
		y[i] = sin((double)i / 50) + (rnd_unit(&r) - 0.5) * 0.4;
		if (rnd(&r) % 37 == 0)		/* about 3% spikes */
			y[i] += (rnd(&r) % 2 ? 1 : -1) *
			    (10 + rnd_unit(&r) * 1e3);
	}
	ref_warmup(y, w, &m, &v);
	baseline_init(&b, (uint32_t)w);
	warm(&b, y, w, a, s_floor, c);
	assert_near(b.m, m, 1e-15);
	assert_near(b.v, v, 1e-13);
	for (i = w; i < 2000; i++) {
		ref_update(&m, &v, y[i], a, s_floor, c);
		baseline_add(&b, y[i], a, s_floor, c);
		assert_near(b.m, m, 1e-9);
		assert_near(b.v, v, 1e-9);
	}
	/* The spikes did not carry the location off the sine's range. */
	assert_true(fabs(b.m) < 1.5);
	baseline_cleanup(&b);
}

/*
 * One outlier after the warm-up moves m by a c s at most; the z of normal
 * points stays small.
 */
static void
test_outlier_resistance(void **state)
{
	struct baseline	b;
	const double	y[] = { 9, 11, 9, 11, 9, 11, 10 }; /* m 10, MAD 1 */
	const double	a = 0.05, c = 3;
	double		m0, s0, plain;

	(void)state;
	baseline_init(&b, 7);
	warm(&b, y, 7, a, 0.01, c);
	m0 = b.m;
	s0 = baseline_scale(&b, 0.01);
	assert_true(m0 == 10);
	assert_near(s0, MAD_SIGMA, 1e-14);
	baseline_add(&b, 1e6, a, 0.01, c);
	assert_near(b.m - m0, a * c * s0, 1e-12);
	plain = m0 + a * (1e6 - m0);	/* what an unclamped mean would do */
	assert_true(plain > 4e4);
	/* A normal point right after is no outlier. */
	assert_true(fabs((10 - b.m) / baseline_scale(&b, 0.01)) < 0.5);
	assert_true(fabs((11 - b.m) / baseline_scale(&b, 0.01)) < 1);
	/* And the location recovers towards 10 as normal points come. */
	{
		int	i;

		for (i = 0; i < 200; i++)
			baseline_add(&b, 10, a, 0.01, c);
	}
	assert_true(fabs(b.m - 10) < 1e-4);
	baseline_cleanup(&b);
}

/* reset: a new warm-up over a new w, forgetting the old series. */
static void
test_reset(void **state)
{
	struct baseline	b;
	int		i;

	(void)state;
	/* Mid warm-up: the buffer is dropped (valgrind sees no leak). */
	baseline_init(&b, 10);
	for (i = 0; i < 5; i++)
		baseline_add(&b, 1000 + i, 0.1, 0.01, 3);
	baseline_reset(&b, 3);
	assert_int_equal(b.w, 3);
	assert_int_equal(b.n, 0);
	assert_null(b.buf);
	assert_false(baseline_is_ready(&b));
	baseline_add(&b, 1, 0.1, 0.01, 3);
	baseline_add(&b, 7, 0.1, 0.01, 3);
	assert_false(baseline_is_ready(&b));
	baseline_add(&b, 4, 0.1, 0.01, 3);
	assert_true(baseline_is_ready(&b));
	assert_true(b.m == 4);		/* nothing of the 1000s */
	assert_near(baseline_scale(&b, 0.01), 3 * MAD_SIGMA, 1e-14);

	/* Once ready: back to warming up, m and v cleared. */
	baseline_reset(&b, 2);
	assert_false(baseline_is_ready(&b));
	assert_true(b.m == 0 && b.v == 0);
	baseline_add(&b, -4, 0.1, 0.01, 3);
	baseline_add(&b, -2, 0.1, 0.01, 3);
	assert_true(baseline_is_ready(&b));
	assert_true(b.m == -3);
	assert_near(baseline_scale(&b, 0.01), MAD_SIGMA, 1e-14);
	baseline_reset(&b, 0);
	assert_int_equal(b.w, 1);
	baseline_cleanup(&b);
}

/* n saturates instead of wrapping (which would restart the warm-up). */
static void
test_count_saturates(void **state)
{
	struct baseline	b;
	struct ewmean	e = { 0, UINT32_MAX - 1 };

	(void)state;
	baseline_init(&b, 1);
	baseline_add(&b, 1, 0.5, 0.01, 3);
	b.n = UINT32_MAX - 1;
	baseline_add(&b, 1, 0.5, 0.01, 3);
	assert_int_equal(b.n, UINT32_MAX);
	baseline_add(&b, 1, 0.5, 0.01, 3);
	assert_int_equal(b.n, UINT32_MAX);
	assert_true(baseline_is_ready(&b));
	assert_null(b.buf);
	baseline_cleanup(&b);

	ewmean_add(&e, 2, 0.5);
	ewmean_add(&e, 2, 0.5);
	assert_int_equal(e.n, UINT32_MAX);
	assert_near(e.p, 1.5, 1e-15);		/* 0 -> 1 -> 1.5 at weight a */
}

/* ---- CUSUM -------------------------------------------------------------- */

/* Hand-worked steps: accumulate, cap, clamp at 0, onset, reset. */
static void
test_cusum_known(void **state)
{
	struct cusum	cs;

	(void)state;
	cs.s = 99;
	cs.onset = 5;
	cusum_reset(&cs);
	assert_true(cs.s == 0);
	assert_int_equal(cs.onset, -1);

	assert_true(cusum_add(&cs, 0.5, 1, 4, 100) == 0);	/* z < k */
	assert_int_equal(cs.onset, -1);
	assert_true(cusum_add(&cs, 1, 1, 4, 101) == 0);		/* z == k */
	assert_int_equal(cs.onset, -1);
	assert_true(cusum_add(&cs, 3, 1, 4, 102) == 2);		/* leaves 0 */
	assert_int_equal(cs.onset, 102);
	assert_true(cusum_add(&cs, 2.5, 1, 4, 103) == 3.5);
	assert_true(cusum_add(&cs, 1e9, 1, 4, 104) == 6.5);	/* z capped */
	assert_true(cusum_add(&cs, INFINITY, 1, 4, 105) == 9.5);
	assert_true(cusum_add(&cs, 0, 1, 4, 106) == 8.5);	/* drifts */
	assert_int_equal(cs.onset, 102);		/* still the start */
	assert_true(cs.s == 8.5);
	assert_true(cusum_add(&cs, -7.5, 1, 4, 107) == 0);	/* exactly 0 */
	assert_int_equal(cs.onset, -1);
	assert_true(cs.s == 0);
	assert_true(cusum_add(&cs, -1e9, 1, 4, 108) == 0);	/* not < 0 */
	assert_true(cs.s == 0);
	assert_true(cusum_add(&cs, 1.25, 1, 4, 109) == 0.25);	/* new onset */
	assert_int_equal(cs.onset, 109);
	cusum_reset(&cs);
	assert_true(cs.s == 0);
	assert_int_equal(cs.onset, -1);
	assert_true(cusum_add(&cs, 2, 1, 4, 110) == 1);
	assert_int_equal(cs.onset, 110);

	/* k = 0 and a cap below z: S grows by the cap each step. */
	cusum_reset(&cs);
	assert_true(cusum_add(&cs, 10, 0, 2, 1) == 2);
	assert_true(cusum_add(&cs, 10, 0, 2, 2) == 4);
	assert_int_equal(cs.onset, 1);
}

/* A random z stream against S <- max(0, S + min(z, cap) - k). */
static void
test_cusum_reference(void **state)
{
	struct cusum	cs;
	double		ref = 0, z, got, k = 0.7, cap = 3;
	int64_t		ref_onset = -1, step;
	uint64_t	r = 4242;
	int		positives = 0, zeros = 0;

	(void)state;
	cusum_reset(&cs);
	for (step = 0; step < 5000; step++) {
		z = (rnd_unit(&r) - 0.45) * 8;
		if (rnd(&r) % 50 == 0)
			z = 100;		/* beyond the cap */
		got = cusum_add(&cs, z, k, cap, step);
		if (ref == 0 && (z < cap ? z : cap) - k > 0)
			ref_onset = step;
		ref = ref + (z < cap ? z : cap) - k;
		if (ref <= 0) {
			ref = 0;
			ref_onset = -1;
		}
		assert_near(got, ref, 1e-9);
		assert_true(got >= 0);
		assert_true(cs.s == got);
		assert_true(cs.onset == ref_onset);
		if (got > 0)
			positives++;
		else
			zeros++;
	}
	/* The stream exercised both regimes. */
	assert_true(positives > 100);
	assert_true(zeros > 100);
}

/* ---- EW mean ------------------------------------------------------------ */

/* The plain mean of the first 1/a points, then geometric decay at a. */
static void
test_ewmean_closed_form(void **state)
{
	struct ewmean	e;
	const double	a = 0.1;	/* 1/a = 10 */
	double		sum = 0, mu, want;
	int		i;

	(void)state;
	/* The initial p is irrelevant: the first weight is 1. */
	e.p = 12345;
	e.n = 0;
	for (i = 1; i <= 10; i++) {
		ewmean_add(&e, (double)(i * i), a);
		sum += (double)(i * i);
		assert_int_equal(e.n, (uint32_t)i);
		assert_near(e.p, sum / i, 1e-13);
	}
	mu = sum / 10;			/* 38.5 */
	assert_near(mu, 38.5, 0);
	/* Then a constant x: p_k = x + (mu - x)(1 - a)^k. */
	for (i = 1; i <= 100; i++) {
		ewmean_add(&e, -2, a);
		want = -2 + (mu + 2) * pow(1 - a, i);
		assert_near(e.p, want, 1e-12);
	}
	assert_int_equal(e.n, 110);

	/* a = 1: the last value. */
	e.p = 0;
	e.n = 0;
	ewmean_add(&e, 3, 1);
	ewmean_add(&e, -9, 1);
	assert_true(e.p == -9);

	/* a = 0: the running mean forever. */
	e.p = 0;
	e.n = 0;
	sum = 0;
	for (i = 0; i < 1000; i++) {
		ewmean_add(&e, (double)(i % 7), 0);
		sum += (double)(i % 7);
	}
	assert_near(e.p, sum / 1000, 1e-12);
}

/* ---- ln ----------------------------------------------------------------- */

static void
test_ln_floor(void **state)
{
	(void)state;
	assert_true(baseline_ln(1) == 0);
	assert_near(baseline_ln(M_E), 1, 1e-15);
	assert_near(baseline_ln(1e-20), -20 * log(10), 1e-14);
	assert_true(baseline_ln(BASELINE_TINY) == log(BASELINE_TINY));
	assert_true(baseline_ln(0) == log(BASELINE_TINY));
	assert_true(baseline_ln(-0.0) == log(BASELINE_TINY));
	assert_true(baseline_ln(-5) == log(BASELINE_TINY));
	assert_true(baseline_ln(1e-300) == log(BASELINE_TINY));
	assert_true(baseline_ln(-INFINITY) == log(BASELINE_TINY));
	assert_true(baseline_ln(NAN) == log(BASELINE_TINY));
	assert_true(isinf(baseline_ln(INFINITY)) && baseline_ln(INFINITY) > 0);
	assert_true(isfinite(log(BASELINE_TINY)));
	assert_near(log(BASELINE_TINY), -69.07755278982137, 1e-14);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select_every_k),
		cmocka_unit_test(test_median_known),
		cmocka_unit_test(test_warmup_readiness),
		cmocka_unit_test(test_warmup_known),
		cmocka_unit_test(test_warmup_reference),
		cmocka_unit_test(test_warmup_outlier),
		cmocka_unit_test(test_zscore),
		cmocka_unit_test(test_finch_closed_form),
		cmocka_unit_test(test_winsor_clamp),
		cmocka_unit_test(test_update_reference),
		cmocka_unit_test(test_outlier_resistance),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_count_saturates),
		cmocka_unit_test(test_cusum_known),
		cmocka_unit_test(test_cusum_reference),
		cmocka_unit_test(test_ewmean_closed_form),
		cmocka_unit_test(test_ln_floor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

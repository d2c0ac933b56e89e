/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for numfmt: its text of a double is byte for byte what
 * Jansson's json_dumps() writes at JSON_REAL_PRECISION(17), and reads
 * back to the same double, over fixed cases (zero, layouts around the
 * exponents where %g switches, ties rounded to even, carries, extremes)
 * and millions of random float32 and float64 values from their bits:
 * both the integer path and the snprintf one.
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
#include <jansson.h>

#include "numfmt.h"

static uint64_t	rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* v must be written as Jansson writes it, and read back to v. */
static void
check(double v)
{
	char	 buf[NUMFMT_MAX + 8];
	char	*want;
	json_t	*j;
	size_t	 len;

	memset(buf, 'x', sizeof buf);
	len = numfmt_double(buf, v);
	assert_true(len < NUMFMT_MAX);
	assert_int_equal(strlen(buf), len);
	j = json_real(v);
	want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT |
	    JSON_REAL_PRECISION(17));
	if (strcmp(buf, want) != 0)
		fail_msg("%a: numfmt wrote %s, Jansson %s", v, buf, want);
	if (strtod(buf, NULL) != v || signbit(strtod(buf, NULL)) != signbit(v))
		fail_msg("%a: %s does not read back", v, buf);
	free(want);
	json_decref(j);
}

static void
test_fixed(void **state)
{
	static const double cases[] = {
		0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 0.2, 0.3, 1.5, 2.0, 10.0,
		100.0, 123.456, 1e-4, 1e-5, 9.999e-5, 0.0001234, 1e16, 1e17,
		9e16, 99999999999999999.0, 123456789012345678.0,
		1e100, 1e-100, 1e300, 4.9e-324, 2.2250738585072014e-308,
		1.7976931348623157e308, 3.4028234663852886e38,
		1.1754943508222875e-38, 1.401298464324817e-45,
		0.30000001192092896, 16777216.0, 16777217.0, 8388607.5,
		4294967296.0, 9007199254740993.0, 1e15, 1e-7, 5e-8,
	};
	size_t	i;
	int	e;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		check(cases[i]);
		check(-cases[i]);
		if (isfinite((float)cases[i]))
			check((float)cases[i]);
	}
	/* Every power of two, both paths. */
	for (e = -1074; e <= 1023; e++)
		check(ldexp(1.0, e));
	/* Around the exponents where %g changes layout. */
	for (e = -8; e <= 20; e++) {
		check(pow(10.0, e));
		check(nextafter(pow(10.0, e), 0));
		check(nextafter(pow(10.0, e), INFINITY));
		check((float)pow(10.0, e));
	}
}

/*
 * m * 2^-18 with m odd has 18 exact decimals ending in 5: when it has
 * 18 significant digits the 17th is a tie, rounded to even.
 */
static void
test_ties(void **state)
{
	uint64_t	m;
	int		k;

	(void)state;
	for (m = 100001; m < 262144; m += 2 * 997)
		check(ldexp((double)m, -18));
	for (k = 18; k <= 40; k++)
		for (m = 1; m < 1u << 24; m = m * 3 + 1)
			check(ldexp((double)(m | 1), -k));
	/* 17 nines round up into a carry: 0.99999999999999999... */
	check(nextafter(1.0, 0));
	check(nextafter(10.0, 0));
	check(nextafter(1e-5, 0));
}

static void
test_random_float32(void **state)
{
	uint32_t	bits;
	float		f;
	int		i;

	(void)state;
	for (i = 0; i < 1000000; i++) {
		bits = (uint32_t)rnd();
		memcpy(&f, &bits, sizeof f);
		if (isfinite(f))
			check(f);
	}
	/* Gradient norms: float32 in [1e-8, 1e4]. */
	for (i = 0; i < 500000; i++)
		check((float)exp(((double)(rnd() % 1000000) / 1e6) * 27.6 -
		    18.4));
}

static void
test_random_float64(void **state)
{
	uint64_t	bits;
	double		d;
	int		i;

	(void)state;
	for (i = 0; i < 300000; i++) {
		bits = rnd();
		memcpy(&d, &bits, sizeof d);
		if (isfinite(d))
			check(d);
		/* Doubles with few mantissa bits take the integer path. */
		bits &= ~((1ULL << (rnd() % 52)) - 1);
		memcpy(&d, &bits, sizeof d);
		if (isfinite(d))
			check(d);
	}
}

static void
test_nonfinite(void **state)
{
	char	buf[NUMFMT_MAX];

	(void)state;
	assert_int_equal(numfmt_double(buf, NAN), 4);
	assert_string_equal(buf, "null");
	assert_int_equal(numfmt_double(buf, -INFINITY), 4);
	assert_string_equal(buf, "null");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_random_float32),
		cmocka_unit_test(test_random_float64),
		cmocka_unit_test(test_nonfinite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for numscan: the token grammar (what it takes, where it
 * stops, what it leaves to Jansson), and a differential test of the
 * conversion against strtod/strtoll, bit for bit, over random numbers
 * written the way clients write them (%.17g, %.9g, %.6e, ...), random
 * digit strings, and values on halfway points between doubles.
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

#include "numscan.h"

/* Scan s; the kind, or NUMSCAN_NONE when the token is not all of s. */
static enum numscan_kind
scan_all(const char *s, int64_t *iv, double *dv)
{
	const char		*end = s + strlen(s), *stop = NULL;
	enum numscan_kind	 k;

	k = numscan(s, end, &stop, iv, dv);
	return stop == end ? k : NUMSCAN_NONE;
}

/* s must convert to exactly what strtod gives (bit for bit). */
static void
check_real(const char *s)
{
	int64_t	iv;
	double	dv = 0, want;

	if (scan_all(s, &iv, &dv) != NUMSCAN_REAL)
		fail_msg("\"%s\": not scanned as a real", s);
	want = strtod(s, NULL);
	if (memcmp(&dv, &want, sizeof dv) != 0)
		fail_msg("\"%s\": %.17g, strtod %.17g", s, dv, want);
}

static uint64_t	rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void
test_grammar(void **state)
{
	static const char *const bad[] = {
		"", "-", "+1", "01", "-01", "1.", ".5", "1.e5", "1e", "1e+",
		"-e5", "0x10", "Infinity", "NaN", "--1", "1234567890123456789",
		"-1234567890123456789", "1e400", "-1e400",
		"1.000000000000000000000000000000000000000000000000000000000000001",
	};
	const char	*stop;
	int64_t		 iv = 0;
	double		 dv = 0;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (scan_all(bad[i], &iv, &dv) != NUMSCAN_NONE)
			fail_msg("\"%s\" accepted", bad[i]);

	assert_int_equal(scan_all("0", &iv, &dv), NUMSCAN_INT);
	assert_int_equal(iv, 0);
	assert_int_equal(scan_all("-0", &iv, &dv), NUMSCAN_INT);
	assert_int_equal(iv, 0);
	assert_int_equal(scan_all("123456789012345678", &iv, &dv),
	    NUMSCAN_INT);
	assert_int_equal(iv, 123456789012345678LL);
	assert_int_equal(scan_all("-42", &iv, &dv), NUMSCAN_INT);
	assert_int_equal(iv, -42);
	assert_int_equal(scan_all("-0.0", &iv, &dv), NUMSCAN_REAL);
	assert_true(dv == 0 && signbit(dv));
	assert_int_equal(scan_all("0e5", &iv, &dv), NUMSCAN_REAL);
	assert_true(dv == 0 && !signbit(dv));
	assert_int_equal(scan_all("1E2", &iv, &dv), NUMSCAN_REAL);
	assert_true(dv == 100.0);
	assert_int_equal(scan_all("1e-400", &iv, &dv), NUMSCAN_REAL);
	assert_true(dv == 0);	/* underflow is no error for Jansson */

	/* The token ends where the grammar does; the caller judges the rest. */
	assert_int_equal(numscan("12,3", "12,3" + 4, &stop, &iv, &dv),
	    NUMSCAN_INT);
	assert_int_equal(*stop, ',');
	assert_int_equal(numscan("1.5]", "1.5]" + 4, &stop, &iv, &dv),
	    NUMSCAN_REAL);
	assert_int_equal(*stop, ']');
	/* end bounds the scan: "12" of "123". */
	assert_int_equal(numscan("123", "123" + 2, &stop, &iv, &dv),
	    NUMSCAN_INT);
	assert_int_equal(iv, 12);
}

static void
test_edges(void **state)
{
	static const char *const edges[] = {
		"0.1", "0.2", "0.3", "1.5", "-2.5e-7", "1e22", "1e23", "1e-22",
		"1e-23", "9007199254740993.0", "9007199254740992.0",
		"9007199254740993e5", "1.7976931348623157e308",
		"2.2250738585072014e-308", "4.9406564584124654e-324",
		"0.12345678901234567", "1234567890123456789.0",
		"12345678901234567890.5", "0.000000000000000000000000001",
		"1e27", "1e-27", "1e28", "1e-28", "9999999999999999999e27",
		"1.0000000000000002", "0.99999999999999989",
		"2.225073858507201e-308", "123456789e-5", "3.14159265358979",
		"6.02214076e23", "1.602176634e-19",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof edges / sizeof edges[0]; i++)
		check_real(edges[i]);
}

/* Random doubles written the way clients write them. */
static void
test_printed_doubles(void **state)
{
	static const struct {
		char	conv;
		int	prec;
	} formats[] = {
		{ 'g', 17 }, { 'g', 16 }, { 'g', 15 }, { 'g', 9 }, { 'g', 6 },
		{ 'e', 3 }, { 'e', 12 }, { 'f', 10 },
	};
	char		buf[512];
	uint64_t	bits;
	double		d;
	size_t		i, f;

	(void)state;
	for (i = 0; i < 400000; i++) {
		if (i % 2 == 0) {
			/* log-uniform over the range gradient norms live in */
			d = exp(((double)(rng() % 1000000) / 1e6 - 0.5) * 80);
			if (rng() % 2)
				d = -d;
			d = (i % 4 == 0) ? (double)(float)d : d;
		} else {
			do {
				bits = rng();
				memcpy(&d, &bits, sizeof d);
			} while (!isfinite(d));
		}
		for (f = 0; f < sizeof formats / sizeof formats[0]; f++) {
			if (formats[f].conv == 'g')
				snprintf(buf, sizeof buf, "%.*g",
				    formats[f].prec, d);
			else if (formats[f].conv == 'e')
				snprintf(buf, sizeof buf, "%.*e",
				    formats[f].prec, d);
			else
				snprintf(buf, sizeof buf, "%.*f",
				    formats[f].prec, d);
			if (strchr(buf, 'n') != NULL || strchr(buf, 'i') != NULL)
				continue;
			if (strlen(buf) > NUMSCAN_TOKEN_MAX)
				continue;
			if (strchr(buf, '.') == NULL &&
			    strchr(buf, 'e') == NULL)
				continue;	/* an integer token */
			check_real(buf);
		}
	}
}

/* Random digit strings: many digits, leading zeros, any exponent. */
static void
test_random_digits(void **state)
{
	char	buf[NUMSCAN_TOKEN_MAX + 1];
	size_t	i, n, j, len;

	(void)state;
	for (i = 0; i < 400000; i++) {
		len = 0;
		if (rng() % 3 == 0)
			buf[len++] = '-';
		n = 1 + rng() % 22;
		buf[len++] = (char)('1' + rng() % 9);
		for (j = 1; j < n; j++)
			buf[len++] = (char)('0' + rng() % 10);
		if (rng() % 4 != 0) {
			/* move the point in, or lead with zeros */
			if (rng() % 3 == 0) {
				memmove(buf + len - n + 2, buf + len - n, n);
				buf[len - n] = '0';
				buf[len - n + 1] = '.';
				len += 2;
			} else if (n > 1) {
				j = 1 + rng() % (n - 1);
				memmove(buf + len - n + j + 1,
				    buf + len - n + j, n - j);
				buf[len - n + j] = '.';
				len++;
			}
		}
		len += (size_t)snprintf(buf + len, sizeof buf - len, "e%d",
		    (int)(rng() % 70) - 35);
		buf[len] = '\0';
		check_real(buf);
	}
}

/*
 * Decimal strings exactly halfway between two adjacent doubles (and
 * one unit either side in the last digit), where double rounding in a
 * careless conversion goes wrong.
 */
static void
test_halfway(void **state)
{
	char		buf[80];
	double		d, next;
	long double	mid;
	size_t		i;

	(void)state;
	for (i = 0; i < 200000; i++) {
		d = exp(((double)(rng() % 1000000) / 1e6 - 0.5) * 60);
		next = nextafter(d, INFINITY);
		mid = ((long double)d + (long double)next) / 2;
		snprintf(buf, sizeof buf, "%.18Lg", mid);
		if (strlen(buf) <= NUMSCAN_TOKEN_MAX &&
		    (strchr(buf, '.') != NULL || strchr(buf, 'e') != NULL))
			check_real(buf);
		snprintf(buf, sizeof buf, "%.19Le", mid);
		check_real(buf);
	}
}

/*
 * Fractions of every length around the eight-digits-at-once path, with
 * leading zeros, each followed by a byte that is no digit (some that
 * the SWAR test must not take for one) or cut by end: the value and
 * where the token stops.
 */
static void
test_fraction_runs(void **state)
{
	static const char	 after[] = { ',', ']', ' ', '}', '/', ':',
	    '\x80', '\xb9', '\xff', '\0' };
	char			 buf[96], want_buf[96];
	const char		*stop;
	int64_t			 iv;
	double			 dv, want;
	size_t			 i, j, len, zeros, digits, tok;

	(void)state;
	for (i = 0; i < 200000; i++) {
		len = 0;
		if (rng() % 4 == 0)
			buf[len++] = '-';
		buf[len++] = rng() % 3 == 0 ? (char)('1' + rng() % 9) : '0';
		buf[len++] = '.';
		zeros = rng() % 4 == 0 ? rng() % 12 : 0;
		for (j = 0; j < zeros; j++)
			buf[len++] = '0';
		digits = 1 + rng() % 26;
		for (j = 0; j < digits; j++)
			buf[len++] = (char)('0' + rng() % 10);
		tok = len;
		/* Then a byte that ends it, and digits the scan must not see. */
		buf[len++] = after[rng() % sizeof after];
		for (j = 0; j < 9; j++)
			buf[len++] = (char)('0' + rng() % 10);
		memcpy(want_buf, buf, tok);
		want_buf[tok] = '\0';
		want = strtod(want_buf, NULL);
		/* Half the time end cuts the buffer right after the token. */
		if (numscan(buf, buf + (rng() % 2 ? tok : len), &stop, &iv,
		    &dv) != NUMSCAN_REAL)
			fail_msg("\"%s\": not scanned as a real", want_buf);
		if (stop != buf + tok)
			fail_msg("\"%s\": stopped after %td bytes, not %zu",
			    want_buf, stop - buf, tok);
		if (memcmp(&dv, &want, sizeof dv) != 0)
			fail_msg("\"%s\": %.17g, strtod %.17g", want_buf, dv,
			    want);
	}
}

static void
test_integers(void **state)
{
	char	buf[32];
	int64_t	iv = 0, want;
	double	dv;
	size_t	i;

	(void)state;
	for (i = 0; i < 200000; i++) {
		want = (int64_t)(rng() % 1000000000000000000ULL);
		want >>= rng() % 60;
		if (rng() % 2)
			want = -want;
		snprintf(buf, sizeof buf, "%lld", (long long)want);
		if (scan_all(buf, &iv, &dv) != NUMSCAN_INT || iv != want)
			fail_msg("\"%s\": %lld", buf, (long long)iv);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_printed_doubles),
		cmocka_unit_test(test_random_digits),
		cmocka_unit_test(test_halfway),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_fraction_runs),
	};

	return cmocka_run_group_tests_name("numscan", tests, NULL, NULL);
}

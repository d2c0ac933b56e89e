/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of chunk.c: bit-exact round trips of special values and
 * realistic series through both decoders (chunk_decode() and
 * chunk_next(), which must agree), hand-assembled blobs that pin the
 * format of chunk.h, the header's checks one by one, and damaged blobs:
 * every truncation, trailing bytes, and many random bit and byte
 * flips.  Damaged blobs are copied into buffers of their exact size, so
 * that a sanitizer or valgrind catches any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chunk.h"

static uint64_t	rng = 0x2545f4914f6cdd1dULL;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double
uniform(void)
{
	return ((next_rand() >> 11) + 0.5) / 9007199254740992.0;
}

static double
gauss(void)
{
	return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
}

static double
from_bits(uint64_t b)
{
	double	v;

	memcpy(&v, &b, sizeof v);
	return v;
}

static uint64_t
to_bits(double v)
{
	uint64_t	b;

	memcpy(&b, &v, sizeof b);
	return b;
}

/* A float32 pattern widened by the hardware, as PyTorch does. */
static double
widen(uint32_t f)
{
	float	x;

	memcpy(&x, &f, sizeof x);
	return (double)x;
}

/* Encode into a fresh buffer; fails the test if nothing was written. */
static void
encode(struct chunk_buf *b, const int64_t *steps, const double *vals,
    size_t n)
{
	size_t	len;

	chunk_buf_init(b);
	len = chunk_encode(b, steps, vals, n);
	assert_true(len > 0);
	assert_int_equal(len, b->len);
}

/* Copy a blob into a buffer of exactly its size (NULL for 0 bytes). */
static unsigned char *
exact_copy(const unsigned char *blob, size_t len)
{
	unsigned char	*p;

	if (len == 0)
		return NULL;
	p = malloc(len);
	assert_non_null(p);
	memcpy(p, blob, len);
	return p;
}

/*
 * Both decoders over blob.  Returns 0 with the points in new arrays
 * *stepsp and *valsp (unless NULL) and their count in *n, or -1.  The
 * decoders must agree on the outcome and on every point returned, and
 * a failure must come with a cause.
 */
static int
decode_both(const unsigned char *blob, size_t len, int64_t **stepsp,
    double **valsp, size_t *n)
{
	struct chunk_info	 info;
	struct chunk_reader	 r;
	char			*cause = NULL;
	int64_t			*steps, s;
	double			*vals, v;
	size_t			 i, cap, got = 0;
	int			 rc, rc2;

	cap = chunk_info(blob, len, &info, NULL) == 0 ? info.n : 1;
	steps = calloc(cap, sizeof *steps);
	vals = calloc(cap, sizeof *vals);
	assert_true(steps != NULL && vals != NULL);
	rc = chunk_decode(blob, len, steps, vals, cap, &got, &cause);
	if (rc == -1) {
		assert_non_null(cause);
		assert_true(strncmp(cause, "chunk: ", 7) == 0);
		free(cause);
		cause = NULL;
	} else
		assert_null(cause);
	if (chunk_reader_init(&r, blob, len, &cause) == -1) {
		assert_int_equal(rc, -1);
		assert_non_null(cause);
		free(cause);
		goto done;
	}
	for (i = 0; (rc2 = chunk_next(&r, &s, &v)) == 1; i++) {
		assert_true(i < r.info.n);
		if (rc == 0) {
			assert_true(s == steps[i]);
			assert_true(to_bits(v) == to_bits(vals[i]));
		}
	}
	if (rc == 0) {
		assert_int_equal(rc2, 0);
		assert_int_equal(i, got);
		assert_null(chunk_reader_error(&r));
		assert_int_equal(chunk_next(&r, &s, &v), 0);
	} else {
		assert_int_equal(rc2, -1);
		assert_non_null(chunk_reader_error(&r));
		assert_int_equal(chunk_next(&r, &s, &v), -1);
	}

done:
	if (rc == 0 && n != NULL)
		*n = got;
	if (rc == 0 && stepsp != NULL)
		*stepsp = steps;
	else
		free(steps);
	if (rc == 0 && valsp != NULL)
		*valsp = vals;
	else
		free(vals);
	return rc;
}

/* Round-trip bit for bit; returns the blob's flags and frees it. */
static unsigned int
roundtrip(const int64_t *steps, const double *vals, size_t n,
    size_t *bytes)
{
	struct chunk_buf	 b;
	struct chunk_info	 info;
	unsigned char		*copy;
	int64_t			*s2;
	double			*v2;
	size_t			 i, got = 0;

	encode(&b, steps, vals, n);
	assert_int_equal(chunk_info(b.data, b.len, &info, NULL), 0);
	assert_int_equal(info.n, n);
	assert_true(info.first_step == steps[0]);
	assert_true(info.last_step == steps[n - 1]);
	copy = exact_copy(b.data, b.len);
	assert_int_equal(decode_both(copy, b.len, &s2, &v2, &got), 0);
	assert_int_equal(got, n);
	for (i = 0; i < n; i++) {
		if (s2[i] != steps[i] || to_bits(v2[i]) != to_bits(vals[i]))
			fail_msg("point %zu: step %lld value %016llx came back "
			    "as %lld %016llx", i, (long long)steps[i],
			    (unsigned long long)to_bits(vals[i]),
			    (long long)s2[i],
			    (unsigned long long)to_bits(v2[i]));
	}
	if (bytes != NULL)
		*bytes = b.len;
	free(copy);
	free(s2);
	free(v2);
	chunk_buf_cleanup(&b);
	return info.flags;
}

static void
consecutive(int64_t *steps, size_t n, int64_t first)
{
	size_t	i;

	for (i = 0; i < n; i++)
		steps[i] = first + (int64_t)i;
}

static void
test_special_f64(void **state)
{
	static const uint64_t	bits[] = {
		0x0000000000000000ULL,	/* 0.0 */
		0x8000000000000000ULL,	/* -0.0 */
		0x3ff0000000000000ULL,	/* 1.0 */
		0x7fefffffffffffffULL,	/* DBL_MAX */
		0xffefffffffffffffULL,	/* -DBL_MAX */
		0x0010000000000000ULL,	/* DBL_MIN */
		0x0000000000000001ULL,	/* the smallest denormal */
		0x800fffffffffffffULL,	/* the largest negative denormal */
		0x7ff0000000000000ULL,	/* +Inf */
		0xfff0000000000000ULL,	/* -Inf */
		0x7ff8000000000000ULL,	/* the quiet NaN */
		0xfff8000000000000ULL,	/* x86's default NaN */
		0x7ff8000000000123ULL,	/* a NaN with a payload */
		0x7ff0000000000001ULL,	/* a signaling NaN */
		0xfff7ffffffffffffULL,	/* a negative signaling NaN */
		0x7fffffffffffffffULL,
		0x3fd5555555555555ULL,	/* 1/3 */
		0x400921fb54442d18ULL,	/* pi */
		0x3fd5555555555555ULL,	/* a repeat */
		0x0000000000000000ULL,
	};
	enum { N = sizeof bits / sizeof bits[0] };
	int64_t			steps[N];
	double			vals[N];
	size_t			i, k;

	(void)state;
	consecutive(steps, N, 0);
	for (i = 0; i < N; i++)
		vals[i] = from_bits(bits[i]);
	assert_int_equal(roundtrip(steps, vals, N, NULL) & CHUNK_F32, 0);
	/* Every value alone, and every pair in both orders. */
	for (i = 0; i < N; i++) {
		roundtrip(steps, vals + i, 1, NULL);
		for (k = 0; k < N; k++) {
			double	pair[2] = { vals[i], vals[k] };

			roundtrip(steps, pair, 2, NULL);
		}
	}
}

static void
test_special_f32(void **state)
{
	static const uint32_t	fbits[] = {
		0x00000000, 0x80000000,	/* +-0 */
		0x3f800000, 0x3fc00000,	/* 1, 1.5 */
		0x7f7fffff, 0xff7fffff,	/* +-FLT_MAX */
		0x00800000,		/* FLT_MIN */
		0x00000001, 0x807fffff,	/* denormals */
		0x7f800000, 0xff800000,	/* +-Inf */
		0x7fc00000, 0xffc00000,	/* quiet NaNs */
		0x7fc00123,		/* a NaN with a payload */
		0x3dcccccd,		/* 0.1f */
	};
	enum { N = sizeof fbits / sizeof fbits[0] };
	int64_t			steps[N + 2];
	double			vals[N + 2];
	size_t			i;

	(void)state;
	consecutive(steps, N + 2, -3);
	for (i = 0; i < N; i++)
		vals[i] = widen(fbits[i]);
	assert_true(to_bits(vals[13]) == 0x7ff8002460000000ULL);
	/* Signaling NaNs as a double, but whose low 29 bits are clear. */
	vals[N] = from_bits(0x7ff0000020000000ULL);
	vals[N + 1] = from_bits(0xfff7ffffe0000000ULL);
	assert_int_equal(roundtrip(steps, vals, N + 2, NULL) & CHUNK_F32,
	    CHUNK_F32);
	for (i = 0; i < N + 2; i++)
		assert_int_equal(roundtrip(steps, vals + i, 1, NULL) &
		    CHUNK_F32, CHUNK_F32);
}

/* One value that is no widened float32 makes the chunk a float64 one. */
static void
test_f32_spoilers(void **state)
{
	static const uint64_t	spoil[] = {
		0x7ff8000000000123ULL,	/* NaN payload in the low bits */
		0x7ff0000000000001ULL,	/* signaling NaN, low payload */
		0xfff8000010000000ULL,	/* bit 28 of the payload */
		0x0000000000000001ULL,	/* a double denormal */
		0x3fb999999999999aULL,	/* 0.1 */
		0x47f0000000000000ULL,	/* 2^128: over FLT_MAX */
		0x7fefffffffffffffULL,	/* DBL_MAX */
		0x3690000000000000ULL,	/* 2^-150: under any float */
	};
	int64_t			steps[64];
	double			vals[64];
	size_t			i, k;

	(void)state;
	consecutive(steps, 64, 100);
	for (k = 0; k < sizeof spoil / sizeof spoil[0]; k++) {
		for (i = 0; i < 64; i++)
			vals[i] = (float)(1 + 0.25 * gauss());
		vals[k * 7 % 64] = from_bits(spoil[k]);
		assert_int_equal(roundtrip(steps, vals, 64, NULL) & CHUNK_F32,
		    0);
	}
	/* 2^-150 is no float, 2^-149 is the smallest. */
	for (i = 0; i < 64; i++)
		vals[i] = (float)(1 + 0.25 * gauss());
	vals[5] = ldexp(1, -149);
	assert_int_equal(roundtrip(steps, vals, 64, NULL) & CHUNK_F32,
	    CHUNK_F32);
}

/* Every float32 the hardware widens, NaNs included, stays float32. */
static void
test_widened_floats(void **state)
{
	int64_t		steps[256];
	double		vals[256];
	size_t		i, r;
	uint32_t	f;

	(void)state;
	consecutive(steps, 256, 0);
	for (r = 0; r < 200; r++) {
		for (i = 0; i < 256; i++) {
			f = (uint32_t)next_rand();
			if (i % 3 == 0)	/* NaNs and infinities, often */
				f |= 0x7f800000;
			vals[i] = widen(f);
		}
		assert_int_equal(roundtrip(steps, vals, 256, NULL) &
		    CHUNK_F32, CHUNK_F32);
	}
}

static void
test_one_point(void **state)
{
	static const int64_t	firsts[] = { INT64_MIN, INT64_MIN + 1, -1,
				    0, 1, 63, 64, 1LL << 40, INT64_MAX };
	struct chunk_buf	b;
	struct chunk_info	info;
	double			v = 0.125;
	size_t			i, bytes;

	(void)state;
	for (i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
		assert_int_equal(roundtrip(&firsts[i], &v, 1, &bytes) &
		    CHUNK_STEPS, 0);
		assert_true(bytes <= 2 + 1 + 10 + 4);
	}
	encode(&b, &firsts[0], &v, 1);
	assert_int_equal(chunk_info(b.data, b.len, &info, NULL), 0);
	assert_true(info.first_step == INT64_MIN);
	assert_true(info.last_step == INT64_MIN);
	assert_int_equal(info.n, 1);
	chunk_buf_cleanup(&b);
}

/* The data sets of bench/chunk, 100k points each. */
enum { BIG = 100000 };

static void
make_grad(double *vals, size_t n)
{
	double	lvl = 0;
	size_t	i;

	for (i = 0; i < n; i++) {
		lvl += 0.002 * gauss();
		vals[i] = (float)(0.05 * exp(lvl + 0.3 * gauss()));
	}
}

static void
test_large(void **state)
{
	int64_t		*steps = malloc(BIG * sizeof *steps);
	double		*vals = malloc(BIG * sizeof *vals), u;
	size_t		 i, bytes, bytes10;

	(void)state;
	assert_true(steps != NULL && vals != NULL);
	consecutive(steps, BIG, 0);

	make_grad(vals, BIG);
	assert_int_equal(roundtrip(steps, vals, BIG, &bytes),
	    CHUNK_F32);
	assert_true(bytes < 3.6 * BIG);		/* raw: 8 */

	for (i = 0; i < BIG; i++) {
		u = 0.3 + 2.2 * exp(-(double)i / 20000);
		vals[i] = (float)(u * (1 + 0.01 * gauss()));
	}
	assert_int_equal(roundtrip(steps, vals, BIG, &bytes), CHUNK_F32);
	assert_true(bytes < 3.2 * BIG);

	/* Consecutive steps cost nothing, a fixed stride as little. */
	for (i = 0; i < BIG; i++)
		steps[i] = 10 * (int64_t)i - 5000;
	assert_int_equal(roundtrip(steps, vals, BIG, &bytes10), CHUNK_F32);
	assert_true(bytes10 <= bytes + 3);

	for (i = 0, u = 1; i < BIG; i++) {
		u += 0.01 * gauss();
		vals[i] = u;
	}
	consecutive(steps, BIG, 0);
	assert_int_equal(roundtrip(steps, vals, BIG, &bytes), 0);
	assert_true(bytes < 8 * BIG);

	/* Sparse NaNs and infinities in float32 norms. */
	make_grad(vals, BIG);
	for (i = 0; i < BIG; i += 1 + next_rand() % 400)
		vals[i] = i % 2 ? NAN : -INFINITY;
	assert_int_equal(roundtrip(steps, vals, BIG, &bytes), CHUNK_F32);
	assert_true(bytes < 3.7 * BIG);

	/* A constant (a learning rate) costs a bit a point. */
	for (i = 0; i < BIG; i++)
		vals[i] = 3e-4;
	assert_int_equal(roundtrip(steps, vals, BIG, &bytes), 0);
	assert_true(bytes < BIG / 8 + 32);

	/* Irregular steps take the step codes. */
	for (i = 1; i < BIG; i++)
		steps[i] = steps[i - 1] + 1 + (int64_t)(next_rand() % 50);
	make_grad(vals, BIG);
	assert_int_equal(roundtrip(steps, vals, BIG, &bytes),
	    CHUNK_F32 | CHUNK_STEPS);
	free(steps);
	free(vals);
}

static void
test_step_gaps(void **state)
{
	static const int64_t	wide[] = { INT64_MIN, INT64_MIN + 1, -(1LL << 40),
				    -5, -1, 0, 1, 2, 3, 100, 1LL << 23,
				    (1LL << 23) + 1, 1LL << 40, INT64_MAX - 1,
				    INT64_MAX };
	enum { NW = sizeof wide / sizeof wide[0] };
	int64_t			steps[4096], s;
	double			vals[4096];
	size_t			i, k, n;
	unsigned int		shift;

	(void)state;
	for (i = 0; i < 4096; i++)
		vals[i] = (float)(i * 0.5);
	assert_int_equal(roundtrip(wide, vals, NW, NULL) & CHUNK_STEPS,
	    CHUNK_STEPS);
	/* Every ascending pair and triple of the wide steps. */
	for (i = 0; i < NW; i++)
		for (k = i + 1; k < NW; k++) {
			int64_t	pair[2] = { wide[i], wide[k] };

			roundtrip(pair, vals, 2, NULL);
			if (k + 1 < NW) {
				int64_t	tri[3] = { wide[i], wide[k],
					    wide[k + 1] };

				roundtrip(tri, vals, 3, NULL);
			}
		}
	/* Random gaps of every magnitude, negative steps included. */
	for (k = 0; k < 300; k++) {
		n = 2 + next_rand() % 4000;
		s = -(int64_t)(next_rand() % (1ULL << 50));
		shift = (unsigned int)(next_rand() % 45);
		for (i = 0; i < n; i++) {
			steps[i] = s;
			s += 1 + (int64_t)(next_rand() % (1ULL << shift)) *
			    (next_rand() % 8 == 0);
		}
		roundtrip(steps, vals, n, NULL);
	}
}

static void
test_strides(void **state)
{
	int64_t		steps[1000];
	double		vals[1000];
	size_t		i, bytes;

	(void)state;
	for (i = 0; i < 1000; i++) {
		steps[i] = 7 + 1000 * (int64_t)i;
		vals[i] = 1;
	}
	assert_int_equal(roundtrip(steps, vals, 1000, &bytes), CHUNK_F32);
	/* Header, one value in 32 bits, a bit for each repeat. */
	assert_true(bytes <= 2 + 2 + 1 + 3 + 4 + 125);
	steps[999]++;		/* no longer one stride */
	assert_int_equal(roundtrip(steps, vals, 1000, &bytes),
	    CHUNK_F32 | CHUNK_STEPS);
	steps[999]--;
	steps[500]++;		/* same span, but not uniform */
	assert_int_equal(roundtrip(steps, vals, 1000, NULL),
	    CHUNK_F32 | CHUNK_STEPS);
	steps[0] = INT64_MIN;	/* one huge delta, then a stride */
	assert_int_equal(roundtrip(steps, vals, 1000, NULL),
	    CHUNK_F32 | CHUNK_STEPS);
}

static void
test_encode_refuses(void **state)
{
	struct chunk_buf	b;
	int64_t			steps[3] = { 1, 2, 2 };
	double			vals[3] = { 1, 2, 3 };

	(void)state;
	chunk_buf_init(&b);
	assert_int_equal(chunk_encode(&b, steps, vals, 0), 0);
	assert_int_equal(chunk_encode(&b, steps, vals, 3), 0);
	steps[2] = 0;
	assert_int_equal(chunk_encode(&b, steps, vals, 3), 0);
	steps[0] = INT64_MAX;
	assert_int_equal(chunk_encode(&b, steps, vals, 2), 0);
	assert_int_equal(b.len, 0);
	chunk_buf_cleanup(&b);
}

/* Two chunks appended to one buffer decode from their offsets. */
static void
test_append(void **state)
{
	struct chunk_buf	b;
	int64_t			steps[100], s2[100];
	double			vals[100], v2[100];
	size_t			i, len1, len2, n;
	char			*cause = NULL;

	(void)state;
	for (i = 0; i < 100; i++) {
		steps[i] = 3 * (int64_t)i;
		vals[i] = gauss();
	}
	chunk_buf_init(&b);
	len1 = chunk_encode(&b, steps, vals, 100);
	len2 = chunk_encode(&b, steps + 50, vals + 50, 50);
	assert_true(len1 > 0 && len2 > 0);
	assert_int_equal(b.len, len1 + len2);
	/* The pair as one blob has bytes after the first chunk. */
	assert_int_equal(chunk_decode(b.data, b.len, s2, v2, 100, &n, &cause),
	    -1);
	assert_non_null(strstr(cause, "bytes after the last point"));
	free(cause);
	assert_int_equal(chunk_decode(b.data + len1, len2, s2, v2, 100, &n,
	    NULL), 0);
	assert_int_equal(n, 50);
	assert_memory_equal(s2, steps + 50, 50 * sizeof *s2);
	assert_memory_equal(v2, vals + 50, 50 * sizeof *v2);
	chunk_buf_cleanup(&b);
}

/*
 * chunk_encode_fit() of the points under each budget: the prefix's own
 * chunk_encode(), within the budget, and the longest to fit but for a
 * point and the margins (header, step code) it keeps.
 */
static void
fit_check(const int64_t *steps, const double *vals, size_t n)
{
	static const size_t	 budgets[] = { 64, 65, 100, 333, 1000, 4096,
	    8040, 16200, 100000 };
	struct chunk_buf	 fit, want;
	size_t			 i, k, len;

	for (i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
		chunk_buf_init(&fit);
		len = chunk_encode_fit(&fit, steps, vals, n, budgets[i], &k);
		assert_int_equal(len, fit.len);
		if (len == 0) {		/* not even one point: a double */
			assert_int_equal(k, 0);
			assert_true(budgets[i] < 128);
			chunk_buf_cleanup(&fit);
			continue;
		}
		assert_true(k >= 1 && k <= n);
		assert_true(len <= budgets[i]);
		encode(&want, steps, vals, k);
		assert_int_equal(want.len, len);
		assert_memory_equal(want.data, fit.data, len);
		chunk_buf_cleanup(&want);
		if (k < n) {
			encode(&want, steps, vals, k + 1);
			assert_true(want.len > budgets[i] - 64);
			chunk_buf_cleanup(&want);
		}
		chunk_buf_cleanup(&fit);
	}
}

static void
test_encode_fit(void **state)
{
	int64_t			steps[5000];
	double			vals[5000];
	struct chunk_buf	b;
	size_t			i, k, round;

	(void)state;
	for (round = 0; round < 12; round++) {
		for (i = 0; i < 5000; i++) {
			/* Regular, strided, then irregular steps. */
			steps[i] = round < 4 ? (int64_t)i : round < 8 ?
			    (int64_t)i * 7 - 3000 : (i > 0 ? steps[i - 1] : 0) +
			    1 + (int64_t)(next_rand() % 5);
			switch (round % 4) {
			case 0:
				vals[i] = gauss();
				break;
			case 1:
				vals[i] = (double)(float)gauss();
				break;
			case 2:		/* float32, then one double at 3000 */
				vals[i] = i == 3000 ? 0.1 : (double)(float)gauss();
				break;
			default:	/* regular, then one step off at 2500 */
				vals[i] = 1.0;
				if (i == 2500)
					steps[i] = steps[i - 1] + 2;
				else if (i > 2500)
					steps[i] = steps[i - 1] + 1;
			}
		}
		fit_check(steps, vals, 5000);
		fit_check(steps, vals, 1);
	}
	/* Refused as chunk_encode() refuses, and under CHUNK_FIT_MIN. */
	chunk_buf_init(&b);
	steps[1] = steps[0];
	assert_int_equal(chunk_encode_fit(&b, steps, vals, 5, 1000, &k), 0);
	assert_int_equal(chunk_encode_fit(&b, steps, vals, 1, 63, &k), 0);
	assert_int_equal(chunk_encode_fit(&b, steps, vals, 0, 1000, &k), 0);
	assert_int_equal(b.len, 0);
	chunk_buf_cleanup(&b);
}

/* Blobs assembled by hand from chunk.h, byte for byte. */
static void
test_format(void **state)
{
	static const unsigned char	want1[] = { 0x01, 0x01, 0x03, 0x0a, 0x02,
					    0x3f, 0x80, 0x00, 0x00, 0x62, 0x7f, 0xf0 };
	static const unsigned char	want2[] = { 0x01, 0x03, 0x03, 0x00, 0x03,
					    0x00, 0x00, 0x00, 0x00, 0x20, 0x20 };
	static const unsigned char	want3[] = { 0x01, 0x00, 0x02, 0x01, 0x01,
					    0x3f, 0xf0, 0, 0, 0, 0, 0, 0x01,
					    0xc0, 0x04 };
	struct chunk_buf		b;
	int64_t				s1[3] = { 5, 6, 7 }, s2[3] = { 0, 1, 3 };
	int64_t				s3[2] = { -1, 0 };
	double				v1[3] = { 1, 1, 2 }, v2[3] = { 0, 0, 0 };
	double				v3[2] = { 1, -1 };

	(void)state;
	/*
	 * 1: F32, n 3, first zz(5) = 10, span 2; 1.0f; "0" (a repeat);
	 * 2.0f ^ 1.0f = 0x7f800000: "11", lead 1, sig 8 (7), the 8 ones.
	 */
	encode(&b, s1, v1, 3);
	assert_int_equal(b.len, sizeof want1);
	assert_memory_equal(b.data, want1, sizeof want1);
	chunk_buf_cleanup(&b);
	/*
	 * 2: F32 | STEPS, first 0, span 3 (no multiple of 2): d0 = 1;
	 * 0.0f; dod 0 "0", value "0"; dod 1 "10 0000001", value "0".
	 */
	encode(&b, s2, v2, 3);
	assert_int_equal(b.len, sizeof want2);
	assert_memory_equal(b.data, want2, sizeof want2);
	chunk_buf_cleanup(&b);
	/* 1.0 and -1.0 are floats: an F32 chunk. */
	encode(&b, s3, v3, 2);
	assert_int_equal(b.data[1], CHUNK_F32);
	chunk_buf_cleanup(&b);
	/*
	 * 3: float64, first zz(-1) = 1, span 1; 1 + eps in 64 bits; the
	 * XOR is the sign bit: "11", lead 0 (5 bits), sig 1 (6 bits: 0),
	 * the bit "1".
	 */
	v3[0] = 1 + DBL_EPSILON;
	v3[1] = -(1 + DBL_EPSILON);
	encode(&b, s3, v3, 2);
	assert_int_equal(b.len, sizeof want3);
	assert_memory_equal(b.data, want3, sizeof want3);
	chunk_buf_cleanup(&b);
}

/* The header's checks, each with its cause. */
static void
test_bad_headers(void **state)
{
	static const struct {
		unsigned char	 blob[24];
		size_t		 len;
		const char	*cause;
	} cases[] = {
		{ { 0 }, 0, "too short" },
		{ { 1 }, 1, "too short" },
		{ { 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 12, "version 2" },
		{ { 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 12, "version 0" },
		{ { 1, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 12, "flags 0x04" },
		{ { 1, 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, 11, "flags 0x80" },
		{ { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 12, "n = 0" },
		{ { 1, 0, 0x80, 0x80, 0x80, 0x10, 0 }, 7, "n = 33554432" },
		{ { 1, 0, 0x81, 0x00, 0 }, 5, "varint for n" },
		{ { 1, 0, 0x81 }, 3, "varint for n" },
		{ { 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0x02 }, 13, "varint for the first step" },
		{ { 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0xff, 0x01 }, 14, "varint for the first step" },
		{ { 1, 0, 2, 0 }, 4, "varint for the span" },
		/* first = INT64_MAX (zz 2^64 - 2), span 1 */
		{ { 1, 0, 2, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 23,
		    "overflows" },
		{ { 1, 0, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, 13, "span 1 too "
		    "short" },
		{ { 1, 0, 3, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0 }, 13, "not a "
		    "multiple" },
		{ { 1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 12, "one-point" },
		{ { 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, 11, "need 64 bits" },
		{ { 1, 1, 1, 0, 0, 0, 0 }, 7, "need 32 bits" },
		{ { 1, 1, 40, 0, 39, 0, 0, 0, 0, 0, 0 }, 11, "need 71 bits" },
		{ { 1, 3, 40, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 17,
		    "need 110 bits" },
	};
	struct chunk_info	info;
	struct chunk_reader	r;
	unsigned char		*copy;
	char			*cause;
	size_t			 i, n;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		copy = exact_copy(cases[i].blob, cases[i].len);
		cause = NULL;
		assert_int_equal(chunk_info(copy, cases[i].len, &info, &cause),
		    -1);
		assert_non_null(cause);
		if (strstr(cause, cases[i].cause) == NULL)
			fail_msg("case %zu: cause \"%s\", wanted \"%s\"", i,
			    cause, cases[i].cause);
		free(cause);
		cause = NULL;
		assert_int_equal(chunk_reader_init(&r, copy, cases[i].len,
		    &cause), -1);
		assert_non_null(cause);
		free(cause);
		assert_int_equal(chunk_decode(copy, cases[i].len, NULL, NULL,
		    100, &n, NULL), -1);
		free(copy);
	}
}

/* Damage within the points: each with its cause. */
static void
test_bad_points(void **state)
{
	struct chunk_buf	 b;
	int64_t			 steps[3] = { 0, 1, 3 };
	double			 vals[3] = { 0, 0, 0 }, v[3];
	int64_t			 s[3];
	char			*cause = NULL;
	size_t			 n;

	(void)state;
	/* want2 of test_format with its dod changed. */
	encode(&b, steps, vals, 3);
	assert_int_equal(b.data[10], 0x20);
	b.data[9] = 0x2f;	/* "0 0 10 1111111 0": dod -1, d 0 */
	b.data[10] = 0xe0;
	assert_int_equal(chunk_decode(b.data, b.len, s, v, 3, &n, &cause), -1);
	assert_non_null(strstr(cause, "steps not ascending"));
	free(cause);
	cause = NULL;
	/* dod +2 overshoots the last step. */
	b.data[9] = 0x20;
	b.data[10] = 0x40;	/* "0 0 10 0000010 0": d 3, past 3 */
	assert_int_equal(chunk_decode(b.data, b.len, s, v, 3, &n, &cause), -1);
	assert_non_null(strstr(cause, "steps not ascending or past"));
	free(cause);
	cause = NULL;
	/* A padding bit set. */
	b.data[10] = 0x21;
	assert_int_equal(chunk_decode(b.data, b.len, s, v, 3, &n, &cause), -1);
	assert_non_null(strstr(cause, "padding bits"));
	free(cause);
	cause = NULL;
	b.data[10] = 0x20;
	assert_int_equal(chunk_decode(b.data, b.len, s, v, 3, &n, NULL), 0);
	chunk_buf_cleanup(&b);

	/* A window of lead 15 and 32 bits in a float32 chunk. */
	{
		static const unsigned char	blob[] = { 1, 1, 2, 0, 1,
						    0, 0, 0, 0, 0xff, 0xe0 };

		assert_int_equal(chunk_decode(blob, sizeof blob, s, v, 3, &n,
		    &cause), -1);
		assert_non_null(strstr(cause, "window wider"));
		free(cause);
		cause = NULL;
	}
	/* Room for fewer points than the chunk has. */
	encode(&b, steps, vals, 3);
	assert_int_equal(chunk_decode(b.data, b.len, s, v, 2, &n, &cause), -1);
	assert_int_equal(n, 3);
	assert_non_null(strstr(cause, "3 points, room for 2"));
	free(cause);
	/* Either array may be left out. */
	assert_int_equal(chunk_decode(b.data, b.len, NULL, v, 3, &n, NULL), 0);
	assert_int_equal(chunk_decode(b.data, b.len, s, NULL, 3, &n, NULL), 0);
	assert_true(s[2] == 3);
	chunk_buf_cleanup(&b);
}

/* Valid blobs of every kind, for the damage tests. */
static size_t
sample_blobs(struct chunk_buf *out, size_t max)
{
	int64_t		steps[600];
	double		vals[600];
	size_t		i, k = 0;

	consecutive(steps, 600, 1000);
	make_grad(vals, 600);
	encode(&out[k++], steps, vals, 600);
	for (i = 0; i < 600; i++)
		vals[i] = i ? vals[i - 1] + gauss() : 0;
	encode(&out[k++], steps, vals, 600);
	for (i = 1; i < 600; i++)
		steps[i] = steps[i - 1] + 1 + (int64_t)(next_rand() % 1000) *
		    (i % 3 == 0) + (int64_t)(i == 300) * (1LL << 50);
	encode(&out[k++], steps, vals, 600);
	make_grad(vals, 600);
	for (i = 0; i < 600; i += 17)
		vals[i] = i % 2 ? NAN : INFINITY;
	encode(&out[k++], steps, vals, 600);
	encode(&out[k++], steps, vals, 1);
	encode(&out[k++], steps, vals, 3);
	vals[1] = from_bits(0x7ff8000000000123ULL);
	encode(&out[k++], steps + 100, vals, 40);
	assert_true(k <= max);
	return k;
}

/* Every cut of a valid blob is an error; so is any byte appended. */
static void
test_truncations(void **state)
{
	struct chunk_buf	 blobs[8];
	unsigned char		*copy;
	size_t			 nb, k, len;
	int			 c;

	(void)state;
	nb = sample_blobs(blobs, 8);
	for (k = 0; k < nb; k++) {
		for (len = 0; len < blobs[k].len; len++) {
			copy = exact_copy(blobs[k].data, len);
			if (decode_both(copy, len, NULL, NULL, NULL) != -1)
				fail_msg("blob %zu cut to %zu of %zu bytes "
				    "decoded", k, len, blobs[k].len);
			free(copy);
		}
		for (c = 0; c < 256; c += 51) {
			copy = malloc(blobs[k].len + 1);
			assert_non_null(copy);
			memcpy(copy, blobs[k].data, blobs[k].len);
			copy[blobs[k].len] = (unsigned char)c;
			assert_int_equal(decode_both(copy, blobs[k].len + 1,
			    NULL, NULL, NULL), -1);
			free(copy);
		}
		chunk_buf_cleanup(&blobs[k]);
	}
}

/*
 * Random damage: flipped bits, overwritten bytes, garbage tails.  Each
 * result must be an error with a cause or a decode that both decoders
 * agree on, within the header's n; never a crash or a stray read.
 */
static void
test_flips(void **state)
{
	struct chunk_buf	 blobs[8];
	struct chunk_info	 info;
	unsigned char		*copy;
	int64_t			*steps;
	double			*vals;
	size_t			 nb, it, k, len, j, n, ok = 0, bad = 0;
	unsigned int		 nflip;

	(void)state;
	nb = sample_blobs(blobs, 8);
	for (it = 0; it < 30000; it++) {
		k = it % nb;
		len = blobs[k].len;
		if (it % 10 == 9 && len > 1)	/* and cut short */
			len = 1 + next_rand() % (len - 1);
		copy = exact_copy(blobs[k].data, len);
		nflip = 1 + (unsigned int)(next_rand() % 3);
		while (nflip-- > 0) {
			j = next_rand() % len;
			if (it % 2)
				copy[j] ^= (unsigned char)(1 << next_rand() % 8);
			else
				copy[j] = (unsigned char)next_rand();
		}
		if (decode_both(copy, len, &steps, &vals, &n) == 0) {
			assert_int_equal(chunk_info(copy, len, &info, NULL), 0);
			assert_int_equal(n, info.n);
			assert_true(steps[0] == info.first_step);
			assert_true(steps[n - 1] == info.last_step);
			for (j = 1; j < n; j++)
				assert_true(steps[j] > steps[j - 1]);
			free(steps);
			free(vals);
			ok++;
		} else
			bad++;
		free(copy);
	}
	/* Most damage is caught; some flips only change values. */
	assert_true(bad > 10000);
	assert_true(ok > 0);
	for (k = 0; k < nb; k++)
		chunk_buf_cleanup(&blobs[k]);
}

/* Random bytes behind a plausible header. */
static void
test_garbage(void **state)
{
	unsigned char	*blob;
	int64_t		 steps[4];
	double		 vals[4];
	size_t		 it, len, j, n;
	char		*cause = NULL;

	(void)state;
	assert_int_equal(chunk_decode(NULL, 0, steps, vals, 4, &n, &cause),
	    -1);
	assert_non_null(strstr(cause, "too short"));
	free(cause);
	for (it = 0; it < 20000; it++) {
		len = 1 + next_rand() % 300;
		blob = malloc(len);
		assert_non_null(blob);
		for (j = 0; j < len; j++)
			blob[j] = (unsigned char)next_rand();
		if (it % 4 != 0 && len > 3) {
			blob[0] = CHUNK_VERSION;
			blob[1] &= CHUNK_F32 | CHUNK_STEPS;
			blob[2] = (unsigned char)(1 + next_rand() % 127);
		}
		(void)decode_both(blob, len, NULL, NULL, NULL);
		free(blob);
	}
}

static void
test_summary(void **state)
{
	int64_t			steps[8] = { 10, 11, 12, 13, 14, 15, 16, 17 };
	double			vals[8] = { NAN, 2, -0.0, 5, 0.0, 5, -INFINITY,
				    -0.0 };
	struct chunk_summary	s;

	(void)state;
	chunk_summarize(&s, steps, vals, 8);
	assert_int_equal(s.nfinite, 6);
	assert_int_equal(s.nonfinite, 2);
	assert_true(s.min == 0 && signbit(s.min));	/* the first of the ties */
	assert_int_equal(s.min_step, 12);
	assert_true(s.max == 5);
	assert_int_equal(s.max_step, 13);
	chunk_summarize(&s, steps, vals, 1);
	assert_int_equal(s.nfinite, 0);
	assert_int_equal(s.nonfinite, 1);
	vals[0] = -DBL_MAX;
	vals[7] = DBL_MAX;
	chunk_summarize(&s, steps, vals, 8);
	assert_true(s.min == -DBL_MAX && s.min_step == 10);
	assert_true(s.max == DBL_MAX && s.max_step == 17);
}

/* ---- block summaries ---------------------------------------------------- */

/*
 * The expected cell of the points of steps/vals in block k, and its
 * extremes: each at the first step holding it (-0.0 and 0.0 tie).
 */
static void
block_expect(const int64_t *steps, const double *vals, size_t n, int64_t k,
    enum chunk_rank *rank, struct chunk_extremes *ext)
{
	enum chunk_rank	r;
	size_t		i;
	int		have = 0;

	*rank = CHUNK_RANK_NONE;
	memset(ext, 0, sizeof *ext);
	for (i = 0; i < n; i++) {
		if (chunk_block_of(steps[i]) != k)
			continue;
		r = isfinite(vals[i]) ? CHUNK_RANK_FINITE : isnan(vals[i]) ?
		    CHUNK_RANK_NAN : vals[i] > 0 ? CHUNK_RANK_PINF :
		    CHUNK_RANK_NINF;
		if (r > *rank)
			*rank = r;
		if (r != CHUNK_RANK_FINITE)
			continue;
		if (!have || vals[i] < ext->min) {
			ext->min = vals[i];
			ext->min_step = steps[i];
		}
		if (!have || vals[i] > ext->max) {
			ext->max = vals[i];
			ext->max_step = steps[i];
		}
		have = 1;
	}
}

/*
 * Encode (with extremes or not), check every block against brute
 * force; the blob's size.
 */
static size_t
blocks_roundtrip(const int64_t *steps, const double *vals, size_t n,
    int extremes)
{
	struct chunk_buf	 out;
	struct chunk_blocks	 b;
	struct chunk_cell	 cell;
	struct chunk_extremes	 ext, want_ext;
	enum chunk_rank		 want;
	int64_t			 k, next;
	size_t			 len;
	char			*cause = NULL;

	chunk_buf_init(&out);
	len = chunk_blocks_encode(&out, steps, vals, n, extremes);
	assert_int_equal(len, out.len);
	if (len == 0) {
		/* Too sparse for summaries: more blocks than n / 8 + 1. */
		assert_true(chunk_block_of(steps[n - 1]) -
		    chunk_block_of(steps[0]) + 1 >
		    (int64_t)(n / CHUNK_BLOCKS_MIN_POINTS + 1));
		return 0;
	}
	if (chunk_blocks_open(&b, out.data, out.len, steps[0], steps[n - 1],
	    &cause) != 0)
		fail_msg("chunk_blocks_open: %s", cause);
	assert_int_equal(chunk_blocks_have_extremes(&b), extremes);
	next = chunk_block_of(steps[0]);
	while (chunk_blocks_next(&b, &k, &cell, &ext)) {
		assert_int_equal(k, next++);
		block_expect(steps, vals, n, k, &want, &want_ext);
		/* A finite cell is a block of finite points only. */
		assert_int_equal(cell.rank, want);
		if (cell.rank != CHUNK_RANK_FINITE)
			continue;
		assert_true(to_bits(cell.max) == to_bits(want_ext.max));
		if (!extremes)
			continue;
		assert_true(to_bits(ext.max) == to_bits(want_ext.max));
		assert_true(to_bits(ext.min) == to_bits(want_ext.min));
		assert_int_equal(ext.max_step, want_ext.max_step);
		assert_int_equal(ext.min_step, want_ext.min_step);
	}
	assert_int_equal(next, chunk_block_of(steps[n - 1]) + 1);
	chunk_buf_cleanup(&out);
	return len;
}

/* Both forms: the size of the one with extremes. */
static size_t
blocks_roundtrip_both(const int64_t *steps, const double *vals, size_t n)
{
	(void)blocks_roundtrip(steps, vals, n, 0);
	return blocks_roundtrip(steps, vals, n, 1);
}

static void
test_blocks(void **state)
{
	int64_t		steps[1000];
	double		vals[1000];
	size_t		i, n, l64, l32;
	int		round, summarized = 0;

	(void)state;
	assert_int_equal(chunk_block_of(0), 0);
	assert_int_equal(chunk_block_of(127), 0);
	assert_int_equal(chunk_block_of(128), 1);
	assert_int_equal(chunk_block_of(-1), -1);
	assert_int_equal(chunk_block_of(-128), -1);
	assert_int_equal(chunk_block_of(-129), -2);
	assert_int_equal(chunk_block_of(INT64_MIN), INT64_MIN / 128);
	/* Consecutive steps, doubles, then float32 widened: 4 bytes less. */
	for (i = 0; i < 1000; i++) {
		steps[i] = (int64_t)i + 100;
		vals[i] = gauss();
	}
	l64 = blocks_roundtrip(steps, vals, 1000, 0);
	assert_int_equal(l64, 2 + 9 * 9);	/* blocks 0 .. 8 */
	assert_int_equal(blocks_roundtrip(steps, vals, 1000, 1),
	    2 + 9 * (1 + 8 + 8 + 2));
	for (i = 0; i < 1000; i++)
		vals[i] = (double)(float)vals[i];
	l32 = blocks_roundtrip(steps, vals, 1000, 0);
	assert_int_equal(l64 - l32, 4 * 9);
	assert_int_equal(blocks_roundtrip(steps, vals, 1000, 1),
	    2 + 9 * (1 + 4 + 4 + 2));
	/* Ties: the first step holding the min and the max; -0.0 is 0.0. */
	for (i = 0; i < 1000; i++)
		vals[i] = i % 3 == 0 ? -0.0 : i % 3 == 1 ? 0.0 : 1.0;
	blocks_roundtrip_both(steps, vals, 1000);
	vals[200] = 1e300;	/* no float32: every value in 8 bytes */
	blocks_roundtrip_both(steps, vals, 1000);
	/* Gaps (blocks with no point), negative steps, non-finite values. */
	for (round = 0; round < 200; round++) {
		n = 1 + next_rand() % 1000;
		steps[0] = (int64_t)(next_rand() % 2000) - 1000;
		for (i = 1; i < n; i++)
			steps[i] = steps[i - 1] + 1 + (int64_t)(next_rand() %
			    (round % 3 == 0 ? 400 : 3));
		for (i = 0; i < n; i++) {
			switch (next_rand() % 20) {
			case 0:
				vals[i] = NAN;
				break;
			case 1:
				vals[i] = INFINITY;
				break;
			case 2:
				vals[i] = -INFINITY;
				break;
			default:
				vals[i] = round % 2 ? (double)(float)gauss() :
				    gauss();
			}
		}
		if (blocks_roundtrip_both(steps, vals, n) > 0)
			summarized++;
	}
	assert_true(summarized > 100);
	/* The ends of the step range. */
	for (i = 0; i < 300; i++) {
		steps[i] = INT64_MAX - 299 + (int64_t)i;
		vals[i] = gauss();
	}
	assert_true(blocks_roundtrip_both(steps, vals, 300) > 0);
	for (i = 0; i < 300; i++)
		steps[i] = INT64_MIN + (int64_t)i;
	assert_true(blocks_roundtrip_both(steps, vals, 300) > 0);
	/* Two steps far apart: no summaries, and no huge allocation. */
	steps[0] = 0;
	steps[1] = INT64_MAX / 2;
	assert_int_equal(blocks_roundtrip_both(steps, vals, 2), 0);
}

/* Damaged block summaries are refused whole, with a reason. */
static void
test_blocks_damaged(void **state)
{
	struct chunk_buf	 out;
	struct chunk_blocks	 b;
	unsigned char		*bad, *p;
	int64_t			 steps[300];
	double			 vals[300];
	size_t			 i;
	char			*cause = NULL;
	int			 extremes;

	(void)state;
	for (i = 0; i < 300; i++) {
		steps[i] = (int64_t)i;
		vals[i] = i == 7 ? NAN : (double)i;
	}
	for (extremes = 0; extremes < 2; extremes++) {
		/* Every truncation and one trailing byte. */
		chunk_buf_init(&out);
		chunk_blocks_encode(&out, steps, vals, 300, extremes);
		for (i = 0; i <= out.len; i++) {
			bad = malloc(i + 1);
			memcpy(bad, out.data, i < out.len ? i : out.len);
			bad[out.len < i + 1 ? out.len : i] = 0;
			assert_int_equal(chunk_blocks_open(&b, bad,
			    i == out.len ? i + 1 : i, 0, 299, &cause), -1);
			assert_non_null(cause);
			free(cause);
			cause = NULL;
			free(bad);
		}
		chunk_buf_cleanup(&out);
	}
	/*
	 * Extremes that cannot be: not finite, min over max, a step past
	 * its block or outside the chunk (block 2 is steps 256 .. 383, the
	 * chunk ends at 299).  Block 2's bytes: rank, max, min, offsets.
	 */
	chunk_buf_init(&out);
	chunk_blocks_encode(&out, steps, vals, 300, 1);
	assert_int_equal(out.len, 2 + 1 + 2 * (1 + 4 + 4 + 2));	/* 0 is NaN */
	bad = malloc(out.len);
	for (i = 0; i < 6; i++) {
		memcpy(bad, out.data, out.len);
		assert_int_equal(chunk_blocks_open(&b, bad, out.len, 0, 299,
		    NULL), 0);
		p = bad + out.len - 11;
		switch (i) {
		case 0:
			memcpy(p + 1, "\x00\x00\x80\x7f", 4);	/* +Inf max */
			break;
		case 1:
			memcpy(p + 5, "\x00\x00\xc0\x7f", 4);	/* NaN min */
			break;
		case 2:
			memcpy(p + 5, p + 1, 4);
			p[5] ^= 1;		/* min a hair over max */
			break;
		case 3:
			p[9] = CHUNK_BLOCK_STEPS;
			break;
		case 4:
			p[10] = 44;		/* step 300 */
			break;
		case 5:
			p[9] = 127;		/* step 383 */
			break;
		}
		assert_int_equal(chunk_blocks_open(&b, bad, out.len, 0, 299,
		    &cause), -1);
		assert_non_null(strstr(cause, "block 2 of 3"));
		free(cause);
		cause = NULL;
	}
	free(bad);
	chunk_buf_cleanup(&out);
	chunk_buf_init(&out);
	chunk_blocks_encode(&out, steps, vals, 300, 0);
	/*
	 * A rank past NaN, an unknown version, unknown flags; opened for
	 * more steps than it covers, or fewer, or steps out of order.
	 */
	bad = malloc(out.len);
	memcpy(bad, out.data, out.len);
	bad[2] = CHUNK_RANK_NAN + 1;
	assert_int_equal(chunk_blocks_open(&b, bad, out.len, 0, 299, NULL), -1);
	memcpy(bad, out.data, out.len);
	bad[0] = 2;
	assert_int_equal(chunk_blocks_open(&b, bad, out.len, 0, 299, NULL), -1);
	memcpy(bad, out.data, out.len);
	bad[1] = 0x02;		/* extremes, which are not there */
	assert_int_equal(chunk_blocks_open(&b, bad, out.len, 0, 299, NULL), -1);
	memcpy(bad, out.data, out.len);
	bad[1] = 0x04;
	assert_int_equal(chunk_blocks_open(&b, bad, out.len, 0, 299, NULL), -1);
	free(bad);
	assert_int_equal(chunk_blocks_open(&b, out.data, out.len, 0, 599, NULL),
	    -1);
	assert_int_equal(chunk_blocks_open(&b, out.data, out.len, 0, 200, NULL),
	    -1);
	assert_int_equal(chunk_blocks_open(&b, out.data, out.len, 299, 0, NULL),
	    -1);
	assert_int_equal(chunk_blocks_open(&b, out.data, out.len, 0, 299,
	    NULL), 0);
	chunk_buf_cleanup(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_special_f64),
		cmocka_unit_test(test_special_f32),
		cmocka_unit_test(test_f32_spoilers),
		cmocka_unit_test(test_widened_floats),
		cmocka_unit_test(test_one_point),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_step_gaps),
		cmocka_unit_test(test_strides),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_bad_points),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_flips),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_encode_fit),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_blocks_damaged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

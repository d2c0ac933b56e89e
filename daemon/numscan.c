/* SPDX-License-Identifier: MIT */
/*
 * numscan: one JSON number, lexed and converted exactly; see numscan.h.
 *
 * A real's significant digits (up to 19) collect into a 64-bit integer
 * m, so the value is m * 10^e10.  Two paths give the correctly rounded
 * double without strtod:
 *  - Clinger's fast path: m <= 2^53 and |e10| <= 22.  m and 10^|e10|
 *    are exact doubles, so one IEEE multiply or divide rounds once.
 *  - With x87 extended precision (64-bit significand), for |e10| <= 27:
 *    m and 10^|e10| are exact there, so one operation leaves the
 *    extended result within half an extended ulp of the true value.
 *    Rounding that to double can only differ from rounding the true
 *    value when the extended result lies exactly on a halfway point
 *    between two doubles (its low 11 bits are 0x400); then strtod
 *    decides.
 * Everything else (more digits, larger exponents) goes to strtod.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "numscan.h"

#if LDBL_MANT_DIG == 64 && (defined(__x86_64__) || defined(__i386__))
#define NUMSCAN_X87	1
#endif

#define NUMSCAN_DIGITS_MAX	19	/* significant digits m can hold */
#define NUMSCAN_INT_DIGITS_MAX	18	/* an integer token always fits */
#define NUMSCAN_EXP_CAP		100000	/* beyond any double's range */

static const double numscan_pow10[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

#ifdef NUMSCAN_X87
/* 10^k for k <= 27 is exact with a 64-bit significand (5^27 < 2^63). */
static const long double numscan_pow10l[] = {
	1e0L, 1e1L, 1e2L, 1e3L, 1e4L, 1e5L, 1e6L, 1e7L, 1e8L, 1e9L,
	1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L,
	1e19L, 1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L
};

/*
 * m * 10^e10 through the extended type; 0 when the result sits on a
 * halfway point between doubles and only strtod can round it.
 */
static int
numscan_x87(uint64_t m, int e10, double *d)
{
	long double	x = (long double)m;
	uint64_t	sig;

	if (e10 < 0)
		x /= numscan_pow10l[-e10];
	else
		x *= numscan_pow10l[e10];
	memcpy(&sig, &x, sizeof sig);	/* the explicit 64-bit significand */
	if ((sig & 0x7ff) == 0x400)
		return 0;
	*d = (double)x;
	return 1;
}
#endif

/* strtod on the token [s, e); 0 when Jansson would refuse it. */
static int
numscan_strtod(const char *s, const char *e, double *d)
{
	char	 buf[NUMSCAN_TOKEN_MAX + 1];
	char	*stop;
	size_t	 len = (size_t)(e - s);

	if (len > NUMSCAN_TOKEN_MAX)
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	*d = strtod(buf, &stop);
	if (stop != buf + len)
		return 0;
	if (errno == ERANGE && (*d == HUGE_VAL || *d == -HUGE_VAL))
		return 0;	/* Jansson: "real number overflow" */
	return 1;
}

static inline int
numscan_isdigit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/*
 * Eight digits at once (the SWAR method of fast_float): the bytes at p,
 * read as a little-endian word, are all ASCII digits when no byte
 * reaches '9' + 1 after adding 0x46 or falls under '0' (a borrow shows
 * in a byte that is already off); their value, most significant first,
 * by three multiplies.
 */
static inline int
numscan_eight(const char *p, const char *end, uint32_t *value)
{
	uint64_t	v;

	if (end - p < 8)
		return 0;
	memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	if (((v + UINT64_C(0x4646464646464646)) |
	    (v - UINT64_C(0x3030303030303030))) & UINT64_C(0x8080808080808080))
		return 0;
	v -= UINT64_C(0x3030303030303030);
	v = v * 10 + (v >> 8);
	v = ((v & UINT64_C(0x000000ff000000ff)) *
	    (100 + (UINT64_C(1000000) << 32)) +
	    ((v >> 16) & UINT64_C(0x000000ff000000ff)) *
	    (1 + (UINT64_C(10000) << 32))) >> 32;
	*value = (uint32_t)v;
	return 1;
}

enum numscan_kind
numscan(const char *p, const char *end, const char **endp, int64_t *ival,
    double *dval)
{
	const char	*start = p;
	uint64_t	 m = 0;
	int64_t		 e10 = 0, ex = 0;
	int		 neg = 0, ndig = 0, lost = 0, real = 0, exneg = 0, dig;
	uint32_t	 eight;

	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	if (!numscan_isdigit(p, end))
		return NUMSCAN_NONE;
	if (*p == '0') {
		if (numscan_isdigit(++p, end))
			return NUMSCAN_NONE;	/* no leading zeros */
	} else {
		for (; numscan_isdigit(p, end); p++) {
			if (ndig < NUMSCAN_DIGITS_MAX) {
				m = m * 10 + (uint64_t)(*p - '0');
				ndig++;
			} else {
				lost = 1;
				e10++;
			}
		}
	}
	if (p < end && *p == '.') {
		real = 1;
		if (!numscan_isdigit(++p, end))
			return NUMSCAN_NONE;
		/* Leading zeros one by one, then eight digits at a time. */
		while (m == 0 && p < end && *p == '0') {
			e10--;
			p++;
		}
		while (ndig + 8 <= NUMSCAN_DIGITS_MAX &&
		    numscan_eight(p, end, &eight)) {
			m = m * 100000000 + eight;
			ndig += 8;
			e10 -= 8;
			p += 8;
		}
		for (; numscan_isdigit(p, end); p++) {
			dig = *p - '0';
			if (m == 0 && dig == 0)
				e10--;		/* a leading zero */
			else if (ndig < NUMSCAN_DIGITS_MAX) {
				m = m * 10 + (uint64_t)dig;
				ndig++;
				e10--;
			} else
				lost = 1;
		}
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		real = 1;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			exneg = *p++ == '-';
		if (!numscan_isdigit(p, end))
			return NUMSCAN_NONE;
		for (; numscan_isdigit(p, end); p++)
			if (ex < NUMSCAN_EXP_CAP)
				ex = ex * 10 + (*p - '0');
		e10 += exneg ? -ex : ex;
	}
	*endp = p;

	if (!real) {
		if (lost || ndig > NUMSCAN_INT_DIGITS_MAX)
			return NUMSCAN_NONE;
		*ival = neg ? -(int64_t)m : (int64_t)m;
		return NUMSCAN_INT;
	}
	if (m == 0) {
		*dval = neg ? -0.0 : 0.0;
		return NUMSCAN_REAL;
	}
	if (!lost && m <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
		*dval = e10 < 0 ? (double)m / numscan_pow10[-e10] :
		    (double)m * numscan_pow10[e10];
		if (neg)
			*dval = -*dval;
		return NUMSCAN_REAL;
	}
#ifdef NUMSCAN_X87
	if (!lost && e10 >= -27 && e10 <= 27 &&
	    numscan_x87(m, (int)e10, dval)) {
		if (neg)
			*dval = -*dval;
		return NUMSCAN_REAL;
	}
#endif
	if (!numscan_strtod(start, p, dval))
		return NUMSCAN_NONE;
	return NUMSCAN_REAL;
}

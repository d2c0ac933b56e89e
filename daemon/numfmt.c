/* SPDX-License-Identifier: MIT */
/*
 * numfmt: Jansson's text of a real, fast (numfmt.h).  A finite nonzero
 * double is m * 2^e exactly.  When e >= 0, or when m * 5^-e fits in 128
 * bits, that is the integer N over 10^k (k = -e or 0): its 17 leading
 * digits, rounded half to even as glibc's printf rounds the exact
 * value, are one 128-bit division away, and the rest is printf's %g
 * layout.  Other values take snprintf("%.17g"); both then get Jansson's
 * touches (jsonp_dtostr in its strconv.c).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "numfmt.h"

#define NUMFMT_PRECISION	17	/* JSON_REAL_PRECISION(17) */
#define NUMFMT_POW5_MAX		54	/* 5^27 * 5^27: both factors fit 64 bits */

__extension__ typedef unsigned __int128 u128;

static const uint64_t pow10_64[20] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
	10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
	100000000000ULL, 1000000000000ULL, 10000000000000ULL,
	100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
	100000000000000000ULL, 1000000000000000000ULL,
	10000000000000000000ULL
};

/* 5^27 is the largest power of 5 below 2^64. */
#define POW5_27	7450580596923828125ULL

/* 10^i, i <= 38. */
static u128
pow10_128(int i)
{
	return i < 20 ? (u128)pow10_64[i] :
	    (u128)pow10_64[i - 19] * pow10_64[19];
}

/* 5^i, i <= NUMFMT_POW5_MAX. */
static u128
pow5_128(int i)
{
	uint64_t	p = 1;
	int		j;

	for (j = i > 27 ? i - 27 : i; j > 0; j--)
		p *= 5;
	return i > 27 ? (u128)p * POW5_27 : (u128)p;
}

/* The decimal digits of n > 0. */
static int
digits_of(u128 n)
{
	uint64_t	hi = (uint64_t)(n >> 64);
	int		bits, t;

	bits = hi != 0 ? 128 - __builtin_clzll(hi) :
	    64 - __builtin_clzll((uint64_t)n);
	t = (bits * 1233) >> 12;	/* floor(bits * log10(2)) */
	return t + (n >= pow10_128(t));
}

/*
 * Lay out the significant digits d[0..nd-1] (no trailing zero) of a
 * value of decimal exponent x as %.17g does, with Jansson's touches.
 */
static size_t
numfmt_layout(char *buf, int neg, const char *d, int nd, int x)
{
	char	*p = buf;
	int	 ni;

	if (neg)
		*p++ = '-';
	if (x < -4 || x >= NUMFMT_PRECISION) {
		*p++ = d[0];
		if (nd > 1) {
			*p++ = '.';
			memcpy(p, d + 1, (size_t)nd - 1);
			p += nd - 1;
		}
		*p++ = 'e';
		if (x < 0) {
			*p++ = '-';
			x = -x;
		}
		if (x >= 100)
			*p++ = (char)('0' + x / 100);
		if (x >= 10)
			*p++ = (char)('0' + x / 10 % 10);
		*p++ = (char)('0' + x % 10);
	} else if (x >= 0) {
		ni = x + 1;
		if (nd <= ni) {
			memcpy(p, d, (size_t)nd);
			p += nd;
			memset(p, '0', (size_t)(ni - nd));
			p += ni - nd;
			*p++ = '.';
			*p++ = '0';
		} else {
			memcpy(p, d, (size_t)ni);
			p += ni;
			*p++ = '.';
			memcpy(p, d + ni, (size_t)(nd - ni));
			p += nd - ni;
		}
	} else {
		*p++ = '0';
		*p++ = '.';
		memset(p, '0', (size_t)(-x - 1));
		p += -x - 1;
		memcpy(p, d, (size_t)nd);
		p += nd;
	}
	*p = '\0';
	return (size_t)(p - buf);
}

/* snprintf's %.17g of v, with Jansson's touches. */
static size_t
numfmt_slow(char *buf, double v)
{
	char	*e, *from, *to;
	size_t	 len;

	len = (size_t)snprintf(buf, NUMFMT_MAX, "%.*g", NUMFMT_PRECISION, v);
	if ((e = strchr(buf, 'e')) == NULL) {
		if (strchr(buf, '.') == NULL) {
			memcpy(buf + len, ".0", 3);
			len += 2;
		}
		return len;
	}
	/* "e+05" and "e-05" become "e5" and "e-5". */
	to = e + 1;
	from = to + 1;
	if (*to == '-')
		to++;
	while (*from == '0')
		from++;
	memmove(to, from, len + 1 - (size_t)(from - buf));
	return len - (size_t)(from - to);
}

size_t
numfmt_double(char *buf, double v)
{
	char		 d[40];
	uint64_t	 bits, m, q;
	u128		 n, div, r;
	unsigned int	 tz;
	int		 neg, e2, k, nd, x, i;

	if (!isfinite(v)) {
		memcpy(buf, "null", 5);
		return 4;
	}
	memcpy(&bits, &v, sizeof bits);
	neg = (int)(bits >> 63);
	m = bits & ((1ULL << 52) - 1);
	e2 = (int)((bits >> 52) & 0x7ff);
	if (e2 == 0 && m == 0)
		return numfmt_layout(buf, neg, "0", 1, 0);
	if (e2 == 0)
		e2 = -1074;		/* subnormal */
	else {
		m |= 1ULL << 52;
		e2 -= 1075;
	}
	tz = (unsigned int)__builtin_ctzll(m);	/* m != 0 */
	m >>= tz;
	e2 += (int)tz;

	/* v = n / 10^k exactly, or the slow way. */
	if (e2 >= 0) {
		if (64 - __builtin_clzll(m) + e2 > 128)
			return numfmt_slow(buf, v);
		n = (u128)m << e2;
		k = 0;
	} else {
		k = -e2;
		if (k > NUMFMT_POW5_MAX ||
		    __builtin_mul_overflow((u128)m, pow5_128(k), &n))
			return numfmt_slow(buf, v);
	}

	/* The 17 leading digits, rounded half to even. */
	nd = digits_of(n);
	x = nd - 1 - k;
	if (nd > NUMFMT_PRECISION) {
		div = pow10_128(nd - NUMFMT_PRECISION);
		r = n % div;
		q = (uint64_t)(n / div);
		if (2 * r > div || (2 * r == div && (q & 1) != 0))
			q++;
		if (q == pow10_64[NUMFMT_PRECISION]) {
			q = pow10_64[NUMFMT_PRECISION - 1];
			x++;
		}
		nd = NUMFMT_PRECISION;
	} else
		q = (uint64_t)n;
	for (i = nd - 1; i >= 0; i--) {
		d[i] = (char)('0' + q % 10);
		q /= 10;
	}
	while (nd > 1 && d[nd - 1] == '0')
		nd--;
	return numfmt_layout(buf, neg, d, nd, x);
}

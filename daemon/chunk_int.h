/* SPDX-License-Identifier: MIT */
/*
 * chunk_int: what the chunk codec's encoder (chunk.c), reader
 * (chunk_read.c) and block summaries (chunk_blocks.c) share: the
 * format's constants, the bit-exact conversions between doubles, their
 * float32 patterns and big-endian words, and the error message.  Any
 * thread.
 */
#ifndef GW_CHUNK_INT_H
#define GW_CHUNK_INT_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define HDR_MAX		(2 + 4 + 10 + 10)	/* n < 2^28 fits 4 bytes */
#define POINT_MAX_BITS	(4 + 64 + 2 + 5 + 6 + 64)
/* The hot paths must be specialized per value width, never called. */
#define INLINE		static inline __attribute__((always_inline))
#define F64_EXP		0x7ff0000000000000ULL
#define F32_EXP		0x7f800000U

/* The value codes' field widths, by value width. */
#define LEAD_BITS(w)	((w) == 64 ? 5 : 4)
#define SIG_BITS(w)	((w) == 64 ? 6 : 5)
#define LEAD_MAX(w)	((1U << LEAD_BITS(w)) - 1)

static inline uint64_t
dbl_bits(double v)
{
	uint64_t	b;

	memcpy(&b, &v, sizeof b);
	return b;
}

static inline double
bits_dbl(uint64_t b)
{
	double	v;

	memcpy(&v, &b, sizeof v);
	return v;
}

/* uint64 to int64 modulo 2^64, without implementation-defined casts. */
static inline int64_t
u2i(uint64_t x)
{
	return x <= INT64_MAX ? (int64_t)x : -(int64_t)(~x) - 1;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline void
store_be64(unsigned char *p, uint64_t x)
{
	x = __builtin_bswap64(x);
	memcpy(p, &x, sizeof x);
}

static inline uint64_t
load_be64(const unsigned char *p)
{
	uint64_t	x;

	memcpy(&x, p, sizeof x);
	return __builtin_bswap64(x);
}
#else
static inline void
store_be64(unsigned char *p, uint64_t x)
{
	int	i;

	for (i = 7; i >= 0; i--, x >>= 8)
		p[i] = (unsigned char)x;
}

static inline uint64_t
load_be64(const unsigned char *p)
{
	uint64_t	x = 0;
	int		i;

	for (i = 0; i < 8; i++)
		x = x << 8 | p[i];
	return x;
}
#endif

/*
 * v's float32 pattern into *f if v is the widening of one (chunk.h):
 * finite values must survive (double)(float)v bit for bit; infinities
 * and NaNs must have their low 29 mantissa bits clear.
 */
static inline int
f32_narrow(double v, uint32_t *f)
{
	uint64_t	b = dbl_bits(v);
	float		x;

	if ((b & F64_EXP) == F64_EXP) {
		if (b & 0x1fffffff)
			return 0;
		*f = (uint32_t)(b >> 32 & 0x80000000) | F32_EXP |
		    (uint32_t)(b >> 29 & 0x7fffff);
		return 1;
	}
	if (!(fabs(v) <= FLT_MAX))	/* the cast would be undefined */
		return 0;
	x = (float)v;
	if (dbl_bits((double)x) != b)
		return 0;
	memcpy(f, &x, sizeof *f);
	return 1;
}

/* f32_narrow()'s pattern, for a value known to have one. */
static inline uint32_t
f32_pattern(double v)
{
	uint64_t	b = dbl_bits(v);
	float		x;
	uint32_t	f;

	if ((b & F64_EXP) == F64_EXP)	/* the cast could quiet a NaN */
		return (uint32_t)(b >> 32 & 0x80000000) | F32_EXP |
		    (uint32_t)(b >> 29 & 0x7fffff);
	x = (float)v;
	memcpy(&f, &x, sizeof f);
	return f;
}

static inline double
f32_widen(uint32_t f)
{
	float	x;

	if ((f & F32_EXP) == F32_EXP)
		return bits_dbl((uint64_t)(f >> 31) << 63 | F64_EXP |
		    (uint64_t)(f & 0x7fffff) << 29);
	memcpy(&x, &f, sizeof x);
	return x;
}

/* Set *cause (if wanted) to a formatted message; returns -1. */
int	chunk_fail(char **cause, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif

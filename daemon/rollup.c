/* SPDX-License-Identifier: MIT */
/*
 * rollup: the page summary codec; rollup.h documents the format byte
 * by byte.  The encoder walks a page's points once, block by block; the
 * reader checks every field as it returns a block, so a damaged blob is
 * reported at the block where it breaks and never read past its end.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup.h"
#include "xmalloc.h"

#define ROLLUP_FLAGS_ALL	(ROLLUP_NAN | ROLLUP_PINF | ROLLUP_NINF | \
				 ROLLUP_FINITE | ROLLUP_F32)
#define ROLLUP_NONFINITE	(ROLLUP_NAN | ROLLUP_PINF | ROLLUP_NINF)

static void
rollup_reserve(struct chunk_buf *b, size_t more)
{
	size_t	cap;

	if (b->cap - b->len >= more)
		return;
	cap = b->cap < 256 ? 256 : b->cap;
	while (cap - b->len < more)
		cap *= 2;
	b->data = xreallocarray(b->data, cap, 1);
	b->cap = cap;
}

static unsigned char *
put_varint(unsigned char *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char)v;
	return p;
}

/* A minimal varint of at most 10 bytes from [*pp, end); -1 if not. */
static int
get_varint(const unsigned char **pp, const unsigned char *end, uint64_t *out)
{
	const unsigned char	*p = *pp;
	uint64_t		 v = 0;
	unsigned int		 shift;
	unsigned char		 c;

	for (shift = 0; shift < 64; shift += 7) {
		if (p == end)
			return -1;
		c = *p++;
		if (shift == 63 && c > 1)
			return -1;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			if (c == 0 && shift > 0)
				return -1;
			*pp = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* 1 if v is a float32 widened (finite values only). */
static int
rollup_is_f32(double v)
{
	return (double)(float)v == v;
}

static unsigned char *
put_value(unsigned char *p, double v, int f32)
{
	uint64_t	b64;
	uint32_t	b32;
	float		f;
	int		i, n;

	if (f32) {
		f = (float)v;
		memcpy(&b32, &f, sizeof b32);
		b64 = b32;
		n = 4;
	} else {
		memcpy(&b64, &v, sizeof b64);
		n = 8;
	}
	for (i = 0; i < n; i++, b64 >>= 8)
		*p++ = (unsigned char)b64;
	return p;
}

static double
get_value(const unsigned char *p, int f32)
{
	uint64_t	b = 0;
	uint32_t	b32;
	double		v;
	float		f;
	int		i, n = f32 ? 4 : 8;

	for (i = n - 1; i >= 0; i--)
		b = b << 8 | p[i];
	if (f32) {
		b32 = (uint32_t)b;
		memcpy(&f, &b32, sizeof f);
		return f;
	}
	memcpy(&v, &b, sizeof v);
	return v;
}

/* Encode the block of points [i0, i1) (all in block k of page) at p. */
static unsigned char *
rollup_put_block(unsigned char *p, int64_t first, unsigned int k,
    const int64_t *steps, const double *vals, size_t i0, size_t i1)
{
	unsigned int	flags = 0;
	size_t		i, imin = 0, imax = 0, nfin = 0;
	double		v;

	for (i = i0; i < i1; i++) {
		v = vals[i];
		if (isnan(v))
			flags |= ROLLUP_NAN;
		else if (isinf(v))
			flags |= v > 0 ? ROLLUP_PINF : ROLLUP_NINF;
		else if (nfin++ == 0)
			imin = imax = i;
		else {
			if (v < vals[imin])
				imin = i;
			if (v > vals[imax])
				imax = i;
		}
	}
	if (nfin > 0) {
		flags |= ROLLUP_FINITE;
		if (rollup_is_f32(vals[imin]) && rollup_is_f32(vals[imax]))
			flags |= ROLLUP_F32;
	}
	*p++ = (unsigned char)k;
	p = put_varint(p, i1 - i0);
	*p++ = (unsigned char)flags;
	if (nfin > 0) {
		*p++ = (unsigned char)(steps[imin] - first);
		*p++ = (unsigned char)(steps[imax] - first);
		p = put_value(p, vals[imin], flags & ROLLUP_F32);
		p = put_value(p, vals[imax], flags & ROLLUP_F32);
	}
	return p;
}

size_t
rollup_encode(struct chunk_buf *out, int64_t page, const int64_t *steps,
    const double *vals, size_t n)
{
	unsigned char	*start, *p;
	int64_t		 lo, first;
	size_t		 i, j;
	unsigned int	 k;

	if (n == 0 || page < 0 || page > INT64_MAX / ROLLUP_PAGE_STEPS)
		return 0;
	lo = page * ROLLUP_PAGE_STEPS;
	for (i = 0; i < n; i++) {
		if (steps[i] < lo || steps[i] - lo >= ROLLUP_PAGE_STEPS ||
		    (i > 0 && steps[i] <= steps[i - 1]))
			return 0;
	}
	rollup_reserve(out, ROLLUP_BLOB_MAX);
	p = start = out->data + out->len;
	*p++ = ROLLUP_VERSION;
	*p++ = ROLLUP_BLOCK_SHIFT;
	*p++ = ROLLUP_PAGE_BLOCKS;
	p = put_varint(p, (uint64_t)page);
	for (i = 0; i < n; i = j) {
		k = (unsigned int)((steps[i] - lo) >> ROLLUP_BLOCK_SHIFT);
		first = lo + (int64_t)k * ROLLUP_BLOCK_STEPS;
		for (j = i + 1; j < n &&
		    steps[j] - first < ROLLUP_BLOCK_STEPS; j++)
			;
		p = rollup_put_block(p, first, k, steps, vals, i, j);
	}
	out->len += (size_t)(p - start);
	return (size_t)(p - start);
}

static int __attribute__((format(printf, 2, 3)))
rollup_fail(char **cause, const char *fmt, ...)
{
	va_list	ap;
	char	msg[256];

	if (cause == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	*cause = xstrdup(msg);
	return -1;
}

int
rollup_reader_init(struct rollup_reader *r, const void *blob, size_t len,
    int64_t page, char **cause)
{
	const unsigned char	*b = blob;
	uint64_t		 pg;

	memset(r, 0, sizeof *r);
	r->error = "damaged header";
	r->prev = -1;
	if (len < 4 || b == NULL)
		return rollup_fail(cause, "rollup: %zu bytes, too short", len);
	if (b[0] != ROLLUP_VERSION)
		return rollup_fail(cause, "rollup: version %u unknown (this "
		    "reads %u)", b[0], ROLLUP_VERSION);
	if (b[1] != ROLLUP_BLOCK_SHIFT || b[2] != ROLLUP_PAGE_BLOCKS)
		return rollup_fail(cause, "rollup: blocks of 2^%u steps, %u a "
		    "page (this reads 2^%u, %u)", b[1], b[2],
		    ROLLUP_BLOCK_SHIFT, ROLLUP_PAGE_BLOCKS);
	r->p = b + 3;
	r->end = b + len;
	if (get_varint(&r->p, r->end, &pg) == -1)
		return rollup_fail(cause, "rollup: bad varint for the page");
	if (page < 0 || pg != (uint64_t)page)
		return rollup_fail(cause, "rollup: the blob is of page %llu, "
		    "its row of page %lld", (unsigned long long)pg,
		    (long long)page);
	r->page = page;
	r->error = NULL;
	return 0;
}

/* Mark r damaged with why; returns -1. */
static int
rollup_damaged(struct rollup_reader *r, const char *why)
{
	r->error = why;
	return -1;
}

int
rollup_next(struct rollup_reader *r, struct rollup_block *b)
{
	uint64_t	n;
	unsigned int	k, flags, nclass, off_min, off_max;
	int		f32;

	if (r->error != NULL)
		return -1;
	if (r->p == r->end)
		return 0;
	k = *r->p++;
	if (k >= ROLLUP_PAGE_BLOCKS || (int)k <= r->prev)
		return rollup_damaged(r, "block index out of order");
	r->prev = (int)k;
	if (get_varint(&r->p, r->end, &n) == -1 || n == 0 ||
	    n > ROLLUP_BLOCK_STEPS)
		return rollup_damaged(r, "bad point count");
	if (r->p == r->end)
		return rollup_damaged(r, "cut short");
	flags = *r->p++;
	if (flags & ~ROLLUP_FLAGS_ALL)
		return rollup_damaged(r, "unknown flags");
	nclass = !!(flags & ROLLUP_NAN) + !!(flags & ROLLUP_PINF) +
	    !!(flags & ROLLUP_NINF) + !!(flags & ROLLUP_FINITE);
	if (nclass == 0 || nclass > n)
		return rollup_damaged(r, "flags disagree with the count");
	b->first = r->page * ROLLUP_PAGE_STEPS + (int64_t)k *
	    ROLLUP_BLOCK_STEPS;
	b->last = b->first + ROLLUP_BLOCK_STEPS - 1;
	b->n = (size_t)n;
	b->flags = flags & ROLLUP_NONFINITE;
	b->min = b->max = 0;
	b->min_step = b->max_step = b->first;
	if (!(flags & ROLLUP_FINITE)) {
		if (flags & ROLLUP_F32)
			return rollup_damaged(r, "F32 without FINITE");
		return 1;
	}
	b->flags |= ROLLUP_FINITE;
	f32 = (flags & ROLLUP_F32) != 0;
	if ((size_t)(r->end - r->p) < 2 + (f32 ? 8u : 16u))
		return rollup_damaged(r, "cut short");
	off_min = *r->p++;
	off_max = *r->p++;
	b->min = get_value(r->p, f32);
	r->p += f32 ? 4 : 8;
	b->max = get_value(r->p, f32);
	r->p += f32 ? 4 : 8;
	if (off_min >= ROLLUP_BLOCK_STEPS || off_max >= ROLLUP_BLOCK_STEPS)
		return rollup_damaged(r, "min or max step out of the block");
	if (!isfinite(b->min) || !isfinite(b->max) || b->min > b->max)
		return rollup_damaged(r, "min and max not finite and ordered");
	if (off_min == off_max && b->min != b->max)
		return rollup_damaged(r, "min and max at one step differ");
	b->min_step = b->first + off_min;
	b->max_step = b->first + off_max;
	return 1;
}

const char *
rollup_reader_error(const struct rollup_reader *r)
{
	return r->error;
}

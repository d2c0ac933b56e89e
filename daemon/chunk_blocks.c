/* SPDX-License-Identifier: MIT */
/*
 * chunk_blocks: a chunk's block summaries (format in chunk.h): the
 * heatmap cell of each aligned block of CHUNK_BLOCK_STEPS steps, written
 * beside the chunk by the store and read by the heatmap instead of the
 * chunk's points when its buckets are whole blocks.  Pure code on
 * caller-owned structs: any thread, one thread per struct.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "chunk_int.h"
#include "xmalloc.h"

#define BLOCKS_VERSION	1
#define BLOCKS_F32	0x01
#define BLOCKS_EXTREMES	0x02
#define BLOCKS_HDR	2

int64_t
chunk_block_of(int64_t s)
{
	int64_t	q = s / CHUNK_BLOCK_STEPS;

	return s % CHUNK_BLOCK_STEPS < 0 ? q - 1 : q;
}

void
chunk_cell_add(struct chunk_cell *c, double v)
{
	unsigned char	rank;

	if (isfinite(v)) {
		if (c->rank < CHUNK_RANK_FINITE) {
			c->rank = CHUNK_RANK_FINITE;
			c->max = v;
		} else if (c->rank == CHUNK_RANK_FINITE && v > c->max)
			c->max = v;
		return;
	}
	rank = isnan(v) ? CHUNK_RANK_NAN : v > 0 ? CHUNK_RANK_PINF :
	    CHUNK_RANK_NINF;
	if (rank > c->rank)
		c->rank = rank;
}

void
chunk_cell_merge(struct chunk_cell *c, const struct chunk_cell *b)
{
	if (b->rank == CHUNK_RANK_FINITE)
		chunk_cell_add(c, b->max);
	else if (b->rank > c->rank)
		c->rank = b->rank;
}

static inline void
put_le(unsigned char *p, uint64_t v, unsigned int bytes)
{
	unsigned int	i;

	for (i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t
get_le(const unsigned char *p, unsigned int bytes)
{
	uint64_t	v = 0;
	unsigned int	i;

	for (i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A block's summary as it is built. */
struct block_sum {
	struct chunk_cell	cell;	/* its rank; its max is ext.max */
	struct chunk_extremes	ext;
	int			have;	/* ext holds a finite point */
};

static void
block_sum_add(struct block_sum *b, int64_t step, double v)
{
	if (!isfinite(v)) {
		chunk_cell_add(&b->cell, v);
		return;
	}
	if (b->cell.rank < CHUNK_RANK_FINITE)
		b->cell.rank = CHUNK_RANK_FINITE;
	if (!b->have) {
		b->have = 1;
		b->ext.min = b->ext.max = v;
		b->ext.min_step = b->ext.max_step = step;
		return;
	}
	if (v < b->ext.min) {
		b->ext.min = v;
		b->ext.min_step = step;
	}
	if (v > b->ext.max) {
		b->ext.max = v;
		b->ext.max_step = step;
	}
}

/* Put v at p as the format's value (4 bytes with f32, else 8). */
static unsigned char *
put_value(unsigned char *p, double v, int f32)
{
	if (f32) {
		put_le(p, f32_pattern(v), 4);
		return p + 4;
	}
	put_le(p, dbl_bits(v), 8);
	return p + 8;
}

static inline double
get_value(const unsigned char *p, int f32)
{
	return f32 ? f32_widen((uint32_t)get_le(p, 4)) :
	    bits_dbl(get_le(p, 8));
}

/* The offset of step s in its block. */
static unsigned char
block_offset(int64_t s)
{
	return (unsigned char)(s - chunk_block_of(s) * CHUNK_BLOCK_STEPS);
}

size_t
chunk_blocks_encode(struct chunk_buf *out, const int64_t *steps,
    const double *vals, size_t n, int extremes)
{
	int64_t		 first = chunk_block_of(steps[0]);
	size_t		 count = (size_t)(chunk_block_of(steps[n - 1]) - first) + 1;
	size_t		 i, k, start = out->len, nfinite = 0, w;
	struct block_sum *sums;
	unsigned char	*p;
	int		 f32 = 1;
	uint32_t	 fb;

	if (count > n / CHUNK_BLOCKS_MIN_POINTS + 1)
		return 0;	/* sparse: reading the points costs less */
	sums = xcalloc(count, sizeof *sums);
	for (i = 0; i < n; i++)
		block_sum_add(&sums[chunk_block_of(steps[i]) - first],
		    steps[i], vals[i]);
	for (k = 0; k < count; k++) {
		if (sums[k].cell.rank != CHUNK_RANK_FINITE)
			continue;
		nfinite++;
		if (!f32_narrow(sums[k].ext.max, &fb) ||
		    (extremes && !f32_narrow(sums[k].ext.min, &fb)))
			f32 = 0;
	}
	w = f32 ? 4 : 8;
	chunk_buf_reserve(out, BLOCKS_HDR + count + nfinite *
	    (extremes ? 2 * w + 2 : w));
	p = out->data + out->len;
	p[0] = BLOCKS_VERSION;
	p[1] = (unsigned char)((f32 ? BLOCKS_F32 : 0) |
	    (extremes ? BLOCKS_EXTREMES : 0));
	p += BLOCKS_HDR;
	for (k = 0; k < count; k++) {
		*p++ = sums[k].cell.rank;
		if (sums[k].cell.rank != CHUNK_RANK_FINITE)
			continue;
		p = put_value(p, sums[k].ext.max, f32);
		if (!extremes)
			continue;
		p = put_value(p, sums[k].ext.min, f32);
		*p++ = block_offset(sums[k].ext.max_step);
		*p++ = block_offset(sums[k].ext.min_step);
	}
	out->len = (size_t)(p - out->data);
	free(sums);
	return out->len - start;
}

/*
 * Check the extremes at p of block k (its index) of a chunk of steps
 * [first_step, last_step]: NULL, or why they are damaged.
 */
static const char *
blocks_check_extremes(const unsigned char *p, int f32, int64_t k,
    int64_t first_step, int64_t last_step)
{
	size_t	w = f32 ? 4 : 8;
	double	max = get_value(p, f32), min = get_value(p + w, f32);
	int64_t	smax, smin;

	if (!isfinite(max) || !isfinite(min) || !(min <= max))
		return "extremes not finite or out of order";
	if (p[2 * w] >= CHUNK_BLOCK_STEPS || p[2 * w + 1] >= CHUNK_BLOCK_STEPS)
		return "an extreme's step outside its block";
	smax = k * CHUNK_BLOCK_STEPS + p[2 * w];
	smin = k * CHUNK_BLOCK_STEPS + p[2 * w + 1];
	if (smax < first_step || smax > last_step || smin < first_step ||
	    smin > last_step)
		return "an extreme's step outside its chunk";
	return NULL;
}

int
chunk_blocks_open(struct chunk_blocks *b, const void *blob, size_t len,
    int64_t first_step, int64_t last_step, char **cause)
{
	const unsigned char	*p = blob, *end;
	const char		*why;
	size_t			 k, w;

	if (blob == NULL || len < BLOCKS_HDR)
		return chunk_fail(cause, "block summaries: %zu bytes, too "
		    "short for a header", len);
	end = p + len;
	if (p[0] != BLOCKS_VERSION ||
	    (p[1] & ~(BLOCKS_F32 | BLOCKS_EXTREMES)) != 0)
		return chunk_fail(cause, "block summaries: version %u, "
		    "flags %#x unknown", p[0], p[1]);
	if (last_step < first_step)
		return chunk_fail(cause, "block summaries: steps %" PRId64
		    "..%" PRId64 " out of order", first_step, last_step);
	b->f32 = p[1] & BLOCKS_F32;
	b->extremes = (p[1] & BLOCKS_EXTREMES) != 0;
	b->first = chunk_block_of(first_step);
	b->count = (size_t)(chunk_block_of(last_step) - b->first) + 1;
	b->i = 0;
	b->finite = 1;
	b->p = p + BLOCKS_HDR;
	w = b->f32 ? 4 : 8;
	for (p = b->p, k = 0; k < b->count; k++) {
		if (p >= end || *p > CHUNK_RANK_NAN)
			return chunk_fail(cause, "block summaries: block %zu "
			    "of %zu cut short or of no rank", k, b->count);
		if (*p > CHUNK_RANK_FINITE)
			b->finite = 0;
		if (*p++ != CHUNK_RANK_FINITE)
			continue;
		if ((size_t)(end - p) < (b->extremes ? 2 * w + 2 : w))
			return chunk_fail(cause, "block summaries: "
			    "block %zu of %zu cut short", k, b->count);
		if (b->extremes && (why = blocks_check_extremes(p, b->f32,
		    b->first + (int64_t)k, first_step, last_step)) != NULL)
			return chunk_fail(cause, "block summaries: block %zu "
			    "of %zu: %s", k, b->count, why);
		p += b->extremes ? 2 * w + 2 : w;
	}
	if (p != end)
		return chunk_fail(cause, "block summaries: %zu bytes after "
		    "the last block", (size_t)(end - p));
	return 0;
}

int
chunk_blocks_have_extremes(const struct chunk_blocks *b)
{
	return b->extremes;
}

int
chunk_blocks_all_finite(const struct chunk_blocks *b)
{
	return b->finite;
}

int
chunk_blocks_next(struct chunk_blocks *b, int64_t *block,
    struct chunk_cell *cell, struct chunk_extremes *ext)
{
	size_t	w = b->f32 ? 4 : 8;
	int64_t	base;

	if (b->i >= b->count)
		return 0;
	*block = b->first + (int64_t)b->i++;
	cell->rank = *b->p++;
	cell->max = 0;
	if (cell->rank != CHUNK_RANK_FINITE)
		return 1;
	cell->max = get_value(b->p, b->f32);
	b->p += w;
	if (!b->extremes)
		return 1;
	if (ext != NULL) {
		base = *block * CHUNK_BLOCK_STEPS;
		ext->max = cell->max;
		ext->min = get_value(b->p, b->f32);
		ext->max_step = base + b->p[w];
		ext->min_step = base + b->p[w + 1];
	}
	b->p += w + 2;
	return 1;
}

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

static void
put_le(unsigned char *p, uint64_t v, unsigned int bytes)
{
	unsigned int	i;

	for (i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le(const unsigned char *p, unsigned int bytes)
{
	uint64_t	v = 0;
	unsigned int	i;

	for (i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

size_t
chunk_blocks_encode(struct chunk_buf *out, const int64_t *steps,
    const double *vals, size_t n)
{
	int64_t		 first = chunk_block_of(steps[0]);
	size_t		 count = (size_t)(chunk_block_of(steps[n - 1]) - first) + 1;
	size_t		 i, k, start = out->len, nfinite = 0;
	struct chunk_cell *cells;
	unsigned char	*p;
	int		 f32 = 1;
	uint32_t	 fb;

	if (count > n / CHUNK_BLOCKS_MIN_POINTS + 1)
		return 0;	/* sparse: reading the points costs less */
	cells = xcalloc(count, sizeof *cells);
	for (i = 0; i < n; i++)
		chunk_cell_add(&cells[chunk_block_of(steps[i]) - first],
		    vals[i]);
	for (k = 0; k < count; k++) {
		if (cells[k].rank != CHUNK_RANK_FINITE)
			continue;
		nfinite++;
		if (!f32_narrow(cells[k].max, &fb))
			f32 = 0;
	}
	chunk_buf_reserve(out, BLOCKS_HDR + count + nfinite * (f32 ? 4 : 8));
	p = out->data + out->len;
	p[0] = BLOCKS_VERSION;
	p[1] = f32 ? BLOCKS_F32 : 0;
	p += BLOCKS_HDR;
	for (k = 0; k < count; k++) {
		*p++ = cells[k].rank;
		if (cells[k].rank != CHUNK_RANK_FINITE)
			continue;
		if (f32) {
			put_le(p, f32_pattern(cells[k].max), 4);
			p += 4;
		} else {
			put_le(p, dbl_bits(cells[k].max), 8);
			p += 8;
		}
	}
	out->len = (size_t)(p - out->data);
	free(cells);
	return out->len - start;
}

int
chunk_blocks_open(struct chunk_blocks *b, const void *blob, size_t len,
    int64_t first_step, int64_t last_step, char **cause)
{
	const unsigned char	*p = blob, *end;
	size_t			 k, w;

	if (blob == NULL || len < BLOCKS_HDR)
		return chunk_fail(cause, "block summaries: %zu bytes, too "
		    "short for a header", len);
	end = p + len;
	if (p[0] != BLOCKS_VERSION || (p[1] & ~BLOCKS_F32) != 0)
		return chunk_fail(cause, "block summaries: version %u, "
		    "flags %#x unknown", p[0], p[1]);
	if (last_step < first_step)
		return chunk_fail(cause, "block summaries: steps %" PRId64
		    "..%" PRId64 " out of order", first_step, last_step);
	b->f32 = p[1] & BLOCKS_F32;
	b->first = chunk_block_of(first_step);
	b->count = (size_t)(chunk_block_of(last_step) - b->first) + 1;
	b->i = 0;
	b->p = p + BLOCKS_HDR;
	w = b->f32 ? 4 : 8;
	for (p = b->p, k = 0; k < b->count; k++) {
		if (p >= end || *p > CHUNK_RANK_NAN)
			return chunk_fail(cause, "block summaries: block %zu "
			    "of %zu cut short or of no rank", k, b->count);
		if (*p++ == CHUNK_RANK_FINITE) {
			if ((size_t)(end - p) < w)
				return chunk_fail(cause, "block summaries: "
				    "block %zu of %zu cut short", k, b->count);
			p += w;
		}
	}
	if (p != end)
		return chunk_fail(cause, "block summaries: %zu bytes after "
		    "the last block", (size_t)(end - p));
	return 0;
}

int
chunk_blocks_next(struct chunk_blocks *b, int64_t *block,
    struct chunk_cell *cell)
{
	if (b->i >= b->count)
		return 0;
	*block = b->first + (int64_t)b->i++;
	cell->rank = *b->p++;
	cell->max = 0;
	if (cell->rank != CHUNK_RANK_FINITE)
		return 1;
	if (b->f32) {
		cell->max = f32_widen((uint32_t)get_le(b->p, 4));
		b->p += 4;
	} else {
		cell->max = bits_dbl(get_le(b->p, 8));
		b->p += 8;
	}
	return 1;
}

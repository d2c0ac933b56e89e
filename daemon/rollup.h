/* SPDX-License-Identifier: MIT */
/*
 * rollup: the summary of one page of a series (ROLLUP_PAGE_STEPS fixed
 * steps), block by block (ROLLUP_BLOCK_STEPS steps each): how many
 * points a block holds, its finite min and max with the first step of
 * each, and which non-finite classes occur in it.  Charts and heatmaps
 * over long ranges read these instead of the points (schema 0003's
 * rollups table says who keeps them).  This module is the only one that
 * writes, reads or validates the format.  Pure code on caller-owned
 * structs: any thread, one thread per struct.
 *
 * Format, version 1 (a varint is unsigned LEB128, minimal, at most 10
 * bytes):
 *
 *   byte 0   version, 1
 *   byte 1   log2 of the block's steps, 7
 *   byte 2   blocks in a page, 32
 *   varint   the page number (a page holds steps page * 4096 ..
 *            page * 4096 + 4095)
 *   then, for each block that holds points, by ascending index:
 *   byte     the block's index in the page, 0 .. 31
 *   varint   n, the block's points, 1 .. 128
 *   byte     flags: 0x01 a NaN occurs, 0x02 +Inf occurs, 0x04 -Inf
 *            occurs, 0x08 FINITE (some value is finite: the fields
 *            below follow), 0x10 F32 (min and max are float32 patterns,
 *            4 bytes each, else binary64, 8 bytes); other bits are 0
 *   [byte    min's step - the block's first step, 0 .. 127
 *    byte    max's step - the block's first step
 *    4|8     min, little-endian
 *    4|8     max]
 *
 * min and max are over the finite values, each at the first step that
 * holds it (-0.0 and 0.0 tie); min <= max; a block without FINITE has
 * a non-finite flag; the flags' classes and the finite values fit in n.
 * A reader checks all of this, and that the blob ends after the last
 * block; anything else is damage.
 */
#ifndef GW_ROLLUP_H
#define GW_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "chunk.h"

#define ROLLUP_VERSION		1
#define ROLLUP_BLOCK_SHIFT	7
#define ROLLUP_BLOCK_STEPS	(1 << ROLLUP_BLOCK_SHIFT)	/* 128 */
#define ROLLUP_PAGE_BLOCKS	32
#define ROLLUP_PAGE_STEPS	(ROLLUP_BLOCK_STEPS * ROLLUP_PAGE_BLOCKS)
#define ROLLUP_BLOB_MAX		(3 + 10 + ROLLUP_PAGE_BLOCKS * (6 + 16))

#define ROLLUP_NAN		0x01	/* block flags */
#define ROLLUP_PINF		0x02
#define ROLLUP_NINF		0x04
#define ROLLUP_FINITE		0x08
#define ROLLUP_F32		0x10

/* The page holding step (steps are >= 0). */
#define ROLLUP_PAGE_OF(step)	((step) / ROLLUP_PAGE_STEPS)

/*
 * Append to out the page blob of page's points steps[0..n-1] and
 * vals[0..n-1]: every point the series stores in that page, ascending
 * steps.  Returns the bytes appended, or 0 (nothing appended) when n is
 * 0, page is negative, or a step is out of the page or out of order.
 */
size_t	rollup_encode(struct chunk_buf *out, int64_t page,
	    const int64_t *steps, const double *vals, size_t n);

/* One block of a page, as a reader returns it. */
struct rollup_block {
	int64_t		 first;		/* the block's first step */
	int64_t		 last;		/* first + ROLLUP_BLOCK_STEPS - 1 */
	size_t		 n;		/* points */
	unsigned int	 flags;		/* ROLLUP_NAN .. ROLLUP_FINITE */
	double		 min;		/* valid with ROLLUP_FINITE */
	double		 max;
	int64_t		 min_step;
	int64_t		 max_step;
};

/* A cursor over a page's blocks; it borrows the blob.  Fields private. */
struct rollup_reader {
	const unsigned char	*p;
	const unsigned char	*end;
	int64_t			 page;
	int			 prev;		/* the last block's index */
	const char		*error;		/* static; NULL unless damaged */
};

/*
 * Start reading blob, which the row of page says it is: 0, or -1 and an
 * allocated *cause (unless cause is NULL) when its header is damaged.
 */
int	rollup_reader_init(struct rollup_reader *r, const void *blob,
	    size_t len, int64_t page, char **cause);
/*
 * The next block holding points into *b: 1, 0 after the last, -1 when
 * the blob is damaged (and every call after).
 */
int	rollup_next(struct rollup_reader *r, struct rollup_block *b);
/* Why rollup_next() returned -1: a static string; NULL if it did not. */
const char *rollup_reader_error(const struct rollup_reader *r);

#endif

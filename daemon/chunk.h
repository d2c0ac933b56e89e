/* SPDX-License-Identifier: MIT */
/*
 * chunk: the compressed on-disk form of a run of one series' points,
 * steps and values together in one blob.  Steps are coded delta of
 * delta and values by XOR with the previous value, as in Facebook's
 * Gorilla and Prometheus' XOR chunks; values that are all float32
 * widened to double (PyTorch's norms) are coded as their 32-bit
 * patterns.  Everything round-trips bit for bit.  This module is the
 * only one that writes, reads or validates the format.  Pure code on
 * caller-owned structs: any thread, one thread per struct.
 *
 * Format, version 1.  A varint is unsigned LEB128 (7 bits a byte, low
 * group first, high bit = more follows), at most 10 bytes, minimal (no
 * trailing zero group); a zvarint is the varint of the zigzag code
 * ((x << 1) ^ (x >> 63)).
 *
 *   byte 0   version, 1
 *   byte 1   flags: 0x01 F32 (values are float32 patterns),
 *            0x02 STEPS (a step code precedes every value after the
 *            first); the other bits are 0
 *   varint   n, the number of points, 1 .. CHUNK_MAX_POINTS
 *   zvarint  first step
 *   varint   span = last step - first step, as uint64; only if n > 1.
 *            span >= n - 1 and first + span <= INT64_MAX.
 *   bits     the points, MSB first within each byte, zero-padded to a
 *            byte boundary; the blob ends there.
 *
 * Without STEPS the steps are first + i * (span / (n - 1)), and span
 * must be a multiple of n - 1: consecutive steps (the common case) and
 * any fixed stride cost no bits.  STEPS needs n > 1.
 *
 * W is the value width: 32 with F32, else 64.  A value's pattern is
 * its IEEE-754 bits; with F32 it is the float32 whose widening is the
 * value: finite floats widen as C's (double)f, and the other patterns
 * (exponent all ones: infinities and NaNs, payload included) keep the
 * sign and put the 23 mantissa bits on top of the 52.  The bits are:
 *
 *   W bits   the first value's pattern
 *   then for each point i = 1 .. n - 1:
 *   [step]   with STEPS: the delta of delta dod = d_i - d_{i-1}, where
 *            d_i = step_i - step_{i-1} and d_0 = span / (n - 1) rounded
 *            down, modulo 2^64 and read as two's complement:
 *              0                   dod = 0
 *              10   + 7 bits       -64 .. 63
 *              110  + 14 bits      -8192 .. 8191
 *              1110 + 24 bits      -2^23 .. 2^23 - 1
 *              1111 + 64 bits      any
 *            Every d_i is >= 1, and the last step is first + span.
 *   value    x = pattern XOR the previous pattern:
 *              0                   x = 0 (the value repeats)
 *              10   + sig bits     x >> trail, in the current window
 *              11   + lead + sig-1 + sig bits:  a new window
 *            lead is 5 bits (4 with F32) and sig - 1 is 6 bits (5 with
 *            F32); lead + sig <= W, trail = W - lead - sig.  The
 *            window starts as lead 0, sig W.  (The writer caps lead at
 *            31, 15 with F32, leaving more zeros in the sig bits, and
 *            opens a new window only when it saves bits; readers take
 *            any valid choice.)
 *
 * A reader checks everything above: a blob that breaks any rule, is cut
 * short or has bytes or set padding bits after the last point is
 * damaged.  There is no checksum: a flipped payload bit may still
 * decode, to other values.
 */
#ifndef GW_CHUNK_H
#define GW_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_VERSION		1
#define CHUNK_MAX_POINTS	(1u << 24)	/* a sanity bound for readers */
#define CHUNK_F32		0x01		/* header flags */
#define CHUNK_STEPS		0x02

/* A growable byte buffer; data is NULL until something is appended. */
struct chunk_buf {
	unsigned char	*data;
	size_t		 len;
	size_t		 cap;
};

void	chunk_buf_init(struct chunk_buf *b);
/* Free the bytes; the buffer can be init'ed again. */
void	chunk_buf_cleanup(struct chunk_buf *b);
/* Room for more bytes after len. */
void	chunk_buf_reserve(struct chunk_buf *b, size_t more);

/*
 * Append the chunk of steps[0..n-1] and vals[0..n-1] to out.  Steps
 * must be strictly ascending and 1 <= n <= CHUNK_MAX_POINTS; otherwise
 * nothing is appended and 0 is returned.  Returns the bytes appended.
 */
size_t	chunk_encode(struct chunk_buf *out, const int64_t *steps,
	    const double *vals, size_t n);

/*
 * As chunk_encode(), of the longest prefix of the points (one at least)
 * whose blob takes at most max_bytes (CHUNK_FIT_MIN or more): *used is
 * its count.  The blob is the prefix's chunk_encode().
 */
#define CHUNK_FIT_MIN	64
size_t	chunk_encode_fit(struct chunk_buf *out, const int64_t *steps,
	    const double *vals, size_t n, size_t max_bytes, size_t *used);

/* What a chunk's header says. */
struct chunk_info {
	size_t		 n;
	int64_t		 first_step;
	int64_t		 last_step;
	unsigned int	 flags;		/* CHUNK_F32, CHUNK_STEPS */
	size_t		 hdrlen;	/* bytes before the bit stream */
};

/*
 * Read blob's header only (O(1): n, first and last step).  0, or -1
 * and an allocated *cause (unless cause is NULL) when it is damaged.
 * The points themselves are checked only by reading them.
 */
int	chunk_info(const void *blob, size_t len, struct chunk_info *info,
	    char **cause);

#define CHUNK_READER_BUF	32	/* points a reader decodes ahead */

/*
 * A cursor over a chunk's points.  It borrows the blob, which must
 * outlive it, and never reads outside blob[0..len-1].  Fields are
 * private but for info.
 */
struct chunk_reader {
	struct chunk_info	 info;
	const unsigned char	*blob;
	const unsigned char	*p;	/* the next byte to load */
	const unsigned char	*end;
	uint64_t		 acc;	/* bits, left-aligned */
	unsigned int		 avail;	/* valid bits in acc */
	unsigned int		 wlead;	/* the value window */
	unsigned int		 wsig;
	uint64_t		 pattern;	/* the previous value's */
	uint64_t		 delta;		/* the previous step delta */
	uint64_t		 left;		/* last step - current step */
	int64_t			 step;
	size_t			 i;		/* points returned */
	const char		*error;		/* static; NULL unless damaged */
	unsigned int		 bpos;		/* the decoded-ahead points */
	unsigned int		 blen;
	int64_t			 bsteps[CHUNK_READER_BUF];
	double			 bvals[CHUNK_READER_BUF];
};

/* Start reading blob (validates the header as chunk_info()). */
int	chunk_reader_init(struct chunk_reader *r, const void *blob,
	    size_t len, char **cause);
/*
 * The next point into *step and *v: 1, 0 after the last point, or -1
 * when the blob is damaged (and every call after).  Points before the
 * damage are returned first; the last point is returned only once the
 * whole blob has checked out.
 */
int	chunk_next(struct chunk_reader *r, int64_t *step, double *v);
/* Why chunk_next() returned -1: a static string; NULL if it did not. */
const char *chunk_reader_error(const struct chunk_reader *r);

/*
 * Decode a whole chunk into steps[0..] and vals[0..] (either may be
 * NULL) and its point count into *n.  0, or -1 and an allocated *cause
 * (unless cause is NULL) when the blob is damaged or holds more than
 * cap points (then *n is its count).  The arrays may be written on
 * failure.
 */
int	chunk_decode(const void *blob, size_t len, int64_t *steps,
	    double *vals, size_t cap, size_t *n, char **cause);

/* The store's summary columns of a chunk. */
struct chunk_summary {
	size_t		 nfinite;	/* min and max are valid only if > 0 */
	size_t		 nonfinite;	/* NaNs and infinities */
	double		 min;
	int64_t		 min_step;	/* the first step holding min */
	double		 max;
	int64_t		 max_step;	/* the first step holding max */
};

/*
 * Summarize points: min and max over the finite values, with the first
 * step of each (-0.0 and 0.0 tie), and the count of non-finite ones.
 */
void	chunk_summarize(struct chunk_summary *s, const int64_t *steps,
	    const double *vals, size_t n);

/*
 * Block summaries (chunk_blocks.c): for each aligned block of
 * CHUNK_BLOCK_STEPS steps (block k holds steps k * B .. k * B + B - 1)
 * from the one of a chunk's first step to the one of its last, what a
 * heatmap cell of those of its points would show: the largest finite
 * value, unless a non-finite one outranks it.  A heatmap whose buckets
 * are whole blocks then reads no point.  Format, version 1:
 *
 *   byte 0   version, 1
 *   byte 1   flags: 0x01 F32 (the finite values are float32 patterns),
 *            0x02 EXTREMES (finite blocks carry their min too); the
 *            other bits are 0
 *   then for each block, from the one of the chunk's first step to the
 *   one of its last (its row's columns say which), a rank byte, and with
 *   CHUNK_RANK_FINITE the max: 4 bytes (the float32 whose widening it
 *   is) with F32, else 8 (IEEE-754 binary64), little-endian.  With
 *   EXTREMES a finite block's max is followed by its min, alike, then
 *   one byte each: the offset in the block (0 .. 127) of the first step
 *   holding the max, then of the one holding the min.  Both values are
 *   finite, min <= max, and both steps lie in the chunk's range.
 *
 * A finite rank means every point of the block is finite, so with
 * EXTREMES a downsampled line whose buckets are whole blocks reads no
 * point either (query_points).  The store writes EXTREMES for series
 * drawn as lines (all but the layer kinds, which the heatmap draws).
 */
#define CHUNK_BLOCK_STEPS	128

/* A cell's rank: the higher one shows; NaN over +Inf over -Inf. */
enum chunk_rank {
	CHUNK_RANK_NONE,	/* no point in the cell */
	CHUNK_RANK_FINITE,
	CHUNK_RANK_NINF,
	CHUNK_RANK_PINF,
	CHUNK_RANK_NAN
};

/*
 * What a heatmap cell shows of the points added to it: its rank, and
 * with CHUNK_RANK_FINITE the largest value (the first of equal ones).
 * Zeroed, it is empty.
 */
struct chunk_cell {
	double		 max;
	unsigned char	 rank;		/* enum chunk_rank */
};

/*
 * A finite block's min and max, each at the first step holding it
 * (-0.0 and 0.0 tie), with EXTREMES.
 */
struct chunk_extremes {
	double		 min;
	int64_t		 min_step;
	double		 max;
	int64_t		 max_step;
};

/* Add the value v to c. */
void	chunk_cell_add(struct chunk_cell *c, double v);
/* Add every point of the cell b to c. */
void	chunk_cell_merge(struct chunk_cell *c, const struct chunk_cell *b);

/* The block of step s (floor(s / CHUNK_BLOCK_STEPS)). */
int64_t	chunk_block_of(int64_t s);

/*
 * Append the block summaries of steps[0..n-1] (ascending, n >= 1) and
 * vals to out, with EXTREMES if extremes.  Returns the bytes appended,
 * or 0 (nothing appended) when the points are too sparse for summaries
 * to pay: more blocks than one for every CHUNK_BLOCKS_MIN_POINTS points,
 * plus one.
 */
#define CHUNK_BLOCKS_MIN_POINTS	8
size_t	chunk_blocks_encode(struct chunk_buf *out, const int64_t *steps,
	    const double *vals, size_t n, int extremes);

/* A cursor over block summaries; fields are private. */
struct chunk_blocks {
	int64_t			 first;		/* the first block's index */
	size_t			 count;
	size_t			 i;
	int			 f32;
	int			 extremes;
	int			 finite;	/* no non-finite block */
	const unsigned char	*p;
};

/*
 * Check blob, the summaries of a chunk from first_step to last_step
 * (every block), and start reading it: 0, or -1 and an allocated
 * *cause (unless cause is NULL) when it is damaged.
 */
int	chunk_blocks_open(struct chunk_blocks *b, const void *blob,
	    size_t len, int64_t first_step, int64_t last_step, char **cause);
/* 1 if the summaries opened in b carry EXTREMES. */
int	chunk_blocks_have_extremes(const struct chunk_blocks *b);
/* 1 if no block of b holds a non-finite point (its rank is above finite). */
int	chunk_blocks_all_finite(const struct chunk_blocks *b);
/*
 * The next block's index and cell: 1, or 0 at the end.  With EXTREMES
 * and a finite cell, *ext (unless NULL) gets its min and max.
 */
int	chunk_blocks_next(struct chunk_blocks *b, int64_t *block,
	    struct chunk_cell *cell, struct chunk_extremes *ext);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * chunk: the chunk codec's encoder, and a chunk's min/max summary;
 * chunk.h documents the format byte by byte, chunk_read.c reads and
 * validates it.  The encoder reserves the worst case (about 19 bytes a
 * point) up front and then stores whole 64-bit words without bounds
 * checks.  Pure code on caller-owned buffers; any thread.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "chunk_int.h"
#include "xmalloc.h"

/*
 * Bits go into acc, left-aligned; after every put the whole bytes are
 * stored (8 bytes written, fill / 8 of them kept), so fill stays < 8.
 */
struct bitw {
	unsigned char	*p;
	uint64_t	 acc;
	unsigned int	 fill;
};

/*
 * Append the low n bits of v (0 <= n <= 56; v < 2^n).  Writes 8 bytes
 * at w->p: the buffer has that much slack.
 */
INLINE void
bitw_put(struct bitw *w, uint64_t v, unsigned int n)
{
	w->acc |= v << 1 << (63 - w->fill - n);
	w->fill += n;
	store_be64(w->p, w->acc);
	w->p += w->fill >> 3;
	w->acc <<= w->fill & ~7U;
	w->fill &= 7;
}

/* The last partial byte, zero-padded. */
static void
bitw_finish(struct bitw *w)
{
	if (w->fill > 0)
		*w->p++ = (unsigned char)(w->acc >> 56);
	w->fill = 0;
}

static size_t
put_varint(unsigned char *p, uint64_t v)
{
	size_t	n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

INLINE void
put_dod(struct bitw *w, uint64_t dod)
{
	int64_t	s = u2i(dod);

	if (s == 0)
		bitw_put(w, 0, 1);
	else if (s >= -64 && s < 64)
		bitw_put(w, UINT64_C(0x2) << 7 | (dod & 0x7f), 9);
	else if (s >= -8192 && s < 8192)
		bitw_put(w, UINT64_C(0x6) << 14 | (dod & 0x3fff), 17);
	else if (s >= -(INT64_C(1) << 23) && s < INT64_C(1) << 23)
		bitw_put(w, UINT64_C(0xe) << 24 | (dod & 0xffffff), 28);
	else {
		bitw_put(w, UINT64_C(0xf) << 32 | dod >> 32, 36);
		bitw_put(w, dod & 0xffffffff, 32);
	}
}

/*
 * The code of x = this pattern ^ the previous one, in a width of wd
 * bits.  The window is reused when x fits it and a new one would not
 * save more than its own header costs.  Branches, not masks: they
 * are well predicted (windows are mostly reused) and let the CPU run
 * ahead of the chain from one window to the next.
 */
INLINE void
put_xor(struct bitw *w, unsigned int *wlead, unsigned int *wsig,
    uint64_t x, const unsigned int wd)
{
	const unsigned int	lb = LEAD_BITS(wd), sb = SIG_BITS(wd);
	const unsigned int	hbits = 2 + lb + sb;
	unsigned int		lead, trail, wtrail, sig, nb, hn, nhi, nlo;
	uint64_t		head, pay;

	if (x == 0) {
		bitw_put(w, 0, 1);
		return;
	}
	lead = (unsigned int)__builtin_clzll(x) - (64 - wd);
	trail = (unsigned int)__builtin_ctzll(x);
	if (lead > LEAD_MAX(wd))
		lead = LEAD_MAX(wd);
	sig = wd - lead - trail;
	wtrail = wd - *wlead - *wsig;
	if (lead >= *wlead && trail >= wtrail && *wsig + 2 <= hbits + sig) {
		nb = *wsig;
		pay = x >> wtrail;
		head = 2;
		hn = 2;
	} else {
		nb = sig;
		pay = x >> trail;
		head = (UINT64_C(3) << lb | lead) << sb | (sig - 1);
		hn = hbits;
		*wlead = lead;
		*wsig = sig;
	}
	if (wd == 32) {
		bitw_put(w, head << nb | pay, hn + nb);
		return;
	}
	nhi = nb > 32 ? nb - 32 : 0;
	nlo = nb - nhi;
	bitw_put(w, head << nhi | pay >> nlo, hn + nhi);
	bitw_put(w, pay & ((UINT64_C(1) << nlo) - 1), nlo);
}

/*
 * The bit stream of chunk.h; inlined once per value width and use.
 * With fit, stops before the first point that would take the stream
 * (from base) past budget bytes; returns the points encoded.
 */
INLINE size_t
encode_points(struct bitw *out, const int64_t *steps, const double *vals,
    size_t n, unsigned int flags, uint64_t d0, const unsigned char *base,
    size_t budget, const unsigned int wd, const int fit)
{
	struct bitw	lw = *out, *w = &lw;	/* a local: no aliasing */
	struct bitw	before = lw;
	unsigned int	wlead = 0, wsig = wd;
	uint64_t	prev, pat, d, delta = d0;
	size_t		i;

	if (wd == 32) {
		prev = f32_pattern(vals[0]);
		bitw_put(w, prev, 32);
	} else {
		prev = dbl_bits(vals[0]);
		bitw_put(w, prev >> 32, 32);
		bitw_put(w, prev & 0xffffffff, 32);
	}
	for (i = 1; i < n; i++) {
		before = lw;
		if (flags & CHUNK_STEPS) {
			d = (uint64_t)steps[i] - (uint64_t)steps[i - 1];
			put_dod(w, d - delta);
			delta = d;
		}
		if (wd == 32)
			pat = f32_pattern(vals[i]);
		else
			pat = dbl_bits(vals[i]);
		put_xor(w, &wlead, &wsig, pat ^ prev, wd);
		prev = pat;
		if (fit && (size_t)(w->p - base) + (w->fill != 0) > budget) {
			lw = before;
			break;
		}
	}
	*out = lw;
	return i;
}

void
chunk_buf_init(struct chunk_buf *b)
{
	memset(b, 0, sizeof *b);
}

void
chunk_buf_cleanup(struct chunk_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void
chunk_buf_reserve(struct chunk_buf *b, size_t more)
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

/*
 * The flags of the points steps/vals[0..n-1]: 0 with *bad set when the
 * steps do not ascend.  *regular and *narrow are the longest prefixes
 * with one step delta and with float32 values.
 */
static unsigned int
chunk_flags(const int64_t *steps, const double *vals, size_t n,
    size_t *regular, size_t *narrow, int *bad)
{
	unsigned int	flags = 0;
	uint64_t	d0 = 0;
	uint32_t	f;
	size_t		i;

	*bad = 0;
	*regular = n;
	if (n > 1)
		d0 = (uint64_t)steps[1] - (uint64_t)steps[0];
	for (i = 1; i < n; i++) {
		if (steps[i] <= steps[i - 1]) {
			*bad = 1;
			return 0;
		}
		if ((uint64_t)steps[i] - (uint64_t)steps[i - 1] != d0 &&
		    *regular == n)
			*regular = i;
	}
	if (*regular < n)
		flags |= CHUNK_STEPS;
	for (i = 0; i < n && f32_narrow(vals[i], &f); i++)
		;
	*narrow = i;
	if (i == n)
		flags |= CHUNK_F32;
	return flags;
}

/*
 * Append the chunk of the longest prefix of n points, flags as given,
 * whose bit stream takes at most budget bytes: its point count (0 when
 * not even the first fits).
 */
static size_t
chunk_encode_prefix(struct chunk_buf *out, const int64_t *steps,
    const double *vals, size_t n, unsigned int flags, size_t budget)
{
	struct bitw	 w;
	unsigned char	*start, *base;
	uint64_t	 span = 0, d0 = 0, zz;
	size_t		 k, hdr, room;

	room = (n * POINT_MAX_BITS + 64) / 8;
	if (room > budget)
		room = budget;
	chunk_buf_reserve(out, HDR_MAX + room + 32);
	start = out->data + out->len;
	base = start + HDR_MAX;
	if (n > 1)
		d0 = ((uint64_t)steps[n - 1] - (uint64_t)steps[0]) / (n - 1);
	w.p = base;
	w.acc = 0;
	w.fill = 0;
	if (budget == SIZE_MAX)		/* chunk_encode(): no need to look */
		k = flags & CHUNK_F32 ?
		    encode_points(&w, steps, vals, n, flags, d0, base, budget,
		    32, 0) :
		    encode_points(&w, steps, vals, n, flags, d0, base, budget,
		    64, 0);
	else
		k = flags & CHUNK_F32 ?
		    encode_points(&w, steps, vals, n, flags, d0, base, budget,
		    32, 1) :
		    encode_points(&w, steps, vals, n, flags, d0, base, budget,
		    64, 1);
	if ((size_t)(w.p - base) + (w.fill != 0) > budget)
		return 0;	/* the first point alone is too wide */
	bitw_finish(&w);
	/* The header, now that the count is known, then the bits. */
	if (k == 1)
		flags &= ~(unsigned int)CHUNK_STEPS;
	start[0] = CHUNK_VERSION;
	start[1] = (unsigned char)flags;
	hdr = 2 + put_varint(start + 2, k);
	zz = (uint64_t)steps[0] << 1 ^ -((uint64_t)steps[0] >> 63);
	hdr += put_varint(start + hdr, zz);
	if (k > 1) {
		span = (uint64_t)steps[k - 1] - (uint64_t)steps[0];
		hdr += put_varint(start + hdr, span);
	}
	memmove(start + hdr, base, (size_t)(w.p - base));
	out->len += hdr + (size_t)(w.p - base);
	return k;
}

size_t
chunk_encode(struct chunk_buf *out, const int64_t *steps,
    const double *vals, size_t n)
{
	size_t		len = out->len, regular, narrow;
	unsigned int	flags;
	int		bad;

	if (n == 0 || n > CHUNK_MAX_POINTS)
		return 0;
	flags = chunk_flags(steps, vals, n, &regular, &narrow, &bad);
	if (bad)
		return 0;
	(void)chunk_encode_prefix(out, steps, vals, n, flags, SIZE_MAX);
	return out->len - len;
}

/*
 * chunk_encode_fit() of points whose flags are known: the prefix's own
 * chunk_encode() when it was cut (a cut prefix with STEPS needs its own
 * span: it is encoded in a margin left for its first step code).
 */
static size_t
chunk_fit_flags(struct chunk_buf *out, const int64_t *steps,
    const double *vals, size_t n, unsigned int flags, size_t max_bytes)
{
	size_t	len = out->len, k;

	k = chunk_encode_prefix(out, steps, vals, n, flags, max_bytes -
	    HDR_MAX - (flags & CHUNK_STEPS ? 16 : 0));
	if (k < n && k > 0 && (flags & CHUNK_STEPS)) {
		out->len = len;
		(void)chunk_encode(out, steps, vals, k);
	}
	return k;
}

size_t
chunk_encode_fit(struct chunk_buf *out, const int64_t *steps,
    const double *vals, size_t n, size_t max_bytes, size_t *used)
{
	size_t		len = out->len, regular, narrow, cuts[3], k, best = 0;
	size_t		i, ncut = 0;
	unsigned int	pf;
	int		bad;

	*used = 0;
	if (n == 0 || n > CHUNK_MAX_POINTS || max_bytes < CHUNK_FIT_MIN)
		return 0;
	(void)chunk_flags(steps, vals, n, &regular, &narrow, &bad);
	if (bad)
		return 0;
	/*
	 * A prefix up to the first point that breaks the stride, or the
	 * first that is not a float32, is coded narrower than the whole:
	 * fit each such prefix with its own flags, shortest first, while
	 * they fit whole.
	 */
	if (regular < n)
		cuts[ncut++] = regular;
	if (narrow > 0 && narrow < n && narrow != regular)
		cuts[ncut++] = narrow;
	if (ncut == 2 && cuts[0] > cuts[1]) {
		cuts[2] = cuts[0];
		cuts[0] = cuts[1];
		cuts[1] = cuts[2];
	}
	cuts[ncut++] = n;
	for (i = 0; i < ncut; i++) {
		pf = (cuts[i] > regular ? CHUNK_STEPS : 0) |
		    (cuts[i] <= narrow ? CHUNK_F32 : 0);
		out->len = len;
		k = chunk_fit_flags(out, steps, vals, cuts[i], pf, max_bytes);
		if (k > best)
			best = k;
		if (k < cuts[i])
			break;
	}
	/* The blob in out is best's unless a shorter prefix won. */
	if (k != best) {
		out->len = len;
		(void)chunk_encode(out, steps, vals, best);
	}
	*used = best;
	return out->len - len;
}

void
chunk_summarize(struct chunk_summary *s, const int64_t *steps,
    const double *vals, size_t n)
{
	size_t	i;

	memset(s, 0, sizeof *s);
	for (i = 0; i < n; i++) {
		if (!isfinite(vals[i])) {
			s->nonfinite++;
			continue;
		}
		if (s->nfinite++ == 0 || vals[i] < s->min) {
			s->min = vals[i];
			s->min_step = steps[i];
		}
		if (s->nfinite == 1 || vals[i] > s->max) {
			s->max = vals[i];
			s->max_step = steps[i];
		}
	}
}

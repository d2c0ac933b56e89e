/* SPDX-License-Identifier: MIT */
/*
 * chunk_read: the chunk codec's reader and validator (chunk.h has the
 * format and the rules).  It loads 8 bytes at a time while 8 remain and
 * single bytes after that, so it never touches memory past the blob,
 * and every loop it runs is bounded by the point count in the header.
 * Pure code on caller-owned readers; any thread, one thread a reader.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "chunk_int.h"
#include "xmalloc.h"

int
chunk_fail(char **cause, const char *fmt, ...)
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

/* A minimal varint of at most 10 bytes from [*pp, end). */
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

int
chunk_info(const void *blob, size_t len, struct chunk_info *info,
    char **cause)
{
	const unsigned char	*b = blob, *p, *end;
	uint64_t		 n, zz, span = 0, need, have;
	unsigned int		 wd;

	memset(info, 0, sizeof *info);
	if (len < 2)
		return chunk_fail(cause, "chunk: %zu bytes, too short for a "
		    "header", len);
	if (b[0] != CHUNK_VERSION)
		return chunk_fail(cause, "chunk: version %u unknown (this "
		    "reads %u)", b[0], CHUNK_VERSION);
	if (b[1] & ~(CHUNK_F32 | CHUNK_STEPS))
		return chunk_fail(cause, "chunk: unknown flags 0x%02x", b[1]);
	p = b + 2;
	end = b + len;
	if (get_varint(&p, end, &n) == -1)
		return chunk_fail(cause, "chunk: bad varint for n");
	if (n == 0 || n > CHUNK_MAX_POINTS)
		return chunk_fail(cause, "chunk: n = %llu out of 1 .. %u",
		    (unsigned long long)n, CHUNK_MAX_POINTS);
	if (get_varint(&p, end, &zz) == -1)
		return chunk_fail(cause, "chunk: bad varint for the first "
		    "step");
	info->first_step = u2i(zz >> 1 ^ -(zz & 1));
	if (n > 1 && get_varint(&p, end, &span) == -1)
		return chunk_fail(cause, "chunk: bad varint for the span");
	if (span > (uint64_t)INT64_MAX - (uint64_t)info->first_step)
		return chunk_fail(cause, "chunk: first step %lld + span %llu "
		    "overflows", (long long)info->first_step,
		    (unsigned long long)span);
	if (span < n - 1)
		return chunk_fail(cause, "chunk: span %llu too short for %llu "
		    "steps", (unsigned long long)span, (unsigned long long)n);
	if (n == 1 && (b[1] & CHUNK_STEPS))
		return chunk_fail(cause, "chunk: step codes in a one-point "
		    "chunk");
	if (n > 1 && !(b[1] & CHUNK_STEPS) && span % (n - 1) != 0)
		return chunk_fail(cause, "chunk: span %llu not a multiple of "
		    "%llu strides", (unsigned long long)span,
		    (unsigned long long)(n - 1));
	/* Each point after the first costs at least a bit per code. */
	wd = b[1] & CHUNK_F32 ? 32 : 64;
	need = wd + (n - 1) * (b[1] & CHUNK_STEPS ? 2 : 1);
	have = (uint64_t)(end - p) * 8;
	if (need > have)
		return chunk_fail(cause, "chunk: %llu points need %llu bits or "
		    "more, the blob has %llu", (unsigned long long)n,
		    (unsigned long long)need, (unsigned long long)have);
	info->n = (size_t)n;
	info->last_step = u2i((uint64_t)info->first_step + span);
	info->flags = b[1];
	info->hdrlen = (size_t)(p - b);
	return 0;
}

int
chunk_reader_init(struct chunk_reader *r, const void *blob, size_t len,
    char **cause)
{
	memset(r, 0, sizeof *r);
	if (chunk_info(blob, len, &r->info, cause) == -1) {
		r->error = "damaged header";
		return -1;
	}
	r->blob = blob;
	r->p = r->blob + r->info.hdrlen;
	r->end = r->blob + len;
	r->wlead = 0;
	r->wsig = r->info.flags & CHUNK_F32 ? 32 : 64;
	r->step = r->info.first_step;
	r->left = (uint64_t)r->info.last_step - (uint64_t)r->info.first_step;
	if (r->info.n > 1)
		r->delta = r->left / (r->info.n - 1);
	return 0;
}

const char *
chunk_reader_error(const struct chunk_reader *r)
{
	return r->error;
}

/* Top up acc: to 56 bits or more unless the blob ends first. */
static void
reader_refill(struct chunk_reader *r)
{
	if (r->end - r->p >= 8) {
		/* Bits of a partly loaded byte are ORed in again, alike. */
		r->acc |= load_be64(r->p) >> r->avail;
		r->p += (63 - r->avail) >> 3;
		r->avail |= 56;
		return;
	}
	while (r->avail <= 56 && r->p < r->end) {
		r->acc |= (uint64_t)*r->p++ << (56 - r->avail);
		r->avail += 8;
	}
}

/* The next n bits (1 <= n <= 56) into *v; -1 past the blob's end. */
static inline int
take(struct chunk_reader *r, unsigned int n, uint64_t *v)
{
	if (r->avail < n) {
		reader_refill(r);
		if (r->avail < n)
			return -1;
	}
	*v = r->acc >> (64 - n);
	r->acc <<= n;
	r->avail -= n;
	return 0;
}

/* As take(), for 1 <= n <= 64. */
static inline int
take_wide(struct chunk_reader *r, unsigned int n, uint64_t *v)
{
	uint64_t	hi, lo;

	if (n <= 56)
		return take(r, n, v);
	if (take(r, n - 32, &hi) == -1 || take(r, 32, &lo) == -1)
		return -1;
	*v = hi << 32 | lo;
	return 0;
}

/* The step code: the next delta into *d. */
static inline int
read_step(struct chunk_reader *r, uint64_t *d)
{
	static const unsigned int	 width[] = { 7, 14, 24 };
	uint64_t			 bit, v, m;
	unsigned int			 k;

	for (k = 0; k < 3; k++) {
		if (take(r, 1, &bit) == -1)
			return -1;
		if (bit == 0)
			break;
	}
	if (k == 0) {
		*d = r->delta;
		return 0;
	}
	if (k == 3) {
		if (take(r, 1, &bit) == -1)
			return -1;
		if (bit == 0) {
			if (take(r, 24, &v) == -1)
				return -1;
			m = UINT64_C(1) << 23;
			v = (v ^ m) - m;
		} else if (take_wide(r, 64, &v) == -1)
			return -1;
	} else {
		if (take(r, width[k - 1], &v) == -1)
			return -1;
		m = UINT64_C(1) << (width[k - 1] - 1);
		v = (v ^ m) - m;	/* sign-extend, modulo 2^64 */
	}
	r->delta += v;
	*d = r->delta;
	return 0;
}

/* The value code in a width of wd bits: the pattern is updated. */
static inline int
read_value(struct chunk_reader *r, const unsigned int wd)
{
	uint64_t	c, x, lead, sig;

	if (take(r, 1, &c) == -1)
		return -1;
	if (c == 0)
		return 0;
	if (take(r, 1, &c) == -1)
		return -1;
	if (c == 1) {
		if (take(r, LEAD_BITS(wd) + SIG_BITS(wd), &c) == -1)
			return -1;
		lead = c >> SIG_BITS(wd);
		sig = (c & ((1U << SIG_BITS(wd)) - 1)) + 1;
		if (lead + sig > wd) {
			r->error = "value window wider than the value";
			return -1;
		}
		r->wlead = (unsigned int)lead;
		r->wsig = (unsigned int)sig;
	}
	if (take_wide(r, r->wsig, &x) == -1)
		return -1;
	r->pattern ^= x << (wd - r->wlead - r->wsig);
	return 0;
}

/* After the last point: the blob must end in zero padding. */
static int
reader_check_end(struct chunk_reader *r)
{
	size_t	len = (size_t)(r->end - r->blob), used;

	used = (size_t)(r->p - r->blob) * 8 - r->avail;
	if (len * 8 - used >= 8) {
		r->error = "bytes after the last point";
		return -1;
	}
	if (used % 8 != 0 && (r->blob[len - 1] & (0xff >> used % 8)) != 0) {
		r->error = "padding bits set after the last point";
		return -1;
	}
	return 0;
}

/* One point, every bit read checked: the first, the last and the tail. */
static int
reader_slow(struct chunk_reader *r, int64_t *step, double *v)
{
	const unsigned int	wd = r->info.flags & CHUNK_F32 ? 32 : 64;
	uint64_t		d;
	size_t			after;

	if (r->i == 0) {
		if (take_wide(r, wd, &r->pattern) == -1)
			goto truncated;
	} else {
		if (r->info.flags & CHUNK_STEPS) {
			if (read_step(r, &d) == -1)
				goto truncated;
			/*
			 * Room must remain for a step >= 1 per later point,
			 * and the last point must land on the last step.
			 */
			after = r->info.n - 1 - r->i;
			if (d == 0 || d > r->left - after) {
				r->error = "steps not ascending or past the "
				    "last step";
				return -1;
			}
			if (after == 0 && d != r->left) {
				r->error = "the last point misses the last "
				    "step";
				return -1;
			}
		} else
			d = r->delta;
		r->left -= d;
		r->step = u2i((uint64_t)r->step + d);
		if (read_value(r, wd) == -1)
			goto truncated;
	}
	if (++r->i == r->info.n && reader_check_end(r) == -1)
		return -1;
	*step = r->step;
	*v = wd == 32 ? f32_widen((uint32_t)r->pattern) :
	    bits_dbl(r->pattern);
	return 1;

truncated:
	if (r->error == NULL)
		r->error = "cut short";
	return -1;
}

/* Load whole bytes into acc while the blob has 8 or more left. */
INLINE void
fast_refill(const unsigned char **p, uint64_t *acc, unsigned int *avail)
{
	*acc |= load_be64(*p) >> *avail;
	*p += (63 - *avail) >> 3;
	*avail |= 56;
}

/* n bits off the top of acc, 0 <= n <= 32. */
INLINE uint64_t
fast_take(uint64_t *acc, unsigned int *avail, unsigned int n)
{
	uint64_t	v = *acc >> 1 >> (63 - n);

	*acc <<= n;
	*avail -= n;
	return v;
}

/*
 * The fast path: points 1 .. n - 2 while FAST_MARGIN bytes or more are
 * left, so that every 8-byte load lies inside the blob (a point takes
 * at most 19 bytes, acc holds up to 8 more) and no bit read needs a
 * check.  The state lives in locals meanwhile.  Stores up to max points
 * into steps and vals (either may be NULL) and returns how many; sets
 * r->error if a point was damaged.
 */
#define FAST_MARGIN	40

INLINE size_t
reader_fast(struct chunk_reader *r, int64_t *steps, double *vals,
    size_t max, const unsigned int wd, const int has_steps)
{
	const unsigned int		 lb = LEAD_BITS(wd), sb = SIG_BITS(wd);
	const unsigned char		*p = r->p, *end = r->end;
	uint64_t			 acc = r->acc, pat = r->pattern;
	uint64_t			 delta = r->delta, left = r->left;
	uint64_t			 ustep = (uint64_t)r->step;
	uint64_t			 c, hdr, x, d, v, m;
	unsigned int			 avail = r->avail, wlead = r->wlead;
	unsigned int			 wsig = r->wsig, lead, sig, nb, pre;
	unsigned int			 w, nhi;
	size_t				 i = r->i, last = r->info.n - 1, k;

	for (k = 0; k < max && i > 0 && i < last &&
	    (size_t)(end - p) >= FAST_MARGIN; k++, i++) {
		fast_refill(&p, &acc, &avail);
		if (has_steps) {
			pre = (unsigned int)__builtin_clzll(~acc |
			    UINT64_C(1) << 59);	/* leading ones, <= 4 */
			if (pre == 4) {
				fast_take(&acc, &avail, 4);
				fast_refill(&p, &acc, &avail);
				v = fast_take(&acc, &avail, 32) << 32;
				fast_refill(&p, &acc, &avail);
				v |= fast_take(&acc, &avail, 32);
			} else {
				w = 0x180e0700U >> pre * 8 & 0xff;
				fast_take(&acc, &avail, pre + 1);
				v = fast_take(&acc, &avail, w);
				m = UINT64_C(1) << w >> 1;
				v = (v ^ m) - m;
			}
			d = delta += v;
			if (d - 1 >= left - (last - i)) {
				r->error = "steps not ascending or past the "
				    "last step";
				break;
			}
			fast_refill(&p, &acc, &avail);
		} else
			d = delta;
		left -= d;
		ustep += d;

		c = acc >> 62;
		if (c == 3) {
			hdr = acc << 2 >> (64 - lb - sb);
			lead = (unsigned int)(hdr >> sb);
			sig = (unsigned int)(hdr & ((1U << sb) - 1)) + 1;
			if (lead + sig > wd) {
				r->error = "value window wider than the value";
				break;
			}
			wlead = lead;
			wsig = sig;
			fast_take(&acc, &avail, 2 + lb + sb);
			nb = sig;
		} else {
			fast_take(&acc, &avail, 1 + (c == 2));
			nb = c == 2 ? wsig : 0;
		}
		if (wd == 32)
			x = fast_take(&acc, &avail, nb);
		else {
			nhi = nb > 32 ? nb - 32 : 0;
			fast_refill(&p, &acc, &avail);
			x = fast_take(&acc, &avail, nhi);
			fast_refill(&p, &acc, &avail);
			x = x << (nb - nhi) | fast_take(&acc, &avail, nb - nhi);
		}
		pat ^= x << (wd - wlead - wsig);
		if (steps != NULL)
			steps[k] = u2i(ustep);
		if (vals != NULL)
			vals[k] = wd == 32 ? f32_widen((uint32_t)pat) :
			    bits_dbl(pat);
	}
	r->p = p;
	r->acc = acc;
	r->avail = avail;
	r->pattern = pat;
	r->delta = delta;
	r->left = left;
	r->step = u2i(ustep);
	r->wlead = wlead;
	r->wsig = wsig;
	r->i = i;
	return k;
}

/* reader_fast() specialized for the chunk's flags. */
static size_t
reader_fast_any(struct chunk_reader *r, int64_t *steps, double *vals,
    size_t max)
{
	switch (r->info.flags) {
	case 0:
		return reader_fast(r, steps, vals, max, 64, 0);
	case CHUNK_F32:
		return reader_fast(r, steps, vals, max, 32, 0);
	case CHUNK_STEPS:
		return reader_fast(r, steps, vals, max, 64, 1);
	default:
		return reader_fast(r, steps, vals, max, 32, 1);
	}
}

int
chunk_next(struct chunk_reader *r, int64_t *step, double *v)
{
	size_t	k;

	if (r->bpos < r->blen) {
		*step = r->bsteps[r->bpos];
		*v = r->bvals[r->bpos++];
		return 1;
	}
	if (r->error != NULL)
		return -1;
	if (r->i >= r->info.n)
		return 0;
	/* Decode ahead into the buffer; damage shows after what came before. */
	k = reader_fast_any(r, r->bsteps, r->bvals, CHUNK_READER_BUF);
	if (k > 0) {
		r->bpos = 1;
		r->blen = (unsigned int)k;
		*step = r->bsteps[0];
		*v = r->bvals[0];
		return 1;
	}
	if (r->error != NULL)
		return -1;
	return reader_slow(r, step, v);
}

int
chunk_decode(const void *blob, size_t len, int64_t *steps, double *vals,
    size_t cap, size_t *n, char **cause)
{
	struct chunk_reader	r;
	int64_t			s;
	double			v;
	size_t			i;

	*n = 0;
	if (chunk_reader_init(&r, blob, len, cause) == -1)
		return -1;
	*n = r.info.n;
	if (r.info.n > cap)
		return chunk_fail(cause, "chunk: %zu points, room for %zu",
		    r.info.n, cap);
	for (i = 0; i < r.info.n; i++) {
		i += reader_fast_any(&r, steps != NULL ? steps + i : NULL,
		    vals != NULL ? vals + i : NULL, r.info.n - i);
		if (r.error != NULL || reader_slow(&r, &s, &v) != 1)
			return chunk_fail(cause, "chunk: after %zu of %zu "
			    "points: %s", r.i, r.info.n, r.error);
		if (steps != NULL)
			steps[i] = s;
		if (vals != NULL)
			vals[i] = v;
	}
	return 0;
}

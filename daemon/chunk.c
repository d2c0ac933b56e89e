/* SPDX-License-Identifier: MIT */
/*
 * chunk: the chunk codec; chunk.h documents the format byte by byte.
 * The writer reserves the worst case (about 19 bytes a point) up front
 * and then stores whole 64-bit words without bounds checks.  The reader
 * loads 8 bytes at a time while 8 remain and single bytes after that,
 * so it never touches memory past the blob, and every loop it runs is
 * bounded by the point count in the header.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "xmalloc.h"

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

/*
 * Bits go into acc, left-aligned; after every put the whole bytes are
 * stored (8 bytes written, fill / 8 of them kept), so fill stays < 8.
 */
struct bitw {
	unsigned char	*p;
	uint64_t	 acc;
	unsigned int	 fill;
};

static uint64_t
dbl_bits(double v)
{
	uint64_t	b;

	memcpy(&b, &v, sizeof b);
	return b;
}

static double
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

/* The bit stream of chunk.h; inlined once per value width. */
INLINE void
encode_points(struct bitw *out, const int64_t *steps, const double *vals,
    size_t n, unsigned int flags, uint64_t d0, const unsigned int wd)
{
	struct bitw	lw = *out, *w = &lw;	/* a local: no aliasing */
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
	}
	*out = lw;
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

static void
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

size_t
chunk_encode(struct chunk_buf *out, const int64_t *steps,
    const double *vals, size_t n)
{
	struct bitw	 w;
	unsigned char	*start;
	unsigned int	 flags = 0;
	uint64_t	 span = 0, d0 = 0, d;
	uint64_t	 zz;
	uint32_t	 f;
	size_t		 i;

	if (n == 0 || n > CHUNK_MAX_POINTS)
		return 0;
	if (n > 1)
		d0 = (uint64_t)steps[1] - (uint64_t)steps[0];
	for (i = 1; i < n; i++) {
		if (steps[i] <= steps[i - 1])
			return 0;
		d = (uint64_t)steps[i] - (uint64_t)steps[i - 1];
		if (d != d0)
			flags |= CHUNK_STEPS;
	}
	if (n > 1) {
		span = (uint64_t)steps[n - 1] - (uint64_t)steps[0];
		d0 = span / (n - 1);	/* the first step delta's guess */
	}
	for (i = 0; i < n && f32_narrow(vals[i], &f); i++)
		;
	if (i == n)
		flags |= CHUNK_F32;

	chunk_buf_reserve(out, HDR_MAX + (n * POINT_MAX_BITS + 64) / 8 + 16);
	start = out->data + out->len;
	start[0] = CHUNK_VERSION;
	start[1] = (unsigned char)flags;
	w.p = start + 2;
	w.p += put_varint(w.p, n);
	zz = (uint64_t)steps[0] << 1 ^ -((uint64_t)steps[0] >> 63);
	w.p += put_varint(w.p, zz);
	if (n > 1)
		w.p += put_varint(w.p, span);
	w.acc = 0;
	w.fill = 0;
	if (flags & CHUNK_F32)
		encode_points(&w, steps, vals, n, flags, d0, 32);
	else
		encode_points(&w, steps, vals, n, flags, d0, 64);
	bitw_finish(&w);
	out->len += (size_t)(w.p - start);
	return (size_t)(w.p - start);
}

/* Set *cause (if wanted) to a formatted message; returns -1. */
static int __attribute__((format(printf, 2, 3)))
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

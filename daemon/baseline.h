/* SPDX-License-Identifier: MIT */
/*
 * baseline: the detector's streaming statistics (DETECTION.md 1.6 and
 * 2.0).  A robust exponentially weighted baseline of a series (median
 * and MAD over a warm-up buffer, then winsorized Finch updates), a
 * capped CUSUM, an EW rate with a warm start, a floored natural log and an
 * O(n) median by selection.  Pure arithmetic on caller-owned structs:
 * no locks, no I/O; any thread, one thread per struct.
 */
#ifndef GW_BASELINE_H
#define GW_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#define BASELINE_TINY	1e-30	/* ln(x) is taken of max(x, BASELINE_TINY) */

/*
 * B(alpha, W, s_floor, c) on a series y, with O(1) state plus the W-slot
 * warm-up buffer, which exists only while n < W.
 */
struct baseline {
	double		 m;	/* EW mean; valid once n >= w */
	double		 v;	/* EW variance */
	double		*buf;	/* the first w points while n < w, else NULL */
	uint32_t	 n;	/* points absorbed (saturates) */
	uint32_t	 w;	/* warm-up length W, fixed at init */
};

/* An empty baseline with a warm-up of w points (w >= 1). */
void	baseline_init(struct baseline *b, uint32_t w);
/* Free the warm-up buffer, if any.  The struct can be init'ed again. */
void	baseline_cleanup(struct baseline *b);
/* Forget everything and warm up again over w points (re-baseline). */
void	baseline_reset(struct baseline *b, uint32_t w);

/* 1 once the warm-up is over and m, v describe the series. */
static inline int
baseline_is_ready(const struct baseline *b)
{
	return b->n >= b->w;
}

/* The scale s = max(sqrt(v), s_floor).  Only when ready. */
double	baseline_scale(const struct baseline *b, double s_floor);

/*
 * Absorb y (finite).  During the warm-up it is buffered; the w-th point
 * sets m = median and v = (1.4826 MAD)^2 and frees the buffer.  After
 * that, y is clamped to m +- c s (s as baseline_scale()) and the Finch
 * update runs with weight a (= 1 - alpha): d = y - m, m += a d,
 * v = (1 - a)(v + a d^2).  Allocates only the warm-up buffer, once.
 */
void	baseline_add(struct baseline *b, double y, double a, double s_floor,
	    double c);

/* The capped CUSUM of Page: S <- max(0, S + min(z, cap) - k). */
struct cusum {
	double		 s;
	int64_t		 onset;	/* the step at which S last left 0; -1 */
};

void	cusum_reset(struct cusum *cs);
/* Add z observed at step; returns the new S. */
double	cusum_add(struct cusum *cs, double z, double k, double cap,
	    int64_t step);

/*
 * An EW mean with a warm start: weight max(a, 1 / (n + 1)), so that it
 * is the plain mean of the first 1/a points instead of leaning on its
 * initial value.
 */
struct ewmean {
	double		 p;
	uint32_t	 n;
};

/* Inline: the detector calls it twice for every gradient value. */
static inline void
ewmean_add(struct ewmean *e, double x, double a)
{
	double	w;

	w = 1.0 / ((double)e->n + 1);
	if (w < a)
		w = a;
	e->p += w * (x - e->p);
	if (e->n != UINT32_MAX)
		e->n++;
}

/* ln(max(x, BASELINE_TINY)); NaN gives ln BASELINE_TINY (callers check). */
double	baseline_ln(double x);

/*
 * The k-th smallest of a[0..n-1] (0-based), in expected O(n).  Permutes
 * a.  n >= 1, k < n.
 */
double	baseline_select(double *a, size_t n, size_t k);
/* The median of a[0..n-1] (mean of the middle two for even n); permutes a. */
double	baseline_median(double *a, size_t n);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * baseline: robust EW baselines, capped CUSUMs, warm-started EW means,
 * ln with a floor and selection; see baseline.h.  The detector keeps one
 * baseline per series and calls these once per point, so nothing here
 * allocates except a baseline's warm-up buffer, once.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baseline.h"
#include "xmalloc.h"

#define MAD_TO_SIGMA	1.4826	/* sigma of a normal = 1.4826 x its MAD */

void
baseline_init(struct baseline *b, uint32_t w)
{
	memset(b, 0, sizeof *b);
	b->w = w < 1 ? 1 : w;
}

void
baseline_cleanup(struct baseline *b)
{
	free(b->buf);
	b->buf = NULL;
}

void
baseline_reset(struct baseline *b, uint32_t w)
{
	baseline_cleanup(b);
	baseline_init(b, w);
}

double
baseline_scale(const struct baseline *b, double s_floor)
{
	double	s = sqrt(b->v);

	return s > s_floor ? s : s_floor;
}

/* The w-th point arrived: m = median, v = (1.4826 MAD)^2. */
static void
baseline_start(struct baseline *b)
{
	double	med;
	size_t	i, w = b->w;

	med = baseline_median(b->buf, w);
	for (i = 0; i < w; i++)
		b->buf[i] = fabs(b->buf[i] - med);
	b->m = med;
	b->v = MAD_TO_SIGMA * baseline_median(b->buf, w);
	b->v *= b->v;
	free(b->buf);
	b->buf = NULL;
}

void
baseline_add(struct baseline *b, double y, double a, double s_floor,
    double c)
{
	double	lim2, d;

	if (b->n < b->w) {
		if (b->buf == NULL)
			b->buf = xreallocarray(NULL, b->w, sizeof *b->buf);
		b->buf[b->n++] = y;
		if (b->n == b->w)
			baseline_start(b);
		return;
	}
	/* Clamp to m +- c s, comparing squares: a sqrt only when clamping. */
	d = y - b->m;
	lim2 = b->v > s_floor * s_floor ? b->v : s_floor * s_floor;
	lim2 *= c * c;
	if (d * d > lim2)
		d = d > 0 ? sqrt(lim2) : -sqrt(lim2);
	b->m += a * d;
	b->v = (1 - a) * (b->v + a * d * d);
	if (b->n != UINT32_MAX)
		b->n++;
}

void
cusum_reset(struct cusum *cs)
{
	cs->s = 0;
	cs->onset = -1;
}

double
cusum_add(struct cusum *cs, double z, double k, double cap, int64_t step)
{
	double	s;

	if (z > cap)
		z = cap;
	s = cs->s + z - k;
	if (s <= 0) {
		cs->s = 0;
		cs->onset = -1;
		return 0;
	}
	if (cs->s == 0)
		cs->onset = step;
	cs->s = s;
	return s;
}

double
baseline_ln(double x)
{
	return log(x > BASELINE_TINY ? x : BASELINE_TINY);
}

/* Wirth's FIND with a median-of-three pivot put at k. */
double
baseline_select(double *a, size_t n, size_t kk)
{
	long	l = 0, r = (long)n - 1, i, j, mid, k = (long)kk;
	double	x, t;

	while (l < r) {
		mid = l + (r - l) / 2;
		if (a[mid] < a[l]) {
			t = a[mid]; a[mid] = a[l]; a[l] = t;
		}
		if (a[r] < a[l]) {
			t = a[r]; a[r] = a[l]; a[l] = t;
		}
		if (a[r] < a[mid]) {
			t = a[r]; a[r] = a[mid]; a[mid] = t;
		}
		t = a[mid]; a[mid] = a[k]; a[k] = t;
		x = a[k];
		i = l;
		j = r;
		do {
			while (a[i] < x)
				i++;
			while (x < a[j])
				j--;
			if (i <= j) {
				t = a[i]; a[i] = a[j]; a[j] = t;
				i++;
				j--;
			}
		} while (i <= j);
		if (j < k)
			l = i;
		if (k < i)
			r = j;
	}
	return a[k];
}

double
baseline_median(double *a, size_t n)
{
	double	hi, lo;
	size_t	i, k = n / 2;

	hi = baseline_select(a, n, k);
	if (n % 2 == 1)
		return hi;
	/* After the selection a[0..k-1] <= a[k]: the lower middle is their max. */
	lo = a[0];
	for (i = 1; i < k; i++)
		if (a[i] > lo)
			lo = a[i];
	return (lo + hi) / 2;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench_util: what the in-process benchmarks (chunk, detector,
 * remote_encode) share: a deterministic uniform generator, the calling
 * thread's CPU clock and a median.  Static functions, one copy each a
 * benchmark; one thread each.
 */
#ifndef GW_BENCH_UTIL_H
#define GW_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static uint64_t	bench_rng = 0x9e3779b97f4a7c15ULL;

/* Uniform in (0, 1), from a small xorshift generator: the same each run. */
static inline double
bench_uniform(void)
{
	bench_rng ^= bench_rng << 13;
	bench_rng ^= bench_rng >> 7;
	bench_rng ^= bench_rng << 17;
	return ((bench_rng >> 11) + 0.5) / 9007199254740992.0;
}

/* The calling thread's CPU time, in seconds. */
static inline double
bench_cpu_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of a[0..n-1], n > 0; sorts a. */
static inline double
bench_median(double *a, size_t n)
{
	qsort(a, n, sizeof *a, bench_cmp_double);
	return n % 2 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
}

#endif

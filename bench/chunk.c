/* SPDX-License-Identifier: MIT */
/*
 * bench/chunk: the chunk codec alone.  For each of a few realistic
 * series (built in memory from a fixed seed) it encodes --points points
 * in chunks of --chunk points, decodes them again with chunk_decode()
 * and with chunk_next(), --rounds times, timing each pass with the
 * thread's CPU clock, and prints the bytes a point (headers included)
 * and the median ns a point of each pass.  The first round checks that
 * every point came back bit for bit.
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "bench_util.h"

struct series {
	const char	*name;
	int64_t		*steps;
	double		*vals;
};

static double
gauss(void)
{
	return sqrt(-2 * log(bench_uniform())) *
	    cos(6.283185307179586 * bench_uniform());
}

static void
series_alloc(struct series *s, const char *name, size_t n)
{
	s->name = name;
	s->steps = malloc(n * sizeof *s->steps);
	s->vals = malloc(n * sizeof *s->vals);
	if (s->steps == NULL || s->vals == NULL)
		abort();
}

/*
 * The data sets.  Gradient norms: float32, log-normal (sigma 0.3)
 * around a level drifting as a slow random walk in log space.  Loss:
 * float32, decaying exponentially to a floor with 1% noise.  Walk: a
 * float64 random walk.  Non-finite: gradient norms with a NaN in 500
 * and an infinity in 2000.  Stride: gradient norms logged every 10th
 * step.  Irregular: the loss at steps 1 .. 50 apart.
 */
static size_t
make_series(struct series *ss, size_t n)
{
	double	lvl = 0, u;
	size_t	i, k = 0;

	series_alloc(&ss[k], "grad_norm_f32", n);
	for (i = 0; i < n; i++) {
		lvl += 0.002 * gauss();
		ss[k].steps[i] = (int64_t)i;
		ss[k].vals[i] = (float)(0.05 * exp(lvl + 0.3 * gauss()));
	}
	k++;
	series_alloc(&ss[k], "loss_f32", n);
	for (i = 0; i < n; i++) {
		u = 0.3 + 2.2 * exp(-(double)i / 200000.0);
		ss[k].steps[i] = (int64_t)i;
		ss[k].vals[i] = (float)(u * (1 + 0.01 * gauss()));
	}
	k++;
	series_alloc(&ss[k], "walk_f64", n);
	for (i = 0, u = 1; i < n; i++) {
		u += 0.01 * gauss();
		ss[k].steps[i] = (int64_t)i;
		ss[k].vals[i] = u;
	}
	k++;
	series_alloc(&ss[k], "nonfinite_f32", n);
	for (i = 0; i < n; i++) {
		ss[k].steps[i] = (int64_t)i;
		u = bench_uniform();
		ss[k].vals[i] = u < 0.002 ? NAN : u < 0.0025 ? INFINITY :
		    ss[0].vals[i];
	}
	k++;
	series_alloc(&ss[k], "stride10_f32", n);
	for (i = 0; i < n; i++) {
		ss[k].steps[i] = 10 * (int64_t)i;
		ss[k].vals[i] = ss[0].vals[i];
	}
	k++;
	series_alloc(&ss[k], "irregular_f32", n);
	for (i = 0; i < n; i++) {
		ss[k].steps[i] = (i ? ss[k].steps[i - 1] : 0) + 1 +
		    (int64_t)(50 * bench_uniform());
		ss[k].vals[i] = ss[1].vals[i];
	}
	k++;
	return k;
}

static void
usage(void)
{
	fprintf(stderr, "usage: chunk [--points n] [--chunk n] [--rounds n]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "chunk", required_argument, NULL, 'c' },
		{ "points", required_argument, NULL, 'p' },
		{ "rounds", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 }
	};
	struct series		 ss[8];
	struct chunk_buf	 buf;
	struct chunk_reader	 rd;
	size_t			*off, nchunks, ns, k, c, i, m, got;
	int64_t			*steps, step;
	double			*vals, *enc, *dec, *nxt, t0, v, sink = 0;
	uint64_t		 isink = 0;
	long			 npoints = 1 << 20, csize = 1000, rounds = 7, r;
	char			*cause = NULL;
	int			 ch;

	while ((ch = getopt_long(argc, argv, "c:p:r:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': csize = strtol(optarg, NULL, 10); break;
		case 'p': npoints = strtol(optarg, NULL, 10); break;
		case 'r': rounds = strtol(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (csize < 1 || csize > (long)CHUNK_MAX_POINTS || npoints < csize ||
	    rounds < 1)
		usage();
	ns = make_series(ss, (size_t)npoints);
	nchunks = ((size_t)npoints + (size_t)csize - 1) / (size_t)csize;
	off = malloc((nchunks + 1) * sizeof *off);
	steps = malloc((size_t)csize * sizeof *steps);
	vals = malloc((size_t)csize * sizeof *vals);
	enc = malloc((size_t)rounds * 3 * sizeof *enc);
	if (off == NULL || steps == NULL || vals == NULL || enc == NULL)
		abort();
	dec = enc + rounds;
	nxt = dec + rounds;
	chunk_buf_init(&buf);
	for (k = 0; k < ns; k++) {
		for (r = 0; r < rounds; r++) {
			buf.len = 0;
			t0 = bench_cpu_now();
			for (c = 0, i = 0; i < (size_t)npoints; c++, i += m) {
				m = (size_t)npoints - i < (size_t)csize ?
				    (size_t)npoints - i : (size_t)csize;
				off[c] = buf.len;
				if (chunk_encode(&buf, ss[k].steps + i,
				    ss[k].vals + i, m) == 0)
					abort();
			}
			off[c] = buf.len;
			enc[r] = (bench_cpu_now() - t0) * 1e9 /
			    (double)npoints;

			t0 = bench_cpu_now();
			for (c = 0; c < nchunks; c++) {
				if (chunk_decode(buf.data + off[c],
				    off[c + 1] - off[c], steps, vals,
				    (size_t)csize, &got, &cause) == -1) {
					fprintf(stderr, "chunk: %s\n", cause);
					return 1;
				}
				sink += vals[got - 1];
				if (r == 0 && (memcmp(steps, ss[k].steps +
				    c * (size_t)csize, got * sizeof *steps) ||
				    memcmp(vals, ss[k].vals + c * (size_t)csize,
				    got * sizeof *vals))) {
					fprintf(stderr, "chunk: %s: chunk %zu "
					    "does not round-trip\n", ss[k].name,
					    c);
					return 1;
				}
			}
			dec[r] = (bench_cpu_now() - t0) * 1e9 /
			    (double)npoints;

			t0 = bench_cpu_now();
			for (c = 0; c < nchunks; c++) {
				if (chunk_reader_init(&rd, buf.data + off[c],
				    off[c + 1] - off[c], NULL) == -1)
					abort();
				while (chunk_next(&rd, &step, &v) == 1)
					isink ^= (uint64_t)step;
				sink += v;
			}
			nxt[r] = (bench_cpu_now() - t0) * 1e9 /
			    (double)npoints;
		}
		printf("%s: %ld points in chunks of %ld: %.3f bytes a point "
		    "(raw %d); median of %ld: encode %.2f ns, decode %.2f ns, "
		    "chunk_next %.2f ns a point\n", ss[k].name, npoints, csize,
		    (double)buf.len / (double)npoints,
		    ss[k].steps[1] - ss[k].steps[0] == 1 &&
		    ss[k].steps[npoints - 1] == npoints - 1 ? 8 : 16, rounds,
		    bench_median(enc, (size_t)rounds),
		    bench_median(dec, (size_t)rounds),
		    bench_median(nxt, (size_t)rounds));
		printf("RESULT bench=chunk data=%s chunk=%ld bytes_per_point=%.3f "
		    "encode_ns=%.2f decode_ns=%.2f next_ns=%.2f\n", ss[k].name,
		    csize, (double)buf.len / (double)npoints,
		    bench_median(enc, (size_t)rounds),
		    bench_median(dec, (size_t)rounds),
		    bench_median(nxt, (size_t)rounds));
	}
	if (sink == 42 || isink == 42)	/* uses what was decoded */
		printf("\n");
	chunk_buf_cleanup(&buf);
	for (k = 0; k < ns; k++) {
		free(ss[k].steps);
		free(ss[k].vals);
	}
	free(off);
	free(steps);
	free(vals);
	free(enc);
	return 0;
}

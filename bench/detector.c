/* SPDX-License-Identifier: MIT */
/*
 * bench/detector: points per second through the detector alone.  It
 * builds a realistic healthy stream in memory (a run of --layers
 * tensors plus loss, grad_norm, lr and time per step, batches of
 * --batch steps, each tensor's norm log-normal around its own level),
 * then times detector_feed() with the thread's CPU clock over --steps
 * steps, --runs times, and prints the median points/s and ns a point.
 * Building and re-numbering the batches is not timed.
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "detector.h"
#include "bench_util.h"

#define NBATCH	20	/* distinct batches, fed round after round */

/* A standard normal (deterministic: bench_uniform). */
static double
gauss(void)
{
	return sqrt(-2 * log(bench_uniform())) *
	    cos(6.283185307179586 * bench_uniform());
}

static struct batch *
make_batch(int64_t first, int steps, int layers, char **names,
    const double *level)
{
	struct batch	*b = batch_new("bench");
	size_t		 si_loss, si_grad, si_lr, si_time, *si;
	double		 g2, v;
	int		 s, l;

	si = calloc((size_t)layers, sizeof *si);
	if (si == NULL)
		abort();
	si_loss = batch_series_get(b, SERIES_LOSS, "loss");
	si_grad = batch_series_get(b, SERIES_GRAD_NORM, "grad_norm");
	si_lr = batch_series_get(b, SERIES_LR, "lr");
	si_time = batch_series_get(b, SERIES_TIME, "time");
	for (l = 0; l < layers; l++)
		si[l] = batch_series_get(b, SERIES_LAYER_GRAD, names[l]);
	b->steps = calloc((size_t)steps, sizeof *b->steps);
	if (b->steps == NULL)
		abort();
	for (s = 0; s < steps; s++) {
		int64_t step = first + s;

		b->steps[b->nsteps++] = step;
		g2 = 0;
		for (l = 0; l < layers; l++) {
			v = level[l] * exp(0.3 * gauss());
			g2 += v * v;
			batch_series_push(b, si[l], step, v);
		}
		batch_series_push(b, si_grad, step, sqrt(g2));
		batch_series_push(b, si_loss, step, 1.0 * exp(0.1 * gauss()));
		batch_series_push(b, si_lr, step, 1e-3);
		batch_series_push(b, si_time, step, 1767225600.0 + 0.1 *
		    (double)step);
	}
	free(si);
	return b;
}

/* Move every step of b by delta (between rounds; not timed). */
static void
shift_batch(struct batch *b, int64_t delta)
{
	size_t	i, j;

	for (i = 0; i < b->nsteps; i++)
		b->steps[i] += delta;
	for (i = 0; i < b->nseries; i++)
		for (j = 0; j < b->series[i].n; j++)
			b->series[i].steps[j] += delta;
}

static void
usage(void)
{
	fprintf(stderr, "usage: detector [--layers n] [--steps n] "
	    "[--batch n] [--runs n]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "layers", required_argument, NULL, 'l' },
		{ "steps", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "runs", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 }
	};
	struct detector_config	*cfg;
	struct detector_events	 ev = { 0 };
	struct detector		*d;
	struct batch		*b[NBATCH];
	char			**names;
	double			*level, *rate, t0, cpu, points;
	long			 layers = 200, steps = 20000, bsteps = 50;
	long			 runs = 5, r, fed, nev = 0;
	int			 ch, i, k;

	while ((ch = getopt_long(argc, argv, "b:l:r:s:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'b': bsteps = strtol(optarg, NULL, 10); break;
		case 'l': layers = strtol(optarg, NULL, 10); break;
		case 'r': runs = strtol(optarg, NULL, 10); break;
		case 's': steps = strtol(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (layers < 1 || steps < bsteps || bsteps < 1 || runs < 1)
		usage();
	names = calloc((size_t)layers, sizeof *names);
	level = calloc((size_t)layers, sizeof *level);
	rate = calloc((size_t)runs, sizeof *rate);
	if (names == NULL || level == NULL || rate == NULL)
		abort();
	for (i = 0; i < layers; i++) {
		char	buf[64];

		snprintf(buf, sizeof buf, "blocks.%d.%s.weight", i / 4,
		    (const char *[]){ "attn.q", "attn.k", "mlp.up",
		    "mlp.down" }[i % 4]);
		names[i] = strdup(buf);
		level[i] = 0.05 * exp(0.5 * gauss());
	}
	for (k = 0; k < NBATCH; k++)
		b[k] = make_batch((int64_t)k * bsteps, (int)bsteps, (int)layers,
		    names, level);

	cfg = detector_config_new();
	for (r = 0; r < runs; r++) {
		d = detector_new(cfg);
		cpu = 0;
		points = 0;
		for (fed = 0; fed < steps; fed += bsteps) {
			k = (int)((fed / bsteps) % NBATCH);
			t0 = bench_cpu_now();
			detector_feed(d, 1, b[k], 1767225600.0 +
			    0.1 * (double)fed, 0, &ev);
			cpu += bench_cpu_now() - t0;
			points += (double)b[k]->npoints;
			nev += (long)ev.n;
			detector_events_clear(&ev);
			if (k == NBATCH - 1)
				for (i = 0; i < NBATCH; i++)
					shift_batch(b[i], NBATCH * bsteps);
		}
		rate[r] = points / cpu;
		printf("run %ld: %.0f points in %.3f s CPU: %.2f M points/s, "
		    "%.1f ns a point\n", r + 1, points, cpu, rate[r] / 1e6,
		    1e9 / rate[r]);
		detector_free(d);
	}
	qsort(rate, (size_t)runs, sizeof *rate, bench_cmp_double);
	printf("detector: %ld layers, %ld steps, batches of %ld steps: median "
	    "%.2f M points/s, %.1f ns a point (%ld alert events)\n", layers,
	    steps, bsteps, rate[runs / 2] / 1e6, 1e9 / rate[runs / 2], nev);
	printf("RESULT detector_points_per_s=%.0f detector_ns_per_point=%.2f "
	    "goal_points_per_s=20000000 %s\n", rate[runs / 2],
	    1e9 / rate[runs / 2], rate[runs / 2] >= 2e7 ? "PASS" : "FAIL");
	detector_events_cleanup(&ev);
	detector_config_free(cfg);
	for (k = 0; k < NBATCH; k++)
		batch_free(b[k]);
	for (i = 0; i < layers; i++)
		free(names[i]);
	free(names);
	free(level);
	free(rate);
	return 0;
}

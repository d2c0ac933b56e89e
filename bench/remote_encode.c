/* SPDX-License-Identifier: MIT */
/*
 * bench/remote_encode: the remote-write encoder alone, the sender's CPU
 * without curl, the database or the machine's other threads.  Each round
 * encodes --requests requests of the shape bench/ingest stores (--layers
 * layer series plus loss, grad_norm and lr, each step timed), a span of
 * about REMOTE_MAX_SAMPLES samples each, from points in memory, and
 * times with the thread's CPU clock the series built and packed by
 * protobuf-c (remote_enc_span) and the body compressed by snappy
 * (remote_enc_body).  Prints the median ns a sample of each over
 * --rounds rounds, the bytes a sample before and after snappy, and a
 * RESULT line.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <snappy-c.h>

#include "batch.h"
#include "query_remote.h"
#include "remote.h"
#include "remote_encode.h"
#include "xmalloc.h"
#include "bench_util.h"

/* A gradient norm of 9 significant digits, as bench/ingest sends. */
static double
norm(void)
{
	double	v = exp(-4.0 + 6.0 * bench_uniform());
	double	scale = pow(10.0, 8 - floor(log10(v)));

	return round(v * scale) / scale;
}

/* Every series' values over the steps: series i's at [i * steps]. */
struct source {
	double		*vals;
	int64_t		 steps;
};

static int
source_points(void *arg, const struct remote_series *s, int64_t lo,
    int64_t hi, struct remote_points *p, char **cause)
{
	const struct source	*src = arg;
	int64_t			 st;

	(void)cause;
	p->n = 0;
	remote_points_reserve(p, (size_t)(hi - lo + 1));
	for (st = lo; st <= hi; st++) {
		p->steps[p->n] = st;
		p->vals[p->n++] = src->vals[(s->id - 1) * src->steps + st];
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: remote_encode [--layers n] [--requests n] "
	    "[--rounds n]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "layers", required_argument, NULL, 'l' },
		{ "requests", required_argument, NULL, 'q' },
		{ "rounds", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 }
	};
	static char		 project[] = "bench", key[] = "bench-remote-0";
	struct remote_run	 run = { key, project, 0 };
	struct remote_series	*ser;
	struct remote_source	 rsrc;
	struct source		 src;
	struct remote_row	 row;
	struct remote_enc	*e = remote_enc_new();
	const char		*body;
	char			*cause = NULL;
	size_t			 len, rawlen, nser, i, samples = 0;
	size_t			 raw_bytes = 0, body_bytes = 0;
	int64_t			 layers = 200, requests = 20, span, st;
	int			 rounds = 9, r, q, c;
	double			 t0, t1, t2, *pack, *snap;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			layers = strtoll(optarg, NULL, 10);
			break;
		case 'q':
			requests = strtoll(optarg, NULL, 10);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (layers < 1 || requests < 1 || rounds < 1)
		usage();

	/* loss, grad_norm, lr, the layers and time: the sender's width. */
	nser = (size_t)layers + 4;
	span = REMOTE_MAX_SAMPLES / (int64_t)(nser + 1);
	src.steps = span * requests;
	src.vals = xreallocarray(NULL, nser * (size_t)src.steps,
	    sizeof *src.vals);
	ser = xcalloc(nser, sizeof *ser);
	for (i = 0; i < nser; i++) {
		ser[i].id = (int64_t)i + 1;
		ser[i].kind = i == 0 ? SERIES_LOSS : i == 1 ? SERIES_GRAD_NORM :
		    i == 2 ? SERIES_LR : i == nser - 1 ? SERIES_TIME :
		    SERIES_LAYER_GRAD;
		xasprintf(&ser[i].name, ser[i].kind == SERIES_LAYER_GRAD ?
		    "model.layers.%zu.mlp.weight" : "s%zu", i);
		for (st = 0; st < src.steps; st++)
			src.vals[i * (size_t)src.steps + (size_t)st] =
			    ser[i].kind == SERIES_TIME ? 1.7e9 + 0.05 * (double)st :
			    ser[i].kind == SERIES_LR ? 3e-4 : norm();
	}
	rsrc.points = source_points;
	rsrc.arg = &src;

	pack = xreallocarray(NULL, (size_t)rounds, sizeof *pack);
	snap = xreallocarray(NULL, (size_t)rounds, sizeof *snap);
	for (r = 0; r < rounds; r++) {
		pack[r] = snap[r] = 0;
		samples = raw_bytes = body_bytes = 0;
		for (q = 0; q < requests; q++) {
			row.id = q + 1;
			row.run_id = 1;
			row.first = q * span;
			row.last = row.first + span - 1;
			row.n = span;
			row.at = 1.7e9;
			remote_enc_reset(e);
			t0 = bench_cpu_now();
			if (remote_enc_span(e, &rsrc, &run, ser, nser,
			    row.first, row.last, &row, 1, 1, &cause) == -1)
				goto fail;
			t1 = bench_cpu_now();
			if (remote_enc_body(e, &body, &len, &cause) == -1)
				goto fail;
			t2 = bench_cpu_now();
			samples += remote_enc_samples(e);
			body_bytes += len;
			if (snappy_uncompressed_length(body, len, &rawlen) !=
			    SNAPPY_OK) {
				fprintf(stderr, "remote_encode: snappy could "
				    "not read its body\n");
				return 1;
			}
			raw_bytes += rawlen;
			pack[r] += t1 - t0;
			snap[r] += t2 - t1;
		}
		pack[r] = pack[r] * 1e9 / (double)samples;
		snap[r] = snap[r] * 1e9 / (double)samples;
	}
	printf("remote_encode: %" PRId64 " layers, %" PRId64 " requests of %zu "
	    "samples, %d rounds\n", layers, requests, samples /
	    (size_t)requests, rounds);
	printf("bytes a sample: %.2f packed, %.2f after snappy\n",
	    (double)raw_bytes / (double)samples,
	    (double)body_bytes / (double)samples);
	{
		double	p = bench_median(pack, (size_t)rounds);
		double	z = bench_median(snap, (size_t)rounds);

		printf("ns a sample (medians): series and protobuf-c %.1f, "
		    "snappy %.1f, in all %.1f\n", p, z, p + z);
		printf("RESULT bench=remote_encode layers=%" PRId64 " "
		    "pack_ns=%.2f snappy_ns=%.2f total_ns=%.2f "
		    "packed_bytes=%.2f body_bytes=%.2f\n", layers, p, z,
		    p + z, (double)raw_bytes / (double)samples,
		    (double)body_bytes / (double)samples);
	}
	return 0;
fail:
	fprintf(stderr, "remote_encode: %s\n", cause);
	return 1;
}

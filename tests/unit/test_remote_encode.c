/* SPDX-License-Identifier: MIT */
/*
 * test_remote_encode: a span of a run as a remote-write request
 * (daemon/remote_encode.c), read back with snappy and protobuf-c: every
 * sample at its value and timestamp, the labels sorted, gradwatch_step
 * and gradwatch_run_health for every step, layer series thinned by
 * layer_every; the request packed series by series is the one
 * protobuf-c packs whole; the widest messages the format allows
 * (negative timestamps, long labels) pack into the room the encoder
 * makes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <snappy-c.h>

#include "batch.h"
#include "query_remote.h"
#include "remote_encode.h"
#include "remote_write.pb-c.h"
#include "xmalloc.h"

#define NSTEPS	3000

/* Series i's value at step s: NaN and infinities among them. */
static double
value_of(int64_t id, int64_t s)
{
	if (s % 97 == 5)
		return NAN;
	if (s % 89 == 7)
		return id % 2 ? INFINITY : -INFINITY;
	return (double)id * 1000.0 + (double)s / 7.0;
}

/* The source: every series has every step of [lo, hi]; time is negative. */
static int
fake_points(void *arg, const struct remote_series *s, int64_t lo, int64_t hi,
    struct remote_points *p, char **cause)
{
	int64_t	st;

	(void)arg;
	(void)cause;
	for (st = lo; st <= hi; st++) {
		if (p->n == p->cap) {
			p->cap = p->cap == 0 ? 256 : p->cap * 2;
			p->steps = xreallocarray(p->steps, p->cap,
			    sizeof *p->steps);
			p->vals = xreallocarray(p->vals, p->cap,
			    sizeof *p->vals);
		}
		p->steps[p->n] = st;
		p->vals[p->n++] = s->kind == SERIES_TIME ?
		    -1e9 - (double)st : value_of(s->id, st);
	}
	return 0;
}

static const char *
label(const Prometheus__TimeSeries *t, const char *name)
{
	size_t	i;

	for (i = 0; i < t->n_labels; i++)
		if (strcmp(t->labels[i]->name, name) == 0)
			return t->labels[i]->value;
	return NULL;
}

static int
same(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

static void
test_span_roundtrip(void **state)
{
	static char		 loss[] = "loss", tname[] = "time";
	static char		 layer[] = "encoder.layers.0.attention.weight";
	struct remote_series	 ser[3] = {
		{ 1, SERIES_LOSS, loss },
		{ 2, SERIES_LAYER_GRAD, layer },
		{ 3, SERIES_TIME, tname },
	};
	struct remote_source	 src = { fake_points, NULL };
	struct remote_row	 rows[1] = { { 1, 1, 0, NSTEPS - 1, NSTEPS, -5 } };
	struct remote_run	 run;
	struct remote_enc	*e = remote_enc_new();
	Prometheus__WriteRequest *req;
	const Prometheus__TimeSeries *t;
	const char		*body, *metric;
	char			*raw, *again, *cause = NULL, key[301];
	char			 project[201];
	size_t			 len, rawlen, i, j, seen = 0;
	int64_t			 step;

	(void)state;
	memset(key, 'k', sizeof key - 1);
	key[sizeof key - 1] = '\0';
	memset(project, 'p', sizeof project - 1);
	project[sizeof project - 1] = '\0';
	run.key = key;
	run.project = project;
	run.health = 2;
	assert_int_equal(remote_enc_span(e, &src, &run, ser, 3, 0, NSTEPS - 1,
	    rows, 1, 10, &cause), 0);
	/* loss, every 10th layer point, gradwatch_step and health. */
	assert_int_equal(remote_enc_samples(e), NSTEPS * 3 + NSTEPS / 10);
	assert_int_equal(remote_enc_body(e, &body, &len, &cause), 0);

	assert_int_equal(snappy_uncompressed_length(body, len, &rawlen),
	    SNAPPY_OK);
	raw = xmalloc(rawlen);
	assert_int_equal(snappy_uncompress(body, len, raw, &rawlen), SNAPPY_OK);
	req = prometheus__write_request__unpack(NULL, rawlen,
	    (const uint8_t *)raw);
	assert_non_null(req);
	/*
	 * Packed series by series: the very bytes protobuf-c packs for the
	 * whole request at once.
	 */
	assert_int_equal(prometheus__write_request__get_packed_size(req),
	    rawlen);
	again = xmalloc(rawlen);
	assert_int_equal(prometheus__write_request__pack(req,
	    (uint8_t *)again), rawlen);
	assert_memory_equal(again, raw, rawlen);
	free(again);
	assert_int_equal(req->n_timeseries, 4);
	for (i = 0; i < req->n_timeseries; i++) {
		t = req->timeseries[i];
		metric = label(t, "__name__");
		assert_non_null(metric);
		assert_string_equal(label(t, "run"), key);
		assert_string_equal(label(t, "project"), project);
		for (j = 1; j < t->n_labels; j++)	/* sorted by name */
			assert_true(strcmp(t->labels[j - 1]->name,
			    t->labels[j]->name) < 0);
		for (j = 0; j < t->n_samples; j++) {
			/* Each step at its time, in ms: negative here. */
			step = (int64_t)j;
			if (strcmp(metric, "gradwatch_layer_grad_norm") == 0) {
				step = (int64_t)j * 10;
				assert_string_equal(label(t, "layer"),
				    ser[1].name);
				assert_true(same(t->samples[j]->value,
				    value_of(2, step)));
			} else if (strcmp(metric, "gradwatch_loss") == 0)
				assert_true(same(t->samples[j]->value,
				    value_of(1, step)));
			else if (strcmp(metric, "gradwatch_step") == 0)
				assert_true(t->samples[j]->value ==
				    (double)step);
			else {
				assert_string_equal(metric,
				    "gradwatch_run_health");
				assert_true(t->samples[j]->value == 2.0);
			}
			assert_int_equal(t->samples[j]->timestamp,
			    llround((-1e9 - (double)step) * 1e3));
			seen++;
		}
	}
	assert_int_equal(seen, remote_enc_samples(e));
	prometheus__write_request__free_unpacked(req, NULL);
	free(raw);

	/* The encoder is used again: the same request once more. */
	remote_enc_reset(e);
	assert_int_equal(remote_enc_span(e, &src, &run, ser, 3, 0, NSTEPS - 1,
	    rows, 1, 10, &cause), 0);
	assert_int_equal(remote_enc_body(e, &body, &rawlen, &cause), 0);
	assert_int_equal(rawlen, len);
	remote_enc_free(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_span_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

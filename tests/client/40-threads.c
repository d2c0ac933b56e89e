/* SPDX-License-Identifier: MIT */
/*
 * Four threads share one handle: each registers its own layers and a
 * metric (at the same time as the others) and logs its steps while the
 * main thread logs the loss and reads health; every point arrives once.
 * The Makefile also builds this test with ThreadSanitizer (library
 * included) and runs it in `make test`.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradwatch.h"
#include "gwt.h"

#define NTHREADS	4
#define NLAYERS		25

struct worker {
	struct gw_client	*gw;
	int			 id;
	int64_t			 nsteps;
	int			 bad;
};

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	char		 name[64];
	int		 layer[NLAYERS], metric, k;
	int64_t		 step;

	for (k = 0; k < NLAYERS; k++) {
		snprintf(name, sizeof name, "t%d.layer%d", w->id, k);
		layer[k] = gw_layer(w->gw, name, 1000 + k, k);
		w->bad |= layer[k] < 0;
	}
	snprintf(name, sizeof name, "t%d.throughput", w->id);
	metric = gw_metric(w->gw, name);
	for (step = 0; step < w->nsteps; step++) {
		for (k = 0; k < NLAYERS; k++)
			w->bad |= gw_layer_grad(w->gw, step, layer[k],
			    (double)step + w->id * 0.25 + k * 1e-3) != GW_OK;
		w->bad |= gw_metric_value(w->gw, step, metric,
		    (double)w->id) != GW_OK;
		if (step % 64 == 0)
			(void)gw_health(w->gw);
	}
	return NULL;
}

int
main(void)
{
	struct gwt_daemon	 d = { 0 };
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;
	struct worker		 w[NTHREADS];
	pthread_t		 t[NTHREADS];
	struct gwt_point	*want = NULL, *got = NULL;
	size_t			 nwant = 0, ngot = 0, i;
	char			 name[64], why[512];
	int64_t			 step, nsteps = gwt_slow() ? 400 : 3000;
	int			 k, id, bad = 0, ordered, rc;

	if (!ok(gwt_daemon_start(&d, NULL) == 0, "start gradwatchd"))
		return done_testing();
	opt.url = d.url;
	opt.run = "threads";
	opt.flush_interval_ms = 10;
	opt.buffer_points = 1 << 20;	/* the whole burst fits */
	if (!ok(gw_open(&gw, &opt) == GW_OK, "gw_open"))
		return done_testing();
	for (id = 0; id < NTHREADS; id++) {
		w[id] = (struct worker){ gw, id, nsteps, 0 };
		pthread_create(&t[id], NULL, worker_main, &w[id]);
	}
	for (step = 0; step < nsteps; step++)
		bad |= gw_loss(gw, step, 1.0 / (double)(step + 1)) != GW_OK;
	for (id = 0; id < NTHREADS; id++) {
		pthread_join(t[id], NULL);
		bad |= w[id].bad;
	}
	ok(!bad, "%d threads logged %lld steps each, every call GW_OK",
	    NTHREADS + 1, (long long)nsteps);
	for (step = 0; step < nsteps; step++) {
		gwt_point_add(&want, &nwant, "loss", "loss", step,
		    1.0 / (double)(step + 1));
		for (id = 0; id < NTHREADS; id++) {
			for (k = 0; k < NLAYERS; k++) {
				snprintf(name, sizeof name, "t%d.layer%d", id,
				    k);
				gwt_point_add(&want, &nwant, "layer_grad", name,
				    step, (double)step + id * 0.25 + k * 1e-3);
			}
			snprintf(name, sizeof name, "t%d.throughput", id);
			gwt_point_add(&want, &nwant, "metric", name, step, id);
		}
	}
	is_int(gw_flush(gw, 30000), GW_OK, "gw_flush");
	is_int((long long)gw_dropped(gw), 0, "nothing dropped");
	gwt_export(d.url, "threads", &got, &ngot, &ordered);
	for (i = 0; i < ngot; )
		if (strcmp(got[i].kind, "time") == 0)
			got[i] = got[--ngot];
		else
			i++;
	ok(ordered, "the export is in step order");
	rc = gwt_points_equal(got, ngot, want, nwant, why, sizeof why);
	if (!ok(rc == 0, "every point of every thread arrived once (%zu)",
	    nwant))
		diag("%s", why);
	/* Bodies without metadata or escaped names take the fast parser. */
	ok(gwt_metric(d.url, "\ngradwatch_ingest_fast_parses_total ") > 0,
	    "the daemon's fast path parsed the library's bodies");
	is_int(gw_close(gw, 5000), GW_OK, "gw_close");
	free(want);
	free(got);
	gwt_daemon_stop(&d, SIGTERM);
	return done_testing();
}

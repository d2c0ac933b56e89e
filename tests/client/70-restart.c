/* SPDX-License-Identifier: MIT */
/*
 * The daemon is killed (SIGKILL) and restarted twice on the same port
 * and database while a training thread logs: nothing it acknowledged is
 * lost (a 200 means committed), the request in flight is resent, and
 * every point arrives exactly once in the end.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradwatch.h"
#include "gwt.h"

#define NLAYERS	10

struct trainer {
	struct gw_client	*gw;
	int64_t			 nsteps;
	int			 bad;
	int			 done;		/* {lock} */
	pthread_mutex_t		 lock;
};

static double
val(int64_t step, int k)
{
	return (double)step * 0.001 + (double)k;
}

static void *
trainer_main(void *arg)
{
	struct trainer	*t = arg;
	char		 name[32];
	int		 layer[NLAYERS], k;
	int64_t		 step;

	for (k = 0; k < NLAYERS; k++) {
		snprintf(name, sizeof name, "h%d", k);
		layer[k] = gw_layer(t->gw, name, -1, k);
	}
	for (step = 0; step < t->nsteps; step++) {
		t->bad |= gw_loss(t->gw, step, val(step, -1)) != GW_OK;
		for (k = 0; k < NLAYERS; k++)
			t->bad |= gw_layer_grad(t->gw, step, layer[k],
			    val(step, k)) != GW_OK;
		gwt_sleep_ms(1);
	}
	pthread_mutex_lock(&t->lock);
	t->done = 1;
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static int
is_done(struct trainer *t)
{
	int	done;

	pthread_mutex_lock(&t->lock);
	done = t->done;
	pthread_mutex_unlock(&t->lock);
	return done;
}

int
main(void)
{
	struct gwt_daemon	 d = { 0 };
	struct gw_options	 opt = { 0 };
	struct trainer		 t = { 0 };
	struct gwt_point	*want = NULL, *got = NULL;
	size_t			 nwant = 0, ngot = 0, i;
	pthread_t		 th;
	char			 name[32], why[512];
	int64_t			 step;
	int			 k, kills = 0, ordered, rc;

	if (!ok(gwt_daemon_start(&d, NULL) == 0, "start gradwatchd"))
		return done_testing();
	opt.url = d.url;
	opt.run = "restart";
	opt.flush_interval_ms = 10;
	if (!ok(gw_open(&t.gw, &opt) == GW_OK, "gw_open"))
		return done_testing();
	t.nsteps = 2000;		/* ~2.5 s: time for two kills */
	pthread_mutex_init(&t.lock, NULL);
	pthread_create(&th, NULL, trainer_main, &t);
	while (kills < 2 && !is_done(&t)) {
		gwt_sleep_ms(600);
		gwt_daemon_stop(&d, SIGKILL);
		kills++;
		gwt_sleep_ms(300);
		if (gwt_daemon_start(&d, NULL) == -1)
			break;
	}
	pthread_join(th, NULL);
	is_int(kills, 2, "killed the daemon twice mid-run");
	ok(d.pid > 0, "and it came back on the same port");
	ok(!t.bad, "every logging call returned GW_OK");
	is_int(gw_flush(t.gw, 30000), GW_OK, "gw_flush");
	is_int((long long)gw_dropped(t.gw), 0, "nothing dropped");
	for (step = 0; step < t.nsteps; step++) {
		gwt_point_add(&want, &nwant, "loss", "loss", step,
		    val(step, -1));
		for (k = 0; k < NLAYERS; k++) {
			snprintf(name, sizeof name, "h%d", k);
			gwt_point_add(&want, &nwant, "layer_grad", name, step,
			    val(step, k));
		}
	}
	gwt_export(d.url, "restart", &got, &ngot, &ordered);
	for (i = 0; i < ngot; )
		if (strcmp(got[i].kind, "time") == 0)
			got[i] = got[--ngot];
		else
			i++;
	rc = gwt_points_equal(got, ngot, want, nwant, why, sizeof why);
	if (!ok(rc == 0, "every point arrived exactly once (%zu)", nwant))
		diag("%s", why);
	is_int(gw_close(t.gw, 5000), GW_OK, "gw_close");
	free(want);
	free(got);
	gwt_daemon_stop(&d, SIGTERM);
	return done_testing();
}

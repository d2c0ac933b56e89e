/* SPDX-License-Identifier: MIT */
/*
 * A full buffer: with a tiny buffer and the daemon down, values past
 * the buffer are dropped with GW_EFULL and counted (gw_dropped, and the
 * run's "dropped" once the daemon is up); non-finite values and clip
 * events still go into the reserve kept for them; every value that was
 * accepted arrives once the daemon comes up.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradwatch.h"
#include "gwt.h"

int
main(void)
{
	struct gwt_daemon	 d = { 0 };
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;
	struct gwt_point	*want = NULL, *got = NULL;
	size_t			 nwant = 0, ngot = 0, i;
	char			 path[128], why[512];
	json_t			*run;
	int64_t			 step;
	int			 rc, layer, nok = 0, nfull = 0, other = 0;
	int			 nan_ok = 0, clip_ok = 0, late_ok = 0, ordered;
	double			 v;

	d.port = gwt_free_port();	/* nobody there yet */
	d.ws_port = gwt_free_port();
	snprintf(d.db, sizeof d.db, "%s/full.db", gwt_tmpdir());
	snprintf(d.log, sizeof d.log, "%s/full.log", gwt_tmpdir());
	snprintf(d.url, sizeof d.url, "http://127.0.0.1:%d", d.port);
	opt.url = d.url;
	opt.run = "full";
	opt.buffer_points = 64;
	opt.flush_interval_ms = 10;
	if (!ok(gw_open(&gw, &opt) == GW_OK, "open with a 64-value buffer"))
		return done_testing();
	layer = gw_layer(gw, "fc", 10, 0);

	for (step = 0; step < 1000; step++) {
		v = 1.0 + (double)step;
		rc = gw_loss(gw, step, v);
		if (rc == GW_OK) {
			nok++;
			gwt_point_add(&want, &nwant, "loss", "loss", step, v);
		} else if (rc == GW_EFULL)
			nfull++;
		else
			other++;
		if (step == 10)
			gwt_sleep_ms(50);	/* the sender takes some */
	}
	ok(nfull > 0 && other == 0, "past the buffer, GW_EFULL (%d of 1000 "
	    "accepted)", nok);
	ok(nok >= 64 && nok <= 64 + 64 + 11, "about the buffer's worth was "
	    "kept (%d)", nok);
	is_int((long long)gw_dropped(gw), nfull, "gw_dropped counts every "
	    "GW_EFULL");

	/* The evidence still fits: 40 NaN gradients and 10 clip events. */
	for (step = 1000; step < 1040; step++) {
		if (gw_layer_grad(gw, step, layer, NAN) == GW_OK) {
			nan_ok++;
			gwt_point_add(&want, &nwant, "layer_grad", "fc", step,
			    NAN);
		}
	}
	for (step = 1000; step < 1010; step++) {
		if (gw_clip(gw, step, 1.0, 50.0 + (double)step) == GW_OK) {
			clip_ok++;
			gwt_point_add(&want, &nwant, "clip_max_norm",
			    "clip_max_norm", step, 1.0);
			gwt_point_add(&want, &nwant, "clip_pre_norm",
			    "clip_pre_norm", step, 50.0 + (double)step);
		}
	}
	is_int(nan_ok, 40, "non-finite values are kept while the buffer is "
	    "full");
	is_int(clip_ok, 10, "so are clip events");
	is_int(gw_grad_norm(gw, 2000, 3.0), GW_EFULL, "a finite value is not");
	for (step = 2000; step < 2010; step++)
		if (gw_loss(gw, step, INFINITY) == GW_OK) {
			late_ok++;
			gwt_point_add(&want, &nwant, "loss", "loss", step,
			    INFINITY);
		}
	is_int(late_ok, 4, "the reserve has room for 64 values, then drops "
	    "too");
	nfull += 1 + 10 - late_ok;
	is_int((long long)gw_dropped(gw), nfull, "and counts them");

	if (!ok(gwt_daemon_start(&d, NULL) == 0, "the daemon comes up"))
		return done_testing();
	is_int(gw_flush(gw, 15000), GW_OK, "gw_flush");
	gwt_export(d.url, "full", &got, &ngot, &ordered);
	for (i = 0; i < ngot; )
		if (strcmp(got[i].kind, "time") == 0)
			got[i] = got[--ngot];
		else
			i++;
	rc = gwt_points_equal(got, ngot, want, nwant, why, sizeof why);
	if (!ok(rc == 0, "every accepted value arrived, and nothing else "
	    "(%zu)", nwant))
		diag("%s", why);
	snprintf(path, sizeof path, "/api/v1/runs/full");
	run = gwt_get_json(d.url, path);
	is_int(json_integer_value(json_object_get(run, "dropped")), nfull,
	    "the run's dropped counter has them all");
	json_decref(run);
	is_int(gw_close(gw, 3000), GW_OK, "gw_close");
	free(want);
	free(got);
	gwt_daemon_stop(&d, SIGTERM);
	return done_testing();
}

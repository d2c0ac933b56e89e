/* SPDX-License-Identifier: MIT */
/*
 * The daemon is not there, or slow: gw_flush and gw_close return within
 * their timeouts (measured) when nothing listens and when a daemon takes
 * a request and never answers; a daemon that comes up after the client
 * started gets everything that fit in the buffer.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradwatch.h"
#include "gwt.h"

/* Allowed lateness past a timeout (more under valgrind or sanitizers). */
static double
slack(void)
{
	return gwt_slow() ? 0.5 : 0.08;
}

static void
test_never_up(void)
{
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;
	char			 url[64];
	double			 t0, dt;
	int			 rc, step, bad = 0;

	snprintf(url, sizeof url, "http://127.0.0.1:%d", gwt_free_port());
	opt.url = url;
	opt.run = "never-up";
	opt.flush_interval_ms = 10;
	if (!ok(gw_open(&gw, &opt) == GW_OK, "open against a port nobody "
	    "listens on"))
		return;
	for (step = 0; step < 1000; step++)
		bad |= gw_loss(gw, step, step) != GW_OK;
	ok(!bad, "logging works with no daemon");
	t0 = gwt_now();
	rc = gw_flush(gw, 300);
	dt = gwt_now() - t0;
	is_int(rc, GW_ECONN, "gw_flush: ECONN");
	ok(dt >= 0.29 && dt < 0.3 + slack(), "gw_flush(300) took %.3f s", dt);
	ok(strstr(gw_errmsg(gw), "refused") != NULL ||
	    strstr(gw_errmsg(gw), "onnect") != NULL, "gw_errmsg says why (%s)",
	    gw_errmsg(gw));
	t0 = gwt_now();
	rc = gw_close(gw, 500);
	dt = gwt_now() - t0;
	is_int(rc, GW_ECONN, "gw_close: ECONN");
	ok(dt < 0.5 + slack(), "gw_close(500) took %.3f s", dt);

	gw = NULL;
	opt.run = "never-up-0";
	gw_open(&gw, &opt);
	gw_loss(gw, 0, 1);
	t0 = gwt_now();
	rc = gw_close(gw, 0);
	dt = gwt_now() - t0;
	ok(rc != GW_OK && dt < slack(), "gw_close(0) returns at once "
	    "(%.3f s, %s)", dt, gw_strerror(rc));
}

/* The fake takes requests and answers them only after 1.5 s. */
static long
slow_cb(struct gwt_fake *f, int i, const struct gwt_req *r, char *headers,
    size_t hlen, char *body, size_t blen)
{
	(void)f;
	(void)i;
	(void)r;
	(void)headers;
	(void)hlen;
	gwt_sleep_ms(1500);
	snprintf(body, blen, "{\"accepted\":1,\"health\":\"ok\",\"alerts\":[]}");
	return 200;
}

static void
test_slow(void)
{
	struct gw_options	 opt = { 0 };
	struct gwt_fake		 f;
	struct gw_client	*gw = NULL;
	double			 t0, dt;
	int			 rc;

	if (!ok(gwt_fake_start(&f, slow_cb, NULL) == 0, "start a slow daemon"))
		return;
	opt.url = f.url;
	opt.run = "slow";
	opt.flush_interval_ms = 10;
	gw_open(&gw, &opt);
	gw_loss(gw, 0, 1.5);
	t0 = gwt_now();
	while (gwt_fake_count(&f) == 0 && gwt_now() < t0 + 5)
		gwt_sleep_ms(5);
	gw_loss(gw, 1, 2.5);
	t0 = gwt_now();
	rc = gw_flush(gw, 200);
	dt = gwt_now() - t0;
	is_int(rc, GW_ETIMEDOUT, "gw_flush against a slow daemon: ETIMEDOUT");
	ok(dt >= 0.19 && dt < 0.2 + slack(), "gw_flush(200) took %.3f s", dt);
	t0 = gwt_now();
	rc = gw_close(gw, 400);
	dt = gwt_now() - t0;
	ok(rc == GW_ETIMEDOUT, "gw_close mid-request: ETIMEDOUT (%s)",
	    gw_strerror(rc));
	ok(dt < 0.4 + slack(), "gw_close(400) took %.3f s while libcurl "
	    "waited for an answer", dt);
	gwt_fake_stop(&f);
}

static void
test_up_later(void)
{
	struct gwt_daemon	 d = { 0 };
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;
	struct gwt_point	*want = NULL, *got = NULL;
	size_t			 nwant = 0, ngot = 0, i;
	char			 url[64], why[512], name[32];
	int64_t			 step, nsteps = gwt_slow() ? 300 : 2000;
	int			 layer[8], k, rc, bad = 0, ordered;
	double			 t0;

	d.port = gwt_free_port();	/* start later, on this port */
	d.ws_port = gwt_free_port();
	snprintf(d.db, sizeof d.db, "%s/later.db", gwt_tmpdir());
	snprintf(d.log, sizeof d.log, "%s/later.log", gwt_tmpdir());
	snprintf(url, sizeof url, "http://127.0.0.1:%d", d.port);
	snprintf(d.url, sizeof d.url, "%s", url);
	opt.url = url;
	opt.run = "up-later";
	opt.flush_interval_ms = 20;
	opt.buffer_points = 65536;
	if (!ok(gw_open(&gw, &opt) == GW_OK, "open before the daemon is up"))
		return;
	for (k = 0; k < 8; k++) {
		snprintf(name, sizeof name, "l%d", k);
		layer[k] = gw_layer(gw, name, 100, k);
	}
	for (step = 0; step < nsteps; step++) {
		bad |= gw_loss(gw, step, 1.0 / (double)(step + 1)) != GW_OK;
		gwt_point_add(&want, &nwant, "loss", "loss", step,
		    1.0 / (double)(step + 1));
		for (k = 0; k < 8; k++) {
			snprintf(name, sizeof name, "l%d", k);
			bad |= gw_layer_grad(gw, step, layer[k],
			    (double)step * 0.5 + k) != GW_OK;
			gwt_point_add(&want, &nwant, "layer_grad", name, step,
			    (double)step * 0.5 + k);
		}
		if (step == nsteps / 2)
			gwt_sleep_ms(300);	/* the sender retries meanwhile */
	}
	ok(!bad, "%zu values logged while the daemon is down (they fit)",
	    nwant);
	is_int(gw_flush(gw, 100), GW_ECONN, "gw_flush: ECONN while down");
	if (!ok(gwt_daemon_start(&d, NULL) == 0, "the daemon comes up"))
		return;
	t0 = gwt_now();
	rc = gw_flush(gw, 15000);
	is_int(rc, GW_OK, "gw_flush once it is up");
	diag("flushed %.2f s after the daemon came up", gwt_now() - t0);
	is_int((long long)gw_dropped(gw), 0, "nothing dropped");
	gwt_export(d.url, "up-later", &got, &ngot, &ordered);
	for (i = 0; i < ngot; )
		if (strcmp(got[i].kind, "time") == 0)
			got[i] = got[--ngot];
		else
			i++;
	rc = gwt_points_equal(got, ngot, want, nwant, why, sizeof why);
	if (!ok(rc == 0, "everything logged while it was down arrived, once"))
		diag("%s", why);
	is_int(gw_close(gw, 3000), GW_OK, "gw_close");
	free(want);
	free(got);
	gwt_daemon_stop(&d, SIGTERM);
}

int
main(void)
{
	test_never_up();
	test_slow();
	test_up_later();
	return done_testing();
}

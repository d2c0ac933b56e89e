/* SPDX-License-Identifier: MIT */
/*
 * Against a live daemon: every kind of value a step carries arrives
 * exactly once and in order (compared with the run's export), across
 * many requests; non-finite values arrive as themselves; the metadata
 * (project, config, layer shapes and depths) lands on the run; the
 * health and alerts of the answers are the run's; gw_close marks the run
 * finished and gw_close_status failed.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradwatch.h"
#include "gwt.h"

#define NLAYERS	20
#define GW_ALERTS_WANT	16

static double
value_of(int64_t step, int k)
{
	if (k == 3 && step % 97 == 13)
		return NAN;
	if (k == 4 && step % 89 == 7)
		return step % 2 ? INFINITY : -INFINITY;
	return 1.0 / (double)(step + k + 1) + k * 0.001 + (double)step * 1e-7;
}

static void
check_run_meta(const char *url, const char *run)
{
	char		 path[256];
	json_t		*j, *s, *series;
	size_t		 i;
	int		 found = 0, meta_ok = 1;

	snprintf(path, sizeof path, "/api/v1/runs/%s", run);
	j = gwt_get_json(url, path);
	if (!ok(j != NULL, "GET the run"))
		return;
	ok(json_is_string(json_object_get(j, "project")) &&
	    strcmp(json_string_value(json_object_get(j, "project")),
	    "unit") == 0, "project is in the run's metadata");
	ok(json_integer_value(json_object_get(json_object_get(j, "config"),
	    "batch")) == 128, "config is in the run's metadata");
	series = json_object_get(j, "series");
	json_array_foreach(series, i, s) {
		const char	*name = json_string_value(json_object_get(s,
		    "name"));
		const char	*kind = json_string_value(json_object_get(s,
		    "kind"));
		int		 layer;

		if (name == NULL || kind == NULL ||
		    strcmp(kind, "layer_grad") != 0 ||
		    sscanf(name, "block%d.weight", &layer) != 1)
			continue;
		found++;
		if (json_integer_value(json_object_get(s, "numel")) !=
		    (layer + 1) * 16 ||
		    json_integer_value(json_object_get(s, "depth")) != layer ||
		    json_array_size(json_object_get(s, "shape")) != 2 ||
		    json_integer_value(json_array_get(json_object_get(s,
		    "shape"), 1)) != 16)
			meta_ok = 0;
	}
	is_int(found, NLAYERS, "every registered layer is a series");
	ok(meta_ok, "layers carry numel, depth and shape from gw_layer_shape");
	json_decref(j);
}

static const char *
str_of(json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

/*
 * The health and alerts of the last answer are the run's as the daemon
 * has them (whatever its detector made of the NaN and Inf we logged).
 */
static void
check_health(struct gw_client *gw, const char *url, const char *run)
{
	struct gw_alert	 a[GW_ALERTS_WANT];
	char		 path[256];
	const char	*h;
	json_t		*j, *list, *al;
	size_t		 i;
	int		 want = -1, n, found = 1, k;

	snprintf(path, sizeof path, "/api/v1/runs/%s", run);
	j = gwt_get_json(url, path);
	h = json_string_value(json_object_get(j, "health"));
	if (h != NULL)
		want = strcmp(h, "ok") == 0 ? GW_HEALTH_OK :
		    strcmp(h, "warning") == 0 ? GW_HEALTH_WARNING :
		    strcmp(h, "critical") == 0 ? GW_HEALTH_CRITICAL : -1;
	is_int(gw_health(gw), want, "gw_health is the run's health");
	n = gw_alerts(gw, a, GW_ALERTS_WANT);
	is_int(n, json_integer_value(json_object_get(j, "alerts_firing")),
	    "gw_alerts counts the run's firing alerts");
	json_decref(j);
	snprintf(path, sizeof path, "/api/v1/alerts?run=%s&state=firing", run);
	j = gwt_get_json(url, path);
	list = json_object_get(j, "alerts");
	for (k = 0; k < n && k < GW_ALERTS_WANT; k++) {
		int	match = 0;

		json_array_foreach(list, i, al)
			match |= strcmp(str_of(al, "kind"), a[k].kind) == 0 &&
			    strcmp(str_of(al, "severity"), a[k].severity) == 0 &&
			    json_integer_value(json_object_get(al,
			    "fire_step")) == a[k].fire_step;
		found &= match;
	}
	ok(found, "each alert gw_alerts gives is one the daemon lists (%d%s%s)",
	    n, n > 0 ? ", first: " : "", n > 0 ? a[0].kind : "");
	json_decref(j);
}

static const char *
status_of(const char *url, const char *run, char *buf, size_t len)
{
	char	 path[256];
	json_t	*j;

	snprintf(path, sizeof path, "/api/v1/runs/%s", run);
	snprintf(buf, len, "?");
	if ((j = gwt_get_json(url, path)) != NULL) {
		snprintf(buf, len, "%s",
		    json_string_value(json_object_get(j, "status")) != NULL ?
		    json_string_value(json_object_get(j, "status")) : "?");
		json_decref(j);
	}
	return buf;
}

int
main(void)
{
	struct gwt_daemon	 d = { 0 };
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL, *gw2 = NULL;
	struct gwt_point	*want = NULL, *got = NULL;
	size_t			 nwant = 0, ngot = 0, i, ntime = 0;
	char			 why[512], name[64], buf[32];
	int64_t			 step, nsteps = gwt_slow() ? 300 : 2000;
	int64_t			 shape[2];
	int			 layer[NLAYERS], acc, val, k, rc, ordered;
	int			 bad = 0, time_ok = 1;
	double			 v;

	if (gwt_daemon_start(&d, NULL) == -1) {
		ok(0, "start gradwatchd");
		return done_testing();
	}
	opt.url = d.url;
	opt.run = "basic-1";
	opt.project = "unit";
	opt.config_json = "{\"lr\": 0.1, \"batch\": 128, \"opt\": {\"m\": [0.9]}}";
	opt.flush_interval_ms = 20;
	rc = gw_open(&gw, &opt);
	is_int(rc, GW_OK, "gw_open");
	ok(strcmp(gw_run(gw), "basic-1") == 0, "gw_run gives the key");
	ok(gw_health(gw) == GW_HEALTH_UNKNOWN, "health unknown before any "
	    "answer");

	for (k = 0; k < NLAYERS; k++) {
		snprintf(name, sizeof name, "block%d.weight", k);
		shape[0] = k + 1;
		shape[1] = 16;
		layer[k] = gw_layer_shape(gw, name, shape, 2, k);
		bad |= layer[k] != k;
	}
	ok(!bad, "layer ids are 0..%d", NLAYERS - 1);
	is_int(gw_layer(gw, "block3.weight", 1, 1), 3, "registering a name "
	    "again gives its id");
	acc = gw_metric(gw, "accuracy");
	val = gw_metric(gw, "val/accuracy \"quoted\"");
	ok(acc == 0 && val == 1, "metric ids");

	for (step = 0; step < nsteps; step++) {
		v = value_of(step, 0);
		bad |= gw_loss(gw, step, v) != GW_OK;
		gwt_point_add(&want, &nwant, "loss", "loss", step, v);
		v = value_of(step, 1) * 10;
		bad |= gw_grad_norm(gw, step, v) != GW_OK;
		gwt_point_add(&want, &nwant, "grad_norm", "grad_norm", step, v);
		if (step % 3 == 0) {
			v = 0.1 / (double)(1 + step / 100);
			bad |= gw_lr(gw, step, v) != GW_OK;
			gwt_point_add(&want, &nwant, "lr", "lr", step, v);
		}
		for (k = 0; k < NLAYERS; k++) {
			snprintf(name, sizeof name, "block%d.weight", k);
			if (k == 5 && step % 7 == 0)
				continue;	/* a layer without a value: null */
			v = value_of(step, k + 2);
			bad |= gw_layer_grad(gw, step, layer[k], v) != GW_OK;
			gwt_point_add(&want, &nwant, "layer_grad", name, step,
			    v);
			if (step % 10 == 0) {
				v = value_of(step, k) * 100;
				bad |= gw_layer_weight(gw, step, layer[k], v) !=
				    GW_OK;
				gwt_point_add(&want, &nwant, "layer_weight",
				    name, step, v);
			}
		}
		if (step % 5 == 0) {
			bad |= gw_clip(gw, step, 1.0, value_of(step, 1) * 10) !=
			    GW_OK;
			gwt_point_add(&want, &nwant, "clip_max_norm",
			    "clip_max_norm", step, 1.0);
			gwt_point_add(&want, &nwant, "clip_pre_norm",
			    "clip_pre_norm", step, value_of(step, 1) * 10);
		}
		if (step % 50 == 0) {
			bad |= gw_skipped(gw, step, step % 100 == 0, 65536) !=
			    GW_OK;
			gwt_point_add(&want, &nwant, "skipped", "skipped", step,
			    step % 100 == 0);
			gwt_point_add(&want, &nwant, "loss_scale", "loss_scale",
			    step, 65536);
		}
		v = (double)step / (double)nsteps;
		bad |= gw_metric_value(gw, step, acc, v) != GW_OK;
		gwt_point_add(&want, &nwant, "metric", "accuracy", step, v);
		if (step % 100 == 0) {
			/* Logged twice: the later value is the one kept. */
			bad |= gw_metric_value(gw, step, val, -1) != GW_OK;
			bad |= gw_metric_value(gw, step, val, v / 2) != GW_OK;
			gwt_point_add(&want, &nwant, "metric",
			    "val/accuracy \"quoted\"", step, v / 2);
		}
		if (step % 250 == 0)
			bad |= gw_step_time(gw, step, 1700000000.0 +
			    (double)step) != GW_OK;
	}
	ok(!bad, "every logging call returned GW_OK");

	rc = gw_flush(gw, 20000);
	is_int(rc, GW_OK, "gw_flush");
	is_int((long long)gw_dropped(gw), 0, "nothing dropped");
	check_health(gw, d.url, "basic-1");
	ok(strcmp(gw_errmsg(gw), "") == 0, "no error message (%s)",
	    gw_errmsg(gw));

	if (gwt_export(d.url, "basic-1", &got, &ngot, &ordered) == -1)
		ok(0, "export");
	/* Time points are stamped by the sender; check them apart. */
	for (i = 0; i < ngot; ) {
		if (strcmp(got[i].kind, "time") != 0) {
			i++;
			continue;
		}
		if (got[i].step % 250 == 0 &&
		    got[i].value != 1700000000.0 + (double)got[i].step)
			time_ok = 0;
		if (got[i].step % 250 != 0 && (got[i].value < 1.7e9 ||
		    !isfinite(got[i].value)))
			time_ok = 0;
		ntime++;
		got[i] = got[--ngot];
	}
	is_int((long long)ntime, nsteps, "every step has a time");
	ok(time_ok, "explicit step times kept, others stamped now");
	ok(ordered, "the export lists each series in step order");
	rc = gwt_points_equal(got, ngot, want, nwant, why, sizeof why);
	if (!ok(rc == 0, "every point arrived exactly once (%zu points)",
	    nwant))
		diag("%s", why);
	check_run_meta(d.url, "basic-1");

	rc = gw_close(gw, 5000);
	is_int(rc, GW_OK, "gw_close");
	ok(strcmp(status_of(d.url, "basic-1", buf, sizeof buf), "finished") == 0,
	    "the run is finished (%s)", buf);

	/* An empty run still appears, and can end failed. */
	opt.run = "basic-2";
	opt.config_json = NULL;
	is_int(gw_open(&gw2, &opt), GW_OK, "open a second run");
	is_int(gw_close_status(gw2, GW_RUN_FAILED, 5000), GW_OK,
	    "gw_close_status failed");
	ok(strcmp(status_of(d.url, "basic-2", buf, sizeof buf), "failed") == 0,
	    "the run is failed (%s)", buf);

	free(want);
	free(got);
	gwt_daemon_stop(&d, SIGTERM);
	return done_testing();
}

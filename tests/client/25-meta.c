/* SPDX-License-Identifier: MIT */
/*
 * The newer options.  meta_json: checked at gw_open (a JSON object, not
 * naming project, config, layers or detector), its members sent in the
 * run's meta beside the others and read back from GET /api/v1/runs/{run}.
 * The spool's: spool_dir from $GRADWATCH_SPOOL, "" for none, a relative
 * one taken from where gw_open ran; and the new codes' texts.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gradwatch.h"
#include "gwt.h"

static int
open_rc(const struct gw_options *opt)
{
	struct gw_client	*gw = NULL;
	int			 rc;

	rc = gw_open(&gw, opt);
	if (gw != NULL)
		gw_close(gw, 0);
	return rc;
}

static void
test_meta_checks(void)
{
	struct gw_options	 opt = { .url = "http://127.0.0.1:1" };
	static const char *const bad[] = {
		"[1, 2]", "42", "{\"a\": ", "{\"a\": 1, \"a\": 2}",
		"{\"project\": \"x\"}", "{\"config\": {}}", "{\"layers\": {}}",
		"{\"detector\": {\"grad.spike_z\": 8}}",
	};
	char			 deep[200];
	size_t			 i;
	int			 rc, all = 1;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		opt.meta_json = bad[i];
		rc = open_rc(&opt);
		if (rc != GW_EINVAL || strstr(gw_errmsg(NULL), "meta_json") ==
		    NULL) {
			all = 0;
			diag("%s: %s, %s", bad[i], gw_strerror(rc),
			    gw_errmsg(NULL));
		}
	}
	ok(all, "meta_json that is no object, bad JSON, duplicate keys, or "
	    "names project, config, layers or detector: EINVAL, said");
	opt.meta_json = "{\"layers\": 1}";
	open_rc(&opt);
	ok(strstr(gw_errmsg(NULL), "\"layers\" is not allowed") != NULL,
	    "the message names the key (%s)", gw_errmsg(NULL));
	memset(deep, 0, sizeof deep);
	for (i = 0; i < 31; i++)
		strcat(deep, "[");
	for (i = 0; i < 31; i++)
		strcat(deep, "]");
	{
		char	obj[260];

		snprintf(obj, sizeof obj, "{\"a\": %s}", deep);
		opt.meta_json = obj;
		is_int(open_rc(&opt), GW_EINVAL, "meta_json nested past what "
		    "the daemon takes: EINVAL");
	}
	opt.meta_json = "{}";
	is_int(open_rc(&opt), GW_OK, "an empty object is fine");
	opt.meta_json = "{\"distributed\": {\"world_size\": 2}, \"note\": "
	    "\"\\u00e9t\\u00e9\"}";
	is_int(open_rc(&opt), GW_OK, "an object of other keys is fine");
}

static void
test_meta_sent(void)
{
	struct gwt_daemon	 d = { 0 };
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;
	json_t			*run, *meta;
	int			 l;

	if (!ok(gwt_daemon_start(&d, NULL) == 0, "start gradwatchd"))
		return;
	opt.url = d.url;
	opt.run = "meta-1";
	opt.project = "proj";
	opt.config_json = "{\"lr\": 0.1}";
	opt.meta_json = "{\"distributed\": {\"world_size\": 4, \"rank\": 0, "
	    "\"backend\": \"nccl\"}, \"host\": \"n\\u00f6de-1\"}";
	if (!ok(gw_open(&gw, &opt) == GW_OK, "open with meta_json"))
		return;
	l = gw_layer(gw, "fc.weight", 12, 0);
	gw_loss(gw, 0, 1.5);
	gw_layer_grad(gw, 0, l, 0.5);
	is_int(gw_flush(gw, 5000), GW_OK, "the first request went");
	gw_layer(gw, "fc.bias", 3, 1);		/* meta again, with two layers */
	gw_layer_grad(gw, 1, l, 0.25);
	is_int(gw_close(gw, 5000), GW_OK, "and the rest");
	run = gwt_get_json(d.url, "/api/v1/runs/meta-1");
	meta = json_object_get(run, "meta");
	ok(json_integer_value(json_object_get(json_object_get(meta,
	    "distributed"), "world_size")) == 4 &&
	    json_integer_value(json_object_get(json_object_get(meta,
	    "distributed"), "rank")) == 0 &&
	    json_string_value(json_object_get(json_object_get(meta,
	    "distributed"), "backend")) != NULL,
	    "GET /api/v1/runs/{run}: meta has the distributed member");
	ok(json_is_string(json_object_get(meta, "host")) &&
	    strcmp(json_string_value(json_object_get(meta, "host")),
	    "n\xc3\xb6" "de-1") == 0, "and the other, UTF-8 intact");
	ok(json_object_get(json_object_get(meta, "layers"), "fc.bias") != NULL,
	    "beside the layers (the later meta kept the members too)");
	ok(json_is_string(json_object_get(run, "project")) &&
	    strcmp(json_string_value(json_object_get(run, "project")),
	    "proj") == 0 && json_real_value(json_object_get(json_object_get(
	    run, "config"), "lr")) == 0.1, "project and config as before");
	json_decref(run);
	gwt_daemon_stop(&d, SIGTERM);
}

static void
test_spool_options(void)
{
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;
	char			 url[64], dir[600], file[700], cwd[600];
	struct stat		 st;

	snprintf(url, sizeof url, "http://127.0.0.1:%d", gwt_free_port());
	opt.url = url;
	opt.flush_interval_ms = 10;

	/* $GRADWATCH_SPOOL, relative: where gw_open ran, not where we are later. */
	if (getcwd(cwd, sizeof cwd) == NULL || chdir(gwt_tmpdir()) == -1) {
		ok(0, "chdir");
		return;
	}
	setenv("GRADWATCH_SPOOL", "rel-spool", 1);
	opt.run = "opt-env";
	gw_open(&gw, &opt);
	if (chdir(cwd) == -1)
		diag("chdir back failed");
	gw_loss(gw, 0, 1);
	is_int(gw_close(gw, 200), GW_ESPOOLED, "$GRADWATCH_SPOOL: spooled");
	snprintf(file, sizeof file, "%s/rel-spool/opt-env.gwspool",
	    gwt_tmpdir());
	ok(stat(file, &st) == 0 && (st.st_mode & 0777) == 0600,
	    "in $GRADWATCH_SPOOL, taken from where gw_open ran, mode 0600");
	snprintf(dir, sizeof dir, "%s/rel-spool", gwt_tmpdir());
	ok(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700,
	    "the directory was made (0700)");

	opt.spool_dir = "";
	opt.run = "opt-none";
	gw = NULL;
	gw_open(&gw, &opt);
	gw_loss(gw, 0, 1);
	is_int(gw_close(gw, 200), GW_ECONN, "spool_dir \"\": no spool, as "
	    "before");
	snprintf(file, sizeof file, "%s/rel-spool/opt-none.gwspool",
	    gwt_tmpdir());
	ok(stat(file, &st) == -1, "no file");
	unsetenv("GRADWATCH_SPOOL");

	/* A spool that cannot be: the run goes on, gw_errmsg says why. */
	snprintf(dir, sizeof dir, "%s/no/such/dir", gwt_tmpdir());
	opt.spool_dir = dir;
	opt.run = "opt-bad";
	gw = NULL;
	is_int(gw_open(&gw, &opt), GW_OK, "a spool_dir whose parent is "
	    "missing: gw_open does not look");
	gw_loss(gw, 0, 1);
	gw_flush(gw, 100);
	is_int(gw_close(gw, 200), GW_ECONN, "gw_close: ECONN, as without a "
	    "spool");

	is_int(strcmp(gw_strerror(GW_ESPOOLED), gw_strerror(GW_EBUSY)) != 0 &&
	    strcmp(gw_strerror(GW_EBUSY), "unknown error") != 0 &&
	    strstr(gw_strerror(GW_ESPOOLED), "spool") != NULL, 1,
	    "GW_ESPOOLED and GW_EBUSY have texts of their own");
	is_int(gw_sync(NULL, NULL, 1000, NULL, NULL, NULL), GW_EINVAL,
	    "gw_sync(NULL): EINVAL");
	is_int(gw_sync(gwt_tmpdir(), NULL, 0, NULL, NULL, NULL), GW_EINVAL,
	    "gw_sync with no time: EINVAL");
	opt.url = "ftp://x";
	is_int(gw_sync(gwt_tmpdir(), &opt, 1000, NULL, NULL, NULL), GW_EINVAL,
	    "gw_sync with a bad URL: EINVAL");
}

int
main(void)
{
	test_meta_checks();
	test_meta_sent();
	test_spool_options();
	return done_testing();
}
